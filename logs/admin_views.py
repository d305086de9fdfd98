"""Admin pages over the record: one instance's chart, and the overview of all instances.

Hooked into the admin by `logs.admin.RedisInstanceWithRecordAdmin.get_urls`:

- ``/admin/scaling/redisinstance/overview/`` (name ``admin:scaling_redisinstance_overview``)
- ``/admin/scaling/redisinstance/<id>/chart/?period=24h`` (``admin:scaling_redisinstance_chart``;
  without ``period``, the shortest period that holds the instance's samples, at most a day)

Both need a staff login with the view permission on Redis instances (the admin's own
check), and run a fixed number of queries whatever the number of instances or samples
(see `logs.selectors`). The chart is drawn in the browser by the vendored Chart.js
(`logs/static/logs/vendor/`, no CDN) from data embedded in the page with `json_script`.
"""

from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from autoscaler.redaction import redact
from logs import selectors
from operations.admin_views import month_to_date_costs
from scaling.models import RedisInstance

LONGEST_DEFAULT_PERIOD = "24h"  # a chart opens on at most a day (logs.selectors.chart_default_period)
OVERVIEW_PAGE_SIZE = 100
OVERVIEW_ORDERINGS = {
    # ?o=   label, order_by
    "name": ("name", ("name",)),
    "state": ("state", ("state_rank", "name")),
    "memory": ("memory % (highest first)", (F("latest_memory_pct").desc(nulls_last=True), "name")),
    "connections": ("connections % (highest first)", (F("latest_connection_pct").desc(nulls_last=True), "name")),
    "cost": ("monthly cost (highest first)", ("-current_plan__cost", "name")),
}


def _require_view_permission(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied


def _rounded(value, digits=2):
    return None if value is None else round(value, digits)


def _ms(moment):
    return int(moment.timestamp() * 1000)


def age(moment, now):
    """'40 s ago', '12 min ago', '3 h ago', '5 d ago': short enough for a table cell."""
    if moment is None:
        return ""
    seconds = max(0, (now - moment).total_seconds())
    if seconds < 90:
        return f"{int(seconds)} s ago"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} d ago"


def _fmt_pct(value):
    return "—" if value is None else f"{value:.1f}%"


# ---------------------------------------------------------------------------------------
# The chart of one instance
# ---------------------------------------------------------------------------------------


def schedule_windows(*, instance, start, end):
    """The instance's scheduled windows overlapping start..end, oldest first: each with its
    spec, plan and (as instants) when it opens and closes."""
    windows = []
    for schedule in instance.parsed_schedules:
        for opens, closes in schedule.windows(start, end):
            windows.append({"spec": schedule.spec, "plan": schedule.plan, "opens": opens, "closes": closes})
    return sorted(windows, key=lambda window: window["opens"])


def chart_data(*, instance, series, changes, windows=()):
    """What the page's script draws: plain lists, safe to embed with `json_script`."""
    points = series.points
    return {
        "start": _ms(series.start),
        "end": _ms(series.end),
        "bucketSeconds": series.bucket_seconds,
        "metricRateSeconds": instance.metric_rate,
        "thresholds": {"memory": instance.memory_threshold, "connections": instance.connection_threshold},
        "connectionsUnlimited": instance.current_plan.unlimited_connections,
        "points": {
            "t": [_ms(point.at) for point in points],
            "memoryAvg": [_rounded(point.memory_avg) for point in points],
            "memoryMax": [_rounded(point.memory_max) for point in points],
            "connectionsAvg": [_rounded(point.connection_avg) for point in points],
            "connectionsMax": [_rounded(point.connection_max) for point in points],
            "samples": [point.samples for point in points],
            "failures": [point.failures for point in points],
        },
        "changes": [
            {
                "n": number,
                "t": _ms(action.created_at),
                "from": action.from_plan.plan_name,
                "to": action.to_plan.plan_name,
                "direction": action.direction,
                "status": action.status,
                "reason": action.reason,
                "error": action.error,
            }
            for number, action in enumerate(changes, start=1)
        ],
        "schedules": [
            {"from": _ms(w["opens"]), "to": _ms(w["closes"]), "plan": w["plan"], "spec": w["spec"]} for w in windows
        ],
    }


def instance_chart_view(request, object_id, *, model_admin):
    _require_view_permission(model_admin, request)
    now = timezone.now()
    try:
        pk = int(object_id)
    except (TypeError, ValueError):
        raise Http404("No such Redis instance") from None
    instance = selectors.with_sample_extent(
        selectors.instances_with_state(now=now, queryset=RedisInstance.objects.filter(pk=pk))
    ).first()
    if instance is None:
        raise Http404("No such Redis instance")

    periods = selectors.chart_periods()
    period = next((p for p in periods if p.key == request.GET.get("period")), None)
    period = period or selectors.chart_default_period(
        periods, now=now, first_sample_at=instance.first_sample_at, last_sample_at=instance.last_sample_at,
        longest=LONGEST_DEFAULT_PERIOD,
    )
    start = now - period.span

    series = selectors.instance_chart_series(instance=instance, start=start, end=now)
    changes = selectors.instance_plan_changes(instance=instance, start=start, end=now)
    windows = schedule_windows(instance=instance, start=start, end=now)
    latest_actions = selectors.instance_latest_actions(instance=instance)
    for number, action in enumerate(changes, start=1):
        action.marker = number
    markers = {action.pk: action.marker for action in changes}
    for action in latest_actions:
        action.marker = markers.get(action.pk)
    for action in (*changes, *latest_actions):
        # Reasons and errors are written by the app and carry no secret; masked anyway,
        # as mails and logs are (these objects are only displayed, never saved).
        action.reason, action.error = redact(action.reason), redact(action.error)

    opts = RedisInstance._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": f"{instance.name}: memory and connections",
        "subtitle": None,
        "instance": instance,
        "periods": periods,
        "period": period,
        "series": series,
        "bucket_label": _duration_label(series.bucket_seconds),
        "changes": changes,
        "latest_actions": latest_actions,
        "latest_memory": _fmt_pct(instance.latest_memory_pct),
        "latest_age": age(instance.latest_at, now),
        "latest_connections": _fmt_pct(instance.latest_connection_pct),
        "chart_data": chart_data(instance=instance, series=series, changes=changes, windows=windows),
        "schedule_windows": windows,
        "actions_url": reverse("admin:logs_scalingaction_changelist") + f"?q={instance.name}",
        "samples_url": reverse("admin:logs_metriclog_changelist") + f"?q={instance.name}",
        "overview_url": reverse("admin:scaling_redisinstance_overview"),
        "change_url": reverse("admin:scaling_redisinstance_change", args=[instance.pk]),
    }
    return TemplateResponse(request, "logs/admin/instance_chart.html", context)


def _duration_label(seconds):
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


# ---------------------------------------------------------------------------------------
# The overview of all instances
# ---------------------------------------------------------------------------------------


FAILING_CHANNEL_DAYS = 7


def overview_view(request, *, model_admin):
    _require_view_permission(model_admin, request)
    now = timezone.now()
    # Printable characters only: PostgreSQL refuses a NUL byte in a query (a 500 before).
    search = "".join(ch for ch in request.GET.get("q", "")[:1000] if ch.isprintable()).strip()[:100]
    state = request.GET.get("state", "")
    state = state if state in selectors.State.ALL else ""
    mode = request.GET.get("mode", "")
    mode = mode if mode in selectors.Mode.ALL else ""
    ordering_key = request.GET.get("o", "state")
    ordering_key = ordering_key if ordering_key in OVERVIEW_ORDERINGS else "state"

    base = RedisInstance.objects.all()
    if search:
        base = base.filter(Q(name__icontains=search) | Q(app_name__icontains=search))
    ranked = selectors.instances_ranked(now=now, queryset=base)
    totals = selectors.overview_totals(ranked)

    # The page's ids are filtered, sorted and sliced in the database on the state alone;
    # only the page's rows then get their latest figures and last action.
    shown = ranked
    if state:
        shown = shown.filter(state=state)
    if mode:
        shown = shown.filter(mode=mode)
    if ordering_key == "memory":
        shown = selectors.with_latest_memory(shown, now=now)
    elif ordering_key == "connections":
        shown = selectors.with_latest_connections(shown, now=now)
    shown = shown.order_by(*OVERVIEW_ORDERINGS[ordering_key][1]).values_list("pk", flat=True)

    paginator = Paginator(shown, OVERVIEW_PAGE_SIZE)
    if not (state or mode):
        paginator.count = totals.instances  # known from the totals: no COUNT(*) query
    page = paginator.get_page(request.GET.get("page"))
    ids = list(page.object_list)
    rows = {row.pk: row for row in selectors.instances_with_state(now=now, queryset=RedisInstance.objects.filter(pk__in=ids))}
    instances = [rows[pk] for pk in ids if pk in rows]
    actions = selectors.actions_by_id(instance.last_action_id for instance in instances)
    for instance in instances:
        instance.last_action = actions.get(instance.last_action_id)
        instance.latest_age = age(instance.latest_at, now)
        instance.last_action_age = age(instance.last_action.created_at, now) if instance.last_action else ""
        instance.memory_breaching = (
            instance.latest_memory_pct is not None and instance.latest_memory_pct > instance.memory_threshold
        )
        instance.connections_breaching = (
            instance.latest_connection_pct is not None and instance.latest_connection_pct > instance.connection_threshold
        )

    def link(**changes):
        params = {"q": search, "state": state, "mode": mode, "o": ordering_key}
        params.update(changes)
        query = urlencode({key: value for key, value in params.items() if value})
        return f"?{query}" if query else "?"

    opts = RedisInstance._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": "Overview of all Redis instances",
        "subtitle": None,
        "now": now,
        "instances": instances,
        "page": page,
        "paginator": paginator,
        "totals": totals,
        "search": search,
        "state": state,
        "mode": mode,
        "state_links": [
            (name, totals.by_state[name], link(state="" if state == name else name, page=""), name == state)
            for name in selectors.State.ALL
        ],
        "mode_links": [
            (name, totals.by_mode[name], link(mode="" if mode == name else name, page=""), name == mode)
            for name in selectors.Mode.ALL
        ],
        "orderings": [
            (label, link(o=key, page=""), key == ordering_key) for key, (label, _) in OVERVIEW_ORDERINGS.items()
        ],
        "page_links": {
            "previous": link(page=page.previous_page_number()) if page.has_previous() else None,
            "next": link(page=page.next_page_number()) if page.has_next() else None,
        },
        "latest_window_minutes": int(selectors.LATEST_SAMPLE_WINDOW.total_seconds() // 60),
        "unreachable_after": selectors.UNREACHABLE_AFTER,
        "clear_filters": link(state="", mode="", q="", page=""),
        "month_to_date": month_to_date_costs(now=now),
        "failing_channels": _failing_channels(now=now),
        "failing_channel_days": FAILING_CHANNEL_DAYS,
    }
    return TemplateResponse(request, "logs/admin/overview.html", context)


def _failing_channels(*, now):
    """Alert channels with a delivery failed for good in the last FAILING_CHANNEL_DAYS."""
    from notifications.relay import channels_failing

    return channels_failing(since=now - timedelta(days=FAILING_CHANNEL_DAYS))
