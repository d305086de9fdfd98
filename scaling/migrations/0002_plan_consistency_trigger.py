"""Database rules that span two tables, which a CHECK constraint cannot express:
an instance's current, min and max plan belong to one provider, and min is not above max.
"""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION scaling_instance_plans_consistent() RETURNS trigger AS $$
DECLARE
    cur scaling_redisplan%ROWTYPE;
    lo scaling_redisplan%ROWTYPE;
    hi scaling_redisplan%ROWTYPE;
BEGIN
    SELECT * INTO cur FROM scaling_redisplan WHERE id = NEW.current_plan_id;
    SELECT * INTO lo FROM scaling_redisplan WHERE id = NEW.min_plan_id;
    SELECT * INTO hi FROM scaling_redisplan WHERE id = NEW.max_plan_id;
    IF cur.service_name <> lo.service_name OR cur.service_name <> hi.service_name THEN
        RAISE EXCEPTION 'instance %: current, min and max plan must belong to one provider', NEW.name
            USING ERRCODE = 'check_violation';
    END IF;
    IF (lo.mem_limit, lo.cost) > (hi.mem_limit, hi.cost) THEN
        RAISE EXCEPTION 'instance %: min plan % is above max plan %', NEW.name, lo.plan_name, hi.plan_name
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER scaling_instance_plans_consistent
    BEFORE INSERT OR UPDATE OF current_plan_id, min_plan_id, max_plan_id ON scaling_redisinstance
    FOR EACH ROW EXECUTE FUNCTION scaling_instance_plans_consistent();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS scaling_instance_plans_consistent ON scaling_redisinstance;
DROP FUNCTION IF EXISTS scaling_instance_plans_consistent();
"""

_SQLITE_CHECK = """
WHEN (SELECT service_name FROM scaling_redisplan WHERE id = NEW.current_plan_id)
        <> (SELECT service_name FROM scaling_redisplan WHERE id = NEW.min_plan_id)
  OR (SELECT service_name FROM scaling_redisplan WHERE id = NEW.current_plan_id)
        <> (SELECT service_name FROM scaling_redisplan WHERE id = NEW.max_plan_id)
  OR (SELECT mem_limit FROM scaling_redisplan WHERE id = NEW.min_plan_id)
        > (SELECT mem_limit FROM scaling_redisplan WHERE id = NEW.max_plan_id)
BEGIN
    SELECT RAISE(ABORT, 'instance plans must belong to one provider, with min not above max');
END;
"""
SQLITE_UP = [
    f"CREATE TRIGGER scaling_instance_plans_insert BEFORE INSERT ON scaling_redisinstance {_SQLITE_CHECK}",
    f"CREATE TRIGGER scaling_instance_plans_update BEFORE UPDATE OF current_plan_id, min_plan_id, max_plan_id "
    f"ON scaling_redisinstance {_SQLITE_CHECK}",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS scaling_instance_plans_insert",
    "DROP TRIGGER IF EXISTS scaling_instance_plans_update",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor, [])
        for statement in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("scaling", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        ),
    ]
