"""Small builders for test rows (no factory library: a few explicit functions read better)."""

from scaling.models import RedisInstance, RedisPlan


def make_instance(*, name="queue", plan="heroku-redis:premium-0", min_plan="heroku-redis:mini",
                  max_plan="heroku-redis:premium-5", redis_url="", **fields):
    plans = {p.plan_name: p for p in RedisPlan.objects.filter(plan_name__in=[plan, min_plan, max_plan])}
    instance = RedisInstance(
        name=name,
        app_name=fields.pop("app_name", f"{name}-app"),
        config_var=fields.pop("config_var", "REDIS_URL"),
        current_plan=plans[plan],
        min_plan=plans[min_plan],
        max_plan=plans[max_plan],
        **fields,
    )
    instance.redis_url = redis_url
    instance.save()
    return instance
