from functools import partial

from django.contrib import admin
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from autoscaler.admin_utils import ReadOnlyAdmin
from autoscaler.redaction import redact
from logs import admin_views
from logs.models import MetricLog, ScalingAction
from scaling.admin import RedisInstanceAdmin
from scaling.models import RedisInstance


class RedisInstanceWithRecordAdmin(RedisInstanceAdmin):
    """The instances' admin with the pages over their record (logs/admin_views.py): the
    overview and each instance's chart. They live here, with the record they read, so that
    imports point one way (logs -> scaling); they hang on the instance admin so that they sit
    beside the instances (``admin:scaling_redisinstance_overview`` and ``..._chart``)."""

    list_display = RedisInstanceAdmin.list_display + ("chart_link",)

    def get_urls(self):
        # Before the defaults: "<id>/" would otherwise swallow "overview/".
        wrap = self.admin_site.admin_view
        return [
            path("overview/", wrap(partial(admin_views.overview_view, model_admin=self)),
                 name="scaling_redisinstance_overview"),
            path("<path:object_id>/chart/", wrap(partial(admin_views.instance_chart_view, model_admin=self)),
                 name="scaling_redisinstance_chart"),
        ] + super().get_urls()

    @admin.display(description="chart")
    def chart_link(self, instance):
        return format_html('<a href="{}">chart</a>', reverse("admin:scaling_redisinstance_chart", args=[instance.pk]))


admin.site.unregister(RedisInstance)
admin.site.register(RedisInstance, RedisInstanceWithRecordAdmin)

# Seconds shown everywhere: samples come every 30 s, and the admin's default format stops at minutes.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
REASON_CHARS = 110  # about two lines of the column; the whole reason is in the cell's title (hover)
ERROR_CHARS = 60


def _time(moment):
    return None if moment is None else timezone.localtime(moment).strftime(TIME_FORMAT)


def _shortened(text, chars=REASON_CHARS):
    text = redact(text or "")
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(chars))


@admin.register(MetricLog)
class MetricLogAdmin(ReadOnlyAdmin):
    class Media:
        css = {"all": ("logs/admin_lists.css",)}

    # Seven columns, so that the error of a failed read shows beside the filters on a 1400 px screen.
    list_display = ("collected", "instance_name", "plan_short", "memory", "connections", "evicted_rejected", "error_short")
    list_filter = ("error_kind", "plan__service_name")
    search_fields = ("instance__name",)
    list_select_related = ("instance", "plan")
    ordering = ("-collected_at",)
    fields = (
        "instance", "collected", "slot_time", "plan", "used_memory", "maxmemory", "memory_pct", "connected_clients",
        "maxclients", "connection_pct", "evicted_keys", "rejected_connections", "keyspace_hits", "keyspace_misses", "ops_per_sec",
        "error_kind", "error",
        "warnings",
    )
    readonly_fields = ("collected", "slot_time")

    @admin.display(description="collected", ordering="collected_at")
    def collected(self, log):
        return _time(log.collected_at)

    @admin.display(description="slot")
    def slot_time(self, log):
        return _time(log.slot)

    @admin.display(description="instance", ordering="instance__name")
    def instance_name(self, log):
        # A method, not the foreign key: the admin keeps a key's cell on one line.
        return log.instance.name if log.instance is not None else None

    @admin.display(description="plan", ordering="plan__mem_limit")
    def plan_short(self, log):
        return log.plan.short_name

    @admin.display(description="memory", ordering="memory_pct")
    def memory(self, log):
        if log.memory_pct is None:
            return None
        used = "" if log.used_memory is None else f" ({log.used_memory / 1048576:,.1f} MB)"
        return f"{log.memory_pct:.1f}%{used}"

    @admin.display(description="clients", ordering="connection_pct")  # INFO's connected_clients
    def connections(self, log):
        clients = "" if log.connected_clients is None else f"{log.connected_clients:,}"
        if log.connection_pct is None:
            return f"{clients} (unlimited)" if clients else None
        return f"{log.connection_pct:.1f}%" + (f" ({clients})" if clients else "")

    @admin.display(description="evicted / rejected")
    def evicted_rejected(self, log):
        # Counters since the Redis server started, as INFO gives them.
        if log.evicted_keys is None and log.rejected_connections is None:
            return None
        return " / ".join("?" if value is None else f"{value:,}" for value in (log.evicted_keys, log.rejected_connections))

    @admin.display(description="error", ordering="error_kind")
    def error_short(self, log):
        if not log.error:
            return ""
        return _shortened(f"{log.error_kind}: {log.error}" if log.error_kind else log.error, chars=ERROR_CHARS)


@admin.register(ScalingAction)
class ScalingActionAdmin(ReadOnlyAdmin):
    class Media:
        css = {"all": ("logs/admin_lists.css",)}

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
