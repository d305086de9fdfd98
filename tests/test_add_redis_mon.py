"""add_redis_mon.py as a person and a script meet it: the real script in a process, against
the fake Heroku on a socket, a real redis-server and a scratch PostgreSQL database."""

import os
import select
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import psycopg2
import pytest

from tests.helpers import ROOT, manage, production_env, run, scratch_database
from standins.redis_servers import free_port, start_redis

pytestmark = pytest.mark.slow

REDIS_PASSWORD = "s3cret-Pa55w0rd-for-registration"
SECRET_KEY = "registration-test-secret-key-" + "x" * 40
SCRIPT = "add_redis_mon.py"


# --- Fixtures ----------------------------------------------------------------------------


def _env(database_url, fake, **overrides):
    settings = dict(DEBUG="true", SECRET_KEY=SECRET_KEY, DATABASE_URL=database_url,
                    HEROKU_API_URL=fake.served_url, HEROKU_API_KEY=fake.api_key, REDIS_CONNECT_TIMEOUT="2")
    return production_env(**{**settings, **overrides})


@pytest.fixture(scope="module")
def database():
    """A scratch database, migrated and with the bundled plans, for the whole module."""
    with scratch_database() as url:
        env = production_env(DEBUG="true", SECRET_KEY=SECRET_KEY, DATABASE_URL=url)
        for command in (["migrate", "--noinput"], ["load_plans"]):
            result = manage(*command, env=env)
            assert result.returncode == 0, result.stdout + result.stderr
        yield url


@pytest.fixture(autouse=True)
def empty_instances(database):
    with psycopg2.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE scaling_redisinstance, logs_metriclog, logs_scalingaction, "
                       "notifications_notification RESTART IDENTITY CASCADE")
    connection.close()


@pytest.fixture(scope="module")
def redis_server():
    server = start_redis(password=REDIS_PASSWORD)
    yield server
    server.close()


@pytest.fixture
def fake(served_heroku, redis_server):
    """App `shop` with a Heroku Redis on premium-0 (the real redis-server) and a non-Redis add-on."""
    served_heroku.add_redis_addon("shop", plan="heroku-redis:premium-0", config_var="REDIS_URL", url=redis_server.url)
    served_heroku.add_redis_addon("shop", service="papertrail", plan="papertrail:choklad",
                                  config_var="PAPERTRAIL_API_TOKEN", url="token-0123")
    return served_heroku


class Cli:
    def __init__(self, database, fake):
        self.database, self.fake = database, fake
        self.outputs = []

    def __call__(self, *args, stdin="", **env):
        result = run([sys.executable, SCRIPT, *args], env=_env(self.database, self.fake, **env), stdin=stdin, timeout=60)
        self.outputs.append(result.stdout + result.stderr)
        return result


@pytest.fixture
def cli(database, fake):
    runner = Cli(database, fake)
    yield runner
    for output in runner.outputs:  # never a secret, never a traceback, whatever the test did
        assert REDIS_PASSWORD not in output
        assert "secret00001pw" not in output and "secret00002pw" not in output
        assert fake.api_key not in output
        assert "Traceback" not in output, output


def query(database, sql, params=()):
    with psycopg2.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    connection.close()
    return rows


def instance(database, name):
    rows = query(database, """
        SELECT i.id, i.app_name, i.config_var, i.metric_rate, i.memory_threshold, i.connection_threshold,
               i.scaling_enabled, mn.plan_name, mx.plan_name, i.scaling_rate, i.notify_breach, i.notify_success,
               i.notify_failure, cur.plan_name, i.addon_id::text, i.addon_name, i.redis_url_encrypted,
               i.resolved_at, i.next_sample_at, i.next_check_at
        FROM scaling_redisinstance i
        JOIN scaling_redisplan mn ON mn.id = i.min_plan_id
        JOIN scaling_redisplan mx ON mx.id = i.max_plan_id
        JOIN scaling_redisplan cur ON cur.id = i.current_plan_id
        WHERE i.name = %s""", (name,))
    if not rows:
        return None
    keys = ("id app config_var metric_rate memory_threshold connection_threshold scaling_enabled min_plan max_plan "
            "scaling_rate notify_breach notify_success notify_failure current_plan addon_id addon_name "
            "redis_url_encrypted resolved_at next_sample_at next_check_at").split()
    return dict(zip(keys, rows[0]))


def instance_count(database):
    return query(database, "SELECT count(*) FROM scaling_redisinstance")[0][0]


def lines(*answers):
    return "".join(answer + "\n" for answer in answers)


def one_line(text):
    assert len(text.strip().splitlines()) == 1, text
    return text.strip()


REQUIRED = ("--name", "orders", "--app", "shop", "--config-var", "REDIS_URL")


# --- A person at the prompts -------------------------------------------------------------------


def test_a_piped_session_with_typos_corrected_saves_what_was_meant(cli, database, fake):
    before = datetime.now(timezone.utc)
    answers = lines(
        "bad name!", "orders",                     # name
        "nosuchapp", "Shop", "shop",               # app
        "redis_url", "PAPERTRAIL_API_TOKEN", "",   # config var: Enter takes the app's only Redis var
        "2m", "30s",                               # metric rate
        "150", "75%",                              # memory %
        "",                                        # connection %: default 80
        "maybe", "",                               # scaling enabled: default y
        "premium-99", "rediscloud:100", "private-7", "premium-3",  # min plan
        "premium-1", "heroku-redis:premium-5",     # max plan: below the min, then a full name
        "7m", "5m",                                # scaling rate
        "",                                        # no schedule
        "n", "", "",                               # notifications
        "", "",                                    # workload: the suggested queue; scale down: y
        "",                                        # Save? default y
    )
    result = cli(stdin=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # Every prompt shows its allowed values and default, in the original order.
    order = ["Name (letters, digits, - and _)", "Heroku app", "Redis config var (Redis vars of the app: REDIS_URL) [REDIS_URL]",
             "Metric rate (30s, 1m, 5m) [1m]", "Memory % to stay under (1-100; % of the plan's 50 MB now) [80]",
             "Connection % to stay under (1-100; % of the plan's 40 connections now) [80]",
             "Scaling enabled (y/n) [y]", "Min plan (name from the list) [mini]",
             "Max plan (name from the list, or 'highest'; premium-7 is $750.00/month) [premium-7]",
             "Scaling rate (1m, 5m, 10m) [1m]", "Mail on threshold breach (y/n) [y]", "Mail on scaling success (y/n) [y]",
             "Mail on scaling failure (y/n) [y]", "Save? (y/n) [y]"]
    positions = [out.index(prompt) for prompt in order]
    assert positions == sorted(positions)
    # Every mistake got a one-line reason and the question again.
    for reason in (
        "! use letters, digits, '-' and '_' only, not 'bad name!'",
        "! app 'nosuchapp' does not exist or the API key cannot see it",
        "! Heroku app names are lower-case letters, digits and '-', not 'Shop' (did you mean 'shop'?)",
        "! config var names are upper-case letters, digits and '_' (e.g. REDIS_URL), not 'redis_url' (did you mean 'REDIS_URL'?)",
        "! config var PAPERTRAIL_API_TOKEN belongs to add-on papertrail-fake-00002 of service papertrail, not a Redis add-on",
        "! must be one of 30s, 1m, 5m, not '2m'",
        "! must be a whole number from 1 to 100, not 150",
        "! answer y or n, not 'maybe'",
        "! unknown plan 'premium-99'; choose one of mini, premium-0,",
        "! 'rediscloud:100' is not a heroku-redis plan",
        "! heroku-redis:private-7 is a Private Spaces plan",
        "! premium-1 is below the min plan premium-3; choose premium-3 or above",
        "! must be one of 1m, 5m, 10m, not '7m'",
    ):
        assert reason in out, reason
    # The provider's plans, cheapest first, with memory, connections and price.
    assert "Plans of heroku-redis, cheapest first:" in out
    assert out.index("    mini ") < out.index("    premium-0 ") < out.index("    premium-14 ")
    assert "private-7" not in out.split("Plans of heroku-redis")[1].split("Min plan")[0]
    assert "50 MB         40 connections  $    15.00/month  <- current" in out
    # The summary: usage now against the plan, and what the thresholds mean there.
    assert "Reading INFO from the Redis at 127.0.0.1:" in out
    assert "In use now:" in out and "of 50 MB" in out and "of 40 connections" in out
    assert "Memory threshold:     75% = 37.5 MB on premium-0" in out
    assert "Connection threshold: 80% = 32 connections on premium-0" in out
    assert "the current plan is below the min plan: the first check will move it up to premium-3" in out
    assert "Saved: instance 'orders' registered." in out

    saved = instance(database, "orders")
    assert saved is not None and instance_count(database) == 1
    assert (saved["app"], saved["config_var"], saved["metric_rate"], saved["memory_threshold"],
            saved["connection_threshold"], saved["scaling_enabled"], saved["min_plan"], saved["max_plan"],
            saved["scaling_rate"], saved["notify_breach"], saved["notify_success"], saved["notify_failure"]) == (
        "shop", "REDIS_URL", 30, 75, 80, True, "heroku-redis:premium-3", "heroku-redis:premium-5", 300, False, True, True)
    addon = next(a for a in fake.addons.values() if a["config_vars"] == ["REDIS_URL"])
    assert (saved["current_plan"], saved["addon_id"], saved["addon_name"]) == ("heroku-redis:premium-0", addon["id"], addon["name"])
    assert saved["redis_url_encrypted"] and REDIS_PASSWORD not in saved["redis_url_encrypted"]
    # Schedules enabled at once: due now for the next dispatcher tick.
    assert before <= saved["resolved_at"] and before <= saved["next_sample_at"] <= datetime.now(timezone.utc)
    assert (saved["next_check_at"] - saved["next_sample_at"]).total_seconds() == 300


def test_the_first_sample_comes_at_the_next_dispatcher_tick(cli, database, fake):
    assert cli(*REQUIRED).returncode == 0
    collect = manage("shell", "-c", (
        "from django.utils import timezone; from scaling.services.dispatch import due_work_dispatch; "
        "from scaling.services.collection import samples_collect; done = []; "
        "r = due_work_dispatch(now=timezone.now(), enqueue_samples=lambda b: done.append(samples_collect(due=b)), "
        "enqueue_check=lambda i, s: None); "
        "print('due', r.samples); print('stored', done[0].stored, done[0].failed)"),
        env=_env(database, fake))
    assert collect.returncode == 0, collect.stderr
    assert "due 1" in collect.stdout and "stored 1 0" in collect.stdout
    ok = query(database, "SELECT count(*) FROM logs_metriclog WHERE error = '' AND used_memory > 0")[0][0]
    assert ok == 1


def test_a_taken_name_offers_to_edit_that_instance_with_its_values_as_defaults(cli, database):
    first = cli(*REQUIRED, "--memory-threshold", "70", "--metric-rate", "5m", "--min-plan", "premium-1",
                "--no-notify-success")
    assert first.returncode == 0, first.stderr
    original = instance(database, "orders")

    declined = cli(stdin=lines("orders", "n"))  # does not edit; the name is asked again, then input ends
    assert "instance 'orders' already exists (app shop, REDIS_URL, plan heroku-redis:premium-0)" in declined.stdout
    assert declined.stdout.count("  Name (letters, digits, - and _): ") == 2
    assert declined.returncode == 2
    assert one_line(declined.stderr) == ("add_redis_mon.py: --name is missing and standard input ended before it "
                                         "was answered; nothing saved")

    edited = cli(stdin=lines("orders", "y", "", "", "", "60", "", "", "", "", "", "", "", "", "n", "", "", "", "y"))
    assert edited.returncode == 0, edited.stdout + edited.stderr
    for default in ("Heroku app [shop]", "Redis config var (Redis vars of the app: REDIS_URL) [REDIS_URL]",
                    "Metric rate (30s, 1m, 5m) [5m]", "[70]", "Min plan (name from the list) [premium-1]",
                    "Mail on scaling success (y/n) [n]"):
        assert default in edited.stdout, default
    assert "Instance:             orders (edit of the registered instance)" in edited.stdout
    assert "Saved: instance 'orders' updated." in edited.stdout
    after = instance(database, "orders")
    assert instance_count(database) == 1 and after["id"] == original["id"]
    assert (after["memory_threshold"], after["metric_rate"], after["min_plan"], after["notify_success"],
            after["notify_failure"]) == (60, 300, "heroku-redis:premium-1", False, False)


def test_end_of_input_midway_saves_nothing_and_says_so_in_one_line(cli, database):
    result = cli(stdin=lines("orders", "shop", "", "1m"))
    assert result.returncode == 1
    assert one_line(result.stderr) == "add_redis_mon.py: input ended at the question 'Memory % to stay under'; nothing saved"
    assert instance_count(database) == 0


def test_ctrl_c_saves_nothing_and_prints_no_traceback(database, fake):
    process = subprocess.Popen([sys.executable, SCRIPT], cwd=ROOT, env=_env(database, fake), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write(lines("orders", "shop", "", "1m").encode())
        process.stdin.flush()
        seen, deadline = b"", time.monotonic() + 30
        while b"Memory % to stay under" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 1)
            if ready:
                seen += os.read(process.stdout.fileno(), 4096)
        assert b"Memory % to stay under" in seen, seen
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert one_line(stderr.decode()) == "add_redis_mon.py: interrupted; nothing saved"
    assert instance_count(database) == 0


# --- Redis that cannot be read -----------------------------------------------------------------


@pytest.fixture
def dead_redis(fake):
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}"
    fake.add_redis_addon("offline", plan="heroku-redis:premium-1", config_var="HEROKU_REDIS_BLANK_URL", url=url)
    return url


def test_unreachable_redis_says_why_and_stop_saves_nothing(cli, database, dead_redis):
    result = cli("--name", "cold", "--app", "offline", stdin=lines("HEROKU_REDIS_BLANK_URL", *[""] * 13, "n"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "In use now:" in result.stdout and "could not be read" in result.stdout
    assert "refused" in result.stdout
    assert "Save anyway? (y/n) [n]" in result.stdout
    assert one_line(result.stderr) == "add_redis_mon.py: stopped: Redis could not be read; nothing saved"
    assert instance_count(database) == 0


def test_unreachable_redis_can_be_saved_anyway(cli, database, dead_redis):
    result = cli("--name", "cold", "--app", "offline", stdin=lines("", *[""] * 13, "y"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Saved: instance 'cold' registered." in result.stdout
    assert instance(database, "cold")["current_plan"] == "heroku-redis:premium-1"


def test_flags_only_with_unreachable_redis_saves_and_warns(cli, database, dead_redis):
    result = cli("--name", "cold", "--app", "offline", "--config-var", "HEROKU_REDIS_BLANK_URL")
    assert result.returncode == 0, result.stdout + result.stderr
    assert one_line(result.stderr).startswith("add_redis_mon.py: warning: Redis at 127.0.0.1:")
    assert "saved anyway" in result.stderr
    assert instance(database, "cold") is not None


# --- A script with flags -----------------------------------------------------------------------


def test_flags_only_asks_nothing_prints_what_it_saved_and_exits_0(cli, database):
    result = cli(*REQUIRED, "--metric-rate", "30s", "--memory-threshold", "65", "--connection-threshold", "90",
                 "--no-scaling", "--min-plan", "heroku-redis:premium-0", "--max-plan", "premium-4",
                 "--scaling-rate", "10m", "--no-notify-breach", "--notify-success", "--no-notify-failure")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert "? (" not in result.stdout and "]: " not in result.stdout  # no question
    assert result.stdout.startswith("Saved: instance 'orders' registered.")
    assert "Memory threshold:     65% = 32.5 MB on premium-0" in result.stdout
    assert "Scaling:              disabled, between premium-0 and premium-4, checked every 10m" in result.stdout
    saved = instance(database, "orders")
    assert (saved["metric_rate"], saved["memory_threshold"], saved["connection_threshold"], saved["scaling_enabled"],
            saved["min_plan"], saved["max_plan"], saved["scaling_rate"], saved["notify_breach"],
            saved["notify_success"], saved["notify_failure"]) == (
        30, 65, 90, False, "heroku-redis:premium-0", "heroku-redis:premium-4", 600, False, True, False)
    assert saved["next_sample_at"] is not None


def test_flags_only_defaults_are_the_lowest_plan_and_the_cheapest_with_four_times_the_memory(cli, database):
    result = cli(*REQUIRED)
    assert result.returncode == 0, result.stdout + result.stderr
    saved = instance(database, "orders")
    # premium-0 has 50 MB: premium-2 (250 MB, $60) is the cheapest with at least 200 MB.
    assert (saved["metric_rate"], saved["memory_threshold"], saved["connection_threshold"], saved["scaling_enabled"],
            saved["min_plan"], saved["max_plan"], saved["scaling_rate"]) == (
        60, 80, 80, True, "heroku-redis:mini", "heroku-redis:premium-2", 60)
    assert ("Cost:                 $15.00/month now on premium-0, at most $60.00/month on premium-2 "
            "(the default max plan: the cheapest with 4x the memory; 'highest' is premium-14, "
            "$12,000.00/month)") in result.stdout


def test_max_plan_highest_is_the_providers_highest_plan(cli, database):
    result = cli(*REQUIRED, "--max-plan", "highest")
    assert result.returncode == 0, result.stdout + result.stderr
    assert instance(database, "orders")["max_plan"] == "heroku-redis:premium-14"
    assert "at most $12,000.00/month on premium-14" in result.stdout


def test_the_max_plan_prompt_and_the_summary_show_the_default_and_its_monthly_price(cli, database):
    answers = lines("orders", "shop", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "")
    result = cli(stdin=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Max plan (name from the list, or 'highest'; premium-2 is $60.00/month) [premium-2]: " in out
    summary = out.index("Summary")
    assert out.index("Cost:                 $15.00/month now on premium-0, at most $60.00/month on premium-2",
                     summary) < out.index("Save? (y/n) [y]")
    assert instance(database, "orders")["max_plan"] == "heroku-redis:premium-2"


def test_highest_at_the_max_plan_prompt_takes_the_providers_highest_plan(cli, database):
    answers = lines("orders", "shop", "", "", "", "", "", "", "Highest", "", "", "", "", "", "", "", "")
    result = cli(stdin=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert instance(database, "orders")["max_plan"] == "heroku-redis:premium-14"


def test_a_min_plan_above_the_default_bound_moves_the_default_max_plan_to_four_times_the_min(cli, database):
    result = cli(*REQUIRED, "--min-plan", "premium-3")
    assert result.returncode == 0, result.stdout + result.stderr
    # premium-3 has 500 MB: premium-7 (7,168 MB) is the cheapest with at least 2,000 MB.
    assert instance(database, "orders")["max_plan"] == "heroku-redis:premium-7"


def test_a_script_registers_many_instances_with_flags_alone(cli, database, fake, redis_server):
    for n in range(5):
        fake.add_redis_addon(f"app-{n}", plan="heroku-redis:mini", config_var="REDIS_URL", url=redis_server.url)
        result = cli("--name", f"cache-{n}", "--app", f"app-{n}", "--config-var", "REDIS_URL")
        assert result.returncode == 0, result.stderr
    assert instance_count(database) == 5


def test_flags_only_with_a_taken_name_needs_yes_to_update(cli, database):
    assert cli(*REQUIRED).returncode == 0
    refused = cli(*REQUIRED, "--memory-threshold", "50")
    assert refused.returncode == 2
    assert one_line(refused.stderr).startswith("add_redis_mon.py: --name: instance 'orders' already exists")
    assert instance(database, "orders")["memory_threshold"] == 80
    updated = cli(*REQUIRED, "--memory-threshold", "50", "--yes")
    assert updated.returncode == 0, updated.stderr
    assert "Saved: instance 'orders' updated." in updated.stdout
    assert instance(database, "orders")["memory_threshold"] == 50 and instance_count(database) == 1


def test_a_second_name_for_the_same_add_on_is_refused(cli, database):
    assert cli(*REQUIRED).returncode == 0
    result = cli("--name", "again", "--app", "shop", "--config-var", "REDIS_URL")
    assert result.returncode == 2
    assert "is already registered as instance 'orders'" in one_line(result.stderr)
    assert instance_count(database) == 1


@pytest.mark.parametrize("flags, message", [
    (("--memory-threshold", "150"), "--memory-threshold: must be a whole number from 1 to 100, not 150"),
    (("--memory-threshold", "high"), "--memory-threshold: must be a whole number from 1 to 100, not 'high'"),
    (("--connection-threshold", "0"), "--connection-threshold: must be a whole number from 1 to 100, not 0"),
    (("--metric-rate", "2m"), "--metric-rate: must be one of 30s, 1m, 5m, not '2m'"),
    (("--scaling-rate", "30s"), "--scaling-rate: must be one of 1m, 5m, 10m, not '30s'"),
    (("--name", "bad name"), "--name: use letters, digits, '-' and '_' only, not 'bad name'"),
    (("--app", "Shop"), "--app: Heroku app names are lower-case letters, digits and '-', not 'Shop'"),
    (("--app", "nosuchapp"), "--app: app 'nosuchapp' does not exist or the API key cannot see it"),
    (("--config-var", "redis_url"), "--config-var: config var names are upper-case letters"),
    (("--config-var", "MISSING_URL"), "--config-var: config var MISSING_URL of app 'shop' is not set by any add-on; "
                                      "its Redis config vars are REDIS_URL"),
    (("--config-var", "PAPERTRAIL_API_TOKEN"), "--config-var: config var PAPERTRAIL_API_TOKEN belongs to add-on "
                                               "papertrail-fake-00002 of service papertrail, not a Redis add-on"),
    (("--min-plan", "premium-99"), "--min-plan: unknown plan 'premium-99'; choose one of mini, premium-0"),
    (("--max-plan", "rediscloud:100"), "--max-plan: 'rediscloud:100' is not a heroku-redis plan"),
    (("--min-plan", "private-7"), "--min-plan: heroku-redis:private-7 is a Private Spaces plan"),
    (("--min-plan", "premium-5", "--max-plan", "premium-1"), "--max-plan: premium-1 is below --min-plan premium-5"),
    (("--max-plan", "mini", "--min-plan", "premium-0"), "--max-plan: mini is below --min-plan premium-0"),
    (("--bogus",), "unrecognized arguments: --bogus"),
    (("--metric-rate",), "--metric-rate: expected one argument"),
    (("--scaling=maybe",), "--scaling: ignored explicit argument 'maybe'"),
    (("--delete-records",), "--delete-records: only goes with --remove"),
])
def test_an_invalid_flag_exits_2_with_one_line_naming_it_and_saves_nothing(cli, database, flags, message):
    args = list(REQUIRED)
    for flag in ("--name", "--app", "--config-var"):
        if flag in flags:  # the parametrized value replaces the valid one
            index = args.index(flag)
            del args[index:index + 2]
    result = cli(*args, *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert one_line(result.stderr).startswith("add_redis_mon.py: " + message), result.stderr
    assert result.stdout == ""
    assert instance_count(database) == 0


def test_answering_back_at_the_max_plan_asks_the_min_plan_again(cli, database):
    answers = lines("orders", "shop", "", "", "", "", "", "premium-9", "premium-1", "back", "premium-0", "premium-1",
                    "", "", "", "", "", "", "", "")
    result = cli(stdin=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "! premium-1 is below the min plan premium-9; choose premium-9 or above, or 'back' to change the min plan" \
        in result.stdout
    assert "Min plan (name from the list) [premium-9]: premium-0" in result.stdout
    saved = instance(database, "orders")
    assert (saved["min_plan"], saved["max_plan"]) == ("heroku-redis:premium-0", "heroku-redis:premium-1")


@pytest.mark.parametrize("key, message", [
    ("", "add_redis_mon.py: HEROKU_API_KEY is not set: set it to an API key that can see the app"),
    ("wrong-key-0123456789", "add_redis_mon.py: Heroku refused the API key (HEROKU_API_KEY): 401 unauthorized: "
                             "Invalid credentials provided; nothing saved"),
])
def test_a_missing_or_refused_api_key_stops_at_once_with_one_line(cli, database, key, message):
    for args, stdin in ((REQUIRED, ""), ((), lines("orders", "shop"))):
        result = cli(*args, stdin=stdin, HEROKU_API_KEY=key)
        assert result.returncode == 1, result.stdout + result.stderr
        assert one_line(result.stderr).startswith(message)
        assert "wrong-key" not in result.stdout + result.stderr
    assert instance_count(database) == 0


def test_heroku_unavailable_is_not_blamed_on_the_flag(cli, database, fake):
    fake.fail_next("GET", r"^/apps/shop/addons$", status=503, times=4)
    result = cli(*REQUIRED)
    assert result.returncode == 1, result.stdout + result.stderr
    assert one_line(result.stderr).startswith("add_redis_mon.py: cannot list the add-ons of app 'shop': Heroku GET")
    assert instance_count(database) == 0


def test_heroku_unavailable_at_a_prompt_says_to_try_again(cli, database, fake):
    fake.fail_next("GET", r"^/apps/shop/addons$", status=503, times=4)
    result = cli(stdin=lines("orders", "shop", "shop", "", *[""] * 14))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "503" in result.stdout and "; Heroku may answer if you try again" in result.stdout
    assert instance(database, "orders") is not None


def test_a_missing_required_flag_with_no_input_names_the_flag(cli, database):
    result = cli("--name", "orders", "--app", "shop")
    assert result.returncode == 2
    assert one_line(result.stderr) == ("add_redis_mon.py: --config-var is missing and standard input ended before "
                                       "it was answered; nothing saved")
    assert instance_count(database) == 0


# --- List and remove ---------------------------------------------------------------------------


def test_list_prints_the_registered_instances_as_a_table(cli, fake, redis_server):
    empty = cli("--list")
    assert empty.returncode == 0 and "No instances registered." in empty.stdout
    fake.add_redis_addon("shop-2", plan="heroku-redis:mini", config_var="HEROKU_REDIS_BLANK_URL", url=redis_server.url)
    assert cli(*REQUIRED, "--min-plan", "premium-0", "--max-plan", "premium-3").returncode == 0
    assert cli("--name", "blank", "--app", "shop-2", "--config-var", "HEROKU_REDIS_BLANK_URL", "--no-scaling",
               "--no-notify-breach").returncode == 0
    result = cli("--list")
    assert result.returncode == 0, result.stderr
    table = result.stdout.splitlines()
    assert table[0].split() == ["NAME", "APP", "CONFIG", "VAR", "PLAN", "MIN..MAX", "SAMPLE", "MEM%", "CONN%",
                                "SCALING", "MAIL", "NEXT", "SAMPLE"]
    assert table[1].split()[:10] == ["blank", "shop-2", "HEROKU_REDIS_BLANK_URL", "heroku-redis:mini",
                                     "mini..premium-1", "1m", "80", "80", "off", "-sf"]
    assert table[2].split()[:11] == ["orders", "shop", "REDIS_URL", "heroku-redis:premium-0", "premium-0..premium-3",
                                     "1m", "80", "80", "every", "1m", "bsf"]
    assert table[3].startswith("2 instances (MAIL: b on threshold breach, s on scaling success, f on scaling failure")
    assert one_line(cli("--list", "--name", "x").stderr) == "add_redis_mon.py: --list: cannot be combined with --name"


def _with_a_sample(cli, database, fake):
    assert cli(*REQUIRED).returncode == 0
    sample = manage("collect_metrics", "orders", env=_env(database, fake))
    assert sample.returncode == 0, sample.stderr
    assert query(database, "SELECT count(*) FROM logs_metriclog")[0][0] == 1


def test_remove_asks_and_keeps_the_records_when_told(cli, database, fake):
    _with_a_sample(cli, database, fake)
    declined = cli("--remove", "orders", stdin=lines("n"))
    assert declined.returncode == 1 and one_line(declined.stderr) == "add_redis_mon.py: not removed"
    assert instance_count(database) == 1

    result = cli("--remove", "orders", stdin=lines("y", "y"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Remove 'orders'? (y/n) [n]" in result.stdout
    assert "Keep its records (they stay, without the instance)? (y/n) [y]" in result.stdout
    assert "Removed instance 'orders'; its 1 samples, 0 scaling actions and 0 notifications were kept." in result.stdout
    assert instance_count(database) == 0
    assert query(database, "SELECT count(*), count(instance_id) FROM logs_metriclog")[0] == (1, 0)


def test_remove_with_flags_deletes_the_records_without_asking(cli, database, fake):
    _with_a_sample(cli, database, fake)
    result = cli("--remove", "orders", "--yes", "--delete-records")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "were deleted" in result.stdout
    assert instance_count(database) == 0
    assert query(database, "SELECT count(*) FROM logs_metriclog")[0][0] == 0


def test_remove_of_an_unknown_name_exits_2(cli, database):
    assert cli(*REQUIRED).returncode == 0
    result = cli("--remove", "nosuch", "--yes")
    assert result.returncode == 2
    assert one_line(result.stderr) == "add_redis_mon.py: --remove: no instance named 'nosuch'; registered: orders"
    assert instance_count(database) == 1


def test_remove_with_end_of_input_removes_nothing(cli, database):
    assert cli(*REQUIRED).returncode == 0
    result = cli("--remove", "orders")
    assert result.returncode == 1
    assert one_line(result.stderr) == "add_redis_mon.py: standard input ended before the answer; nothing removed"
    assert instance_count(database) == 1


def test_help_lists_every_flag_of_design_section_3(cli):
    result = cli("--help")
    assert result.returncode == 0
    for flag in ("--name", "--app", "--config-var", "--metric-rate {30s,1m,5m}", "--memory-threshold PCT",
                 "--connection-threshold PCT", "--scaling, --no-scaling", "--min-plan", "--max-plan",
                 "--scaling-rate {1m,5m,10m}", "--notify-breach, --no-notify-breach",
                 "--notify-success, --no-notify-success", "--notify-failure, --no-notify-failure", "--list",
                 "--remove NAME", "--keep-records", "--delete-records", "--yes"):
        assert flag in result.stdout, flag


# --- Workload and scale-in protection (DESIGN section 9) ----------------------------------------


def workload_of(database, name):
    return query(database, "SELECT workload, min_hit_rate, scale_down_enabled, maxmemory_policy "
                           "FROM scaling_redisinstance WHERE name = %s", (name,))[0]


def test_the_workload_is_suggested_from_the_eviction_policy_and_says_why(cli, database, redis_server):
    with redis_server.client() as admin:
        admin.config_set("maxmemory-policy", "allkeys-lru")
    try:
        result = cli(stdin=lines("orders", "shop", *[""] * 12, "", "95", "", ""))
    finally:
        with redis_server.client() as admin:
            admin.config_set("maxmemory-policy", "noeviction")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "suggested: cache, because maxmemory-policy is allkeys-lru: a full Redis evicts keys" in result.stdout
    assert "Workload (queue or cache) [cache]: " in result.stdout
    assert "Min hit rate % of a cache (1-100) [90]: 95" in result.stdout
    assert workload_of(database, "orders") == ("cache", 95, True, "allkeys-lru")


def test_flags_only_take_the_suggested_queue_of_a_noeviction_redis(cli, database):
    result = cli(*REQUIRED)
    assert result.returncode == 0, result.stderr
    assert "Workload:" in result.stdout and "queue: every eviction" in result.stdout
    assert workload_of(database, "orders") == ("queue", 90, True, "noeviction")


def test_workload_min_hit_rate_and_no_scale_down_flags_are_saved_and_a_disagreement_is_noted(cli, database):
    result = cli(*REQUIRED, "--workload", "cache", "--min-hit-rate", "80", "--no-scale-down")
    assert result.returncode == 0, result.stderr
    assert "Scale down:" in result.stdout and "no: scale-in protection, the plan only ever moves up" in result.stdout
    assert "the workload is cache, but maxmemory-policy is noeviction" in result.stdout
    assert workload_of(database, "orders") == ("cache", 80, False, "noeviction")


@pytest.mark.parametrize("flags, message", [
    (("--workload", "db"), "add_redis_mon.py: --workload: must be queue or cache, not 'db'"),
    (("--min-hit-rate", "0"), "add_redis_mon.py: --min-hit-rate: must be a whole number from 1 to 100, not 0"),
])
def test_a_bad_workload_flag_is_one_line_exit_2_and_nothing_saved(cli, database, flags, message):
    result = cli(*REQUIRED, *flags)
    assert result.returncode == 2
    assert one_line(result.stderr) == message
    assert instance_count(database) == 0
