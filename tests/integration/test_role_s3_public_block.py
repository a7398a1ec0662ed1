"""The s3_public_block role: check mode, converge, idempotence, release, against the sandbox."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import recap, recorded_containments, role
from tests.integration.test_s3_public_access_lock import ALL_ON, configuration, tags

pytestmark = pytest.mark.integration

BUCKET = "firebreak-sandbox-uploads"


def test_check_mode_changes_nothing(aws, run_playbook):
    run = role(run_playbook, "s3_public_block", check=True, diff=True, s3_public_block_bucket=BUCKET)
    assert run.returncode == 0, run.output
    assert configuration(aws, BUCKET) is None
    assert "firebreak:incident" not in tags(aws, BUCKET)


def test_converge_idempotence_and_release(aws, run_playbook, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    first = role(run_playbook, "s3_public_block", timeline=timeline, s3_public_block_bucket=BUCKET)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert configuration(aws, BUCKET) == ALL_ON
    assert tags(aws, BUCKET)["firebreak:step"] == "s3_public_block"

    second = role(run_playbook, "s3_public_block", timeline=timeline, s3_public_block_bucket=BUCKET)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout

    entries = recorded_containments(timeline, "s3_public_block")
    assert len(entries) == 1 and entries[0]["changed"]["public_access_block_before"] is None
    released = role(
        run_playbook,
        "s3_public_block",
        timeline=timeline,
        s3_public_block_bucket=BUCKET,
        s3_public_block_state="released",
        s3_public_block_containments=entries,
    )
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1
    assert configuration(aws, BUCKET) is None
    assert "firebreak:incident" not in tags(aws, BUCKET)


def test_role_refuses_to_contain_without_an_incident_id(aws, run_playbook):
    run = role(run_playbook, "s3_public_block", env={"FIREBREAK_INCIDENT_ID": ""}, s3_public_block_bucket=BUCKET)
    assert run.returncode != 0
    assert "incident id" in run.stdout
    assert configuration(aws, BUCKET) is None
