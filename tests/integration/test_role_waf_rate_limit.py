"""The waf_rate_limit role against the sandbox: check mode, converge, idempotence, release from the timeline."""

from __future__ import annotations

import re

import pytest

from tests.integration.scenario_helpers import records

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/waf/rate_role.yml"
SEEDED_RULE = "block-firebreak-blocklist"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def rules(aws) -> dict[str, dict]:
    acl = aws.manifest["aws"]["waf"]["web_acl"]
    answer = aws.client("wafv2").get_web_acl(Name=acl["name"], Scope="REGIONAL", Id=acl["id"])
    return {rule["Name"]: rule for rule in answer["WebACL"]["Rules"]}


def test_check_mode_changes_nothing(aws, run_playbook):
    before = rules(aws)
    run = run_playbook(PLAYBOOK, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert "firebreak-rate-INC-TEST-test_check_mode_changes_nothing" in run.stdout, "the diff shows the rule"
    assert rules(aws) == before


def test_converge_idempotence_then_release_from_the_timeline(aws, run_playbook, tmp_path):
    timeline = tmp_path / "incident" / "timeline.jsonl"
    seeded = rules(aws)[SEEDED_RULE]
    first = run_playbook(PLAYBOOK, timeline=timeline)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    stored = rules(aws)
    [name] = [n for n in stored if n != SEEDED_RULE]
    assert name == "firebreak-rate-INC-TEST-test_converge_idempotence_then_release_from_the_timeline"
    assert stored[SEEDED_RULE] == seeded
    statement = stored[name]["Statement"]["RateBasedStatement"]
    assert statement["Limit"] == 100
    assert statement["ScopeDownStatement"]["ByteMatchStatement"]["SearchString"] == b"/login"

    second = run_playbook(PLAYBOOK, timeline=timeline)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert rules(aws) == stored

    check = run_playbook(PLAYBOOK, timeline=timeline, check=True, extra_vars={"role_state": "released"})
    assert check.returncode == 0, check.output
    assert rules(aws) == stored, "a check-mode release changed the web ACL"

    released = run_playbook(PLAYBOOK, timeline=timeline, extra_vars={"role_state": "released"})
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1, released.stdout
    assert rules(aws) == {SEEDED_RULE: seeded}

    again = run_playbook(PLAYBOOK, timeline=timeline, extra_vars={"role_state": "released"})
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0, again.stdout
    assert rules(aws) == {SEEDED_RULE: seeded}

    recorded = records(timeline)
    containments = [c for r in recorded for c in (r.get("details") or {}).get("containment") or []]
    assert [c["changed"] for c in containments] == [{"rule": name, "created": True}]
    releases = [e for r in recorded for e in (r.get("details") or {}).get("release") or []]
    assert releases[0]["releases"] == [containments[0]["id"]]
    assert releases[0]["restored"] == {"removed": [name]}


def test_a_limit_below_the_minimum_fails_before_anything_changes(aws, run_playbook):
    before = rules(aws)
    run = run_playbook(PLAYBOOK, extra_vars={"role_limit": 3})
    assert run.returncode != 0
    assert "limit 3 is out of range" in run.stdout
    assert rules(aws) == before


def test_the_role_fails_on_what_it_reads_back_when_the_write_did_not_take(aws, run_playbook):
    # the fault proxy acknowledges UpdateWebACL and never passes it on: the web ACL keeps its old rules
    aws.proxy.add_rule(
        {"fault": "canned", "service": "wafv2", "action": "UpdateWebACL", "body": {"NextLockToken": "acknowledged"},
         "description": "acknowledged, never applied"}
    )  # fmt: skip
    before = rules(aws)
    run = run_playbook(PLAYBOOK)
    assert run.returncode != 0, run.output
    assert recap(run)["failed"] == 1
    assert "does not hold what was decided: rule in place False" in run.stdout, run.stdout
    assert rules(aws) == before
