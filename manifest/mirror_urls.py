"""Bungie's own paths, answered by the mirror (`mirror_views`); DVR's change feed and
definition timelines beside them.

Bungie's paths are case-insensitive, the trailing slash is optional (aiobungie sends
none), and a doubled leading slash (``//common/...``: clients that join a base ending in
``/`` with a path starting with one) is the same path.
"""

from django.urls import path, re_path

from manifest import mirror_views, timeline_views


def _any_case(path: str) -> str:
    # Character classes, not (?i:...): Django cannot reverse an inline flag group.
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in path)


MANIFEST = _any_case("platform/destiny2/manifest")
JSON_DIR = _any_case("common/destiny2_content/json")

# ``^(?:/)?``: one more leading slash is the same path (Django has already taken one).
urlpatterns = [
    re_path(rf"^(?:/)?{MANIFEST}/?$", mirror_views.manifest, name="mirror-manifest"),
    re_path(rf"^(?:/)?{MANIFEST}/(?P<entity_type>[^/]+)/(?P<hash_id>[^/]+)/?$", mirror_views.entity,
            name="mirror-entity"),
    re_path(rf"^(?:/)?{JSON_DIR}/(?P<language>[A-Za-z-]{{1,16}})/(?P<filename>[^/]+)$", mirror_views.content_file,
            name="mirror-file"),
    path("api/manifest/changes", mirror_views.changes, name="mirror-changes"),
    # One definition's timeline (manifest/timeline.py): every version that changed it.
    path("definitions/<str:entity_type>/<str:hash_id>/timeline/", timeline_views.timeline_page,
         name="manifest-timeline"),
    path("api/definitions/<str:entity_type>/<str:hash_id>/timeline/", timeline_views.timeline_json,
         name="manifest-timeline-json"),
]
