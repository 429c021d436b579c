from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, CharField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from manifest.models import ManifestState, ManifestTable, ManifestVersion
from manifest.status import held_back
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
        "tables_changed", "tables_dropped", "definitions_added", "definitions_changed", "definitions_removed",
        "short_reason",
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[ManifestVersion]:
        # A version the flapping guard holds back says why, in the reason column.
        held = held_back(ManifestState.objects.current())
        text: Value | Case = Value("", output_field=CharField())
        if held is not None:
            text = Case(When(pk=held.version_id, then=Value(held.reason)), default=Value(""), output_field=CharField())
        return super().get_queryset(request).annotate(held_reason=text)

    @admin.display(description="reason")
    def short_reason(self, obj: ManifestVersion) -> str:
        return (getattr(obj, "held_reason", "") or obj.failure_reason)[:160]

    def get_urls(self) -> list[URLPattern]:
        # Before the defaults: their "<path:object_id>/" would take "refresh/" for an id.
        refresh = path(
            "refresh/",
            self.admin_site.admin_view(require_POST(self.refresh_view)),
            name=f"{self.opts.app_label}_{self.opts.model_name}_refresh",
        )
        return [refresh, *super().get_urls()]

    def refresh_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """The changelist's "Refresh manifest" button: checking Bungie needs no selection."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        self._queue_refresh(request)
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    @admin.action(description="Refresh manifest (check Bungie now)")
    def refresh_manifest(self, request: HttpRequest, queryset: QuerySet[ManifestVersion]) -> None:
        self._queue_refresh(request)

    def _queue_refresh(self, request: HttpRequest) -> None:
        refresh = enqueue_refresh(requested_by=request.user.get_username())
        if refresh.queued:
            self.message_user(request, f"Manifest refresh queued (task {refresh.task_id}).", messages.SUCCESS)
        else:
            text = ("A manifest sync is already running; nothing queued." if refresh.running
                    else f"Nothing queued: {refresh.message}.")
            self.message_user(request, text, messages.WARNING)
