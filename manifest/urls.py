from django.urls import path

from manifest import api, views

app_name = "manifest"
urlpatterns = [
    path("manifest/", views.versions, name="versions"),
    path("manifest/refresh/", views.refresh, name="refresh"),
    path("manifest/search/", views.search, name="search"),
    path("manifest/<str:version>/", views.version_detail, name="version"),
    path("manifest/<str:version>/<str:table>/", views.table_changes, name="table"),
    path("manifest/<str:version>/<str:table>/<str:hash_id>/", views.entry, name="entry"),
    # The path the 2017 original used; same behaviour.
    path("updateManifest", views.refresh, name="refresh-legacy"),
    path("api/manifest/", api.manifest, name="api-manifest"),
    path("api/definitions/<str:entity_type>/<str:hash_id>/", api.definition, name="api-definition"),
]
