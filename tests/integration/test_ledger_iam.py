"""Issue 15 on IAM quarantine: a release whose user was deleted meanwhile reports it gone and releases the
incident's other users; a user quarantined by two incidents stays quarantined until the last release."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import timeline_records
from tests.integration.test_role_iam_key_disable import PLAYBOOK, keys, policies, recap

pytestmark = pytest.mark.integration


def run_as(run_playbook, tmp_path, incident, **extra):
    return run_playbook(
        PLAYBOOK,
        timeline=tmp_path / incident / "timeline.jsonl",
        env={"FIREBREAK_INCIDENT_ID": incident},
        extra_vars=extra,
    )


def attached(aws, user="ci-deployer") -> list[str]:
    listed = aws.client("iam").list_attached_user_policies(UserName=user)["AttachedPolicies"]
    return sorted(p["PolicyName"] for p in listed)


def delete_user(aws, user) -> None:
    iam = aws.client("iam")
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    for name in iam.list_user_policies(UserName=user)["PolicyNames"]:
        iam.delete_user_policy(UserName=user, PolicyName=name)
    for policy in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]:
        iam.detach_user_policy(UserName=user, PolicyArn=policy["PolicyArn"])
    iam.delete_user(UserName=user)


def releases(timeline) -> list[dict]:
    found = []
    for rec in timeline_records(timeline):
        value = (rec.get("details") or {}).get("release")
        found += value if isinstance(value, list) else [value] if value else []
    return found


def test_release_with_a_deleted_user_releases_the_other(aws, run_playbook, tmp_path):
    for user in ("ci-deployer", "alice"):
        run = run_as(run_playbook, tmp_path, "INC-IAM-GONE", role_user=user)
        assert run.returncode == 0, run.output
    assert set(keys(aws).values()) == {"Inactive"} and set(keys(aws, "alice").values()) == {"Inactive"}
    delete_user(aws, "alice")

    released = run_as(run_playbook, tmp_path, "INC-IAM-GONE", role_user="", role_state="released")
    assert released.returncode == 0, released.output
    assert recap(released)["failed"] == 0
    assert set(keys(aws).values()) == {"Active"}, "ci-deployer released although alice is gone"
    assert policies(aws) == ["deploy"] and attached(aws) == []
    assert "gone (recorded as released): arn:aws:iam::" in released.stdout
    recorded = releases(tmp_path / "INC-IAM-GONE" / "timeline.jsonl")
    assert [r.get("gone", False) for r in recorded] == [False, True]

    again = run_as(run_playbook, tmp_path, "INC-IAM-GONE", role_user="", role_state="released")
    assert again.returncode == 0, again.output
    assert "nothing to release" in again.stdout


def test_a_user_quarantined_by_two_incidents(aws, run_playbook, tmp_path):
    first = run_as(run_playbook, tmp_path, "INC-A")
    assert first.returncode == 0, first.output
    second = run_as(run_playbook, tmp_path, "INC-B")
    assert second.returncode == 0, second.output
    assert set(keys(aws).values()) == {"Inactive"}
    assert policies(aws) == ["deploy", "firebreak-revoke-issued-INC-A", "firebreak-revoke-issued-INC-B"]
    quarantine = attached(aws)
    assert quarantine, "the quarantine policy is attached"

    release_a = run_as(run_playbook, tmp_path, "INC-A", role_state="released")
    assert release_a.returncode == 0, release_a.output
    assert set(keys(aws).values()) == {"Inactive"}, "INC-B still claims the keys"
    assert attached(aws) == quarantine, "INC-B still claims the quarantine policy"
    assert policies(aws) == ["deploy", "firebreak-revoke-issued-INC-B"], "A's own deny policy goes"
    assert "for INC-B (still claimed)" in release_a.stdout

    release_b = run_as(run_playbook, tmp_path, "INC-B", role_state="released")
    assert release_b.returncode == 0, release_b.output
    assert set(keys(aws).values()) == {"Active"}, "the last claimant's release reactivates the keys"
    assert attached(aws) == [] and policies(aws) == ["deploy"]
