"""Secrets never leave: not in logs, mails, stored errors, reprs or exception texts."""

import io
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from autoscaler.redaction import RedactSecretsFilter, redact
from logs.models import MetricLog, ScalingAction
from notifications.models import Notification
from scaling.heroku import client_from_settings
from scaling.metrics import RedisMetricsReader
from scaling.models import RedisInstance
from scaling.services.checks import instance_check_scaling
from scaling.services.collection import samples_collect
from scaling.services.instances import addon_resolve
from tests.factories import make_instance
from tests.helpers import alerts_delivered

API_KEY = "test-api-key-0123456789"


def test_the_log_filter_masks_url_passwords_and_configured_secrets_in_messages_and_tracebacks(settings):
    settings.EMAIL_HOST_PASSWORD = "smtp-password-xyz"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.secrets")
    logger.addHandler(handler)
    try:
        logger.error("connecting to %s", "rediss://default:pw-in-url-123@host:6380")
        try:
            raise RuntimeError(f"bad key {API_KEY} and smtp-password-xyz")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "pw-in-url-123" not in output and API_KEY not in output and "smtp-password-xyz" not in output
    assert "rediss://default:***@host:6380" in output
    assert "RuntimeError" in output  # the traceback is kept, redacted


def test_redact_leaves_ordinary_text_alone():
    assert redact("memory at 91% of premium-0") == "memory at 91% of premium-0"


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_troubled_cycle_logs_mails_and_stores_no_secret(plans, heroku, redis_server_factory, caplog, settings):
    caplog.set_level(logging.DEBUG)
    settings.EMAIL_HOST_PASSWORD = "smtp-password-xyz"
    server = redis_server_factory(password="redis-pw-first")
    addon = heroku.add_redis_addon("shop", url=server.url)
    resolved = addon_resolve(app_name="shop", config_var="REDIS_URL")
    instance = make_instance(name="shop", app_name="shop", redis_url=resolved.redis_url, addon_id=addon["id"])
    RedisInstance.objects.filter(pk=instance.pk).update(resolved_at=timezone.now() - timedelta(hours=1))
    # The password changes and Heroku does not know the new one: auth failures, refreshes,
    # unreachable mails; then Heroku fails a PATCH.
    server.set_password("redis-pw-second")
    with server.client() as admin:
        admin.client_kill_filter(_type="normal", skipme=True)
    heroku.fail_next("GET", r"/config-vars", status=500, times=4)
    now = timezone.now()
    with RedisMetricsReader(connect_timeout=1, read_timeout=1) as reader:
        for step in range(5):
            samples_collect(due=[(instance.pk, now + timedelta(seconds=30 * step))], reader=reader,
                            now_fn=lambda step=step: now + timedelta(seconds=30 * step))
    instance_check_scaling(instance_id=instance.pk, now=now + timedelta(minutes=3))

    texts = [caplog.text]
    texts += [f"{m.subject}\n{m.body}" for m in alerts_delivered()]
    texts += [f"{n.subject}\n{n.body}\n{n.error}" for n in Notification.objects.all()]
    texts += list(MetricLog.objects.values_list("error", flat=True))
    texts += list(ScalingAction.objects.values_list("error", flat=True))
    texts += [repr(RedisInstance.objects.get(pk=instance.pk)), repr(resolved), repr(client_from_settings())]
    everything = "\n".join(texts)
    assert any("unreachable" in m.subject for m in alerts_delivered())  # the cycle did go wrong
    for secret in ("redis-pw-first", "redis-pw-second", API_KEY, "smtp-password-xyz"):
        assert secret not in everything, secret
