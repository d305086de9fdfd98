from django.contrib.admin.apps import AdminConfig


class AutoscalerAdminConfig(AdminConfig):
    """django.contrib.admin with the autoscaler's site as `admin.site` (in INSTALLED_APPS)."""

    default_site = "autoscaler.admin_utils.AutoscalerAdminSite"
