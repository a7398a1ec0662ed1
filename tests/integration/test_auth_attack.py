"""The auth_attack scenario end to end on the incident frame: inject the drill's fault (the login failures alarm in
ALARM, two sources), run the runbook, verify the WAF block and the rate-based rule in moto, the lifecycle and action
records, the report, --check, the production gate, the symptom check and bad input."""

from __future__ import annotations

import json
import re

import pytest

from sandbox.drills import auth_attack
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

MUTATING = {"UpdateIPSet", "UpdateWebACL", "TagResource", "UntagResource", "CreateIPSet", "CreateWebACL"}
RATE_RULE = re.compile(r"^firebreak-rate-")


def extra_vars(context: dict, drop=("firebreak_gate_approvals", "incident_gate_allow_unpinned")) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_") and key not in drop}


def waf_state(aws, context) -> dict:
    drill = context["_drill"]
    return {
        "addresses": auth_attack.ip_set_addresses(aws, drill),
        "rules": sorted(
            json.dumps(rule, sort_keys=True, default=str) for rule in auth_attack.web_acl_rules(aws, drill)
        ),
    }


def _check_changes_nothing(aws, run_playbook, context, timeline):
    """--check --diff on the injected fault, in its own timeline: the plan shown, nothing changed."""
    before = waf_state(aws, context)
    aws.proxy.clear_log()
    run = run_playbook(auth_attack.PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True, timeline=timeline)
    assert run.returncode == 0, run.output[-4000:]
    assert waf_state(aws, context) == before and mutating_calls(aws, MUTATING) == []
    assert all(e["_check_mode"] for e in lifecycle(run))
    assert [e["event"] for e in lifecycle(run)] == ["declared", "update", "resolved"]
    assert "DRY RUN, nothing changed." in run.stdout
    assert not run.timeline.with_name("report.md").exists()


def test_check_changes_nothing_then_it_blocks_rate_limits_records_reports_and_a_rerun_changes_nothing(
    aws, run_playbook, tmp_path
):
    context = auth_attack.inject(aws)
    before = waf_state(aws, context)
    assert before["addresses"] == ["192.0.2.10/32"]
    _check_changes_nothing(aws, run_playbook, context, tmp_path / "check" / "timeline.jsonl")

    run = run_playbook(auth_attack.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    checks = auth_attack.verify(aws, context)
    assert sorted(auth_attack.ip_set_addresses(aws, context["_drill"])) == sorted(
        ["192.0.2.10/32", *auth_attack.SOURCES]
    )
    assert any("rate-based rule firebreak-rate-INC-TEST-" in line for line in checks), checks

    declared, resolved = lifecycle(run, "declared"), lifecycle(run, "resolved")
    assert [(d["severity"], d["type"], d["_check_mode"]) for d in declared] == [("P2", "auth_attack", False)]
    assert [r["status"] for r in resolved] == ["resolved"]
    assert "release_containment" in resolved[0]["summary"]

    tasks = [r for r in records(run) if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    actions = [r["action"] for r in tasks]
    triage = actions.index("firebreak.runbooks.aws_triage_info")
    block = actions.index("firebreak.runbooks.wafv2_ip_block")
    rate = actions.index("firebreak.runbooks.wafv2_rate_limit")
    assert actions.index("firebreak.runbooks.incident_lifecycle") < triage < block < rate
    gate = [r["msg"] for r in tasks[:block] if r["event"] == "note" and "Gate auth-attack-contain" in (r["msg"] or "")]
    assert gate and "passed without approval" in gate[0], gate
    [alarms] = [s for s in tasks[triage]["details"]["sections"] if s["section"] == "alarms"]
    assert [(a["name"], a["state"]) for a in alarms["alarms"]] == [(auth_attack.ALARM, "ALARM")]
    blocked = tasks[block]["details"]
    assert blocked["before"] != blocked["after"]
    assert sorted(blocked["containment"][0]["changed"]["added"]) == sorted(auth_attack.SOURCES), blocked["containment"]
    assert tasks[rate]["details"]["containment"], tasks[rate]["details"]
    assert "left for a person: lock or reset the targeted application accounts" in " ".join(run.stdout.split())
    report = run.timeline.with_name("report.md")
    assert report.is_file() and "P2" in report.read_text()

    # a re-run changes nothing in AWS (only the report is rewritten)
    state, seen = waf_state(aws, context), len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(auth_attack.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"]
    assert changed == ["firebreak.runbooks.incident_report"], changed
    assert waf_state(aws, context) == state and mutating_calls(aws, MUTATING) == []


def test_verify_fails_when_nothing_was_contained(aws):
    context = auth_attack.inject(aws)
    with pytest.raises(AssertionError, match="does not block"):
        auth_attack.verify(aws, context)


def test_production_stops_before_the_first_gated_change_and_an_approval_proceeds(aws, run_playbook):
    context = auth_attack.inject(aws)
    before = waf_state(aws, context)
    production = {**extra_vars(context), "firebreak_environment": "production"}
    aws.proxy.clear_log()
    run = run_playbook(auth_attack.PLAYBOOK, extra_vars=production)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gate auth-attack-contain not confirmed (approval_required in production): nothing was changed" in text, (
        run.stdout[-4000:]
    )
    assert "firebreak_gate_approvals" in text  # how to confirm
    # the plan it showed: both containments
    assert "2 change(s) on 2 resource(s)" in text, text[-4000:]
    assert waf_state(aws, context) == before and mutating_calls(aws, MUTATING) == []

    digest = re.search(r'"auth-attack-contain": "([0-9a-f]{12})"', run.stdout).group(1)
    approval = {"firebreak_gate_approvals": {"auth-attack-contain": digest}, "firebreak_gate_approver": "alice"}
    approved = run_playbook(auth_attack.PLAYBOOK, extra_vars={**production, **approval})
    assert approved.returncode == 0, approved.output[-4000:]
    auth_attack.verify(aws, context)
    notes = [r["msg"] for r in records(approved) if r["event"] == "note" and "Gate auth-attack-contain" in r["msg"]]
    assert notes and "approved by alice" in notes[-1]


def test_an_alarm_not_in_alarm_is_refused_then_forced_with_a_recorded_reason(aws, run_playbook):
    context = auth_attack.inject(aws)
    aws.client("cloudwatch").set_alarm_state(AlarmName=auth_attack.ALARM, StateValue="OK", StateReason="quiet")
    before = waf_state(aws, context)
    aws.proxy.clear_log()
    run = run_playbook(auth_attack.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    refused = f"No authentication attack confirmed: 2 source(s) given; alarm {auth_attack.ALARM} is OK"
    assert refused in text, text[-3000:]
    assert "-e auth_attack_force=true -e auth_attack_force_reason=" in text
    assert waf_state(aws, context) == before and mutating_calls(aws, MUTATING) == []
    assert not lifecycle(run, "resolved")

    reason = "the login service logs 400 failures a minute; the alarm's metric lags"
    forced = run_playbook(
        auth_attack.PLAYBOOK,
        # a forced containment is not a confirmed one: contain_confirmed (the sandbox's policy) asks, so approve it
        extra_vars={**extra_vars(context, drop=()), "auth_attack_force": True, "auth_attack_force_reason": reason},
    )
    assert forced.returncode == 0, forced.output[-4000:]
    auth_attack.verify(aws, context)
    notes = [r["msg"] for r in records(forced) if r["event"] == "note" and "forced" in (r["msg"] or "")]
    assert notes and reason in notes[0]


def test_sources_as_survey_text_are_split(aws, run_playbook):
    context = auth_attack.inject(aws)
    run = run_playbook(
        auth_attack.PLAYBOOK, extra_vars={**extra_vars(context), "auth_attack_sources": " ,".join(auth_attack.SOURCES)}
    )
    assert run.returncode == 0, run.output[-4000:]
    auth_attack.verify(aws, context)


def test_bad_input_stops_before_any_call(aws, run_playbook):
    context = auth_attack.inject(aws)
    before = waf_state(aws, context)
    for extra, message in (
        ({"auth_attack_sources": ["203.0.113.7/32", "evil.example"]}, 'auth_attack_sources ["evil.example"] are not'),
        ({"auth_attack_web_acl": "edge acl!"}, 'auth_attack_web_acl "edge acl!" is not a WAF web ACL name'),
        ({"auth_attack_ip_set": "x/y"}, 'auth_attack_ip_set "x/y" is not a WAF IP set name'),
        ({"auth_attack_path": "login"}, 'auth_attack_path "login" is not a URI path'),
        ({"auth_attack_rate_limit": 5}, "auth_attack_rate_limit 5 is below"),
        ({"auth_attack_rate_window": 90}, "auth_attack_rate_window 90 is not one of 60, 120, 300, 600"),
        ({"auth_attack_force": True}, "auth_attack_force needs a reason"),
        ({"auth_attack_severity": "P9"}, "auth_attack_severity"),
    ):
        aws.proxy.clear_log()
        run = run_playbook(auth_attack.PLAYBOOK, extra_vars={**extra_vars(context), **extra})
        assert run.returncode != 0, extra
        assert message in " ".join(run.output.split()), (extra, run.output[-2000:])
        assert "Traceback" not in run.output
        assert aws.proxy.log() == [] and waf_state(aws, context) == before
