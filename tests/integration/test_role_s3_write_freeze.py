"""The s3_write_freeze role: check mode, converge, idempotence, release from the timeline, against the sandbox."""

from __future__ import annotations

import json

import pytest

from tests.integration.containment_helpers import recap, recorded_containments, role
from tests.integration.test_s3_write_freeze import OTHERS, RESPONDER, policy, write_denied

pytestmark = pytest.mark.integration

BUCKET = "firebreak-sandbox-uploads"


def test_check_mode_changes_nothing(aws, run_playbook):
    aws.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(OTHERS))
    before = aws.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"]
    run = role(run_playbook, "s3_write_freeze", check=True, diff=True, s3_write_freeze_bucket=BUCKET)
    assert run.returncode == 0, run.output
    assert aws.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"] == before
    assert not write_denied(aws, BUCKET)


def test_converge_idempotence_and_release(aws, run_playbook, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    aws.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(OTHERS))
    variables = {"s3_write_freeze_bucket": BUCKET, "s3_write_freeze_exempt_principal_arns": [RESPONDER]}
    first = role(run_playbook, "s3_write_freeze", timeline=timeline, **variables)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    frozen = policy(aws, BUCKET)
    assert frozen["Statement"][:2] == OTHERS["Statement"]
    assert frozen["Statement"][2]["Sid"].startswith("FirebreakWriteFreeze")
    assert RESPONDER in frozen["Statement"][2]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert write_denied(aws, BUCKET)

    second = role(run_playbook, "s3_write_freeze", timeline=timeline, **variables)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout

    [entry] = recorded_containments(timeline, "s3_write_freeze")
    assert json.loads(entry["changed"]["policy_before"]) == OTHERS, "the policy before is in the timeline"

    released = role(
        run_playbook,
        "s3_write_freeze",
        timeline=timeline,
        s3_write_freeze_bucket=BUCKET,
        s3_write_freeze_state="released",
    )
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1
    assert policy(aws, BUCKET) == OTHERS
    assert not write_denied(aws, BUCKET)

    again = role(
        run_playbook,
        "s3_write_freeze",
        timeline=timeline,
        s3_write_freeze_bucket=BUCKET,
        s3_write_freeze_state="released",
    )
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0, "the release is recorded: nothing is left to release"


def test_a_bucket_frozen_by_two_incidents_stays_frozen_until_the_last_release(aws, run_playbook, tmp_path):
    def run_as(incident, **variables):
        return role(
            run_playbook,
            "s3_write_freeze",
            timeline=tmp_path / incident / "timeline.jsonl",
            env={"FIREBREAK_INCIDENT_ID": incident},
            s3_write_freeze_bucket=BUCKET,
            **variables,
        )

    for incident in ("INC-A", "INC-B"):
        run = run_as(incident)
        assert run.returncode == 0, run.output
    assert len(policy(aws, BUCKET)["Statement"]) == 2

    release_a = run_as("INC-A", s3_write_freeze_state="released")
    assert release_a.returncode == 0, release_a.output
    assert "stays frozen for INC-B" in release_a.stdout
    assert [s["Sid"][:24] for s in policy(aws, BUCKET)["Statement"]] == ["FirebreakWriteFreezeINCB"]
    assert write_denied(aws, BUCKET)

    release_b = run_as("INC-B", s3_write_freeze_state="released")
    assert release_b.returncode == 0, release_b.output
    assert policy(aws, BUCKET) is None and not write_denied(aws, BUCKET)


def test_role_refuses_to_freeze_without_an_incident_id(aws, run_playbook):
    env = {"FIREBREAK_INCIDENT_ID": "", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"}
    run = role(run_playbook, "s3_write_freeze", env=env, s3_write_freeze_bucket=BUCKET)
    assert run.returncode != 0
    assert "incident id" in run.stdout
    assert policy(aws, BUCKET) is None


def test_the_role_fails_when_the_freeze_does_not_read_back(aws, run_playbook):
    # the fault proxy acknowledges PutBucketPolicy and never passes it on: the bucket is not frozen
    aws.proxy.add_rule(
        {"fault": "canned", "service": "s3", "method": "PUT", "query": "policy", "status": 204, "description": "lost"}
    )
    run = role(run_playbook, "s3_write_freeze", s3_write_freeze_bucket=BUCKET)
    assert run.returncode != 0, run.output
    assert recap(run)["failed"] == 1
    assert "reads back without statement FirebreakWriteFreeze" in run.stdout, run.stdout
    assert policy(aws, BUCKET) is None and not write_denied(aws, BUCKET)


def test_release_containment_lifts_the_write_freeze_and_keeps_the_other_statements(aws, run_playbook, tmp_path):
    incident = {"timeline": tmp_path / "INC-DL" / "timeline.jsonl", "env": {"FIREBREAK_INCIDENT_ID": "INC-DL"}}
    aws.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(OTHERS))
    run = role(run_playbook, "s3_write_freeze", s3_write_freeze_bucket=BUCKET, **incident)
    assert run.returncode == 0, run.output
    assert write_denied(aws, BUCKET)
    approved = {"firebreak_gate_approvals": {"release-containment": "yes"}, "incident_gate_allow_unpinned": True}
    released = run_playbook("playbooks/release_containment.yml", extra_vars=approved, **incident)
    assert released.returncode == 0, released.output
    assert "s3_write_freeze" in released.stdout
    assert policy(aws, BUCKET) == OTHERS and not write_denied(aws, BUCKET)
