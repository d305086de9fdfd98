import pytest

from scaling.models import RedisPlan
from scaling.services.plans import plans_load


@pytest.fixture
def plans(db):
    """The bundled plan data, by plan name."""
    plans_load()
    return {plan.plan_name: plan for plan in RedisPlan.objects.all()}
