"""Services: the use cases, named <entity>_<action>, keyword-only arguments.

Celery tasks, management commands, the admin and add_redis_mon.py are thin interfaces over
these functions.
"""
