from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse

from autoscaler.admin_utils import ReadOnlyAdmin
from scaling.models import HerokuAccount, RedisInstance, RedisPlan
from scaling.schedules import ScheduleError, parse_schedule


class SchedulesField(forms.CharField):
    """The instance's schedules as text, one 'DAYS HH:MM-HH:MM TZ PLAN' a line; a bad line is
    named with what is wrong in it. Short plan names ('premium-2') are completed by the form."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 70})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        specs = []
        for number, line in enumerate(str(value or "").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                specs.append(parse_schedule(line))
            except ScheduleError as error:
                raise ValidationError(f"line {number}: {error}") from None
        return specs


class RedisInstanceForm(forms.ModelForm):
    schedules = SchedulesField(
        required=False, help_text="One a line: DAYS HH:MM-HH:MM TZ PLAN, e.g. "
        "mon-fri 08:00-18:00 Europe/Berlin premium-2 (DAYS: daily, mon-fri, sat,sun, ...; TZ: an IANA name)",
    )

    class Meta:
        model = RedisInstance
        fields = "__all__"

    def clean_schedules(self):
        service = self.instance.current_plan.service_name if self.instance.current_plan_id else None
        specs = []
        for schedule in self.cleaned_data["schedules"]:
            plan = schedule.plan if ":" in schedule.plan or service is None else f"{service}:{schedule.plan}"
            specs.append(schedule.with_plan(plan).spec)
        return specs


@admin.register(RedisPlan)
class RedisPlanAdmin(admin.ModelAdmin):
    list_display = ("plan_name", "service_name", "mem_limit", "connections", "price", "price_provenance", "source")
    list_filter = ("service_name", "price_confirmed")
    search_fields = ("plan_name", "service_name")
    ordering = ("service_name", "mem_limit", "cost")

    @admin.display(description="connections", ordering="conn_limit")
    def connections(self, plan):
        return "unlimited" if plan.unlimited_connections else plan.conn_limit

    @admin.display(description="price", ordering="cost")
    def price(self, plan):
        return plan.price_label

    @admin.display(description="price from", ordering="price_source")
    def price_provenance(self, plan):
        return plan.price_provenance


@admin.register(HerokuAccount)
class HerokuAccountAdmin(ReadOnlyAdmin):
    """Read-only: an account is added with its key checked by Heroku (`manage.py heroku_accounts
    add NAME`); the key is never shown, only where it is kept."""

    list_display = ("name", "key", "email", "instance_count", "state", "problem_since")
    fields = ("name", "key", "email", "instance_count", "state", "problem_since", "created_at")
    readonly_fields = fields

    @admin.display(description="API key")
    def key(self, account):
        if account.is_default:
            return "HEROKU_API_KEY" + ("" if account.usable else " (not set)")
        return "stored, encrypted"

    @admin.display(description="state", ordering="problem")
    def state(self, account):
        return f"{account.get_problem_display()}: {account.problem_detail}" if account.problem else "ok"


@admin.register(RedisInstance)
class RedisInstanceAdmin(admin.ModelAdmin):
    form = RedisInstanceForm
    list_display = (
        "name", "app_name", "current_plan", "min_plan", "max_plan", "memory_threshold",
        "connection_threshold", "scaling_enabled", "dry_run", "metric_rate", "scaling_rate",
        "schedule_list", "consecutive_failures",
        "workload_shown", "scale_down_enabled", "consecutive_failures", "account",
    )
    list_filter = ("scaling_enabled", "dry_run", "workload", "scale_down_enabled", "metric_rate", "scaling_rate",
                   "current_plan__service_name", "account")
    search_fields = ("name", "app_name", "addon_name", "config_var")
    list_select_related = ("current_plan", "min_plan", "max_plan", "account")
    readonly_fields = (
        "account", "addon_id", "addon_name", "current_plan", "current_plan_price", "resolved_at", "redis_url_status", "check_error",
        "check_failed_since", "maxmemory_policy", "policy_agreement", "next_sample_at", "next_check_at", "plan_changed_at", "consecutive_failures", "created_at", "updated_at",
    )
    fieldsets = (
        ("General", {"fields": ("name", "app_name", "config_var")}),
        ("Metrics", {"fields": ("metric_rate", "memory_threshold", "connection_threshold")}),
        ("Scaling", {"fields": ("scaling_enabled", "dry_run", "min_plan", "max_plan", "scaling_rate")}),
        ("Scheduled capacity", {"fields": ("schedules", "schedule_lead_minutes")}),
        ("Workload", {"fields": ("workload", "min_hit_rate", "scale_down_enabled", "maxmemory_policy",
                                 "policy_agreement")}),
        ("Notifications", {"fields": ("notify_breach", "notify_success", "notify_failure")}),
        ("From Heroku", {"fields": ("account", "addon_id", "addon_name", "current_plan", "current_plan_price", "redis_url_status", "resolved_at")}),
        ("Schedule", {"fields": ("next_sample_at", "next_check_at", "plan_changed_at", "consecutive_failures", "created_at", "updated_at")}),
        ("Last check", {"fields": ("check_error", "check_failed_since")}),
    )

    # Deleting goes through the removal service: a plan change in flight is settled first,
    # and an instance whose change Heroku is still provisioning is not deleted (its pending
    # action would be orphaned, and the add-on changed twice when registered again).
    def response_delete(self, request, obj_display, obj_id):
        if RedisInstance.objects.filter(pk=obj_id).exists():  # refused: the error is shown
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(reverse("admin:scaling_redisinstance_change", args=[obj_id]))
        return super().response_delete(request, obj_display, obj_id)

    def delete_model(self, request, obj):
        self.delete_queryset(request, RedisInstance.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        from django.contrib import messages

        from scaling.services.registration import RegistrationError, instance_remove

        for name in queryset.values_list("name", flat=True):
            try:
                instance_remove(name=name, keep_record=True, wait_seconds=0)
            except RegistrationError as error:
                self.message_user(request, f"{error}; not deleted", messages.ERROR)

    def has_add_permission(self, request):
        # Registration resolves the add-on through Heroku: use add_redis_mon.py.
        return False

    @admin.display(description="schedules")
    def schedule_list(self, instance):
        return "; ".join(instance.schedules) if instance.schedules else "—"
    @admin.display(description="workload", ordering="workload")
    def workload_shown(self, instance):
        # A policy that disagrees with the workload is flagged where the instances are listed.
        mismatch = instance.workload_mismatch
        return f"{instance.workload} ⚠ {mismatch}" if mismatch else instance.workload

    @admin.display(description="policy vs workload")
    def policy_agreement(self, instance):
        if not instance.maxmemory_policy:
            return "not read yet"
        return instance.workload_mismatch or "agree"

    @admin.display(description="price of the current plan")
    def current_plan_price(self, instance):
        plan = instance.current_plan
        return f"{plan.price_label}, from {plan.price_provenance}"

    @admin.display(description="Redis URL")
    def redis_url_status(self, instance):
        # The URL carries the password: show only that one is stored.
        return "stored, encrypted" if instance.redis_url_encrypted else "not resolved yet"
