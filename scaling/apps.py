from django.apps import AppConfig


class ScalingConfig(AppConfig):
    name = "scaling"
    verbose_name = "Scaling"

    def ready(self):
        from autoscaler import checks  # noqa: F401 - registers the configuration checks
