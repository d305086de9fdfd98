from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Operating the app: health, Prometheus metrics, cost report, weekly summary."""

    name = "operations"
    default_auto_field = "django.db.models.BigAutoField"
