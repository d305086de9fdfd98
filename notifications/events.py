"""The alert events (DESIGN section 9), by name: what a channel subscribes to and what a
webhook's `event` and `X-Autoscaler-Event` carry.

Adding an event is one line here (its name, the Notification kind that records it, a label);
the code that decides the alert passes that kind to `notification_send`.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    name: str
    kind: str  # Notification.kind: what de-duplicates repeats of one condition
    label: str
    # Not in DESIGN's list: offered to channels that subscribe to every event (the default),
    # not suggested to webhooks and Slack made from the environment.
    extra: bool = False


EVENTS = (
    Event("threshold.breached", "breach", "threshold breached"),
    Event("scaling.succeeded", "success", "scaling succeeded"),
    Event("scaling.failed", "failure", "scaling failed"),
    Event("scaling.cannot_scale_further", "cannot-scale", "cannot scale further"),
    Event("instance.unreachable", "unreachable", "instance unreachable"),
    Event("instance.recovered", "recovered", "instance recovered"),
    Event("plan.adopted", "plan-adopted", "plan changed outside the app"),
    Event("test", "test", "test alert"),
    Event("scaling.dry_run", "dry-run", "would scale (dry run)", extra=True),
    Event("instance.check_failed", "check-failed", "instance cannot be judged", extra=True),
    Event("summary.weekly", "weekly-summary", "weekly summary", extra=True),
    Event("heroku.account_failing", "account-failing", "Heroku account drained or refusing", extra=True),
)

BY_NAME = {event.name: event for event in EVENTS}
BY_KIND = {event.kind: event for event in EVENTS}
EVENT_CHOICES = [(event.name, event.name) for event in EVENTS]
KIND_CHOICES = [(event.kind, event.label) for event in EVENTS]
DESIGN_EVENTS = [event.name for event in EVENTS if not event.extra]


def event_of_kind(kind):
    return BY_KIND[kind].name
