import pytest

from notifications import channels
from notifications.channels import alert_channels_sync
from standins.alert_receivers import SLOW_SECONDS, HTTPReceiver, SMTPReceiver

WEBHOOK_SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture
def smtp(settings):
    """A real SMTP server on localhost that the mail channel sends to."""
    receiver = SMTPReceiver().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", receiver.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    settings.EMAIL_TIMEOUT = 2
    settings.RECIPIENTS = ["ops@example.com", "oncall@example.com"]
    settings.EMAIL_PREFIX = "[autoscaler] "
    yield receiver
    receiver.stop()


@pytest.fixture
def fast_http(monkeypatch):
    """The channels' HTTP timeout under the receivers' slow answer."""
    monkeypatch.setattr(channels, "HTTP_TIMEOUT", (SLOW_SECONDS / 3, SLOW_SECONDS / 3))


@pytest.fixture
def webhook(settings, fast_http):
    """The operator's webhook, checking the signature (a bad one is answered 401)."""
    receiver = HTTPReceiver(secret=WEBHOOK_SECRET, path="/alerts/T0KEN-in-path").start()
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = receiver.url, WEBHOOK_SECRET
    yield receiver
    receiver.stop()


@pytest.fixture
def slack(settings, fast_http):
    """A Slack-shaped incoming webhook (its URL is the secret)."""
    receiver = HTTPReceiver(path="/services/T000/B000/slack-secret-token").start()
    settings.SLACK_WEBHOOK_URL = receiver.url
    yield receiver
    receiver.stop()


@pytest.fixture
def env_channels(db, webhook, slack):
    """The channels the environment makes at start-up (mail, slack, webhook)."""
    alert_channels_sync()
    return webhook, slack
