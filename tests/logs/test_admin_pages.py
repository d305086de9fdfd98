"""The admin's chart and overview pages (logs/admin_views.py, logs/selectors.py), through
the Django test client as a logged-in superuser, on the real PostgreSQL."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from logs import selectors
from logs.models import MetricLog, ScalingAction
from scaling.models import RedisInstance, RedisPlan
from tests.factories import make_instance

pytestmark = pytest.mark.django_db

OVERVIEW = "admin:scaling_redisinstance_overview"
CHART = "admin:scaling_redisinstance_chart"


def add_samples(instance, *, now, count, every=timedelta(seconds=30), memory=50.0, connections=20.0, plan=None):
    """`count` samples ending at `now`, oldest first; memory/connections: a number or f(i)."""
    plan = plan or instance.current_plan
    rows = []
    for i in range(count):
        at = now - every * (count - 1 - i)
        mem = memory(i) if callable(memory) else memory
        conn = connections(i) if callable(connections) else connections
        rows.append(MetricLog(
            instance=instance, plan=plan, slot=at, collected_at=at,
            used_memory=int(plan.mem_limit_bytes * mem / 100), maxmemory=plan.mem_limit_bytes,
            connected_clients=0 if conn is None else int(conn), maxclients=plan.conn_limit,
            memory_pct=mem, connection_pct=conn, evicted_keys=0, rejected_connections=0,
        ))
    MetricLog.objects.bulk_create(rows, batch_size=5000)


def add_action(instance, *, at, to, status=ScalingAction.Status.SUCCEEDED, reason="memory avg 91.0% above 80%", error=""):
    from_plan = instance.current_plan
    to_plan = RedisPlan.objects.get(plan_name=to)
    direction = ScalingAction.Direction.UP if to_plan.mem_limit > from_plan.mem_limit else ScalingAction.Direction.DOWN
    return ScalingAction.objects.create(
        instance=instance, instance_name=instance.name, created_at=at,
        finished_at=None if status == ScalingAction.Status.PENDING else at + timedelta(minutes=2),
        from_plan=from_plan, to_plan=to_plan, direction=direction, status=status, reason=reason, error=error,
    )


def add_samples_in_sql(instance, *, now, count, every_seconds=30):
    """Many samples fast (PostgreSQL generate_series): memory 50 % + (i mod 240) / 10, no
    connection figures (as on a plan with unlimited connections)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {MetricLog._meta.db_table}
                  (instance_id, plan_id, slot, collected_at, used_memory, connected_clients, memory_pct,
                   error_kind, error, warnings)
                SELECT %s, %s, t, t, 1, 1, 50.0 + (i %% 240) / 10.0, '', '', ''
                FROM generate_series(0, %s - 1) AS i,
                     LATERAL (SELECT %s::timestamptz - make_interval(secs => %s * (%s - 1 - i))) AS at(t)""",
            [instance.pk, instance.current_plan_id, count, now, every_seconds, count],
        )


def html(response):
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# ---------------------------------------------------------------------------------------
# Overview
# ---------------------------------------------------------------------------------------


@pytest.fixture
def fleet(plans):
    """One instance in each state and mode, with a latest sample a minute old."""
    now = timezone.now() - timedelta(minutes=1)
    ok = make_instance(name="ok-queue", plan="heroku-redis:premium-0")
    add_samples(ok, now=now, count=5, memory=41.24, connections=12.5)
    breaching = make_instance(name="hot-queue", plan="heroku-redis:premium-1")
    add_samples(breaching, now=now, count=5, memory=lambda i: 60.0 + i * 8, connections=30.0)  # latest 92.0
    at_max = make_instance(name="maxed-queue", plan="heroku-redis:premium-5", max_plan="heroku-redis:premium-5")
    add_samples(at_max, now=now, count=5, memory=50.0, connections=lambda i: 70.0 + i * 5)  # latest conn 90.0
    unreachable = make_instance(name="gone-queue", consecutive_failures=4)
    add_samples(unreachable, now=now - timedelta(hours=1), count=3)
    no_data = make_instance(name="new-queue")
    dry = make_instance(name="dry-queue", dry_run=True, plan="heroku-redis:premium-2")
    add_samples(dry, now=now, count=5, memory=85.0, connections=10.0)
    off = make_instance(name="off-queue", scaling_enabled=False, plan="heroku-redis:mini")
    add_samples(off, now=now, count=5, memory=10.0, connections=5.0)
    # a failed read after the last good one does not hide the good one
    MetricLog.objects.create(instance=ok, plan=ok.current_plan, slot=now + timedelta(seconds=20),
                             collected_at=now + timedelta(seconds=20), error="timeout", error_kind="timeout")
    add_action(breaching, at=now - timedelta(minutes=10), to="heroku-redis:premium-2",
               status=ScalingAction.Status.FAILED, reason="memory avg 84.0% above 80%", error="Heroku said 422")
    add_action(dry, at=now - timedelta(minutes=5), to="heroku-redis:premium-3",
               status=ScalingAction.Status.DRY_RUN, reason="memory avg 85.0% above 80%")
    return {i.name: i for i in (ok, breaching, at_max, unreachable, no_data, dry, off)}


def test_overview_shows_every_instance_with_its_latest_figures_state_mode_and_cost(admin_client, fleet):
    response = admin_client.get(reverse(OVERVIEW))
    page = html(response)
    rows = {instance.name: instance for instance in response.context["instances"]}
    assert {name: row.state for name, row in rows.items()} == {
        "ok-queue": "ok", "hot-queue": "breaching", "maxed-queue": "at max plan", "gone-queue": "unreachable",
        "new-queue": "no data", "dry-queue": "breaching", "off-queue": "ok",
    }
    assert {name: row.mode for name, row in rows.items()} == {
        "ok-queue": "auto", "hot-queue": "auto", "maxed-queue": "auto", "gone-queue": "auto",
        "new-queue": "auto", "dry-queue": "dry run", "off-queue": "scaling off",
    }
    # default order: most urgent first
    assert [i.name for i in response.context["instances"]][:3] == ["gone-queue", "new-queue", "maxed-queue"]
    assert rows["ok-queue"].latest_memory_pct == pytest.approx(41.24)
    assert rows["hot-queue"].latest_memory_pct == pytest.approx(92.0)
    assert rows["maxed-queue"].latest_connection_pct == pytest.approx(90.0)
    assert rows["hot-queue"].last_action.status == "failed"
    assert rows["ok-queue"].last_action is None
    for text in ("41.2", "92.0", "90.0", "premium-1", "hot-queue-app", "ok-queue", "dry run", "scaling off",
                 "at max plan", "unreachable", "no data", "4 failed reads in a row"):
        assert text in page, text
    totals = response.context["totals"]
    expected_cost = sum((i.current_plan.cost for i in fleet.values()), Decimal("0"))
    assert totals.instances == 7 and totals.monthly_cost == expected_cost
    assert totals.by_state == {"unreachable": 1, "check failing": 0, "no data": 1, "at max plan": 1, "breaching": 2, "ok": 2}
    assert totals.by_mode == {"scaling off": 1, "dry run": 1, "auto": 5}
    assert f"${expected_cost:.2f}" in page
    # the breaching figure is flagged on its own row
    hot_row = page.split('data-instance="hot-queue"')[1].split("</tr>")[0]
    assert 'memory-pct over' in hot_row and "connection-pct over" not in hot_row


def test_overview_filters_by_state_mode_and_search_and_sorts(admin_client, fleet):
    names = lambda response: [i.name for i in response.context["instances"]]  # noqa: E731
    assert names(admin_client.get(reverse(OVERVIEW), {"state": "breaching"})) == ["dry-queue", "hot-queue"]
    assert names(admin_client.get(reverse(OVERVIEW), {"mode": "dry run"})) == ["dry-queue"]
    assert names(admin_client.get(reverse(OVERVIEW), {"q": "hot"})) == ["hot-queue"]
    assert names(admin_client.get(reverse(OVERVIEW), {"o": "memory"}))[:2] == ["hot-queue", "dry-queue"]
    assert names(admin_client.get(reverse(OVERVIEW), {"o": "cost"}))[0] == "maxed-queue"
    response = admin_client.get(reverse(OVERVIEW), {"state": "breaching"})
    assert response.context["paginator"].count == 2
    assert response.context["totals"].instances == 7  # totals stay those of all instances
    # nonsense parameters fall back to the defaults instead of failing
    assert admin_client.get(reverse(OVERVIEW), {"state": "x", "o": "';drop", "page": "999"}).status_code == 200


def test_overview_and_chart_pages_are_for_staff_only(client, fleet):
    instance = fleet["hot-queue"]
    urls = [reverse(OVERVIEW), reverse(CHART, args=[instance.pk])]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    user = User.objects.create_user("viewer", password="pw-not-staff-123")
    client.force_login(user)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    # staff without the view permission on instances: forbidden
    user.is_staff = True
    user.save()
    for url in urls:
        assert client.get(url).status_code == 403, url
    user.user_permissions.add(Permission.objects.get(codename="view_redisinstance"))
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_pages_are_linked_from_the_admin(admin_client, fleet):
    instance = fleet["hot-queue"]
    chart_url = reverse(CHART, args=[instance.pk])
    assert reverse(OVERVIEW) in html(admin_client.get(reverse("admin:index")))
    changelist = html(admin_client.get(reverse("admin:scaling_redisinstance_changelist")))
    assert chart_url in changelist and reverse(OVERVIEW) in changelist
    assert chart_url in html(admin_client.get(reverse("admin:scaling_redisinstance_change", args=[instance.pk])))
    assert chart_url in html(admin_client.get(reverse(OVERVIEW)))


def _many_instances(count, *, samples, now):
    plan = RedisPlan.objects.get(plan_name="heroku-redis:premium-0")
    low = RedisPlan.objects.get(plan_name="heroku-redis:mini")
    high = RedisPlan.objects.get(plan_name="heroku-redis:premium-5")
    start = RedisInstance.objects.count()
    RedisInstance.objects.bulk_create(
        RedisInstance(name=f"bulk-{start + n:05d}", app_name=f"app-{n}", config_var="REDIS_URL", current_plan=plan,
                      min_plan=low, max_plan=high, dry_run=n % 7 == 0, consecutive_failures=3 if n % 50 == 0 else 0)
        for n in range(count)
    )
    instances = list(RedisInstance.objects.filter(name__startswith="bulk-").order_by("-pk")[:count])
    rows = []
    for k, instance in enumerate(instances):
        for i in range(samples):
            at = now - timedelta(seconds=30 * (samples - 1 - i))
            mem = 90.0 if k % 10 == 0 else 40.0
            rows.append(MetricLog(instance=instance, plan=plan, slot=at, collected_at=at, used_memory=1,
                                  connected_clients=1, memory_pct=mem, connection_pct=10.0))
    MetricLog.objects.bulk_create(rows, batch_size=5000)
    ScalingAction.objects.bulk_create(
        ScalingAction(instance=instance, instance_name=instance.name, created_at=now - timedelta(minutes=k % 60),
                      from_plan=plan, to_plan=high, direction="up", status="dry-run", reason="r")
        for k, instance in enumerate(instances) if k % 3 == 0
    )
    return instances


def _count_queries(django_assert_max_num_queries, admin_client, url, params, limit):
    with django_assert_max_num_queries(limit) as captured:
        response = admin_client.get(url, params)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_overview_query_count_does_not_grow_with_instances_or_samples(admin_client, plans, django_assert_max_num_queries):
    now = timezone.now()
    _many_instances(10, samples=5, now=now)
    url = reverse(OVERVIEW)
    # (one of them: the alert channels failing for good, named at the top)
    small = _count_queries(django_assert_max_num_queries, admin_client, url, {}, 9)
    _many_instances(190, samples=20, now=now)  # 200 instances, 3,850 samples
    big = _count_queries(django_assert_max_num_queries, admin_client, url, {}, 9)
    filtered = _count_queries(django_assert_max_num_queries, admin_client, url, {"state": "breaching", "page": "1"}, 10)
    sorted_ = _count_queries(django_assert_max_num_queries, admin_client, url, {"o": "memory", "page": "2"}, 9)
    assert small == big, (small, big)
    print(f"overview queries: 10 instances {small}, 200 instances {big}, filtered {filtered}, sorted page 2 {sorted_}")
    response = admin_client.get(url, {"page": "2"})
    assert len(response.context["instances"]) == 100
    assert response.context["totals"].instances == 200
    assert response.context["totals"].by_state["unreachable"] == 5  # n % 50 == 0 in both batches
    assert response.context["totals"].by_mode["dry run"] == 30  # n % 7 == 0: 2 + 28


# ---------------------------------------------------------------------------------------
# Chart of one instance
# ---------------------------------------------------------------------------------------


def _chart_data(response):
    page = html(response)
    start = page.index('<script id="chart-data" type="application/json">') + len('<script id="chart-data" type="application/json">')
    return json.loads(page[start:page.index("</script>", start)])


def test_chart_page_has_the_downsampled_series_thresholds_and_plan_changes(admin_client, plans):
    now = timezone.now()
    instance = make_instance(name="charted", plan="heroku-redis:premium-1", memory_threshold=75, connection_threshold=65)
    # 24 h of 30 s samples: memory climbs 10 -> 90 %, connections steady 20 %, peaks of 30 % every 10th
    add_samples(instance, now=now, count=2880, memory=lambda i: 10 + 80 * i / 2879, connections=lambda i: 30.0 if i % 10 == 0 else 20.0)
    old = add_action(instance, at=now - timedelta(days=3), to="heroku-redis:premium-2", reason="outside the period")
    done = add_action(instance, at=now - timedelta(hours=20), to="heroku-redis:premium-2", reason="memory avg 81.5% above 75%")
    dry = add_action(instance, at=now - timedelta(hours=10), to="heroku-redis:premium-3", status="dry-run",
                     reason="connections avg 70.0% above 65%")
    failed = add_action(instance, at=now - timedelta(hours=2), to="heroku-redis:premium-3", status="failed",
                        reason="memory avg 88.0% above 75%", error="Heroku refused the change (422)")

    response = admin_client.get(reverse(CHART, args=[instance.pk]))  # default period: 24 hours
    data = _chart_data(response)
    page = response.content.decode()
    assert response.context["period"].key == "24h"
    assert data["bucketSeconds"] == 300  # 24 h / 499 points -> 5-minute buckets
    t = data["points"]["t"]
    assert 288 <= len(t) <= 289 and t == sorted(t)
    assert sum(data["points"]["samples"]) == 2880
    assert all(v <= 30.0 for v in data["points"]["connectionsMax"]) and max(data["points"]["connectionsMax"]) == 30.0
    assert 20.0 < data["points"]["connectionsAvg"][len(t) // 2] < 30.0  # averaged, the peak kept apart
    assert data["points"]["memoryAvg"][0] < 11 and data["points"]["memoryMax"][-1] == pytest.approx(90.0)
    assert data["thresholds"] == {"memory": 75, "connections": 65}
    assert [(c["n"], c["status"], c["reason"]) for c in data["changes"]] == [
        (1, "succeeded", "memory avg 81.5% above 75%"),
        (2, "dry-run", "connections avg 70.0% above 65%"),
        (3, "failed", "memory avg 88.0% above 75%"),
    ]
    assert data["changes"][2]["error"] == "Heroku refused the change (422)"
    assert data["changes"][0]["t"] == int(done.created_at.timestamp() * 1000)
    # the list under the chart and the latest actions (the old one too, unnumbered)
    for text in ("memory avg 81.5% above 75%", "connections avg 70.0% above 65%", "Heroku refused the change (422)",
                 "outside the period", "2880 samples", "5 minutes", "logs/vendor/chart.umd.min.js"):
        assert text in page, text
    assert [a.pk for a in response.context["latest_actions"]] == [failed.pk, dry.pk, done.pk, old.pk]
    assert [a.marker for a in response.context["latest_actions"]] == [3, 2, 1, None]
    # no CDN: every script comes from our static files
    assert "https://" not in "".join(line for line in page.splitlines() if "<script" in line)


def test_chart_period_selector_limits_the_samples_and_follows_the_retention(admin_client, plans, settings):
    now = timezone.now()
    instance = make_instance(name="periods")
    add_samples(instance, now=now, count=48, every=timedelta(hours=1), memory=lambda i: float(i))
    url = reverse(CHART, args=[instance.pk])
    six = _chart_data(admin_client.get(url, {"period": "6h"}))
    assert sum(six["points"]["samples"]) == 6  # 0..5 hours back; the one 6 h back is a moment older than the period's start
    assert six["bucketSeconds"] == 60
    week = _chart_data(admin_client.get(url, {"period": "7d"}))
    assert sum(week["points"]["samples"]) == 48
    assert _chart_data(admin_client.get(url, {"period": "bogus"}))["bucketSeconds"] == 300  # back to 24 h
    keys = [p.key for p in admin_client.get(url).context["periods"]]
    assert keys == ["1h", "6h", "24h", "7d", "30d"]
    settings.N_RETENTION_DAYS = 10
    keys = [p.key for p in admin_client.get(url).context["periods"]]
    assert keys == ["1h", "6h", "24h", "7d", "10d"]
    settings.N_RETENTION_DAYS = 90
    assert [p.key for p in admin_client.get(url).context["periods"]][-1] == "90d"
    assert admin_client.get(reverse(CHART, args=[999999])).status_code == 404
    assert admin_client.get(reverse(CHART, args=["nope"])).status_code == 404


def test_chart_of_an_instance_without_samples_says_so(admin_client, plans):
    instance = make_instance(name="empty")
    response = admin_client.get(reverse(CHART, args=[instance.pk]))
    assert "No samples in the last 1 hour." in html(response)
    assert _chart_data(response)["points"]["t"] == []


@pytest.mark.parametrize("newest_ago, span, opens_on", [
    (None, None, "1h"),                                        # no sample yet
    (timedelta(0), timedelta(minutes=20), "1h"),               # registered 20 minutes ago
    (timedelta(0), timedelta(hours=3), "6h"),
    (timedelta(0), timedelta(hours=23), "24h"),
    (timedelta(0), timedelta(days=3), "24h"),                  # more than a day: a day, longer ones a click away
    (timedelta(days=3), timedelta(hours=2), "7d"),             # nothing in the last day: where the latest sample is
])
def test_the_chart_opens_on_the_shortest_period_that_holds_the_samples(admin_client, plans, newest_ago, span, opens_on):
    now = timezone.now()
    instance = make_instance(name="fresh")
    if span is not None:
        every = span / 20
        add_samples(instance, now=now - newest_ago, count=21, every=every)
    url = reverse(CHART, args=[instance.pk])
    response = admin_client.get(url)
    assert response.context["period"].key == opens_on
    if span is not None:
        assert sum(_chart_data(response)["points"]["samples"]) == 21 or opens_on == "24h"
        assert f'<strong class="current" aria-current="true">{response.context["period"].label}</strong>' in html(response)
    assert admin_client.get(url, {"period": "30d"}).context["period"].key == "30d"  # a chosen period is kept


def test_a_single_peak_above_the_threshold_stays_at_its_height_at_every_period(admin_client, plans):
    now = timezone.now()
    instance = make_instance(name="spiky", memory_threshold=80)
    # 40 % for a week of 30 s samples, one sample at 90 % an hour ago
    add_samples_in_sql(instance, now=now, count=7 * 2880)
    MetricLog.objects.filter(instance=instance).update(memory_pct=40.0)
    spike = MetricLog.objects.filter(instance=instance, collected_at__lte=now - timedelta(hours=1)).latest("collected_at")
    MetricLog.objects.filter(pk=spike.pk).update(memory_pct=90.0)
    for period in ("6h", "24h", "7d"):
        data = _chart_data(admin_client.get(reverse(CHART, args=[instance.pk]), {"period": period}))
        assert max(data["points"]["memoryMax"]) == 90.0, period
        assert max(data["points"]["memoryAvg"]) < 80.0, period  # the average alone would hide the breach
        assert data["thresholds"]["memory"] == 80


def test_a_month_of_30s_samples_is_downsampled_in_the_database_to_at_most_500_points(plans, django_assert_num_queries):
    now = timezone.now()
    instance = make_instance(name="month")
    count = 30 * 2880  # 30 days of 30 s samples
    add_samples_in_sql(instance, now=now, count=count)
    with django_assert_num_queries(1):
        series = selectors.instance_chart_series(instance=instance, start=now - timedelta(days=30), end=now)
    assert len(series.points) <= selectors.MAX_CHART_POINTS
    assert series.bucket_seconds == 2 * 3600 and len(series.points) in (360, 361)
    assert series.sample_count == count
    assert max(p.memory_max for p in series.points) == pytest.approx(73.9)
    assert all(p.connection_avg is None for p in series.points)  # unlimited-like: no connection figures
    for span in (timedelta(hours=1), timedelta(hours=6), timedelta(days=7), timedelta(days=30), timedelta(days=365)):
        size = selectors.bucket_seconds_for(span)
        assert span.total_seconds() / size + 1 <= selectors.MAX_CHART_POINTS, span


def test_chart_query_count_does_not_grow_with_samples_or_actions(admin_client, plans, django_assert_max_num_queries):
    now = timezone.now()
    instance = make_instance(name="counted")
    add_samples(instance, now=now, count=10)
    url = reverse(CHART, args=[instance.pk])
    small = _count_queries(django_assert_max_num_queries, admin_client, url, {}, 7)
    add_samples(instance, now=now - timedelta(hours=1), count=5000, every=timedelta(seconds=5))
    for k in range(40):
        add_action(instance, at=now - timedelta(minutes=30 * k + 1), to="heroku-redis:premium-1",
                   status=("succeeded", "failed", "dry-run")[k % 3])
    big = _count_queries(django_assert_max_num_queries, admin_client, url, {}, 7)
    month = _count_queries(django_assert_max_num_queries, admin_client, url, {"period": "30d"}, 7)
    assert small == big == month
    print(f"chart queries: {small} (10 samples), {big} (5,010 samples, 40 actions), {month} (30 days)")


# ---------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------


def test_no_admin_page_shows_the_redis_password(admin_client, plans):
    password = "pA55w0rd-Never-Shown-9f3k"
    now = timezone.now()
    instance = make_instance(name="secret", redis_url=f"rediss://default:{password}@ec2-1-2-3-4.compute-1.amazonaws.com:6380")
    assert instance.redis_url.endswith("6380")
    add_samples(instance, now=now, count=10)
    log = MetricLog.objects.create(instance=instance, plan=instance.current_plan, slot=now + timedelta(seconds=1),
                                   collected_at=now + timedelta(seconds=1), error_kind="auth", error="authentication failed")
    action = add_action(instance, at=now - timedelta(minutes=3), to="heroku-redis:premium-1", status="failed",
                        error="Heroku refused the change (422)")
    pages = [
        reverse(OVERVIEW),
        reverse(CHART, args=[instance.pk]),
        reverse(CHART, args=[instance.pk]) + "?period=30d",
        reverse("admin:scaling_redisinstance_changelist"),
        reverse("admin:scaling_redisinstance_change", args=[instance.pk]),
        reverse("admin:logs_metriclog_changelist"),
        reverse("admin:logs_metriclog_change", args=[log.pk]),
        reverse("admin:logs_scalingaction_changelist"),
        reverse("admin:logs_scalingaction_change", args=[action.pk]),
        reverse("admin:index"),
    ]
    for url in pages:
        page = html(admin_client.get(url))
        assert password not in page, url
        assert instance.redis_url_encrypted not in page, url
        assert "ec2-1-2-3-4" not in page, url  # nor the rest of the URL


def test_a_url_with_a_password_in_a_reason_is_masked_on_the_chart_page(admin_client, plans):
    now = timezone.now()
    instance = make_instance(name="leaky")
    add_action(instance, at=now - timedelta(minutes=3), to="heroku-redis:premium-1", status="failed",
               reason="could not connect to redis://default:Leaked-Pa55word@host:1", error="redis://h:Leaked-Pa55word@x:2")
    page = html(admin_client.get(reverse(CHART, args=[instance.pk])))
    assert "Leaked-Pa55word" not in page
    assert "redis://default:***@host:1" in page


# ---------------------------------------------------------------------------------------
# The record's lists, the index, the favicon
# ---------------------------------------------------------------------------------------


def _column_titles(page):
    import re

    start = page.index("<thead>")
    head = page[start:page.index("</thead>", start)]
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<th\b[^>]*>(.*?)</th>", head, re.S)]


def test_the_actions_list_has_five_narrow_columns_and_a_truncated_reason_with_the_whole_in_its_title(admin_client, plans):
    now = timezone.now().replace(microsecond=0)
    instance = make_instance(name="long-reasons")
    reason = "memory avg 91.0% above 80% " + "because the queue kept growing " * 20 + "THE-END"
    add_action(instance, at=now - timedelta(seconds=7), to="heroku-redis:premium-1", status="failed", reason=reason,
               error="Heroku refused the change (422): " + "plan not available " * 10)
    page = html(admin_client.get(reverse("admin:logs_scalingaction_changelist")))
    assert _column_titles(page) == ["Decided", "Instance", "Change", "Status", "Reason"]
    assert "up: premium-0 → premium-1" in page
    assert page.count("THE-END") == 1 and f'title="{reason}"' in page  # the whole reason on hover only
    assert "memory avg 91.0% above 80% because" in page and "…" in page
    assert "Heroku refused the change (422)" in page
    decided = timezone.localtime(now - timedelta(seconds=7)).strftime("%Y-%m-%d %H:%M:%S")
    assert decided in page


def test_the_samples_list_has_seven_columns_with_memory_and_connections_as_share_and_count(admin_client, plans):
    now = timezone.now()
    instance = make_instance(name="columns")
    add_samples(instance, now=now, count=1, memory=45.25, connections=30.0)
    MetricLog.objects.create(instance=instance, plan=instance.current_plan, slot=now + timedelta(seconds=30),
                             collected_at=now + timedelta(seconds=30), error_kind="timeout",
                             error="timed out reading INFO after 5 s " + "x" * 200 + " THE-END")
    page = html(admin_client.get(reverse("admin:logs_metriclog_changelist")))
    assert _column_titles(page) == ["Collected", "Instance", "Plan", "Memory", "Clients", "Evicted / rejected", "Error"]
    assert "45.2% (22.6 MB)" in page and "30.0% (30)" in page and "0 / 0" in page
    assert "timeout: timed out reading INFO after 5 s" in page and page.count("THE-END") == 1  # whole on hover only


def test_sample_times_show_seconds_so_that_30s_samples_are_told_apart(admin_client, plans):
    now = timezone.now().replace(microsecond=0)
    instance = make_instance(name="thirty")
    add_samples(instance, now=now, count=2)
    page = html(admin_client.get(reverse("admin:logs_metriclog_changelist")))
    for at in (now, now - timedelta(seconds=30)):
        assert timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S") in page
    log = MetricLog.objects.filter(instance=instance).latest("collected_at")
    detail = html(admin_client.get(reverse("admin:logs_metriclog_change", args=[log.pk])))
    assert timezone.localtime(now).strftime("%Y-%m-%d %H:%M:%S") in detail


def test_redis_instances_come_first_in_the_admin_index(admin_client, plans):
    response = admin_client.get(reverse("admin:index"))
    labels = [app["app_label"] for app in response.context["app_list"]]
    assert labels[:3] == ["scaling", "logs", "notifications"]
    assert set(labels[3:]) >= {"auth", "axes"}
    page = html(response)
    assert page.index("Redis instances") < page.index("Groups") < page.index("Access attempts")


def test_the_favicon_is_served_without_a_warning(client, caplog):
    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert "max-age" in response["Cache-Control"]
    assert caplog.records == []
