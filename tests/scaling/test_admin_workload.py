"""The workload, scale-in protection and a policy/workload disagreement in the admin: the
instances list, the instance page and the overview (Django test client, real PostgreSQL)."""

import pytest
from django.urls import reverse

from scaling.models import RedisInstance
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def instances(plans):
    agreeing = make_instance(name="lru-cache", workload="cache", maxmemory_policy="allkeys-lru")
    evicting_queue = make_instance(name="evicting-queue", workload="queue", maxmemory_policy="volatile-lru")
    protected = make_instance(name="protected-queue", scale_down_enabled=False, maxmemory_policy="noeviction")
    unread = make_instance(name="unread-cache", workload="cache")
    return agreeing, evicting_queue, protected, unread


def test_a_policy_that_disagrees_with_the_workload_is_flagged_and_an_agreeing_one_is_not(instances):
    agreeing, evicting_queue, protected, unread = instances
    assert agreeing.workload_mismatch == "" and protected.workload_mismatch == "" and unread.workload_mismatch == ""
    assert evicting_queue.workload_mismatch == "maxmemory-policy volatile-lru evicts keys, but the workload is queue"
    full_cache = RedisInstance(workload="cache", maxmemory_policy="noeviction")
    assert full_cache.workload_mismatch == "maxmemory-policy noeviction never evicts, but the workload is cache"


def test_the_instances_list_shows_the_workload_its_flag_and_scale_down(admin_client, instances):
    page = admin_client.get(reverse("admin:scaling_redisinstance_changelist")).content.decode()
    assert "queue ⚠ maxmemory-policy volatile-lru evicts keys, but the workload is queue" in page
    assert page.count("⚠") == 1
    filtered = admin_client.get(reverse("admin:scaling_redisinstance_changelist"), {"scale_down_enabled__exact": "0"})
    assert [i.name for i in filtered.context["cl"].result_list] == ["protected-queue"]


def test_the_instance_page_edits_the_workload_and_shows_the_policy_read(admin_client, instances):
    _, evicting_queue, _, _ = instances
    page = admin_client.get(reverse("admin:scaling_redisinstance_change", args=[evicting_queue.pk])).content.decode()
    for text in ('name="workload"', 'name="min_hit_rate"', 'name="scale_down_enabled"', "volatile-lru",
                 "evicts keys, but the workload is queue"):
        assert text in page, text


def test_the_overview_marks_caches_scale_in_protection_and_a_disagreement(admin_client, instances):
    page = admin_client.get(reverse("admin:scaling_redisinstance_overview")).content.decode()

    def row(name):
        return page.split(f'data-instance="{name}"')[1].split("</tr>")[0]

    assert "workload-cache" in row("lru-cache") and "workload-mismatch" not in row("lru-cache")
    assert "no scale-down" in row("protected-queue") and "no scale-down" not in row("lru-cache")
    assert "workload-mismatch" in row("evicting-queue") and "volatile-lru evicts keys" in row("evicting-queue")


def test_a_samples_page_shows_its_hit_and_miss_counters(admin_client, instances):
    from django.utils import timezone

    from logs.models import MetricLog

    agreeing = instances[0]
    now = timezone.now()
    log = MetricLog.objects.create(instance=agreeing, plan=agreeing.current_plan, slot=now, collected_at=now,
                                   used_memory=1, connected_clients=1, keyspace_hits=987_654, keyspace_misses=12_345)
    page = admin_client.get(reverse("admin:logs_metriclog_change", args=[log.pk])).content.decode()
    assert "987654" in page and "12345" in page
