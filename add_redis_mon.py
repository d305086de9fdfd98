#!/usr/bin/env python
"""Register a Redis add-on for autoscaling, list the registered ones, or remove one.

    python add_redis_mon.py                     # asks every question (DESIGN section 4)
    python add_redis_mon.py --name orders --app shop --config-var REDIS_URL   # asks nothing
    python add_redis_mon.py --list
    python add_redis_mon.py --remove orders [--yes] [--keep-records | --delete-records]

Every question has a flag (DESIGN section 3); a question whose flag is given is not asked.
With --name, --app and --config-var given it asks nothing at all, prints what it saved and
exits 0. Answers may be piped in on standard input, one per line.

Exit codes: 0 done; 1 stopped (declined, end of input, Heroku or database unavailable),
nothing saved; 2 an invalid or missing flag, nothing saved; 130 interrupted (Ctrl-C).
No message ever carries a Redis password or the API key.
"""

import argparse
import logging
import os
import re
import sys

PROG = "add_redis_mon.py"
EXAMPLES = """\
examples:
  %(prog)s                                   answer the questions
  %(prog)s --name orders --app shop --config-var REDIS_URL --min-plan premium-0
  %(prog)s --list
  %(prog)s --remove orders --yes --keep-records

Plans may be named as Heroku names them (heroku-redis:premium-0) or by their short name
(premium-0) within the add-on's provider. Exit codes: 0 done, 1 stopped (nothing saved),
2 invalid or missing flag, 130 interrupted."""

REGISTRATION_FLAGS = (
    ("name", "--name"), ("app", "--app"), ("config_var", "--config-var"), ("metric_rate", "--metric-rate"),
    ("memory_threshold", "--memory-threshold"), ("connection_threshold", "--connection-threshold"),
    ("scaling", "--scaling"), ("min_plan", "--min-plan"), ("max_plan", "--max-plan"),
    ("scaling_rate", "--scaling-rate"), ("notify_breach", "--notify-breach"),
    ("notify_success", "--notify-success"), ("notify_failure", "--notify-failure"),
    ("schedule", "--schedule"), ("schedule_lead", "--schedule-lead"), ("no_schedule", "--no-schedule"),
    ("workload", "--workload"), ("min_hit_rate", "--min-hit-rate"), ("scale_down", "--scale-down"),
    ("account", "--account"),
)


class Stop(Exception):
    """Ends the run with one line on stderr and an exit code."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def nothing_saved(reason, what="saved"):
    return f"{str(reason).rstrip('.')}; nothing {what}"


def flag_error(flag, reason):
    return Stop(f"{flag}: {reason}", 2)


class InputEnded(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, naming the flag: "--metric-rate: ..." rather than usage + "error: argument ...".
        message = re.sub(r"^argument (-[\w-]+)(?:/[\w/-]+)?: ", r"\1: ", " ".join(message.split()))
        raise Stop(message, 2)


def build_parser():
    parser = Parser(
        prog=PROG,
        description="Register a Redis add-on of a Heroku app for autoscaling (asks for what the flags\n"
        "do not give; with --name, --app and --config-var it asks nothing), list the registered\n"
        "instances, or remove one.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    general = parser.add_argument_group("general")
    general.add_argument("--name", metavar="NAME", help="unique name of the instance: letters, digits, '-', '_'")
    general.add_argument("--app", metavar="APP", help="Heroku app that has the Redis add-on")
    general.add_argument("--account", metavar="NAME",
                         help="Heroku account whose key sees the app (manage.py heroku_accounts list; "
                              "default: the account that has the app, asked when several have it)")
    general.add_argument("--config-var", metavar="VAR", help="config var by which the app finds its Redis, e.g. REDIS_URL")
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument("--metric-rate", metavar="{30s,1m,5m}", help="how often to sample (default 1m)")
    metrics.add_argument("--memory-threshold", metavar="PCT", help="average memory %% of the plan to stay under, 1-100 (default 80)")
    metrics.add_argument("--connection-threshold", metavar="PCT",
                         help="average connections %% of the plan to stay under, 1-100 (default 80)")
    scaling = parser.add_argument_group("scaling")
    scaling.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=None,
                         help="change the plan automatically (default: yes)")
    scaling.add_argument("--min-plan", metavar="PLAN", help="lowest plan to scale to (default: the provider's lowest)")
    scaling.add_argument("--max-plan", metavar="PLAN",
                         help="highest plan to scale to, or 'highest' for the provider's highest (default: the cheapest "
                         "plan with at least 4x the memory of the current plan, or of the min plan if higher)")
    scaling.add_argument("--scaling-rate", metavar="{1m,5m,10m}", help="how often to decide on the plan (default 1m)")
    schedules = parser.add_argument_group("schedules (a minimum plan during a window)")
    schedules.add_argument("--schedule", action="append", metavar='"DAYS HH:MM-HH:MM TZ PLAN"',
                           help="at least PLAN during that window, e.g. \"mon-fri 08:00-18:00 Europe/Berlin premium-2\"; "
                                "DAYS: daily, mon-fri, sat,sun, ...; TZ: an IANA name (repeatable; replaces the "
                                "instance's schedules when editing)")
    schedules.add_argument("--schedule-lead", metavar="MIN",
                           help="minutes before a window opens that its plan should be up (default 10)")
    schedules.add_argument("--no-schedule", action="store_const", const=True, default=None,
                           help="no schedules (clears them when editing)")
    scaling.add_argument("--workload", metavar="{queue,cache}",
                         help="queue: every eviction is data lost; cache: evictions are normal, scaled up on a low hit "
                         "rate (default: suggested by the Redis' maxmemory-policy, noeviction a queue, else a cache)")
    scaling.add_argument("--min-hit-rate", metavar="PCT",
                         help="a cache's hit rate %% to keep, 1-100 (default 90)")
    scaling.add_argument("--scale-down", action=argparse.BooleanOptionalAction, default=None,
                         help="move the plan down when load falls (default: yes); --no-scale-down only ever moves up")
    notify = parser.add_argument_group("notifications")
    for what, text in (("breach", "a threshold is breached"), ("success", "a plan change succeeds"),
                       ("failure", "a plan change fails")):
        notify.add_argument(f"--notify-{what}", action=argparse.BooleanOptionalAction, default=None,
                            help=f"mail when {text} (default: yes)")
    other = parser.add_argument_group("other actions")
    actions = other.add_mutually_exclusive_group()
    actions.add_argument("--list", action="store_true", help="print the registered instances and exit")
    actions.add_argument("--remove", metavar="NAME", help="remove the instance NAME (asks first)")
    records = other.add_mutually_exclusive_group()
    records.add_argument("--keep-records", dest="keep_records", action="store_const", const=True, default=None,
                         help="with --remove: keep its samples, scaling actions and mails (default)")
    records.add_argument("--delete-records", dest="keep_records", action="store_const", const=False,
                         help="with --remove: delete them too")
    other.add_argument("--yes", "-y", action="store_true",
                       help="answer yes to the confirmations: save without asking, update an instance whose "
                       "name is taken, save when Redis cannot be read, remove")
    return parser


# --- Talking to the person ---------------------------------------------------------------------


class Console:
    """Questions on stdout, answers from stdin (a terminal, or lines piped in)."""

    def __init__(self, stdin=None, stdout=None):
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout or sys.stdout
        try:
            self.tty = bool(self.stdin) and self.stdin.isatty()
        except (ValueError, OSError):
            self.tty = False

    def say(self, text=""):
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def read(self, prompt):
        if self.tty:
            try:
                return input(prompt)
            except EOFError:
                self.say()
                raise InputEnded() from None
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline() if self.stdin else ""
        if not line:
            self.say()
            raise InputEnded()
        answer = line.rstrip("\r\n")
        self.say(answer)  # piped: show the answer, so that the output reads like the session
        return answer

    def ask(self, label, *, clean, hint="", default=None, required_flag=None):
        """Ask until `clean` accepts the answer (Enter takes `default`, a string)."""
        from scaling.services.registration import RegistrationError

        prompt = f"  {label}" + (f" ({hint})" if hint else "") + (f" [{default}]" if default not in (None, "") else "") + ": "
        while True:
            try:
                raw = self.read(prompt)
            except InputEnded:
                raise InputEnded(required_flag, label) from None
            if not raw.strip() and default not in (None, ""):
                raw = default
            try:
                return clean(raw)
            except RegistrationError as error:
                if error.fatal:
                    raise Stop(nothing_saved(error)) from None
                self.say(f"    ! {error}" + ("; Heroku may answer if you try again" if error.retryable else ""))

    def confirm(self, question, *, default):
        from scaling.services.registration import clean_bool

        return self.ask(question, hint="y/n", default="y" if default else "n", clean=clean_bool)


def yes_no(flag):
    return "y" if flag else "n"


# --- Registration ------------------------------------------------------------------------------


def registration_flags_given(args):
    return [flag for dest, flag in REGISTRATION_FLAGS if getattr(args, dest) is not None]


def clean_flag(args, dest, flag, clean):
    from scaling.services.registration import RegistrationError

    value = getattr(args, dest)
    if value is None:
        return None
    try:
        return clean(value)
    except RegistrationError as error:
        raise flag_error(flag, str(error)) from None


def register(args, console):
    from django.utils import timezone

    from scaling.models import RedisInstance
    from scaling.services import registration as reg
    from scaling.models import DEFAULT_ACCOUNT
    from scaling.services.accounts import account_named, accounts_usable
    from scaling.services.plans import plan_ladder

    # Flags first: a wrong one stops the run before any question or Heroku call.
    given = {
        "name": clean_flag(args, "name", "--name", reg.clean_name),
        "app": clean_flag(args, "app", "--app", reg.clean_app_name),
        "config_var": clean_flag(args, "config_var", "--config-var", reg.clean_config_var),
        "metric_rate": clean_flag(args, "metric_rate", "--metric-rate", reg.clean_metric_rate),
        "memory_threshold": clean_flag(args, "memory_threshold", "--memory-threshold", reg.clean_threshold),
        "connection_threshold": clean_flag(args, "connection_threshold", "--connection-threshold", reg.clean_threshold),
        "scaling_rate": clean_flag(args, "scaling_rate", "--scaling-rate", reg.clean_scaling_rate),
        "workload": clean_flag(args, "workload", "--workload", reg.clean_workload),
        "min_hit_rate": clean_flag(args, "min_hit_rate", "--min-hit-rate", reg.clean_threshold),
        "account": clean_flag(args, "account", "--account", reg.clean_account),
    }
    given_schedules = schedule_flags(args)
    for flag_value in ("min_plan", "max_plan"):
        if getattr(args, flag_value) is not None and not getattr(args, flag_value).strip():
            raise flag_error("--" + flag_value.replace("_", "-"), "a plan name is required")
    quiet = all(given[key] is not None for key in ("name", "app", "config_var"))
    if not reg.plans_loaded():
        raise Stop("no plan data in the database: run `python manage.py load_plans` first; nothing saved")

    def heroku_failure(error, flag):
        if error.fatal or error.retryable:
            return Stop(nothing_saved(error))
        return flag_error(flag, str(error))

    if not quiet:
        console.say("Register a Redis instance for autoscaling. Enter takes the [default]; Ctrl-C stops, nothing saved.")
        console.say()
        console.say("General")

    # --- Name (a taken name offers to edit that instance) ---
    existing = None
    name = given["name"]
    while True:
        if name is None:
            name = console.ask("Name", hint="letters, digits, - and _", clean=reg.clean_name, required_flag="--name")
        elif not quiet:
            console.say(f"  Name: {name} (--name)")
        existing = reg.instance_by_name(name)
        if existing is None:
            break
        about = f"app {existing.app_name}, {existing.config_var}, plan {existing.current_plan.plan_name}"
        if quiet:
            if not args.yes:
                raise flag_error("--name", f"instance {name!r} already exists ({about}); add --yes to update it, "
                                 "or choose another name")
            break
        console.say(f"    instance {name!r} already exists ({about})")
        if args.yes or console.confirm(f"Edit {name!r}? Its values become the defaults", default=False):
            break
        name = existing = None

    def default_of(field, fallback):
        return getattr(existing, field) if existing is not None else fallback

    # --- Heroku account and app (an app in several accounts is asked about, never guessed) ---
    account = given["account"]
    if account is None and existing is not None:
        account = existing.account or account_named(name=DEFAULT_ACCOUNT)  # an edit keeps its account
    if account is None and not quiet and len(usable := accounts_usable()) > 1:
        names = [candidate.name for candidate in usable]
        account = console.ask("Heroku account", hint=", ".join(names) + "; Enter: the one that has the app",
                              clean=lambda raw: reg.clean_account(raw) if raw.strip() else None)
    if given["app"] is not None:
        try:
            found = reg.app_find(given["app"], account=account)
        except reg.RegistrationError as error:
            raise heroku_failure(error, "--app") from None
        app = given["app"]
        if not quiet:
            console.say(f"  Heroku app: {app} (--app)")
    else:
        def clean_app(raw):
            return reg.app_find(reg.clean_app_name(raw), account=account)

        found = console.ask("Heroku app", default=default_of("app_name", None), clean=clean_app, required_flag="--app")
        app = found[0].app_name
    app_info = found[0]
    if len(found) > 1:
        where = {info.account.name: info for info in found}
        if quiet:
            raise flag_error("--account", f"app {app!r} exists in the accounts {', '.join(where)}: "
                             "choose one with --account")

        def clean_choice(raw):
            choice = reg.clean_account(raw)
            if choice.name not in where:
                raise reg.RegistrationError(f"app {app!r} is not in account {choice.name!r}")
            return where[choice.name]

        app_info = console.ask("Heroku account", hint=f"app {app} exists in {', '.join(where)}", clean=clean_choice,
                               required_flag="--account")
    elif not quiet and len(accounts_usable()) > 1:
        console.say(f"    found in account {app_info.account.name}")

    # --- Redis config var -> the add-on ---
    exclude = existing
    if given["config_var"] is not None:
        try:
            resolved = reg.addon_find(app_name=app, config_var=given["config_var"], exclude=exclude,
                                      addons=app_info.addons, account=app_info.account)
        except reg.RegistrationError as error:
            raise heroku_failure(error, "--config-var") from None
        config_var = given["config_var"]
        if not quiet:
            console.say(f"  Redis config var: {config_var} (--config-var)")
    else:
        redis_vars = app_info.redis_config_vars
        if existing is not None and existing.app_name == app:
            default = existing.config_var
        else:
            default = redis_vars[0] if len(redis_vars) == 1 else None
        hint = ("Redis vars of the app: " + ", ".join(redis_vars)) if redis_vars else "the app has no Redis add-on of a known provider"

        def clean_var(raw):
            var = reg.clean_config_var(raw)
            return var, reg.addon_find(app_name=app, config_var=var, exclude=exclude, addons=app_info.addons,
                                       account=app_info.account)

        config_var, resolved = console.ask("Redis config var", hint=hint, default=default, clean=clean_var,
                                           required_flag="--config-var")
    plan = resolved.plan
    if not quiet:
        console.say(f"    found add-on {resolved.addon.name} ({plan.service_name}) on plan {plan.plan_name} ({reg.plan_line(plan)})")

    # --- Metrics ---
    def field(key, flag, label, hint, default_text, clean):
        if given.get(key) is not None:
            if not quiet:
                console.say(f"  {label}: {getattr(args, key)} ({flag})")
            return given[key]
        if quiet:
            return clean(default_text)
        return console.ask(label, hint=hint, default=default_text, clean=clean)

    def bool_field(dest, flag, label, default):
        value = getattr(args, dest)
        if value is not None:
            if not quiet:
                console.say(f"  {label}: {yes_no(value)} ({flag if value else '--no-' + flag[2:]})")
            return value
        if quiet:
            return default
        return console.ask(label, hint="y/n", default=yes_no(default), clean=reg.clean_bool)

    metric_choices = RedisInstance.MetricRate.choices
    scaling_choices = RedisInstance.ScalingRate.choices
    if not quiet:
        console.say()
        console.say("Metrics")
    metric_rate = field("metric_rate", "--metric-rate", "Metric rate", "30s, 1m, 5m",
                        reg.rate_label(default_of("metric_rate", reg.DEFAULT_METRIC_RATE), metric_choices),
                        reg.clean_metric_rate)
    memory_threshold = field("memory_threshold", "--memory-threshold", "Memory % to stay under",
                             f"1-100; % of the plan's {plan.mem_limit:,} MB now",
                             str(default_of("memory_threshold", reg.DEFAULT_THRESHOLD)), reg.clean_threshold)
    conn_hint = "1-100; " + ("connections are unlimited on the current plan" if plan.unlimited_connections
                             else f"% of the plan's {plan.conn_limit:,} connections now")
    connection_threshold = field("connection_threshold", "--connection-threshold", "Connection % to stay under",
                                 conn_hint, str(default_of("connection_threshold", reg.DEFAULT_THRESHOLD)),
                                 reg.clean_threshold)

    # --- Scaling ---
    ladder = plan_ladder(plan=plan)
    if not quiet:
        console.say()
        console.say("Scaling")
    scaling_enabled = bool_field("scaling", "--scaling", "Scaling enabled", default_of("scaling_enabled", True))

    min_flag = clean_flag(args, "min_plan", "--min-plan", lambda raw: reg.clean_plan(raw, ladder=ladder))
    max_flag = clean_flag(args, "max_plan", "--max-plan", lambda raw: reg.clean_max_plan(raw, ladder=ladder))
    if min_flag is not None and max_flag is not None:
        try:
            reg.clean_plan_range(min_plan=min_flag, max_plan=max_flag)
        except reg.RegistrationError as error:
            raise flag_error("--max-plan", f"{max_flag.short_name} is below --min-plan {min_flag.short_name}") from error
    ladder_ids = {p.pk for p in ladder}

    def plan_default(field_name, fallback):
        if existing is not None and getattr(existing, field_name + "_id") in ladder_ids:
            return getattr(existing, field_name)
        return fallback

    default_min, existing_max = plan_default("min_plan", ladder[0]), plan_default("max_plan", None)

    def bounded_max(min_plan):
        return reg.max_plan_default(ladder=ladder, current=plan, min_plan=min_plan)

    if not quiet and (min_flag is None or max_flag is None):
        console.say(f"  Plans of {plan.service_name}, cheapest first:")
        width = max(len(p.short_name) for p in ladder)
        for candidate in ladder:
            conns = "unlimited" if candidate.unlimited_connections else f"{candidate.conn_limit:,}"
            mark = "  <- current" if candidate.pk == plan.pk else ""
            console.say(f"    {candidate.short_name:<{width}}  {candidate.mem_limit:>8,} MB  {conns:>9} connections"
                        f"  ${candidate.cost:>9,}/month{mark}")

    min_plan = max_plan = None
    while max_plan is None:  # answering "back" at the max plan asks the min plan again
        if min_flag is not None:
            min_plan = min_flag
            if not quiet:
                console.say(f"  Min plan: {min_plan.short_name} (--min-plan)")
        elif quiet:
            min_plan = default_min
            if max_flag is not None and reg._rank(min_plan) > reg._rank(max_flag):
                raise flag_error("--max-plan", f"{max_flag.short_name} is below the min plan {min_plan.short_name} "
                                 "(give --min-plan too)")
        else:
            def clean_min(raw):
                chosen = reg.clean_plan(raw, ladder=ladder)
                if max_flag is not None and reg._rank(chosen) > reg._rank(max_flag):
                    raise reg.RegistrationError(
                        f"{chosen.short_name} is above the max plan {max_flag.short_name} (--max-plan)")
                return chosen

            min_default = min_plan or default_min
            min_plan = console.ask("Min plan", hint="name from the list", default=min_default.short_name, clean=clean_min)

        if max_flag is not None:
            max_plan = max_flag
            if not quiet:
                console.say(f"  Max plan: {max_plan.short_name} (--max-plan)")
        elif quiet:
            max_plan = existing_max or bounded_max(min_plan)
            if reg._rank(min_plan) > reg._rank(max_plan):
                raise flag_error("--min-plan", f"{min_plan.short_name} is above the max plan {max_plan.short_name} "
                                 "(give --max-plan too)")
        else:
            can_go_back = min_flag is None

            def clean_max(raw):
                if can_go_back and raw.strip().lower() == "back":
                    return None
                chosen = reg.clean_max_plan(raw, ladder=ladder)
                if reg._rank(chosen) < reg._rank(min_plan):
                    back = ", or 'back' to change the min plan" if can_go_back else ""
                    raise reg.RegistrationError(f"{chosen.short_name} is below the min plan {min_plan.short_name}; "
                                                f"choose {min_plan.short_name} or above{back}")
                return chosen

            keep_existing = existing_max is not None and reg._rank(existing_max) >= reg._rank(min_plan)
            fallback = existing_max if keep_existing else bounded_max(min_plan)
            max_plan = console.ask("Max plan", default=fallback.short_name, clean=clean_max,
                                   hint=f"name from the list, or '{reg.HIGHEST}'; "
                                   f"{fallback.short_name} is {reg.monthly(fallback.cost)}")

    scaling_rate = field("scaling_rate", "--scaling-rate", "Scaling rate", "1m, 5m, 10m",
                         reg.rate_label(default_of("scaling_rate", reg.DEFAULT_SCALING_RATE), scaling_choices),
                         reg.clean_scaling_rate)
    schedules, schedule_lead_minutes = ask_schedules(args, console, quiet=quiet, existing=existing, ladder=ladder,
                                                     given=given_schedules)

    # --- Notifications ---
    if not quiet:
        console.say()
        console.say("Notifications")
    notify_breach = bool_field("notify_breach", "--notify-breach", "Mail on threshold breach",
                               default_of("notify_breach", True))
    notify_success = bool_field("notify_success", "--notify-success", "Mail on scaling success",
                                default_of("notify_success", True))
    notify_failure = bool_field("notify_failure", "--notify-failure", "Mail on scaling failure",
                                default_of("notify_failure", True))

    values = dict(
        name=name, app_name=app, config_var=config_var, resolved=resolved, metric_rate=metric_rate,
        memory_threshold=memory_threshold, connection_threshold=connection_threshold,
        scaling_enabled=scaling_enabled, min_plan=min_plan, max_plan=max_plan, scaling_rate=scaling_rate,
        notify_breach=notify_breach, notify_success=notify_success, notify_failure=notify_failure,
        schedules=schedules, schedule_lead_minutes=schedule_lead_minutes,
    )

    # --- Read INFO once, show what it all means, confirm ---
    if not quiet:
        console.say()
        console.say(f"Reading INFO from the Redis at {reg.redis_address(resolved.redis_url)} ...")
    probe = reg.redis_probe(resolved.redis_url)

    # --- Workload (suggested by the eviction policy just read) and scale-in ---
    suggested, why = reg.workload_suggestion(probe)
    if not quiet:
        console.say()
        console.say("Workload")
        if suggested is not None:
            console.say(f"  suggested: {suggested}, because {why}")
    workload = field("workload", "--workload", "Workload", "queue or cache",
                     default_of("workload", suggested or RedisInstance.Workload.QUEUE), reg.clean_workload)
    if workload == RedisInstance.Workload.CACHE or given["min_hit_rate"] is not None:
        min_hit_rate = field("min_hit_rate", "--min-hit-rate", "Min hit rate % of a cache", "1-100",
                             str(default_of("min_hit_rate", 90)), reg.clean_threshold)
    else:
        min_hit_rate = default_of("min_hit_rate", 90)
    scale_down_enabled = bool_field("scale_down", "--scale-down", "Scale down when load falls",
                                    default_of("scale_down_enabled", True))
    values.update(workload=workload, min_hit_rate=min_hit_rate, scale_down_enabled=scale_down_enabled)
    max_plan_defaulted = max_flag is None and max_plan.pk == bounded_max(min_plan).pk
    rows = reg.summary_lines(**values, probe=probe, existing=existing, max_plan_defaulted=max_plan_defaulted)

    def show(rows, title):
        console.say(title)
        width = max(len(label) for label, _ in rows)
        for label, text in rows:
            console.say(f"  {label + ':':<{width + 1}} {text}")

    if not quiet:
        console.say()
        show(rows, "Summary")
        if not probe.ok:
            console.say(f"  Redis could not be read: {probe.error}")
            if args.yes:
                console.say("  saving anyway (--yes): samples will show the failure until Redis answers")
            elif not console.confirm("Save anyway?", default=False):
                raise Stop("stopped: Redis could not be read; nothing saved")
        elif not args.yes and not console.confirm("Save?", default=True):
            raise Stop("not saved")
    elif not probe.ok:
        sys.stderr.write(f"{PROG}: warning: Redis at {reg.redis_address(resolved.redis_url)} could not be read "
                         f"({probe.error}); saved anyway, samples will show the failure until it answers\n")

    try:
        instance = reg.instance_register(**values, now=timezone.now(), existing=existing, account=app_info.account,
                                         maxmemory_policy=probe.info.maxmemory_policy if probe.ok else None)
    except reg.RegistrationError as error:
        raise Stop(nothing_saved(error)) from None
    verb = "updated" if existing is not None else "registered"
    first_check = reg.rate_label(scaling_rate, scaling_choices)
    done = (f"Saved: instance {instance.name!r} {verb}. Its first sample is taken at the next dispatcher tick"
            + (f", its first scaling check {first_check} later." if scaling_enabled else "; scaling is disabled."))
    if quiet:
        show(rows, done)
    else:
        console.say(done)
    return 0


# --- Schedules ---------------------------------------------------------------------------------


def schedule_flags(args):
    """The schedule flags, checked before any question or Heroku call (plans are checked
    against the add-on's ladder once it is known): (specs or None, lead or None)."""
    from scaling.schedules import ScheduleError, parse_schedule
    from scaling.services import registration as reg

    if args.no_schedule and args.schedule:
        raise flag_error("--no-schedule", "cannot be given with --schedule")
    specs = None
    if args.no_schedule:
        specs = []
    elif args.schedule:
        specs = []
        for spec in args.schedule:
            try:
                specs.append(parse_schedule(spec))
            except ScheduleError as error:
                raise flag_error("--schedule", str(error)) from None
    lead = clean_flag(args, "schedule_lead", "--schedule-lead", reg.clean_schedule_lead)
    return specs, lead


def ask_schedules(args, console, *, quiet, existing, ladder, given):
    """Schedules and their lead from the flags, or asked after the plan range. None keeps an
    edited instance's (a quiet run without the flags)."""
    from scaling.services import registration as reg

    specs, lead = given
    if specs is not None:
        schedules = []
        for schedule in specs:
            try:
                schedules.append(reg.clean_schedule(schedule.spec, ladder=ladder))
            except reg.RegistrationError as error:
                raise flag_error("--schedule", str(error)) from None
        if not quiet:
            console.say("  Schedules: " + ("; ".join(schedules) if schedules else "none")
                        + (" (--no-schedule)" if args.no_schedule else " (--schedule)"))
    elif quiet:
        schedules = None
    else:
        schedules = list(existing.schedules) if existing is not None else []
        if schedules:
            console.say("  Schedules: " + "; ".join(schedules))
            if not console.confirm("Keep these schedules?", default=True):
                schedules = []
        else:
            console.say("  Schedules: a minimum plan during a window, e.g. mon-fri 08:00-18:00 Europe/Berlin premium-2")
        while True:
            spec = console.ask("Add a schedule", hint="DAYS HH:MM-HH:MM TZ PLAN; Enter: no more",
                               clean=lambda raw: reg.clean_schedule(raw, ladder=ladder) if raw.strip() else "")
            if not spec:
                break
            schedules.append(spec)
    if lead is not None:
        if not quiet:
            console.say(f"  Schedule lead: {lead} min (--schedule-lead)")
    elif not quiet and schedules:
        default = existing.schedule_lead_minutes if existing is not None else reg.DEFAULT_SCHEDULE_LEAD
        lead = console.ask("Schedule lead", hint="minutes before a window its plan should be up", default=str(default),
                           clean=reg.clean_schedule_lead)
    return schedules, lead


# --- List and remove ---------------------------------------------------------------------------


def list_instances(console):
    from scaling.services.registration import TABLE_COLUMNS, instances_table

    rows = instances_table()
    if not rows:
        console.say("No instances registered. Register one with: python add_redis_mon.py")
        return 0
    widths = [max(len(str(row[i])) for row in [TABLE_COLUMNS, *rows]) for i in range(len(TABLE_COLUMNS))]
    for row in [TABLE_COLUMNS, *rows]:
        console.say("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    console.say(f"{len(rows)} instance{'s' if len(rows) != 1 else ''} "
                "(MAIL: b on threshold breach, s on scaling success, f on scaling failure; times in UTC)")
    return 0


def remove_instance(args, console):
    from scaling.services import registration as reg

    name = args.remove.strip()
    instance = reg.instance_by_name(name)
    if instance is None:
        known = list(reg.RedisInstance.objects.order_by("name").values_list("name", flat=True)[:20])
        hint = f"; registered: {', '.join(known)}" if known else "; none is registered"
        raise flag_error("--remove", f"no instance named {name!r}{hint}")
    samples, actions, notifications = reg.instance_records(instance)
    records = f"{samples} samples, {actions} scaling actions and {notifications} notifications"
    console.say(f"Instance {name!r}: app {instance.app_name}, {instance.config_var}, plan "
                f"{instance.current_plan.plan_name}; recorded: {records}.")
    try:
        if not args.yes and not console.confirm(f"Remove {name!r}?", default=False):
            raise Stop("not removed")
        keep = args.keep_records
        if keep is None:
            keep = True if (args.yes or not (samples or actions or notifications)) else console.confirm(
                "Keep its records (they stay, without the instance)?", default=True)
    except InputEnded:
        raise Stop("standard input ended before the answer; nothing removed") from None
    try:
        result = reg.instance_remove(name=name, keep_record=keep)
    except reg.RegistrationError as error:
        raise Stop(nothing_saved(error, "removed")) from None
    console.say(f"Removed instance {name!r}; its {records} were {'kept' if result.kept else 'deleted'}.")
    return 0


# --- Entry point -------------------------------------------------------------------------------


def run(args, console):
    if args.list or args.remove is not None:
        action = "--list" if args.list else "--remove"
        extra = registration_flags_given(args)
        if extra:
            raise flag_error(action, f"cannot be combined with {', '.join(extra)}")
        if args.list and (args.keep_records is not None or args.yes):
            raise flag_error("--list", "cannot be combined with --yes, --keep-records or --delete-records")
    elif args.keep_records is not None:
        raise flag_error("--keep-records" if args.keep_records else "--delete-records", "only goes with --remove")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autoscaler.settings")
    import django

    django.setup()
    if "LOG_LEVEL" not in os.environ:
        # The services' warnings (retries, ...) are for the worker's log; here each outcome is said once.
        logging.getLogger().setLevel(logging.ERROR)
    from django.db import DatabaseError

    from autoscaler.redaction import redact

    try:
        if args.list:
            return list_instances(console)
        if args.remove is not None:
            return remove_instance(args, console)
        try:
            return register(args, console)
        except InputEnded as ended:
            flag, label = ended.args if ended.args else (None, "")
            if flag and not console.tty:
                raise Stop(f"{flag} is missing and standard input ended before it was answered; nothing saved", 2) from None
            raise Stop(f"input ended at the question {label!r}; nothing saved") from None
    except DatabaseError as error:
        first = " ".join(str(error).strip().splitlines()[:1]) or error.__class__.__name__
        if "does not exist" in first and "relation" in first:
            first += " (run `python manage.py migrate` first)"
        raise Stop(f"database error: {redact(first)}; nothing saved") from None


def main(argv=None):
    console = Console()
    try:
        args = build_parser().parse_args(argv)
        return run(args, console)
    except Stop as stop:
        sys.stdout.flush()
        sys.stderr.write(f"{PROG}: {stop}\n")
        return stop.code
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        sys.stdout.flush()
        sys.stderr.write(f"{PROG}: interrupted; nothing saved\n")
        return 130
    except Exception as error:  # noqa: BLE001 - one line, never a traceback (DESIGN section 3)
        try:
            from autoscaler.redaction import redact

            text = redact(f"{error.__class__.__name__}: {error}")
        except Exception:  # noqa: BLE001 - settings not loaded
            text = error.__class__.__name__
        sys.stderr.write(f"{PROG}: unexpected error: {' '.join(text.split())[:300]}; nothing saved\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
