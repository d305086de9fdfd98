"""The domain's state: the plans a provider sells and the Redis instances we watch."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat

from scaling import crypto
from scaling.schedules import MAX_LEAD_MINUTES, ScheduleError, parse_schedule

MIB = 1024 * 1024
NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
UNCONFIRMED_PRICE = "unconfirmed price"  # the marker beside a price nobody confirmed
DecryptionError = crypto.DecryptionError  # for the apps that use scaling through its models


class EncryptedSecret:
    """A secret kept encrypted at rest in a TextField of its model (scaling/crypto.py): reads
    decrypt it ("" when unset), writes encrypt it (key rotation: services/encryption.py)."""

    def __init__(self, field):
        self.field = field

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        token = getattr(obj, self.field)
        return crypto.decrypt(token) if token else ""

    def __set__(self, obj, value):
        setattr(obj, self.field, crypto.encrypt(value) if value else "")


class RedisPlan(models.Model):
    """One plan of a Redis add-on, named as Heroku names it (`heroku-redis:premium-0`)."""

    UNLIMITED = -1
    RANK_FIELDS = ("mem_limit", "cost")

    service_name = models.CharField(max_length=64, help_text="Heroku add-on service, e.g. heroku-redis")
    plan_name = models.CharField(max_length=128, unique=True, help_text="service:plan, e.g. heroku-redis:premium-0")
    mem_limit = models.PositiveIntegerField(help_text="Memory limit in MB (MiB, as Redis counts maxmemory)")
    conn_limit = models.IntegerField(help_text="Connection limit; -1 means unlimited")
    cost = models.DecimalField(max_digits=10, decimal_places=2, help_text="Monthly price in USD")
    source = models.CharField(max_length=300, blank=True, help_text="Where the figures come from")
    # Where the price comes from: "Heroku Platform API" (load_plans --from-heroku) or a named
    # source of the static data; nobody confirmed it unless price_confirmed.
    HEROKU_PRICE_SOURCE = "Heroku Platform API"
    price_source = models.CharField(max_length=200, blank=True, help_text="Where the price comes from")
    price_confirmed = models.BooleanField(
        default=False, help_text="The price was read from Heroku or confirmed by its source; if not, it is a guess")
    price_fetched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the price was read from Heroku (empty: from the static data)")

    class Meta:
        ordering = ["service_name", "mem_limit", "cost"]
        constraints = [
            models.CheckConstraint(
                condition=Q(plan_name__startswith=Concat(F("service_name"), Value(":"))),
                name="plan_name_starts_with_service",
                violation_error_message="The plan name must start with its service name and a colon.",
            ),
            models.CheckConstraint(condition=Q(mem_limit__gt=0), name="plan_memory_positive"),
            models.CheckConstraint(
                condition=Q(conn_limit=-1) | Q(conn_limit__gt=0),
                name="plan_connections_positive_or_unlimited",
            ),
            models.CheckConstraint(condition=Q(cost__gte=Decimal("0")), name="plan_cost_not_negative"),
        ]
        indexes = [
            # The provider's ladder: RedisPlan.objects.filter(service_name=...).order_by("mem_limit", "cost")
            models.Index(fields=["service_name", "mem_limit", "cost"], name="plan_ladder_idx"),
        ]

    def __str__(self):
        return self.plan_name

    @property
    def short_name(self):
        return self.plan_name.split(":", 1)[1]

    @property
    def rank(self):
        """Where the plan stands in its provider's ladder: by memory, then by price (the
        order of RANK_FIELDS, the ladder's index)."""
        return (self.mem_limit, self.cost)

    @property
    def mem_limit_bytes(self):
        return self.mem_limit * MIB

    @property
    def unlimited_connections(self):
        return self.conn_limit == self.UNLIMITED

    @property
    def price_label(self):
        """The monthly price as people see it, marked when nobody confirmed it."""
        return f"${self.cost}/month" + ("" if self.price_confirmed else f" ({UNCONFIRMED_PRICE})")

    @property
    def price_provenance(self):
        """Where and when the price came from, for people."""
        source = self.price_source or "no source named"
        return f"{source}, read {self.price_fetched_at:%Y-%m-%d %H:%M} UTC" if self.price_fetched_at else source

    def describe(self):
        conns = "unlimited connections" if self.unlimited_connections else f"{self.conn_limit:,} connections"
        return f"{self.plan_name} ({self.mem_limit:,} MB, {conns}, {self.price_label})"


DEFAULT_ACCOUNT = "default"


class HerokuAccount(models.Model):
    """A Heroku account whose API key manages some of the instances (DESIGN section 9).

    The account named `default` is HEROKU_API_KEY: its key is never stored, it is read from
    the environment when a process builds its client, so that `heroku config:set
    HEROKU_API_KEY=...` is the one way to change it. Its row is made by the migration that
    introduced accounts (release phase) and, should it be missing, lazily by
    `default_account_id()`. The others' keys are stored encrypted like Redis URLs
    (scaling/crypto.py) and are never shown.

    `problem` is what Heroku last said about the whole account: `drained` (429, or
    RateLimit-Remaining at 0) or `refusing` (401: the key is revoked or wrong); each is a
    transition of its own (`problem_mark`, `problem_clear`), so that it is alerted once.
    """

    class Problem(models.TextChoices):
        NONE = "", "ok"
        DRAINED = "drained", "rate limit drained"
        REFUSING = "refusing", "key refused (401)"

    name = models.CharField(
        max_length=64, unique=True,
        validators=[RegexValidator(NAME_PATTERN, "Use letters, digits, '-' and '_' only.")],
    )
    api_key_encrypted = models.TextField(blank=True, editable=False)
    email = models.CharField(max_length=254, blank=True, editable=False, help_text="The account's e-mail, as Heroku said")
    problem = models.CharField(max_length=10, choices=Problem.choices, default="", blank=True, editable=False)
    problem_detail = models.TextField(blank=True, editable=False)
    problem_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(name__regex=NAME_PATTERN), name="account_name_charset"),
        ]

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<HerokuAccount {self.name}>"  # never the key

    @property
    def is_default(self):
        return self.name == DEFAULT_ACCOUNT

    @property
    def api_key(self):
        from django.conf import settings

        if self.is_default:
            return settings.HEROKU_API_KEY or ""
        return crypto.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    @api_key.setter
    def api_key(self, key):
        self.api_key_encrypted = crypto.encrypt(key) if key else ""

    @property
    def usable(self):
        """Has a key (HEROKU_API_KEY set, for `default`)."""
        from django.conf import settings

        return bool(settings.HEROKU_API_KEY) if self.is_default else bool(self.api_key_encrypted)

    def instances_q(self):
        """Its instances as a filter of RedisInstance (`default`'s include those with no account)."""
        mine = Q(account=self)
        return mine | Q(account__isnull=True) if self.is_default else mine

    @property
    def instance_count(self):
        return RedisInstance.objects.filter(self.instances_q()).count()

    def problem_mark(self, *, problem, detail, now):
        """Compare-and-set: True only for the call that moved the account into `problem`."""
        moved = HerokuAccount.objects.filter(pk=self.pk).exclude(problem=problem).update(
            problem=problem, problem_detail=detail[:1000], problem_since=now) == 1
        if moved:
            self.problem, self.problem_detail, self.problem_since = problem, detail[:1000], now
        return moved

    def problem_clear(self):
        """Compare-and-set: True only for the call that found the account in trouble."""
        cleared = HerokuAccount.objects.filter(pk=self.pk).exclude(problem="").update(
            problem="", problem_detail="", problem_since=None) == 1
        self.problem, self.problem_detail, self.problem_since = "", "", None
        return cleared


def default_account_id():
    """The `default` account's id, its row made if missing."""
    account, _ = HerokuAccount.objects.get_or_create(name=DEFAULT_ACCOUNT)
    return account.pk


def validate_schedule_specs(value):
    """A list of schedule specs (scaling.schedules), each one line naming its wrong part."""
    if not isinstance(value, list) or not all(isinstance(spec, str) for spec in value):
        raise ValidationError("Schedules are a list of 'DAYS HH:MM-HH:MM TZ PLAN' texts.")
    errors = []
    for spec in value:
        try:
            parse_schedule(spec)
        except ScheduleError as error:
            errors.append(ValidationError(str(error)))
    if errors:
        raise ValidationError(errors)


class RedisInstanceQuerySet(models.QuerySet):
    def with_plans(self):
        return self.select_related("current_plan", "min_plan", "max_plan", "account")


class RedisInstance(models.Model):
    """A registered Redis add-on: what to watch, how to scale it, and the scheduler's state."""

    class MetricRate(models.IntegerChoices):
        S30 = 30, "30s"
        M1 = 60, "1m"
        M5 = 300, "5m"

    # Failed samples in a row after which an instance is "unreachable" (alerted, and so
    # shown in the overview).
    UNREACHABLE_AFTER = 3

    class Workload(models.TextChoices):
        QUEUE = "queue", "queue"
        CACHE = "cache", "cache"

    class ScalingRate(models.IntegerChoices):
        M1 = 60, "1m"
        M5 = 300, "5m"
        M10 = 600, "10m"

    # --- registration (DESIGN section 4) ---
    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(NAME_PATTERN, "Use letters, digits, '-' and '_' only.")],
    )
    app_name = models.CharField("Heroku app", max_length=100)
    config_var = models.CharField(
        "Redis config var",
        max_length=200,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9_]*$", "Config var names are upper case letters, digits and '_'.")],
        help_text="e.g. REDISCLOUD_ORANGE_URL or HEROKU_REDIS_BLANK_URL",
    )
    metric_rate = models.PositiveIntegerField(choices=MetricRate.choices, default=MetricRate.M1)
    memory_threshold = models.PositiveSmallIntegerField(
        "memory %", default=80, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Average memory use (% of the plan) to stay under",
    )
    connection_threshold = models.PositiveSmallIntegerField(
        "connections %", default=80, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Average connections (% of the plan's limit) to stay under",
    )
    scaling_enabled = models.BooleanField(default=True)
    dry_run = models.BooleanField(default=False, help_text="Decide and record, but never change the plan")
    min_plan = models.ForeignKey(RedisPlan, on_delete=models.PROTECT, related_name="+")
    max_plan = models.ForeignKey(RedisPlan, on_delete=models.PROTECT, related_name="+")
    scaling_rate = models.PositiveIntegerField(choices=ScalingRate.choices, default=ScalingRate.M1)
    notify_breach = models.BooleanField("mail on threshold breach", default=True)
    notify_success = models.BooleanField("mail on scaling success", default=True)
    notify_failure = models.BooleanField("mail on scaling failure", default=True)
    # Workload and policy (DESIGN section 9).
    workload = models.CharField(
        max_length=5, choices=Workload.choices, default=Workload.QUEUE,
        help_text="queue: every eviction is data lost; cache: evictions are normal, scaled up on a low hit rate",
    )
    min_hit_rate = models.PositiveSmallIntegerField(
        "min hit rate %", default=90, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="A cache goes up when its hit rate is under this while keys are evicted",
    )
    scale_down_enabled = models.BooleanField(
        "scale down", default=True, help_text="Off: scale-in protection, the plan only ever moves up",
    )
    maxmemory_policy = models.CharField(
        max_length=32, blank=True, editable=False, help_text="Redis's eviction policy, as last read",
    )

    # --- scheduled capacity (DESIGN section 9) ---
    schedules = models.JSONField(
        default=list, blank=True, validators=[validate_schedule_specs],
        help_text="Minimum plans by time, each 'DAYS HH:MM-HH:MM TZ PLAN', "
                  "e.g. \"mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2\"",
    )
    schedule_lead_minutes = models.PositiveSmallIntegerField(
        "schedule lead (minutes)", default=10, validators=[MaxValueValidator(MAX_LEAD_MINUTES)],
        help_text="How long before a scheduled window opens its plan should be up",
    )

    # Empty means `default` too (HEROKU_API_KEY): rows made before accounts existed are attached
    # to it by their migration, and rows made without one (bulk loads, an unsaved instance that
    # `simulate` builds without a database) need no query to be valid.
    account = models.ForeignKey(
        HerokuAccount, on_delete=models.PROTECT, related_name="instances", null=True, blank=True,
        help_text="The Heroku account whose key manages this add-on (empty: default, HEROKU_API_KEY)",
    )

    # --- what Heroku told us, kept so that checks spend no API calls (DESIGN section 7) ---
    addon_id = models.UUIDField(null=True, blank=True)
    addon_name = models.CharField(max_length=200, blank=True)
    current_plan = models.ForeignKey(RedisPlan, on_delete=models.PROTECT, related_name="+")
    redis_url_encrypted = models.TextField(blank=True, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="Last time the add-on was read from Heroku")

    # --- scheduler state ---
    next_sample_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    # SQLite only: the lease of the check running (PostgreSQL uses an advisory lock instead).
    check_claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    check_error = models.TextField(
        blank=True, editable=False, help_text="Why the last scaling check could not judge this instance"
    )
    check_failed_since = models.DateTimeField(null=True, blank=True, editable=False)
    plan_changed_at = models.DateTimeField(null=True, blank=True, help_text="When the current plan took effect")
    consecutive_failures = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RedisInstanceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(name__regex=NAME_PATTERN), name="instance_name_charset"),
            models.CheckConstraint(
                condition=Q(memory_threshold__gte=1, memory_threshold__lte=100), name="memory_threshold_1_100"
            ),
            models.CheckConstraint(
                condition=Q(connection_threshold__gte=1, connection_threshold__lte=100),
                name="connection_threshold_1_100",
            ),
            models.CheckConstraint(condition=Q(metric_rate__in=[30, 60, 300]), name="metric_rate_choices"),
            models.CheckConstraint(condition=Q(scaling_rate__in=[60, 300, 600]), name="scaling_rate_choices"),
            models.CheckConstraint(condition=Q(workload__in=["queue", "cache"]), name="workload_choices"),
            models.CheckConstraint(condition=Q(min_hit_rate__gte=1, min_hit_rate__lte=100), name="min_hit_rate_pct"),
            # Plans of one provider and min <= max span two tables: enforced by the trigger in
            # scaling/migrations/0002_plan_consistency_trigger.py.
        ]
        indexes = [
            # Dispatcher: RedisInstance.objects.filter(next_sample_at__lte=now)
            models.Index(fields=["next_sample_at"], name="instance_sample_due_idx"),
            # Dispatcher: RedisInstance.objects.filter(scaling_enabled=True, next_check_at__lte=now)
            models.Index(fields=["next_check_at"], name="instance_check_due_idx"),
            # Reconciliation: RedisInstance.objects.filter(addon_id__in=...)
            models.Index(fields=["addon_id"], name="instance_addon_idx"),
        ]

    def __str__(self):
        return self.name

    def __repr__(self):
        # Never the URL: it carries the password.
        return f"<RedisInstance {self.name} app={self.app_name} plan={self.current_plan_id}>"

    @property
    def redis_url(self):
        return crypto.decrypt(self.redis_url_encrypted) if self.redis_url_encrypted else ""

    @redis_url.setter
    def redis_url(self, url):
        self.redis_url_encrypted = crypto.encrypt(url) if url else ""

    @property
    def service_name(self):
        return self.current_plan.service_name

    @property
    def unreachable(self):
        return self.consecutive_failures >= self.UNREACHABLE_AFTER

    @property
    def workload_mismatch(self):
        """Why the Redis' eviction policy disagrees with the workload, or "" when it does not
        (or is not known yet): a queue that evicts loses data; a cache that cannot evict
        refuses writes when full."""
        policy = self.maxmemory_policy
        if not policy:
            return ""
        if self.workload == self.Workload.QUEUE and policy != "noeviction":
            return f"maxmemory-policy {policy} evicts keys, but the workload is queue"
        if self.workload == self.Workload.CACHE and policy == "noeviction":
            return "maxmemory-policy noeviction never evicts, but the workload is cache"
        return ""

    @classmethod
    def unreachable_q(cls):
        """`unreachable` as a filter, for the database to count and sort by."""
        return Q(consecutive_failures__gte=cls.UNREACHABLE_AFTER)

    def clean(self):
        errors = {}
        plans = {"current_plan": self.current_plan_id, "min_plan": self.min_plan_id, "max_plan": self.max_plan_id}
        loaded = {field: getattr(self, field) for field, pk in plans.items() if pk}
        services = {plan.service_name for plan in loaded.values()}
        if len(services) > 1:
            errors["max_plan"] = "Current, min and max plan must all belong to one provider."
        elif "min_plan" in loaded and "max_plan" in loaded:
            if loaded["min_plan"].rank > loaded["max_plan"].rank:
                errors["min_plan"] = f"The min plan {loaded['min_plan']} is above the max plan {loaded['max_plan']}."
        schedule_errors = self._schedule_plan_errors(services)
        if schedule_errors:
            errors["schedules"] = schedule_errors
        if errors:
            raise ValidationError(errors)


    def _schedule_plan_errors(self, services):
        """Each schedule's plan must be a known plan of the instance's provider."""
        if not isinstance(self.schedules, list):
            return []
        parsed = []
        for spec in self.schedules:
            try:
                parsed.append(parse_schedule(spec))
            except (ScheduleError, TypeError):
                continue  # the field's validator reports it
        known = set(RedisPlan.objects.filter(plan_name__in=[s.plan for s in parsed]).values_list("plan_name", flat=True))
        errors = []
        for schedule in parsed:
            if schedule.plan not in known:
                errors.append(f"schedule '{schedule.spec}': plan {schedule.plan} is not a known plan")
            elif services and schedule.plan.split(":", 1)[0] not in services:
                errors.append(f"schedule '{schedule.spec}': plan {schedule.plan} is not a plan of {', '.join(sorted(services))}")
        return errors

    @property
    def parsed_schedules(self):
        """The schedules as scaling.schedules reads them (stored specs are valid)."""
        return tuple(parse_schedule(spec) for spec in self.schedules or ())
