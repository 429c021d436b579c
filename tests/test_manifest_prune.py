"""Forgetting old manifest versions (`manifest.prune`, ``manage.py prune_manifest`` and
``MANIFEST_KEEP_VERSIONS``) against the fake Bungie.net: the kept versions read exactly as
before, the forgotten ones are gone with the rows only they used."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from manifest.locking import SyncAlreadyRunning, sync_lock
from manifest.lookup import forget_active_seq, forget_local_summaries
from manifest.models import Definition, ManifestState, ManifestTable, ManifestVersion
from manifest.prune import manifest_prune
from manifest.sync import manifest_sync
from manifest.tasks import refresh_manifest
from tests.fakebungie.items import ItemSpec

pytestmark = pytest.mark.django_db(transaction=True)


def three_versions(bungie) -> list[ManifestVersion]:
    """Three versions made live one after the other, each changing items; oldest first."""
    assert manifest_sync().outcome == "live"
    for n in (1, 2):
        base = bungie.app.current.items
        bungie.app.publish(items=ItemSpec(count=base.count, seed=base.seed, changed=0.05 * n, added=0.02),
                           version=f"v{n}")
        assert manifest_sync().outcome == "live"
    forget_active_seq()
    return list(ManifestVersion.objects.filter(live_at__isnull=False).order_by("seq"))


def visible(seq: int) -> set[tuple[str, int, int]]:
    """Every definition of the version ``seq``: (entity type, hash, content digest)."""
    return set(Definition.objects.at(seq).values_list("entity_type", "hash", "content_hash"))


def test_keeping_two_versions_forgets_the_oldest_and_keeps_every_row_the_kept_ones_read(bungie):
    oldest, middle, newest = three_versions(bungie)
    before = {v.seq: visible(v.seq) for v in (middle, newest)}
    rows = Definition.objects.count()

    result = manifest_prune(keep=2)

    assert result.kept == [newest.version, middle.version]
    assert result.versions_deleted == 1 and not ManifestVersion.objects.filter(pk=oldest.pk).exists()
    assert not ManifestTable.objects.filter(version_id=oldest.pk).exists()
    assert {v.seq: visible(v.seq) for v in (middle, newest)} == before  # the kept read exactly as before
    # The rows the middle version replaced were the oldest's alone, but the middle's changes read them.
    assert result.rows_deleted == 0 and Definition.objects.count() == rows


def test_keeping_one_version_deletes_the_rows_only_older_versions_used(bungie):
    _oldest, middle, newest = three_versions(bungie)
    before = visible(newest.seq)
    replaced_by_middle = Definition.objects.filter(valid_to=middle.seq).count()
    assert replaced_by_middle > 0

    result = manifest_prune(keep=1)

    assert result.versions_deleted == 2 and result.rows_deleted == replaced_by_middle
    assert visible(newest.seq) == before
    assert not Definition.objects.filter(valid_to__lt=newest.seq).exists()
    assert Definition.objects.filter(valid_to=newest.seq).exists()  # the newest's own changes still read them


def test_the_pages_of_a_forgotten_version_are_a_404_and_the_kept_ones_still_show_their_changes(client, bungie):
    oldest, middle, _newest = three_versions(bungie)

    manifest_prune(keep=2)

    assert client.get(f"/manifest/{oldest.version}/").status_code == 404
    kept = client.get(f"/manifest/{middle.version}/")
    assert kept.status_code == 200 and middle.version in kept.content.decode()
    assert client.get("/manifest/").status_code == 200


def test_a_dry_run_says_what_would_go_and_deletes_nothing(bungie):
    three_versions(bungie)
    rows, versions = Definition.objects.count(), ManifestVersion.objects.count()

    result = manifest_prune(keep=1, dry_run=True)

    assert result.dry_run and result.versions_deleted == 2 and result.rows_deleted > 0
    assert (Definition.objects.count(), ManifestVersion.objects.count()) == (rows, versions)
    assert "would delete 2 older version(s)" in result.summary


def test_keeping_more_than_there_are_deletes_nothing(bungie):
    three_versions(bungie)
    rows = Definition.objects.count()

    result = manifest_prune(keep=10)

    assert (result.versions_deleted, result.rows_deleted) == (0, 0) and Definition.objects.count() == rows


def test_the_active_version_is_kept_even_when_newer_ones_went_live(bungie):
    oldest, _middle, newest = three_versions(bungie)
    state = ManifestState.get()
    state.active, state.active_seq = oldest, oldest.seq  # an operator rolled back to the oldest
    state.save()
    before = visible(oldest.seq)

    result = manifest_prune(keep=1)

    assert result.kept == [newest.version, oldest.version]
    assert ManifestVersion.objects.filter(pk=oldest.pk).exists()
    assert visible(oldest.seq) == before


def test_pruning_waits_for_no_sync_it_refuses_at_once_while_one_runs(bungie):
    three_versions(bungie)
    holding, done = threading.Event(), threading.Event()

    def a_sync_running() -> None:
        try:
            with sync_lock():  # its own database connection: another process's sync
                holding.set()
                done.wait(30)
        finally:
            connection.close()

    other = threading.Thread(target=a_sync_running)
    other.start()
    try:
        assert holding.wait(30)
        with pytest.raises(SyncAlreadyRunning):
            manifest_prune(keep=1)
    finally:
        done.set()
        other.join(30)

    assert ManifestVersion.objects.filter(live_at__isnull=False).count() == 3


def test_the_command_prunes_and_says_what_it_did(bungie, capsys):
    three_versions(bungie)

    call_command("prune_manifest", "--keep", "1")

    assert "deleted 2 older version(s)" in capsys.readouterr().out
    assert ManifestVersion.objects.count() == 1


def test_the_command_needs_a_number_to_keep(bungie, settings):
    settings.MANIFEST_KEEP_VERSIONS = 0

    with pytest.raises(CommandError, match="--keep N"):
        call_command("prune_manifest")


def test_with_manifest_keep_versions_set_each_live_sync_prunes(bungie, settings):
    settings.MANIFEST_KEEP_VERSIONS = 2
    three_versions(bungie)  # made live by manifest_sync directly: nothing pruned yet
    base = bungie.app.current.items
    bungie.app.publish(items=ItemSpec(count=base.count, seed=base.seed, changed=0.2), version="v3")
    forget_local_summaries()

    assert refresh_manifest()["outcome"] == "live"

    assert list(ManifestVersion.objects.order_by("-seq").values_list("version", flat=True)) == ["v3", "v2"]
