"""Faults of our own processes: the PostgreSQL connection dropped during a cycle, the worker
killed between the PATCH and its confirmation, beat started twice, two workers checking
the same instance at once. Real PostgreSQL (connections dropped with pg_terminate_backend,
never the server itself: other people share it), real threads and a really killed process.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import psycopg2
import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.conf import settings
from django.db import Error as DatabaseError, connection
from django.utils import timezone

from autoscaler.celery import app as celery_app
from logs.models import MetricLog, ScalingAction
from notifications.models import Notification
from scaling import tasks
from scaling.heroku import HerokuClient
from scaling.models import RedisInstance
from scaling.services import checks
from scaling.services.checks import instance_check_scaling
from scaling.services.collection import samples_collect
from scaling.services.heroku_access import heroku_client
from tests.claims import wait_until_the_lock_is_gone
from tests.factories import make_instance
from tests.faults.support import (
    BUSY, CALM, Loop, assert_every_slot_sampled, assert_healthy, mails_about, patches, register, samples,
)
from tests.helpers import ADMIN_DSN, ROOT, alerts_delivered

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

UP = "heroku-redis:premium-1"


@pytest.fixture(autouse=True)
def _working_connection_at_teardown(transactional_db):
    yield
    connection.close()  # a test may leave it broken; the flush after the test needs a working one


def between_tasks():
    """What the Celery worker does before and after every task (celery.fixups.django): close
    the database connections, so that each task starts on a new one."""
    DjangoWorkerFixup(celery_app).close_database()


def drop_database_connections():
    """Every connection to the test database dropped from the server side, as a restart of
    PostgreSQL would (the server itself is shared and stays up)."""
    name = connection.settings_dict["NAME"]
    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", [name])
            assert cursor.fetchone()[0] >= 1
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name])
                if cursor.fetchone()[0] == 0:
                    return
                time.sleep(0.02)
    finally:
        admin.close()
    raise AssertionError("connections to the test database survived pg_terminate_backend")


def _pair(heroku, info_server, reader, **loop_options):
    faulty_redis = info_server(used_memory=BUSY)
    faulty = register(heroku, "faulty", faulty_redis.url)
    healthy = register(heroku, "healthy", info_server(used_memory=CALM).url)
    loop = Loop([faulty, healthy], reader, heroku=heroku, **loop_options)
    return SimpleNamespace(faulty=faulty, healthy=healthy, loop=loop, redis=faulty_redis)


def _plan(instance):
    return RedisInstance.objects.get(pk=instance.pk).current_plan.plan_name


def _assert_scaled_up_once(heroku, faulty):
    assert patches(heroku, faulty) == 1
    assert [a.status for a in ScalingAction.objects.filter(instance=faulty)] == ["succeeded"]
    assert _plan(faulty) == UP
    assert len(mails_about(faulty, "scaled up to premium-1")) == 1 and not mails_about(faulty, "failed")
    assert len(mails_about(faulty, "over threshold")) == 1


# --- PostgreSQL connections dropped -------------------------------------------------------


def test_postgres_connections_dropped_between_collection_and_check(plans, heroku, info_server, reader):
    """The worker opens a new connection for every task, so the check right after the drop
    runs normally: nothing lost, one PATCH."""
    scene = _pair(heroku, info_server, reader, between_tasks=between_tasks)
    scene.loop.run(90)
    scene.loop.step(before_checks=drop_database_connections)  # 2:00: sampled, dropped, checked
    scene.loop.run(3 * 60)

    assert scene.loop.outcome_names(scene.faulty)[:2] == ["stay", "succeeded"]
    _assert_scaled_up_once(heroku, scene.faulty)
    assert_every_slot_sampled(scene.loop, scene.faulty)
    assert_healthy(scene.loop, scene.healthy)


def test_postgres_connections_dropped_in_the_middle_of_a_check(plans, heroku, info_server, reader, monkeypatch):
    """Dropped after the check took its lease on the instance and before it decided: that
    check fails with a database error; the next one (a minute later, not CHECK_LEASE later)
    decides and scales up."""
    scene = _pair(heroku, info_server, reader, between_tasks=between_tasks)
    scene.loop.run(90)
    decide = checks.instance_decide

    def decide_after_a_drop(**kwargs):
        drop_database_connections()
        return decide(**kwargs)

    monkeypatch.setattr(checks, "instance_decide", decide_after_a_drop)
    scene.loop.now += timedelta(seconds=30)
    scene.loop.collect()
    between_tasks()
    with pytest.raises(DatabaseError):
        instance_check_scaling(instance_id=scene.faulty.pk, now=scene.loop.now)
    monkeypatch.setattr(checks, "instance_decide", decide)
    scene.loop.check(scene.healthy)
    scene.loop.run(60)

    assert scene.loop.outcome_names(scene.faulty) == ["stay", "succeeded"]
    assert RedisInstance.objects.get(pk=scene.faulty.pk).check_claimed_until is None
    _assert_scaled_up_once(heroku, scene.faulty)
    assert_every_slot_sampled(scene.loop, scene.faulty)
    assert_healthy(scene.loop, scene.healthy)


def test_postgres_connections_dropped_after_the_patch_was_sent(plans, heroku, info_server, reader, monkeypatch):
    """Dropped after Heroku accepted the PATCH, before the success was recorded: the pending
    row (written before the PATCH) is followed by the next check with a GET; no second PATCH."""
    scene = _pair(heroku, info_server, reader, between_tasks=between_tasks)
    scene.loop.run(90)
    client = heroku_client()
    change_plan = client.change_plan

    def change_plan_then_drop(**kwargs):
        addon = change_plan(**kwargs)
        drop_database_connections()
        return addon

    monkeypatch.setattr(client, "change_plan", change_plan_then_drop)
    scene.loop.now += timedelta(seconds=30)
    scene.loop.collect()
    between_tasks()
    with pytest.raises(DatabaseError):
        instance_check_scaling(instance_id=scene.faulty.pk, now=scene.loop.now)
    monkeypatch.setattr(client, "change_plan", change_plan)
    between_tasks()
    assert ScalingAction.objects.get(instance=scene.faulty).status == "pending"
    scene.loop.check(scene.healthy)
    scene.loop.run(60)

    assert scene.loop.outcome_names(scene.faulty) == ["stay", "succeeded"]
    assert heroku.count("GET", rf"^/apps/faulty-app/addons/{scene.faulty.addon['id']}$") >= 1
    _assert_scaled_up_once(heroku, scene.faulty)
    assert_every_slot_sampled(scene.loop, scene.faulty)
    assert_healthy(scene.loop, scene.healthy)


def test_postgres_connections_dropped_while_the_batch_is_being_read(plans, heroku, info_server, reader):
    """Dropped while the batch's INFO replies are awaited: the samples (the healthy
    neighbour's too) are stored over a new connection, not lost."""
    scene = _pair(heroku, info_server, reader, between_tasks=between_tasks)
    scene.loop.run(60)
    dropped = []

    def drop_once():
        if not dropped:
            drop_database_connections()
            dropped.append(True)

    scene.redis.on_info = drop_once
    scene.loop.step()
    scene.redis.on_info = None
    assert dropped
    scene.loop.run(3 * 60)

    assert_every_slot_sampled(scene.loop, scene.faulty)
    assert all(log.ok for log in samples(scene.faulty))
    _assert_scaled_up_once(heroku, scene.faulty)
    assert_healthy(scene.loop, scene.healthy)


# --- The worker killed between the PATCH and its confirmation ----------------------------


def test_worker_killed_right_after_its_patch_frees_the_instance_at_once(plans, served_heroku, info_server, reader,
                                                                        tmp_path):
    """A real `check_scaling` process is SIGKILLed while Heroku (which already applied the
    change) has not answered its PATCH. Its claim on the instance (an advisory lock on its
    own database connection) dies with it: the very next check follows the pending row it
    wrote before the PATCH with a GET and records the new plan. One PATCH in all."""
    redis = info_server(used_memory=BUSY)
    faulty = register(served_heroku, "faulty", redis.url)
    now = timezone.now().replace(microsecond=0)
    for seconds in (150, 120, 90, 60, 30, 0):
        at = now - timedelta(seconds=seconds)
        samples_collect(due=[(faulty.pk, at)], reader=reader, now_fn=lambda at=at: at)
    served_heroku.fail_next("PATCH", r"^/apps/faulty-app/", status="timeout", applied=True, delay=60)

    database = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="autoscaler.test_settings", HEROKU_API_URL=served_heroku.served_url,
        TEST_DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
    )
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen([sys.executable, "manage.py", "check_scaling", "faulty"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while served_heroku.count("PATCH") == 0 and worker.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert served_heroku.count("PATCH") == 1, (tmp_path / "worker.log").read_text()[-2000:]
            os.killpg(worker.pid, signal.SIGKILL)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    wait_until_the_lock_is_gone(faulty.pk)  # the dead worker's backend exits a moment after it

    pending = ScalingAction.objects.get(instance=faulty)
    assert pending.status == "pending" and pending.patch_sent_at is not None
    assert served_heroku.addons[faulty.addon["id"]]["plan"] == UP  # Heroku did change it
    client = HerokuClient(api_key=settings.HEROKU_API_KEY, base_url=served_heroku.served_url, sleep=lambda s: None)

    # The next check, one scaling interval later: the pending change is followed and completed.
    outcome = instance_check_scaling(instance_id=faulty.pk, now=now + timedelta(minutes=1), client=client)

    assert outcome.outcome == "succeeded", outcome
    assert served_heroku.count("PATCH") == 1
    pending.refresh_from_db()
    assert pending.status == "succeeded" and _plan(faulty) == UP
    assert pending.created_at < pending.patch_sent_at < pending.finished_at
    # The breach alert the killed worker decided is delivered too: it was committed before it died.
    assert sorted(m.subject.split("] ")[-1] for m in alerts_delivered()) == [
        "faulty: memory over threshold on premium-0", "faulty: scaled up to premium-1"]
    kinds = sorted(Notification.objects.filter(instance=faulty).values_list("kind", flat=True))
    assert kinds == ["breach", "success"]  # the breach by the killed worker, the success by the next


# --- Beat started twice -----------------------------------------------------------------


def _in_threads(*functions):
    """Run the functions at the same moment, each in its own thread (and database
    connection); returns their results, re-raises their errors."""
    barrier = threading.Barrier(len(functions))
    results, errors = [None] * len(functions), []

    def run(index, function):
        try:
            barrier.wait(5)
            results[index] = function()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return results


def test_beat_started_twice_enqueues_each_slot_once(plans, heroku, info_server, reader, monkeypatch):
    """Two beats fire the dispatcher at the same moment: every due slot is enqueued once, and
    even a batch delivered twice stores one sample per slot."""
    redis = info_server(used_memory=CALM)
    instances = [make_instance(name=f"queue-{n}", redis_url=redis.url, min_plan="heroku-redis:premium-0")
                 for n in range(30)]
    enqueued_samples, enqueued_checks = [], []
    monkeypatch.setattr(tasks.collect_samples, "apply_async", lambda args, expires: enqueued_samples.append(args[0]))
    monkeypatch.setattr(tasks.check_instance, "apply_async", lambda args, expires: enqueued_checks.append(tuple(args)))

    _in_threads(tasks.dispatch, tasks.dispatch)

    sampled = [pk for batch in enqueued_samples for pk, _ in batch]
    assert sorted(sampled) == sorted(i.pk for i in instances)
    assert sorted(pk for pk, _ in enqueued_checks) == sorted(i.pk for i in instances)
    _in_threads(tasks.dispatch, tasks.dispatch)  # the same tick again: nothing is due
    assert len(sampled) == sum(len(batch) for batch in enqueued_samples)

    for batch in enqueued_samples + enqueued_samples[:1]:  # the first batch delivered twice
        tasks.collect_samples(batch)
    assert MetricLog.objects.count() == len(instances)
    assert MetricLog.objects.exclude(error="").count() == 0
    for pk, slot in enqueued_checks:
        tasks.check_instance(pk, slot)
    assert heroku.calls == [] and alerts_delivered() == []


# --- Two workers checking the same instance ---------------------------------------------


def test_two_workers_check_the_same_instance_while_the_patch_is_in_flight(plans, heroku, info_server, reader,
                                                                         monkeypatch):
    """The first worker is inside its PATCH when the second checks the same instance: the
    second stands back. One PATCH, one breach mail, one success mail."""
    scene = _pair(heroku, info_server, reader)
    for _ in range(4):  # two minutes of samples, no check yet
        scene.loop.now += timedelta(seconds=30)
        scene.loop.collect()

    in_patch, second_done = threading.Event(), threading.Event()
    client = heroku_client()
    change_plan = client.change_plan

    def slow_change_plan(**kwargs):
        in_patch.set()
        second_done.wait(5)
        return change_plan(**kwargs)

    monkeypatch.setattr(client, "change_plan", slow_change_plan)
    now = scene.loop.now

    def first():
        return instance_check_scaling(instance_id=scene.faulty.pk, now=now)

    def second():
        in_patch.wait(5)
        try:
            return instance_check_scaling(instance_id=scene.faulty.pk, now=now)
        finally:
            second_done.set()

    outcomes = _in_threads(first, second)

    assert [o.outcome for o in outcomes] == ["succeeded", "busy"]
    assert patches(heroku, scene.faulty) == 1
    assert [a.status for a in ScalingAction.objects.filter(instance=scene.faulty)] == ["succeeded"]
    assert len(mails_about(scene.faulty, "scaled up")) == 1 and len(mails_about(scene.faulty, "over threshold")) == 1


def test_two_workers_check_the_same_instances_at_the_same_moment(plans, heroku, info_server, reader):
    """Three breaching instances, each checked by two workers at once: one PATCH each."""
    redis = info_server(used_memory=BUSY)
    instances = [register(heroku, f"queue-{n}", redis.url) for n in range(3)]
    loop = Loop(instances, reader, heroku=heroku)
    for _ in range(4):
        loop.now += timedelta(seconds=30)
        loop.collect()

    outcomes = _in_threads(*[
        (lambda pk=i.pk: instance_check_scaling(instance_id=pk, now=loop.now)) for i in instances for _ in range(2)
    ])

    for index, instance in enumerate(instances):
        pair = sorted(o.outcome for o in outcomes[2 * index: 2 * index + 2])
        assert pair in (["busy", "succeeded"], ["stay", "succeeded"]), pair
        assert patches(heroku, instance) == 1
        assert [a.status for a in ScalingAction.objects.filter(instance=instance)] == ["succeeded"]
        assert len(mails_about(instance, "scaled up")) == 1 and len(mails_about(instance, "over threshold")) == 1
    assert heroku.count("PATCH") == 3
