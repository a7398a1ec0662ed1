"""The nacl_block role against the sandbox: converge, idempotence, check mode, release from the timeline."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/nacl/role.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+failed=(?P<failed>\d+)", re.M
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def entries(aws) -> set:
    vpc = aws.manifest["aws"]["network"]["vpc_id"]
    acl = aws.client("ec2").describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"][0]
    return {(e["Egress"], e["RuleNumber"], e["RuleAction"], e.get("CidrBlock")) for e in acl["Entries"]}


def test_check_mode_then_converge_idempotence_and_release(aws, run_playbook, tmp_path):
    subnets = {"role_subnets": aws.manifest["aws"]["network"]["subnet_ids"]}
    seeded = entries(aws)
    timeline = tmp_path / "incident" / "timeline.jsonl"

    check = run_playbook(PLAYBOOK, extra_vars=subnets, check=True, diff=True, timeline=timeline)
    assert check.returncode == 0, check.output
    assert entries(aws) == seeded

    first = run_playbook(PLAYBOOK, extra_vars=subnets, timeline=timeline)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    assert entries(aws) == seeded | {(False, 99, "deny", "203.0.113.0/24"), (True, 99, "deny", "203.0.113.0/24")}

    second = run_playbook(PLAYBOOK, extra_vars=subnets, timeline=timeline)
    assert second.returncode == 0 and recap(second) == {"changed": 0, "failed": 0}, second.output

    released = run_playbook(PLAYBOOK, extra_vars={**subnets, "role_state": "released"}, timeline=timeline)
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1
    assert entries(aws) == seeded

    again = run_playbook(PLAYBOOK, extra_vars={**subnets, "role_state": "released"}, timeline=timeline)
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.output
