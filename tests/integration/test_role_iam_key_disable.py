"""The iam_key_disable role against the sandbox: converge, idempotence, check mode, release from the
timeline with a key re-enabled by hand meanwhile, and no secret access key in the timeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/iam/role.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+failed=(?P<failed>\d+)", re.M
)
# What an AWS secret access key looks like (40 characters of base64): none may reach the timeline.
SECRET_SHAPE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def keys(aws, user="ci-deployer") -> dict:
    listed = aws.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


def policies(aws, user="ci-deployer") -> list[str]:
    return sorted(aws.client("iam").list_user_policies(UserName=user)["PolicyNames"])


def assert_no_secret(timeline: Path, secrets: list[str]) -> None:
    text = timeline.read_text()
    for secret in secrets:
        assert secret not in text
    hashes = {r["hash"] for r in map(json.loads, text.splitlines())} | {
        r["prev_hash"] for r in map(json.loads, text.splitlines())
    }
    shaped = [
        m
        for m in SECRET_SHAPE.findall(text)
        if m not in hashes and all(re.search(cls, m) for cls in ("[A-Z]", "[a-z]", "[0-9]"))  # mixed, as keys are
    ]
    assert shaped == [], f"secret-shaped values in the timeline: {shaped}"


def test_check_mode_changes_nothing(aws, run_playbook):
    before = keys(aws)
    run = run_playbook(PLAYBOOK, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert keys(aws) == before and policies(aws) == ["deploy"]
    attached = aws.client("iam").list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"]
    assert attached == []


def test_converge_idempotence_then_release_from_the_timeline(aws, run_playbook, tmp_path):
    iam = aws.client("iam")
    attacker = iam.create_access_key(UserName="ci-deployer")["AccessKey"]
    seeded = aws.manifest["aws"]["iam"]["users"]["ci-deployer"]["access_key_ids"][0]
    timeline = tmp_path / "incident" / "timeline.jsonl"

    first = run_playbook(PLAYBOOK, timeline=timeline)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert keys(aws) == {seeded: "Inactive", attacker["AccessKeyId"]: "Inactive"}
    assert len(policies(aws)) == 2

    second = run_playbook(PLAYBOOK, timeline=timeline)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout

    iam.update_access_key(UserName="ci-deployer", AccessKeyId=attacker["AccessKeyId"], Status="Active")  # by hand
    released = run_playbook(PLAYBOOK, timeline=timeline, extra_vars={"role_state": "released"})
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1, released.stdout
    assert keys(aws) == {seeded: "Active", attacker["AccessKeyId"]: "Active"}
    assert policies(aws) == ["deploy"]
    assert iam.list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"] == []

    again = run_playbook(PLAYBOOK, timeline=timeline, extra_vars={"role_state": "released"})
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.output

    records = [json.loads(line) for line in timeline.read_text().splitlines()]
    releases = [r["details"]["release"] for r in records if (r.get("details") or {}).get("release")]
    assert releases[0][0]["left_alone"] == {"keys_already_active": [attacker["AccessKeyId"]]}
    assert_no_secret(timeline, [attacker["SecretAccessKey"]])


def test_role_refuses_an_unknown_user_before_changing_anything(aws, run_playbook):
    before = keys(aws)
    run = run_playbook(PLAYBOOK, extra_vars={"role_user": "mallory"})
    assert run.returncode != 0
    assert "user 'mallory' does not exist" in run.stdout
    assert keys(aws) == before
