"""Plans changed outside the app are noticed and adopted, not fought (DESIGN section 7).

Adopting a plan is a plan change like the app's own: `plan_changed_at` restarts the
stabilisation clock, so the engine judges the new plan on its own samples. A plan set above
the instance's max plan comes back into the range only by the engine's down rules (a whole
stabilisation window, the down margin), never at once; one below the min plan is raised at
the next check (more capacity is always safe). Either way the operator is told (plan.adopted).
"""

import logging

from django.db import transaction

from logs.models import ScalingAction
from notifications.services import plan_adopted_notify
from scaling.models import RedisInstance
from scaling.services.engine_input import plan_range_position

logger = logging.getLogger(__name__)


def plan_adopt_if_changed(*, instance, plan, now, found_by):
    """Make `plan` the instance's current plan if it differs, and record that we did.

    Skipped while one of our own plan changes is in flight: the scaling check follows that
    one and would otherwise be overtaken by a read that raced it. Returns True if adopted.
    """
    return _adopt(instance=instance, plan=plan, now=now, found_by=found_by)


@transaction.atomic
def _adopt(*, instance, plan, now, found_by):
    if plan.pk == instance.current_plan_id:
        return False
    if ScalingAction.objects.filter(instance=instance, status=ScalingAction.Status.PENDING).exists():
        return False
    old_plan = instance.current_plan
    # Compare-and-set: only the first of two racing readers adopts.
    changed = RedisInstance.objects.filter(pk=instance.pk, current_plan=old_plan).update(
        current_plan=plan, plan_changed_at=now
    )
    if not changed:
        return False
    direction = ScalingAction.Direction.UP if plan.rank > old_plan.rank else ScalingAction.Direction.DOWN
    ScalingAction.record_adoption(
        instance=instance, at=now, from_plan=old_plan, to_plan=plan, direction=direction,
        reason=f"plan changed outside the app from {old_plan.plan_name} to {plan.plan_name} "
        f"(found by {found_by}); adopted as the current plan",
    )
    instance.current_plan, instance.plan_changed_at = plan, now
    # In the adoption's transaction: an alert is never decided for a change rolled back.
    position = plan_range_position(plan=plan, min_plan=instance.min_plan, max_plan=instance.max_plan)
    plan_adopted_notify(instance=instance, old_plan=old_plan, position=position, now=now)
    logger.info("instance %s: adopted plan %s changed outside the app (was %s)", instance.name, plan.plan_name, old_plan.plan_name)
    return True
