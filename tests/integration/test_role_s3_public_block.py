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
    # Someone turns one setting off by hand meanwhile: the release leaves it and reports it.
    aws.client("s3").put_public_access_block(
        Bucket=BUCKET, PublicAccessBlockConfiguration=dict(ALL_ON, BlockPublicPolicy=False)
    )

    # released: the role reads the entries from the timeline (lookup firebreak.runbooks.containments)
    released = role(
        run_playbook,
        "s3_public_block",
        timeline=timeline,
        s3_public_block_bucket=BUCKET,
        s3_public_block_state="released",
    )
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1
    assert configuration(aws, BUCKET) is None
    assert "firebreak:incident" not in tags(aws, BUCKET)
    assert "BlockPublicPolicy" in released.stdout

    again = role(
        run_playbook,
        "s3_public_block",
        timeline=timeline,
        s3_public_block_bucket=BUCKET,
        s3_public_block_state="released",
    )
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0, "the release is recorded: nothing is left to release"


def test_role_refuses_to_contain_without_an_incident_id(aws, run_playbook):
    # Without the timeline callback (which itself refuses to run without an incident id).
    env = {"FIREBREAK_INCIDENT_ID": "", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"}
    run = role(run_playbook, "s3_public_block", env=env, s3_public_block_bucket=BUCKET)
    assert run.returncode != 0
    assert "incident id" in run.stdout
    assert configuration(aws, BUCKET) is None


def test_a_bucket_locked_by_two_incidents(aws, run_playbook, tmp_path):
    before = configuration(aws, BUCKET)

    def run_as(incident, **variables):
        return role(
            run_playbook,
            "s3_public_block",
            timeline=tmp_path / incident / "timeline.jsonl",
            env={"FIREBREAK_INCIDENT_ID": incident},
            s3_public_block_bucket=BUCKET,
            **variables,
        )

    for incident in ("INC-A", "INC-B"):
        run = run_as(incident)
        assert run.returncode == 0, run.output
    assert configuration(aws, BUCKET) == ALL_ON

    release_a = run_as("INC-A", s3_public_block_state="released")
    assert release_a.returncode == 0, release_a.output
    assert configuration(aws, BUCKET) == ALL_ON, "INC-B still claims Block Public Access"
    assert "still claimed by INC-B" in release_a.stdout

    release_b = run_as("INC-B", s3_public_block_state="released")
    assert release_b.returncode == 0, release_b.output
    assert configuration(aws, BUCKET) != ALL_ON, "the last claimant's release turns off what INC-A turned on"
    assert not any((configuration(aws, BUCKET) or {}).values()) and not any((before or {}).values())
