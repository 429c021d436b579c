from django.urls import path

from manifest import views

app_name = "manifest"
urlpatterns = [
    path("manifest/", views.versions, name="versions"),
    path("manifest/refresh/", views.refresh, name="refresh"),
    # The path the 2017 original used; same behaviour.
    path("updateManifest", views.refresh, name="refresh-legacy"),
]
