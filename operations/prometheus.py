"""`/metrics`: the record in Prometheus text, through the official client library.

A custom collector renders every series from four queries, whatever the number of
instances: the instances with their plans and latest good sample (one index lookup per
instance, a LATERAL join on PostgreSQL), the failed samples per
instance (a partial index holds only failures), the plan changes per instance and
direction, and the Heroku rate-limit heartbeats.
"""

from django.db import connection
from django.db.models import Count, OuterRef, Q, Subquery
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from logs.models import MetricLog, ScalingAction
from operations.heartbeats import rate_limit_heartbeat_name
from operations.models import Heartbeat
from scaling.models import RedisInstance

PREFIX = "redis_autoscaler_"
INSTANCE_LABELS = ["instance", "app", "plan"]
RATE_LIMIT_PREFIX = rate_limit_heartbeat_name("")


# PostgreSQL: one index lookup per instance (MetricLog's (instance, -collected_at) index).
_LATEST_SQL = """
SELECT i.id, i.name, i.app_name, p.plan_name, p.cost, s.memory_pct, s.connection_pct, s.collected_at
FROM scaling_redisinstance i
JOIN scaling_redisplan p ON p.id = i.current_plan_id
LEFT JOIN LATERAL (
    SELECT m.memory_pct, m.connection_pct, m.collected_at FROM logs_metriclog m
    WHERE m.instance_id = i.id AND m.error = '' ORDER BY m.collected_at DESC LIMIT 1
) s ON true
ORDER BY i.name
"""


def _instances_with_latest_sample():
    """(id, name, app, plan, monthly cost, memory %, connection %, collected at) per instance."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_LATEST_SQL)
            return cursor.fetchall()
    # Other databases (the local SQLite default): correlated subqueries.
    latest_good = MetricLog.objects.filter(instance=OuterRef("pk"), error="").order_by("-collected_at")
    return list(
        RedisInstance.objects.order_by("name")
        .annotate(
            latest_memory_pct=Subquery(latest_good.values("memory_pct")[:1]),
            latest_connection_pct=Subquery(latest_good.values("connection_pct")[:1]),
            latest_sample_at=Subquery(latest_good.values("collected_at")[:1]),
        )
        .values_list("pk", "name", "app_name", "current_plan__plan_name", "current_plan__cost",
                     "latest_memory_pct", "latest_connection_pct", "latest_sample_at")
    )


class AutoscalerCollector:
    def collect(self):
        memory = GaugeMetricFamily(PREFIX + "memory_ratio", "Used memory over the plan's memory, latest good sample", labels=INSTANCE_LABELS)
        connections = GaugeMetricFamily(PREFIX + "connections_ratio", "Connected clients over the plan's connection limit, latest good sample (absent: unlimited)", labels=INSTANCE_LABELS)
        cost = GaugeMetricFamily(PREFIX + "plan_monthly_cost_dollars", "Monthly price of the current plan", labels=INSTANCE_LABELS)
        last_sample = GaugeMetricFamily(PREFIX + "last_sample_timestamp_seconds", "Unix time of the latest good sample", labels=INSTANCE_LABELS)
        failures = CounterMetricFamily(PREFIX + "sample_failures", "Failed samples in the record (retention window)", labels=INSTANCE_LABELS)
        changes = CounterMetricFamily(PREFIX + "plan_changes", "Plan changes made (succeeded, adoptions of hand changes included)", labels=INSTANCE_LABELS + ["direction"])
        rate_limit = GaugeMetricFamily(PREFIX + "heroku_rate_limit_remaining", "Last RateLimit-Remaining a worker saw", labels=["account"])

        failed_by_instance = dict(
            MetricLog.objects.filter(~Q(error=""), instance__isnull=False)
            .values("instance_id").annotate(n=Count("pk")).values_list("instance_id", "n")
        )
        changes_by_instance = {}
        for instance_id, direction, n in (
            ScalingAction.objects.filter(status=ScalingAction.Status.SUCCEEDED, instance__isnull=False)
            .values("instance_id", "direction").annotate(n=Count("pk")).values_list("instance_id", "direction", "n")
        ):
            changes_by_instance[(instance_id, direction)] = n

        for pk, name, app, plan, monthly, memory_pct, connection_pct, sample_at in _instances_with_latest_sample():
            labels = [name, app, plan]
            cost.add_metric(labels, float(monthly))
            failures.add_metric(labels, failed_by_instance.get(pk, 0))
            for direction in ScalingAction.Direction.values:
                changes.add_metric(labels + [direction], changes_by_instance.get((pk, direction), 0))
            if memory_pct is not None:
                memory.add_metric(labels, memory_pct / 100)
            if connection_pct is not None:
                connections.add_metric(labels, connection_pct / 100)
            if sample_at is not None:
                last_sample.add_metric(labels, sample_at.timestamp())

        for name, value in Heartbeat.objects.filter(name__startswith=RATE_LIMIT_PREFIX, value__isnull=False).values_list("name", "value"):
            rate_limit.add_metric([name[len(RATE_LIMIT_PREFIX):]], value)

        yield from (memory, connections, cost, last_sample, failures, changes, rate_limit)


def metrics_render():
    """The exposition text (bytes) of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AutoscalerCollector())
    return generate_latest(registry)
