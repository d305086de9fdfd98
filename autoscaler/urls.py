from pathlib import Path

from django.contrib import admin
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView

from operations import views as operations_views
from operations.admin_views import cost_report_view

admin.site.site_header = "Redis autoscaler"
admin.site.site_title = "Redis autoscaler"

# Browsers ask for /favicon.ico on every page; without an answer each ask is a 404 warning in the log.
FAVICON = (Path(__file__).resolve().parents[1] / "logs" / "static" / "logs" / "favicon.ico").read_bytes()


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request):
    return HttpResponse(FAVICON, content_type="image/x-icon")


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("favicon.ico", favicon),
    path("healthz", operations_views.healthz, name="healthz"),
    path("metrics", operations_views.metrics, name="metrics"),
    path("admin/cost/", admin.site.admin_view(cost_report_view), name="cost_report"),
    path("admin/", admin.site.urls),
]
