"""The README's receiver example (section "Alert channels") verifies what the app signs."""

import re

import pytest
from django.utils import timezone

from notifications.channels import webhook_body, webhook_signature
from notifications.services import notification_send
from tests.factories import make_instance
from tests.helpers import ROOT

pytestmark = pytest.mark.django_db


def _readme_receiver():
    section = (ROOT / "README.md").read_text().split("## Alert channels", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"^```python\n(.*?)^```", section, re.M | re.S)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verified"]


def test_the_readme_receiver_accepts_a_signed_delivery_and_refuses_a_changed_one(plans, settings):
    verified = _readme_receiver()
    alert = notification_send(instance=make_instance(), kind="breach", fingerprint="breach:memory", now=timezone.now(),
                              subject="queue: memory over threshold", lines=[])
    body = webhook_body(alert=alert, delivery_id="6a1c0b7e-0000-4000-8000-000000000001")
    signature = webhook_signature(secret="receiver-secret", body=body)
    assert verified(body, signature, "receiver-secret")
    assert not verified(body.replace(b"queue", b"other"), signature, "receiver-secret")
    assert not verified(body, signature, "another-secret")
    assert not verified(body, "", "receiver-secret")
