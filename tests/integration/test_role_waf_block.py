"""The waf_block role against the sandbox: converge, idempotence, check mode, release from the timeline,
and 8 concurrent runs on one IP set while the fault proxy injects lock conflicts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import REPO_ROOT
from tests.integration.scenario_helpers import records

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/waf/role.yml"
SEEDED = ["192.0.2.10/32"]
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def ip_set(aws) -> tuple[list[str], str]:
    waf = aws.manifest["aws"]["waf"]["ip_set"]
    answer = aws.client("wafv2").get_ip_set(Name=waf["name"], Scope="REGIONAL", Id=waf["id"])
    return answer["IPSet"]["Addresses"], answer["LockToken"]


def add_by_hand(aws, address: str) -> None:
    waf = aws.manifest["aws"]["waf"]["ip_set"]
    current, token = ip_set(aws)
    aws.client("wafv2").update_ip_set(
        Name=waf["name"], Scope="REGIONAL", Id=waf["id"], Addresses=[*current, address], LockToken=token
    )


def test_check_mode_changes_nothing(aws, run_playbook):
    run = run_playbook(PLAYBOOK, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert "203.0.113.66/32" in run.stdout, "check mode shows what it would add"
    assert ip_set(aws)[0] == SEEDED


def test_converge_idempotence_then_release_from_the_timeline(aws, run_playbook, tmp_path):
    timeline = tmp_path / "incident" / "timeline.jsonl"
    first = run_playbook(PLAYBOOK, timeline=timeline)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert ip_set(aws)[0] == [*SEEDED, "203.0.113.66/32", "203.0.113.0/28"]

    second = run_playbook(PLAYBOOK, timeline=timeline)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout

    add_by_hand(aws, "198.51.100.99/32")  # another responder, meanwhile
    released = run_playbook(PLAYBOOK, timeline=timeline, extra_vars={"role_state": "released"})
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1, released.stdout
    assert ip_set(aws)[0] == [*SEEDED, "198.51.100.99/32"]
    assert "left alone 1 added by others meanwhile" in released.stdout

    again = run_playbook(PLAYBOOK, timeline=timeline, extra_vars={"role_state": "released"})
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0, again.stdout
    assert ip_set(aws)[0] == [*SEEDED, "198.51.100.99/32"]

    recorded = records(timeline)
    containments = [c for r in recorded for c in (r.get("details") or {}).get("containment") or []]
    assert [c["changed"] for c in containments] == [{"added": ["203.0.113.66/32", "203.0.113.0/28"]}]
    releases = [e for r in recorded for e in (r.get("details") or {}).get("release") or []]
    assert releases[0]["releases"] == [containments[0]["id"]]
    assert releases[0]["left_alone"]["added_by_others"] == ["198.51.100.99/32"]
    assert "LockToken" not in timeline.read_text()


def test_role_rejects_the_whole_internet_before_changing_anything(aws, run_playbook):
    run = run_playbook(PLAYBOOK, extra_vars={"role_addresses": ["203.0.113.9", "0.0.0.0/0"]})
    assert run.returncode != 0
    assert "0.0.0.0/0 would block every IPv4 address" in run.stdout
    assert ip_set(aws)[0] == SEEDED


@pytest.mark.proof
def test_eight_concurrent_runs_with_injected_lock_conflicts_lose_nothing(aws, sandbox, tmp_path):
    add_by_hand(aws, "198.51.100.99/32")  # pre-existing, next to the seeded address
    aws.proxy.add_rule(
        {"service": "wafv2", "action": "UpdateIPSet", "fault": "error", "status": 400,
         "code": "WAFOptimisticLockException", "count": 8}
    )  # fmt: skip
    runs, wanted = [], []
    env = {**os.environ, **sandbox.env(), "ANSIBLE_NOCOLOR": "1", "FIREBREAK_TIMELINE": str(tmp_path / "t.jsonl")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for worker in range(8):
        addresses = [f"203.0.{113 if worker < 4 else 114}.{(worker % 4) * 10 + i}" for i in range(5)]
        wanted += [f"{a}/32" for a in addresses]
        extra = {"role_addresses": addresses, "incident_id": f"INC-CONCURRENT-{worker}", "role_lock_retries": 30}
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), PLAYBOOK, "-e", json.dumps(extra)]
        # eight incidents: eight timelines (the timeline refuses to mix incidents in one file)
        run_env = {**env, "FIREBREAK_TIMELINE": str(tmp_path / f"t{worker}.jsonl")}
        runs.append(subprocess.Popen(cmd, cwd=REPO_ROOT, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [proc.communicate(timeout=600)[0].decode() for proc in runs]
    for proc, output in zip(runs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    stored = ip_set(aws)[0]
    assert stored[:2] == [*SEEDED, "198.51.100.99/32"], "pre-existing addresses kept, in place"
    assert sorted(stored[2:]) == sorted(wanted), "all 8 sets present, none lost"
    conflicts = [rule for rule in aws.proxy.rules() if not rule.get("default")]
    assert conflicts and conflicts[0]["hits"] == 8, "the injected conflicts were all met"
