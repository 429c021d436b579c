from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from manifest.models import ManifestTable, ManifestVersion
from manifest.tasks import enqueue_refresh


class ManifestTableInline(admin.TabularInline):
    model = ManifestTable
    extra = 0
    can_delete = False
    fields = ("language", "name", "changed", "entries", "added", "modified", "removed", "size", "sha256")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ManifestVersion)
class ManifestVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version", "status", "detected_at", "live_at", "sync_time",
        "tables_changed", "definitions_added", "definitions_changed", "definitions_removed", "short_reason",
    )
    list_filter = ("status",)
    search_fields = ("version", "identity", "failure_reason")
    readonly_fields = [f.name for f in ManifestVersion._meta.fields]
    exclude = ("manifest",)
    inlines = [ManifestTableInline]
    actions = ["refresh_manifest"]
    date_hierarchy = "detected_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="sync (s)")
    def sync_time(self, obj: ManifestVersion) -> str:
        seconds = obj.sync_seconds
        return "" if seconds is None else f"{seconds:.1f}"

    @admin.display(description="failure reason")
    def short_reason(self, obj: ManifestVersion) -> str:
        return obj.failure_reason[:120]

    @admin.action(description="Refresh manifest (check Bungie now)")
    def refresh_manifest(self, request: HttpRequest, queryset: QuerySet[ManifestVersion]) -> None:
        outcome = enqueue_refresh(requested_by=request.user.get_username())
        if outcome["queued"]:
            self.message_user(request, f"Manifest refresh queued (task {outcome['task_id']}).", messages.SUCCESS)
        else:
            text = ("A manifest sync is already running; nothing queued." if outcome["running"]
                    else f"Nothing queued: {outcome['message']}.")
            self.message_user(request, text, messages.WARNING)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):  # type: ignore[override]
        # The action needs no selection: checking Bungie does not depend on a version.
        if request.method == "POST" and request.POST.get("action") == "refresh_manifest" and not request.POST.getlist(
            admin.helpers.ACTION_CHECKBOX_NAME
        ):
            post = request.POST.copy()
            any_pk = list(ManifestVersion.objects.values_list("pk", flat=True)[:1]) or ["0"]
            post.setlist(admin.helpers.ACTION_CHECKBOX_NAME, any_pk)
            request.POST = post  # type: ignore[assignment]
        return super().changelist_view(request, extra_context)
