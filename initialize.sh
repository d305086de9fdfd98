#!/usr/bin/env bash
# Prepare a database for the autoscaler: migrate, create the admin user, load the plan data,
# set up the periodic tasks. Safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python}

"$PYTHON" manage.py migrate --noinput
if [ -n "${DJANGO_SUPERUSER_USERNAME:-}" ]; then
    if [ -z "${DJANGO_SUPERUSER_PASSWORD:-}" ]; then
        echo "initialize.sh: DJANGO_SUPERUSER_PASSWORD is not set; no admin user created" >&2
        exit 1
    fi
    "$PYTHON" manage.py ensure_superuser
else
    echo "initialize.sh: DJANGO_SUPERUSER_USERNAME is not set; no admin user created (set it and the password, then run again)"
fi
"$PYTHON" manage.py load_plans
"$PYTHON" manage.py setup_periodic_tasks
