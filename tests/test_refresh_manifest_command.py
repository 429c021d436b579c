"""`manage.py refresh_manifest`: summary line, exit codes, and surviving a kill."""

from __future__ import annotations

import signal
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from manifest.models import Definition, ManifestState, ManifestVersion
from manifest.sync import manifest_sync
from tests.support import wait_until

V0616 = "244122.26.06.10.2000-1-bnet.65386"


def run_command(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr, as `manage.py refresh_manifest` would give them."""
    out, err = StringIO(), StringIO()
    try:
        call_command("refresh_manifest", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:  # manage.py prints it on stderr and exits with its code
        err.write(f"{type(exc).__name__}: {exc}\n")
        code = exc.returncode
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_it_syncs_and_ends_with_a_one_line_summary(bungie):
    code, out, _ = run_command()

    assert code == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"live {V0616}:")
    assert " tables, " in last and " changed" in last and "definitions +" in last and " s" in last


@pytest.mark.django_db
def test_it_exits_zero_with_no_change(bungie):
    run_command()

    code, out, _ = run_command()

    assert code == 0
    assert out.strip().splitlines()[-1].startswith(f"no change: {V0616} is live")


@pytest.mark.django_db
def test_force_downloads_again_and_writes_nothing_new(bungie):
    run_command()
    rows = Definition.objects.count()
    bungie.app.reset(stats=True)

    code, _, _ = run_command("--force")

    assert code == 0
    assert sum(bungie.app.stats()["tables"].values()) > 0
    assert Definition.objects.count() == rows


@pytest.mark.django_db
def test_it_exits_75_when_bungie_is_in_maintenance(bungie):
    bungie.app.misbehave("maintenance", on="manifest")

    code, out, err = run_command()

    assert code == 75
    assert "maintenance" in err.lower()
    assert out.strip().splitlines()[-1].startswith("failed")


@pytest.mark.django_db
def test_it_exits_1_when_the_attempt_fails(bungie):
    bungie.app.misbehave("truncate_json", on="tables")

    code, _, err = run_command()

    assert code == 1
    assert "not valid JSON" in err
    assert ManifestState.get().active is None


@pytest.mark.django_db(transaction=True)
def test_manage_py_itself_exits_75_with_the_reason_on_stderr_and_the_summary_on_stdout(bungie, dvr_env):
    bungie.app.misbehave("maintenance", on="manifest")

    process = subprocess.run([sys.executable, "manage.py", "refresh_manifest"], env=dvr_env,
                             capture_output=True, text=True, timeout=60)

    assert process.returncode == 75
    assert "maintenance" in process.stderr.lower()
    assert process.stdout.strip().splitlines()[-1].startswith("failed")


@pytest.mark.django_db
def test_enqueue_hands_the_job_to_the_cluster(bungie):
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()

    code, out, _ = run_command("--enqueue")

    assert code == 0
    assert out.startswith("queued manifest refresh task ")
    assert broker.queue_size() == 1
    broker.purge_queue()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("moment", ["downloading", "writing"])
def test_a_sync_killed_mid_way_leaves_the_live_version_and_the_next_one_succeeds(bungie, dvr_env, moment):
    manifest_sync()
    live_rows = Definition.objects.count()
    bungie.app.publish("2025-12-02")
    # Every table file answers slowly, so the kill lands inside the sync.
    bungie.app.misbehave("slow", on="tables", seconds=1.0)
    process = subprocess.Popen([sys.executable, "manage.py", "refresh_manifest"], env=dvr_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if moment == "downloading":
            wait_until(lambda: bungie.app.stats()["tables"], what="a table download")
        else:
            active = ManifestState.get().active_seq
            wait_until(lambda: Definition.objects.filter(valid_from__gt=active).exists(), what="rows written")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    assert ManifestState.get().active.version == V0616
    bungie.app.reset()
    result = manifest_sync()

    assert result.outcome == "live", result.reason
    assert ManifestVersion.objects.get(version=result.version).status == ManifestVersion.Status.LIVE
    assert not ManifestVersion.objects.filter(status__in=["checking", "downloading"]).exists()
    assert Definition.objects.count() == live_rows + result.added + result.changed
