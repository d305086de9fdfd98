from django.contrib import admin

from autoscaler.admin_utils import ReadOnlyAdmin
from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "instance", "kind", "subject", "sent_at", "error")
    list_filter = ("kind",)
    search_fields = ("instance__name", "subject")
    list_select_related = ("instance",)
    ordering = ("-created_at",)
