from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from scaling.models import RedisInstance, RedisPlan
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def _violates(callable_):
    with pytest.raises(IntegrityError), transaction.atomic():
        callable_()


@pytest.mark.parametrize("field", ["memory_threshold", "connection_threshold"])
@pytest.mark.parametrize("value", [0, 101])
def test_a_threshold_outside_1_to_100_is_refused_by_the_database(plans, field, value):
    _violates(lambda: make_instance(**{field: value}))


@pytest.mark.parametrize("value", [1, 100])
def test_thresholds_at_the_bounds_are_accepted(plans, value):
    instance = make_instance(memory_threshold=value, connection_threshold=value)
    assert instance.pk


def test_a_min_plan_above_the_max_plan_is_refused_by_the_database(plans):
    _violates(lambda: make_instance(min_plan="heroku-redis:premium-5", max_plan="heroku-redis:premium-0"))


def test_plans_of_two_providers_on_one_instance_are_refused_by_the_database(plans):
    _violates(lambda: make_instance(max_plan="rediscloud:1000"))


def test_changing_an_instance_to_another_providers_plan_is_refused_by_the_database(plans):
    instance = make_instance()
    _violates(lambda: RedisInstance.objects.filter(pk=instance.pk).update(current_plan=plans["rediscloud:100"]))


def test_the_model_validation_explains_a_min_plan_above_the_max_plan(plans):
    instance = RedisInstance(
        name="x", app_name="a", config_var="REDIS_URL", current_plan=plans["heroku-redis:premium-0"],
        min_plan=plans["heroku-redis:premium-5"], max_plan=plans["heroku-redis:premium-0"],
    )
    with pytest.raises(ValidationError, match="above the max plan"):
        instance.full_clean()


def test_an_instance_name_with_spaces_is_refused_by_the_database(plans):
    _violates(lambda: make_instance(name="my queue"))


def test_an_unknown_metric_rate_is_refused_by_the_database(plans):
    _violates(lambda: make_instance(metric_rate=45))


def test_a_plan_name_must_start_with_its_service(db):
    _violates(lambda: RedisPlan.objects.create(service_name="heroku-redis", plan_name="rediscloud:30", mem_limit=30, conn_limit=30, cost=Decimal(0)))


@pytest.mark.parametrize("conn_limit", [0, -2])
def test_a_plan_connection_limit_is_positive_or_minus_one(db, conn_limit):
    _violates(lambda: RedisPlan.objects.create(service_name="x", plan_name="x:1", mem_limit=30, conn_limit=conn_limit, cost=Decimal(0)))


def test_the_redis_url_is_stored_encrypted_and_read_back(plans):
    instance = make_instance(redis_url="redis://h:s3cretpass@redis.example.com:6379")
    stored = RedisInstance.objects.values_list("redis_url_encrypted", flat=True).get(pk=instance.pk)
    assert "s3cretpass" not in stored
    assert RedisInstance.objects.get(pk=instance.pk).redis_url == "redis://h:s3cretpass@redis.example.com:6379"
    assert "s3cretpass" not in repr(instance)


def test_rotating_the_encryption_key_keeps_every_url_readable(plans, settings, capsys):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    instance = make_instance(redis_url="redis://u:pw-rotate@h:1")
    settings.ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_key")
    settings.ENCRYPTION_KEYS = [new]
    assert RedisInstance.objects.get(pk=instance.pk).redis_url == "redis://u:pw-rotate@h:1"
    assert "1 Redis URLs re-encrypted" in capsys.readouterr().out
