from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Redis autoscaler"
admin.site.site_title = "Redis autoscaler"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
