from functools import partial

from django.contrib import admin
from django.urls import path, reverse
from django.utils.html import format_html

from autoscaler.admin_utils import ReadOnlyAdmin
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


@admin.register(MetricLog)
class MetricLogAdmin(ReadOnlyAdmin):
    list_display = (
        "collected_at", "instance", "plan", "used_memory_mb", "memory_pct_display", "connected_clients",
        "connection_pct_display", "evicted_keys", "rejected_connections", "ops_per_sec", "error_kind", "error",
    )
    list_filter = ("error_kind", "plan__service_name")
    search_fields = ("instance__name",)
    list_select_related = ("instance", "plan")
    ordering = ("-collected_at",)

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
    list_display = ("created_at", "instance_name", "direction", "from_plan", "to_plan", "status", "reason", "error")
    list_filter = ("status", "direction", "to_plan__service_name")
    search_fields = ("instance_name", "reason", "error")
    list_select_related = ("from_plan", "to_plan")
    ordering = ("-created_at",)
