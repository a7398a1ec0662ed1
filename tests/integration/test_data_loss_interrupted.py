"""data_loss re-run after a run stopped part way through its S3 restore (found by the kill suite,
tests/integration/proof_faults/test_proof_kills.py: ``ansible-playbook`` killed during or after the restore's first
call). The killed run's calls had landed, so the re-run found nothing deleted or overwritten, and its timeline held
no result of the restore (the process died before its record): it refused ("nothing was changed") and the incident
could not be finished without a force. The re-run must see that this incident's restore had begun and finish."""

from __future__ import annotations

import sys

import pytest

from sandbox import REPO_ROOT
from sandbox.drills import data_loss
from tests.integration.scenario_helpers import lifecycle, records

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import append_record, new_record

pytestmark = [pytest.mark.integration, pytest.mark.drill]
BUCKET = data_loss.BUCKET
ROLE = "firebreak.runbooks.s3_version_restore"


def restore_as_the_killed_run_did(s3, since: str) -> None:
    """The restore's calls: the delete marker after the time removed, the version at the time copied back."""
    listing = s3.list_object_versions(Bucket=BUCKET, Prefix="uploads/")
    [marker] = [m for m in listing.get("DeleteMarkers", []) if m["Key"] == data_loss.DELETED and m["IsLatest"]]
    s3.delete_object(Bucket=BUCKET, Key=data_loss.DELETED, VersionId=marker["VersionId"])
    old = [
        v
        for v in listing["Versions"]
        if v["Key"] == data_loss.OVERWRITTEN and v["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ") < since
    ]
    newest = max(old, key=lambda v: v["LastModified"])
    source = {"Bucket": BUCKET, "Key": data_loss.OVERWRITTEN, "VersionId": newest["VersionId"]}
    s3.copy_object(Bucket=BUCKET, Key=data_loss.OVERWRITTEN, CopySource=source)


def test_a_rerun_after_a_restore_killed_part_way_finishes_the_incident(aws, run_playbook, tmp_path, request):
    context = data_loss.inject(aws)
    variables = {key: value for key, value in context.items() if not key.startswith("_")}
    # what the killed run left: its start, the restore role entered outside check mode, no result, no end
    timeline = tmp_path / "incident" / "timeline.jsonl"
    timeline.parent.mkdir(parents=True)
    incident = f"INC-TEST-{request.node.name}"[:80]
    common = {"incident_id": incident, "playbook": data_loss.PLAYBOOK, "run_id": "20261207T000000-1-killed"}
    append_record(str(timeline), new_record(event="playbook_start", check_mode=False, **common))
    append_record(
        str(timeline),
        new_record(
            event="task_ok",
            task="Validate the restore request (concurrency)",
            role=ROLE,
            action="ansible.builtin.assert",
            host="localhost",
            check_mode=False,
            changed=False,
            **common,
        ),
    )
    restore_as_the_killed_run_did(aws.client("s3"), context["data_loss_since"])
    data_loss.verify(aws, context)  # the killed run's calls had landed

    run = run_playbook(data_loss.PLAYBOOK, extra_vars=variables, timeline=timeline)
    assert run.returncode == 0, run.output[-4000:]
    assert "No object was deleted or overwritten" not in run.stdout
    data_loss.verify(aws, context)
    assert [r["status"] for r in lifecycle(run, "resolved")] == ["resolved"]
    restored = [
        r["details"]["counts"]
        for r in records(run)
        if r["action"] == "firebreak.runbooks.s3_object_restore" and not r["check_mode"]
    ]
    assert [counts["remove_delete_marker"] + counts["copy"] for counts in restored] == [0], restored
