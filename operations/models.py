"""Small state shared between the worker, beat and web processes."""

from django.db import models


class Heartbeat(models.Model):
    """One named moment (and optional figure) written by one process and read by another.

    Rows: `dispatcher` (the dispatcher's last tick: beat and a worker are alive),
    `heroku_rate_limit:<account>` (last `RateLimit-Remaining` seen by a worker),
    `weekly_summary` (start of the last week summarised; claimed by compare-and-set).
    """

    name = models.CharField(max_length=100, primary_key=True)
    at = models.DateTimeField()
    value = models.BigIntegerField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} @ {self.at:%Y-%m-%d %H:%M:%S}"
