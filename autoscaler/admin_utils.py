from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """The record is written by the app only; people review it."""

    show_full_result_count = False  # a COUNT(*) over millions of samples on every page is not worth it

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AutoscalerAdminSite(admin.AdminSite):
    """The admin with the autoscaler's own apps first: an operator comes for the Redis
    instances, not for Django's users or the login-lockout records."""

    site_header = site_title = "Redis autoscaler"
    FIRST = ("scaling", "logs", "notifications")

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        first = {label: rank for rank, label in enumerate(self.FIRST)}
        return sorted(apps, key=lambda app: first.get(app["app_label"], len(first)))  # stable: others stay alphabetical
