from django.apps import AppConfig
from django.db.models.signals import post_migrate


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from notifications.channels import alert_channels_sync_after_migrate

        post_migrate.connect(alert_channels_sync_after_migrate, sender=self,
                             dispatch_uid="notifications.alert_channels_sync")
