"""The beat schedule, kept in the database by django-celery-beat."""

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

# name -> (task, every, period). The dispatcher's tick bounds how late a due sample can start.
PERIODIC_TASKS = {
    "autoscaler: dispatch due samples and checks": ("scaling.dispatch", 10, IntervalSchedule.SECONDS),
    "autoscaler: reconcile add-ons with Heroku": ("scaling.reconcile_addons", 60, IntervalSchedule.MINUTES),
    # Alert deliveries waiting for a retry, or left by a worker that died (notifications/relay.py).
    "autoscaler: deliver alerts due": ("notifications.sweep_deliveries", 30, IntervalSchedule.SECONDS),
    "autoscaler: prune old samples": ("logs.prune_metrics", 1, IntervalSchedule.HOURS),
    # Mails only with WEEKLY_SUMMARY=true, once per week (the week is claimed).
    "autoscaler: weekly summary": ("operations.weekly_summary", 1, IntervalSchedule.HOURS),
    # Plan prices from Heroku (load_plans --from-heroku); does nothing without a Heroku key.
    "autoscaler: refresh plan prices from Heroku": ("scaling.refresh_plan_prices", 1, IntervalSchedule.DAYS),
}


@dataclass(frozen=True)
class PeriodicSetupResult:
    created: list
    kept: list


@transaction.atomic
def periodic_tasks_setup():
    """Create the periodic tasks that are missing; leave existing ones as an operator set them."""
    created, kept = [], []
    for name, (task, every, period) in PERIODIC_TASKS.items():
        if PeriodicTask.objects.filter(name=name).exists():
            kept.append(name)
            continue
        schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.create(name=name, task=task, interval=schedule)
        created.append(name)
    return PeriodicSetupResult(created=created, kept=kept)
