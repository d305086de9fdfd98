"""The admin's chart in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver, against the live test server.

It logs in through the admin's login form, opens an instance's chart page with a day of
stored samples and four plan changes, and reads back from Chart.js what was drawn: one
point per stored bucket on each series, the two threshold lines, and one marker and
vertical line per plan change, with the reason in the marker's tooltip. Screenshots go to
test-artifacts/ (gitignored): admin_chart.png and admin_overview.png.

No browser is ever downloaded: the test skips, saying why, when /usr/bin/chromium or
/usr/bin/chromedriver is missing (scripts/test installs Debian's packages).
"""

import math
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from logs.models import MetricLog, ScalingAction
from scaling.models import RedisPlan
from tests.factories import make_instance

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1500", "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)"),
    pytest.mark.skipif(not os.path.exists(CHROMEDRIVER), reason=f"{CHROMEDRIVER} is not installed (apt-get install chromium-driver)"),
]

USERNAME, PASSWORD = "operator", "browser-test-Pw-7d2k"


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # chromedriver and the browser it starts: UTC, like the server, so times read the same.
    service = Service(executable_path=CHROMEDRIVER, env={**os.environ, "TZ": "UTC"})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _login(browser, live_server):
    from selenium.webdriver.common.by import By

    User.objects.create_superuser(USERNAME, "operator@example.com", PASSWORD)
    browser.get(live_server.url + reverse("admin:login"))
    browser.find_element(By.NAME, "username").send_keys(USERNAME)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait(browser, lambda b: "/admin/login/" not in b.current_url, "the login to go through")


def _wait(browser, condition, what, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(condition, message=f"timed out waiting for {what}")


# ---------------------------------------------------------------------------------------
# A day of a queue's life: it fills in the morning, is moved up, peaks, is moved down.
# ---------------------------------------------------------------------------------------

MIB = 1024 * 1024


def _queue_day(now):
    """(instance, actions): a day of 60 s samples whose percentages follow the plan in force."""
    plans = {p.plan_name: p for p in RedisPlan.objects.filter(service_name="heroku-redis")}
    instance = make_instance(name="orders-queue", app_name="shop-production", plan="heroku-redis:premium-0",
                             min_plan="heroku-redis:mini", max_plan="heroku-redis:premium-3",
                             memory_threshold=80, connection_threshold=75, metric_rate=60)
    start = now - timedelta(hours=24)
    changes = [
        # hours after start, from, to, status, reason, error
        (3.15, "premium-0", "premium-1", "dry-run",
         "memory avg 83.9% above 80% over the last 5 min; premium-1 would keep it at 42% (dry run: plan not changed)", ""),
        (8.2, "premium-0", "premium-1", "succeeded",
         "memory avg 81.6% above 80% over the last 5 min; premium-1 keeps memory at 41% and connections at 22%", ""),
        (12.6, "premium-1", "premium-2", "failed",
         "connections avg 76.1% above 75% over the last 5 min; premium-2 keeps them at 30%",
         "Heroku refused the change (422): plan not available in this region"),
        (20.5, "premium-1", "premium-0", "succeeded",
         "all metrics under their thresholds for 60 min (peaks: memory 21.9%, connections 13.8%); "
         "premium-0 keeps memory at 44% and connections at 28%", ""),
    ]
    in_force = [(start, plans["heroku-redis:premium-0"])]
    for hours, _, to, status, _, _ in changes:
        if status == "succeeded":
            in_force.append((start + timedelta(hours=hours, minutes=2), plans[f"heroku-redis:{to}"]))

    rows = []
    # The outage straddles a 5-minute chart bucket boundary near 17:00 after the start, so
    # both buckets also hold good samples, whatever the clock says.
    boundary = start + timedelta(hours=17)
    boundary -= timedelta(minutes=boundary.minute % 5, seconds=boundary.second, microseconds=boundary.microsecond)
    outage_start = boundary - timedelta(minutes=3)
    for minute in range(24 * 60):
        at = start + timedelta(minutes=minute, seconds=30)
        hour = minute / 60
        plan = [p for since, p in in_force if since <= at][-1]
        # the day's queue: memory and connections rise to a peak after noon and drain
        used_mb = 15 + 50 * math.exp(-(((hour - 12.5) / 5.32) ** 2)) + 1.2 * math.sin(minute / 17)
        if 3.0 <= hour < 3.2:
            used_mb += 25  # a burst of jobs, drained within minutes
        clients = int(9 + 52 * math.exp(-(((hour - 12.5) / 3.2) ** 2)) + 1.5 * math.sin(minute / 23))
        if outage_start <= at < outage_start + timedelta(minutes=6):  # six failed reads in a row
            rows.append(MetricLog(instance=instance, plan=plan, slot=at, collected_at=at, error_kind="timeout",
                                  error="timed out reading INFO after 5 s"))
            continue
        rows.append(MetricLog(
            instance=instance, plan=plan, slot=at, collected_at=at,
            used_memory=int(used_mb * MIB), maxmemory=plan.mem_limit_bytes, connected_clients=clients,
            maxclients=plan.conn_limit, memory_pct=100 * used_mb / plan.mem_limit,
            connection_pct=100 * clients / plan.conn_limit, evicted_keys=0, rejected_connections=0,
        ))
    MetricLog.objects.bulk_create(rows, batch_size=2000)
    actions = [
        ScalingAction.objects.create(
            instance=instance, instance_name=instance.name, created_at=start + timedelta(hours=hours),
            finished_at=start + timedelta(hours=hours, minutes=2), from_plan=plans[f"heroku-redis:{src}"],
            to_plan=plans[f"heroku-redis:{to}"],
            direction="up" if plans[f"heroku-redis:{to}"].mem_limit > plans[f"heroku-redis:{src}"].mem_limit else "down",
            status=status, reason=reason, error=error,
        )
        for hours, src, to, status, reason, error in changes
    ]
    instance.current_plan = plans["heroku-redis:premium-0"]
    instance.save()
    return instance, actions, len(rows)


CHART_STATE_JS = """
const canvas = document.getElementById('instance-chart');
const chart = Chart.getChart(canvas);
const data = JSON.parse(document.getElementById('chart-data').textContent);
const area = chart.chartArea;
return {
  embeddedPoints: data.points.t.length,
  embeddedSamples: data.points.samples.reduce((a, b) => a + b, 0),
  embeddedChanges: data.changes.length,
  datasets: chart.data.datasets.map((d, i) => {
    const meta = chart.getDatasetMeta(i);
    const drawn = meta.data.filter(p => Number.isFinite(p.x) && Number.isFinite(p.y) && !p.skip
      && p.x >= area.left - 1 && p.x <= area.right + 1 && p.y >= area.top - 10 && p.y <= area.bottom + 1);
    return {label: d.label, points: d.data.length, elements: meta.data.length, drawn: drawn.length,
            visible: chart.isDatasetVisible(i)};
  }),
  overlays: chart.$autoscaler,
  canvas: [canvas.width, canvas.height],
};
"""


def test_the_chart_draws_the_stored_points_thresholds_and_plan_change_markers(browser, live_server, plans):
    from selenium.webdriver.common.action_chains import ActionChains

    now = timezone.now()
    instance, actions, stored = _queue_day(now)
    _login(browser, live_server)

    browser.get(live_server.url + reverse("admin:scaling_redisinstance_chart", args=[instance.pk]) + "?period=24h")
    _wait(browser, lambda b: b.execute_script("return document.getElementById('instance-chart').dataset.ready === 'true'"),
          "the chart to be drawn")
    state = browser.execute_script(CHART_STATE_JS)
    datasets = {d["label"]: d for d in state["datasets"]}

    # every stored sample of the day is in the chart's data, downsampled to 5-minute points
    assert state["embeddedSamples"] == stored == 24 * 60  # six of them failed reads
    points = state["embeddedPoints"]
    assert 288 <= points <= 289
    for label in ("memory % (avg)", "memory % (peak)", "connections % (avg)", "connections % (peak)"):
        assert datasets[label]["points"] == points, label
        assert datasets[label]["drawn"] == points, label  # each point has a place inside the plot
    # the failed reads are marked
    assert datasets["failed reads"]["drawn"] == 2  # six failed minutes fall into two 5-minute buckets
    # the thresholds and the four plan changes were drawn
    assert state["overlays"]["thresholdLines"] == 2
    assert state["embeddedChanges"] == len(actions) == 4
    assert datasets["plan changes"]["drawn"] == 4
    assert state["overlays"]["planLines"] == 4

    # the marker of the failed change tells its reason on hover
    failed = actions[2]
    position = browser.execute_script(
        """const chart = Chart.getChart(document.getElementById('instance-chart'));
           const i = chart.data.datasets.findIndex(d => d.label === 'plan changes');
           const p = chart.getDatasetMeta(i).data[arguments[0]];
           const r = chart.canvas.getBoundingClientRect();
           return [p.x - r.width / 2, p.y - r.height / 2];""",
        2,
    )
    canvas = browser.find_element("id", "instance-chart")
    ActionChains(browser).move_to_element_with_offset(canvas, int(position[0]), int(position[1]) + 2).perform()
    _wait(browser, lambda b: b.execute_script(
        "const t = Chart.getChart(document.getElementById('instance-chart')).tooltip;"
        "return t.opacity > 0 && t.body && t.body.length > 0;"), "the tooltip")
    tooltip = " ".join(browser.execute_script(
        "return Chart.getChart(document.getElementById('instance-chart')).tooltip.body.flatMap(b => b.lines);"))
    assert "#3 up: heroku-redis:premium-1 → heroku-redis:premium-2 (failed)" in tooltip
    assert "connections avg 76.1% above 75%" in tooltip and "422" in tooltip

    # the list under the chart names each change with its reason
    listed = browser.find_element("id", "period-changes").text
    for action in actions:
        assert action.reason[:40] in listed

    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "admin_chart.png"))
    assert (ARTIFACTS / "admin_chart.png").stat().st_size > 20_000
    assert failed.error in listed


def test_the_overview_in_the_browser(browser, live_server, plans):
    now = timezone.now()
    _queue_day(now)
    fleet = [
        # name, plan, max, memory %, connections %, extra fields
        ("billing-jobs", "premium-2", "premium-5", 44.8, 21.0, {}),
        ("cache-eu", "premium-3", "premium-3", 93.1, 12.0, {}),
        ("emails", "mini", "premium-2", 22.0, 35.0, {"scaling_enabled": False}),
        ("imports", "premium-1", "premium-4", 86.4, 40.5, {"dry_run": True}),
        ("search-index", "premium-4", "premium-5", 61.0, 58.0, {}),
        ("sessions", "premium-0", "premium-3", None, None, {"consecutive_failures": 7}),
        ("webhooks", "premium-0", "premium-3", 38.0, 91.0, {}),
        ("new-tenant", "mini", "premium-3", None, None, {}),
    ]
    for name, plan, top, mem, conn, extra in fleet:
        instance = make_instance(name=name, app_name=f"{name}-prod", plan=f"heroku-redis:{plan}",
                                 min_plan="heroku-redis:mini", max_plan=f"heroku-redis:{top}", **extra)
        if mem is not None:
            at = now - timedelta(seconds=40)
            MetricLog.objects.create(instance=instance, plan=instance.current_plan, slot=at, collected_at=at,
                                     used_memory=1, connected_clients=1, memory_pct=mem, connection_pct=conn)
    _login(browser, live_server)
    browser.get(live_server.url + reverse("admin:scaling_redisinstance_overview"))
    _wait(browser, lambda b: b.find_elements("id", "overview"), "the overview")
    rows = browser.find_elements("css selector", "#overview tbody tr")
    assert len(rows) == 9
    states = {row.get_attribute("data-instance"): row.get_attribute("data-state") for row in rows}
    assert states["cache-eu"] == "at max plan" and states["sessions"] == "unreachable" and states["webhooks"] == "breaching"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.set_window_size(1400, 820)
    browser.save_screenshot(str(ARTIFACTS / "admin_overview.png"))
    # the admin's index leads to it
    browser.get(live_server.url + reverse("admin:index"))
    link = browser.find_element("link text", "Overview of all instances")
    assert link.get_attribute("href").endswith(reverse("admin:scaling_redisinstance_overview"))
    browser.save_screenshot(str(ARTIFACTS / "admin_index.png"))


PEAK_STATE_JS = """
const chart = Chart.getChart(document.getElementById('instance-chart'));
const i = chart.data.datasets.findIndex(d => d.label === 'memory % (peak)');
const ys = chart.getDatasetMeta(i).data.filter(p => !p.skip).map(p => p.y);
return {breachDots: chart.$autoscaler.breachDots, highestPeakY: Math.min(...ys),
        y90: chart.scales.y.getPixelForValue(90), y40: chart.scales.y.getPixelForValue(40),
        period: document.querySelector('.periods .current').textContent.trim()};
"""


def test_one_breached_sample_is_drawn_at_its_height_at_every_period(browser, live_server, plans):
    now = timezone.now()
    instance = make_instance(name="one-spike", memory_threshold=80, connection_threshold=80, metric_rate=300)
    rows, spike_at = [], now - timedelta(hours=1)
    for k in range(7 * 288):  # a week of 5-minute samples at 40 %, one of them at 90 %
        at = now - timedelta(minutes=5 * k)
        memory = 90.0 if abs((at - spike_at).total_seconds()) < 150 else 40.0
        rows.append(MetricLog(instance=instance, plan=instance.current_plan, slot=at, collected_at=at, used_memory=1,
                              connected_clients=1, memory_pct=memory, connection_pct=10.0))
    MetricLog.objects.bulk_create(rows, batch_size=2000)
    _login(browser, live_server)
    url = live_server.url + reverse("admin:scaling_redisinstance_chart", args=[instance.pk])
    for query in ("", "?period=6h", "?period=7d", "?period=30d"):
        browser.get(url + query)
        _wait(browser, lambda b: b.execute_script(
            "return document.getElementById('instance-chart').dataset.ready === 'true'"), "the chart")
        state = browser.execute_script(PEAK_STATE_JS)
        assert state["breachDots"] == 1, (query, state)
        assert abs(state["highestPeakY"] - state["y90"]) < 1, (query, state)  # the peak line reaches 90 %
    assert state["period"] == "30 days"


LIST_EDGES_JS = """
const box = document.querySelector('#changelist .results');  // the admin's box that scrolls sideways
const right = title => [...document.querySelectorAll('#result_list thead th')]
  .find(th => th.textContent.trim().toLowerCase() === title).getBoundingClientRect().right;
return {columns: Object.fromEntries(arguments[0].map(title => [title, right(title)])),
        visible: box.getBoundingClientRect().right, table: box.scrollWidth, box: box.clientWidth,
        viewport: document.documentElement.clientWidth};
"""


def _fits_on_1400_px(browser, live_server, url, columns, screenshot):
    browser.set_window_size(1400, 900)
    browser.get(live_server.url + url)
    _wait(browser, lambda b: b.find_elements("css selector", "#result_list"), "the list")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / screenshot))
    edges = browser.execute_script(LIST_EDGES_JS, columns)
    assert all(right <= edges["visible"] for right in edges["columns"].values()), edges
    assert edges["table"] <= edges["box"] and edges["visible"] <= edges["viewport"], edges  # nothing hidden


def test_the_actions_and_samples_lists_show_every_column_on_a_1400_px_screen(browser, live_server, plans):
    now = timezone.now()
    instance = make_instance(name="orders-queue-with-a-long-name", plan="heroku-redis:premium-0")
    premium = RedisPlan.objects.get(plan_name="heroku-redis:premium-10")
    for k in range(30):
        ScalingAction.objects.create(
            instance=instance, instance_name=instance.name, created_at=now - timedelta(minutes=k),
            finished_at=now - timedelta(minutes=k) + timedelta(seconds=40), from_plan=instance.current_plan,
            to_plan=premium, direction="up", status=("succeeded", "failed", "dry-run")[k % 3],
            reason="memory avg 91.0% above 80% over the last 5 min (latest sample 93.2%, rising 4.1 points/min); "
                   "premium-10 keeps memory at 2% and connections at 1% " * 3,
            error="Heroku refused the change (422): plan not available in this region" if k % 3 == 1 else "",
        )
        at = now - timedelta(seconds=30 * k)
        failed = k % 5 == 0
        MetricLog.objects.create(
            instance=instance, plan=instance.current_plan, slot=at, collected_at=at,
            used_memory=None if failed else 123_456_789, connected_clients=None if failed else 1_234,
            memory_pct=None if failed else 45.2, connection_pct=None if failed else 30.0, evicted_keys=None if failed else 0,
            rejected_connections=None if failed else 0, ops_per_sec=None if failed else 12_345,
            error_kind="timeout" if failed else "",
            error="timed out reading INFO after 5 s from ec2-54-210-11-12.compute-1.amazonaws.com:24789" if failed else "")
    _login(browser, live_server)
    _fits_on_1400_px(browser, live_server, reverse("admin:logs_scalingaction_changelist"),
                     ["status", "reason"], "admin_actions.png")
    _fits_on_1400_px(browser, live_server, reverse("admin:logs_metriclog_changelist"),
                     ["collected", "memory", "clients", "evicted / rejected", "error"], "admin_samples.png")


def test_the_chart_shades_the_scheduled_windows(browser, live_server, plans):
    now = timezone.now()
    instance = make_instance(name="nightly-batch", schedules=["daily 02:00-03:00 UTC heroku-redis:premium-2"])
    MetricLog.objects.bulk_create([
        MetricLog(instance=instance, plan=instance.current_plan, slot=now - timedelta(minutes=5 * k),
                  collected_at=now - timedelta(minutes=5 * k), used_memory=1, connected_clients=1,
                  memory_pct=30.0, connection_pct=10.0)
        for k in range(7 * 288)
    ], batch_size=2000)
    _login(browser, live_server)
    browser.get(live_server.url + reverse("admin:scaling_redisinstance_chart", args=[instance.pk]) + "?period=7d")
    _wait(browser, lambda b: b.execute_script(
        "return document.getElementById('instance-chart').dataset.ready === 'true'"), "the chart")
    state = browser.execute_script(CHART_STATE_JS)
    assert state["overlays"]["scheduleBands"] in (7, 8)  # one window a day
    assert "daily 02:00-03:00 UTC heroku-redis:premium-2" in browser.find_element("id", "schedules").text
