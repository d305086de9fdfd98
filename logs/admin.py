from django.contrib import admin

from autoscaler.admin_utils import ReadOnlyAdmin
from logs.models import MetricLog, ScalingAction


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
