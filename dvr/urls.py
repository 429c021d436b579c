"""Root URLs: each app owns its own; the health endpoint lives with the project."""

from django.contrib import admin
from django.urls import include, path

from dvr import health, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("__ping__", views.ping, name="ping"),
    path("admin/", admin.site.urls),
    path("", include("manifest.urls")),
    path("", include("manifest.mirror_urls")),
    path("", include("dvr.accounts.urls")),
    path("", include("inventory.urls")),
]

handler400 = "dvr.views.bad_request"
handler403 = "dvr.views.permission_denied"
handler404 = "dvr.views.page_not_found"
handler500 = "dvr.views.server_error"
