from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from autoscaler.admin_utils import ReadOnlyAdmin
from autoscaler.redaction import redact
from logs.models import MetricLog, ScalingAction

# Seconds shown everywhere: samples come every 30 s, and the admin's default format stops at minutes.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
REASON_CHARS = 110  # about two lines of the column; the whole reason is in the cell's title (hover)


def _time(moment):
    return None if moment is None else timezone.localtime(moment).strftime(TIME_FORMAT)


def _shortened(text):
    text = redact(text or "")
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(REASON_CHARS))


@admin.register(MetricLog)
class MetricLogAdmin(ReadOnlyAdmin):
    list_display = (
        "collected", "instance", "plan", "used_memory_mb", "memory_pct_display", "connected_clients",
        "connection_pct_display", "evicted_keys", "rejected_connections", "ops_per_sec", "error_kind", "error",
    )
    list_filter = ("error_kind", "plan__service_name")
    search_fields = ("instance__name",)
    list_select_related = ("instance", "plan")
    ordering = ("-collected_at",)
    fields = (
        "instance", "collected", "slot_time", "plan", "used_memory", "maxmemory", "memory_pct", "connected_clients",
        "maxclients", "connection_pct", "evicted_keys", "rejected_connections", "ops_per_sec", "error_kind", "error",
        "warnings",
    )
    readonly_fields = ("collected", "slot_time")

    @admin.display(description="collected", ordering="collected_at")
    def collected(self, log):
        return _time(log.collected_at)

    @admin.display(description="slot")
    def slot_time(self, log):
        return _time(log.slot)

    @admin.display(description="memory MB", ordering="used_memory")
    def used_memory_mb(self, log):
        return None if log.used_memory is None else f"{log.used_memory / 1048576:,.1f}"

    @admin.display(description="memory %", ordering="memory_pct")
    def memory_pct_display(self, log):
        return None if log.memory_pct is None else f"{log.memory_pct:.1f}"

    @admin.display(description="connections %", ordering="connection_pct")
    def connection_pct_display(self, log):
        return None if log.connection_pct is None else f"{log.connection_pct:.1f}"


@admin.register(ScalingAction)
class ScalingActionAdmin(ReadOnlyAdmin):
    # Five columns, so that Status and Reason fit beside the filters on a 1400 px screen.
    list_display = ("decided", "instance_label", "change", "status", "reason_short")
    list_filter = ("status", "direction", "to_plan__service_name")
    search_fields = ("instance_name", "reason", "error")
    list_select_related = ("from_plan", "to_plan")
    ordering = ("-created_at",)
    exclude = ("created_at", "patch_sent_at", "finished_at")
    readonly_fields = ("decided", "patch_sent", "finished")

    @admin.display(description="decided", ordering="created_at")
    def decided(self, action):
        return _time(action.created_at)

    @admin.display(description="PATCH sent")
    def patch_sent(self, action):
        return _time(action.patch_sent_at)

    @admin.display(description="finished")
    def finished(self, action):
        return _time(action.finished_at)

    @admin.display(description="instance", ordering="instance_name")
    def instance_label(self, action):
        return action.instance_name

    @admin.display(description="change")
    def change(self, action):
        return f"{action.direction}: {action.from_plan.short_name} → {action.to_plan.short_name}"

    @admin.display(description="reason")
    def reason_short(self, action):
        if not action.error:
            return _shortened(action.reason)
        return format_html("{}<br>{}", _shortened(action.reason), _shortened("error: " + action.error))
