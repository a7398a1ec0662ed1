"""The nacl_block role against the sandbox: converge, idempotence, check mode, release from the timeline."""

from __future__ import annotations

import json
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


def test_two_incidents_sharing_a_deny_entry(aws, run_playbook, tmp_path):
    subnets = {"role_subnets": aws.manifest["aws"]["network"]["subnet_ids"]}
    before = entries(aws)

    def run_as(incident, **extra):
        return run_playbook(
            PLAYBOOK,
            extra_vars={**subnets, **extra},
            timeline=tmp_path / incident / "timeline.jsonl",
            env={"FIREBREAK_INCIDENT_ID": incident},
        )

    first = run_as("INC-A")
    assert first.returncode == 0, first.output
    contained = entries(aws)
    assert len(contained - before) == 2, "one DENY per direction"
    second = run_as("INC-B")
    assert second.returncode == 0, second.output
    assert entries(aws) == contained

    release_a = run_as("INC-A", role_state="released")
    assert release_a.returncode == 0, release_a.output
    assert entries(aws) == contained, "INC-B still claims the DENY entries"
    recorded = [r for r in map(json.loads, (tmp_path / "INC-A" / "timeline.jsonl").read_text().splitlines())]
    releases = [e for r in recorded for e in (r.get("details") or {}).get("release") or []]
    kept = [who for e in releases for who in (e["left_alone"].get("kept_for_others") or {}).values()]
    assert kept == [["INC-B"], ["INC-B"]], releases

    release_b = run_as("INC-B", role_state="released")
    assert release_b.returncode == 0, release_b.output
    assert entries(aws) == before, "the last claimant's release deletes them"
