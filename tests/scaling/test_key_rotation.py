"""Key rotation of the stored Redis URLs, including away from the key derived from SECRET_KEY."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from scaling.crypto import DecryptionError
from scaling.models import RedisInstance
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def _urls():
    return {i.name: i.redis_url for i in RedisInstance.objects.order_by("name")}


def test_moving_from_the_derived_key_to_ones_own_keeps_every_url(plans, settings, capsys):
    settings.ENCRYPTION_KEYS = []  # the default: derived from SECRET_KEY
    make_instance(name="a", redis_url="redis://:pw-a@redis.example.com:1")
    make_instance(name="b", redis_url="redis://:pw-b@redis.example.com:2")
    own = Fernet.generate_key().decode()

    settings.ENCRYPTION_KEYS = [own, "derived"]
    call_command("rotate_encryption_key")
    settings.ENCRYPTION_KEYS = [own]

    assert _urls() == {"a": "redis://:pw-a@redis.example.com:1", "b": "redis://:pw-b@redis.example.com:2"}
    output = capsys.readouterr().out
    assert "2 Redis URLs re-encrypted" in output
    assert own not in output


def test_a_changed_secret_key_no_longer_reads_what_the_derived_key_wrote(plans, settings):
    settings.ENCRYPTION_KEYS = ["derived"]
    instance = make_instance(name="a", redis_url="redis://:pw-a@redis.example.com:1")
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40

    with pytest.raises(DecryptionError):
        RedisInstance.objects.get(pk=instance.pk).redis_url


def test_rotating_with_keys_that_cannot_read_the_stored_urls_is_one_line_and_changes_nothing(plans, settings):
    old = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    make_instance(name="readable", redis_url="redis://:pw-r@redis.example.com:1")
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    make_instance(name="other", redis_url="redis://:pw-o@redis.example.com:2")
    before = dict(RedisInstance.objects.values_list("name", "redis_url_encrypted"))
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]  # the second key is missing

    with pytest.raises(CommandError) as caught:
        call_command("rotate_encryption_key")

    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("1 of 2 stored Redis URLs cannot be decrypted with ENCRYPTION_KEYS (other)")
    assert "nothing was changed" in message
    assert dict(RedisInstance.objects.values_list("name", "redis_url_encrypted")) == before


def test_forget_unreadable_rotates_the_rest_and_leaves_the_unreadable_to_be_read_again_from_heroku(plans, settings, capsys):
    old = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    make_instance(name="readable", redis_url="redis://:pw-r@redis.example.com:1")
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    make_instance(name="lost", redis_url="redis://:pw-l@redis.example.com:2")
    new = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new, old]

    call_command("rotate_encryption_key", "--forget-unreadable")
    settings.ENCRYPTION_KEYS = [new]

    assert _urls() == {"lost": "", "readable": "redis://:pw-r@redis.example.com:1"}
    assert RedisInstance.objects.get(name="lost").resolved_at is None
    assert "cleared, to be read again from Heroku: lost" in capsys.readouterr().out


@pytest.mark.slow
def test_rotate_encryption_key_with_unreadable_urls_prints_one_line_and_exits_non_zero(plans, settings):
    """As an operator runs it: no traceback."""
    from tests.helpers import manage, production_env, scratch_database

    key = Fernet.generate_key().decode()
    with scratch_database() as url:
        env = production_env(DATABASE_URL=url, ENCRYPTION_KEYS=key)
        assert manage("migrate", "--noinput", env=env).returncode == 0
        assert manage("load_plans", env=env).returncode == 0
        script = ("from scaling.models import RedisInstance, RedisPlan; p = RedisPlan.objects.get(plan_name='heroku-redis:mini');"
                  "i = RedisInstance(name='x', app_name='a', config_var='REDIS_URL', current_plan=p, min_plan=p, max_plan=p);"
                  "i.redis_url = 'redis://:pw@h:1'; i.save()")
        created = manage("shell", "-c", script, env=env)
        assert created.returncode == 0, created.stderr
        result = manage("rotate_encryption_key", env={**env, "ENCRYPTION_KEYS": Fernet.generate_key().decode()})

    assert result.returncode == 1
    assert result.stderr.strip().startswith("CommandError: 1 of 1 stored Redis URLs cannot be decrypted")
    assert len(result.stderr.strip().splitlines()) == 1
