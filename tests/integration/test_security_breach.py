"""The security_breach scenario end to end (issue 17 item 6): inject the drill's breach, run the runbook with the
gate confirmed, verify containment in moto, the lifecycle and action records, the report; --check before it and a
re-run after it change nothing (one test, one injected breach); production without approval stops at the one
gate; release_containment afterwards restores the sandbox but keeps what another incident claims and what someone
changed meanwhile."""

from __future__ import annotations

import re

import pytest

from sandbox.drills import security_breach
from tests.integration.proof import first_case_in_make_test
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

RELEASE = "playbooks/release_containment.yml"
WAF_PLAYBOOK = "tests/integration/playbooks/waf/role.yml"
SECOND = "198.51.100.7/32"  # a second attacker address, also claimed by another incident in the release test
MUTATING = re.compile(
    r"^(Update|Put|Create|Delete|Attach|Detach|Modify|Disable|Enable|Copy|Authorize|Revoke|Replace|Tag|Untag|"
    r"Associate|Disassociate|Register|Deregister|Rotate|Stop|Start|Reboot|Terminate|Add|Remove)"
)


def extra_vars(context: dict, **more) -> dict:
    return {**{key: value for key, value in context.items() if not key.startswith("_")}, **more}


def evidence_keys(aws, context) -> list[str]:
    bucket = context["_drill"]["evidence_bucket"]
    pages = aws.client("s3").get_paginator("list_object_versions").paginate(Bucket=bucket)
    return sorted(f"{v['Key']}@{v['VersionId']}" for page in pages for v in page.get("Versions", []))


def sandbox_state(aws, context) -> dict:
    drill = context["_drill"]
    return {**security_breach.state(aws, drill), "snapshots": snapshots(aws, drill)}


def snapshots(aws, drill) -> list[str]:
    found = aws.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    return sorted(s["SnapshotId"] for s in found)


def test_check_previews_the_plan_then_it_contains_everything_named_records_it_and_a_rerun_changes_nothing(
    aws, run_playbook, tmp_path
):
    """One injected breach for the three runs (--check, converge, re-run): one sandbox reset instead of two."""
    context = security_breach.inject(aws)
    before = security_breach.state(aws, context["_drill"])
    assert all(status == "Active" for _key, status in before["keys"]) and before["bpa"] is None

    # --check --diff first: the whole plan shown, nothing changed (its own timeline)
    state, evidence = sandbox_state(aws, context), evidence_keys(aws, context)
    aws.proxy.clear_log()
    check_timeline = tmp_path / "check" / "timeline.jsonl"
    check = run_playbook(
        security_breach.PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True, timeline=check_timeline
    )
    assert check.returncode == 0, check.output[-4000:]
    assert sandbox_state(aws, context) == state and evidence_keys(aws, context) == evidence
    assert mutating_calls(aws, MUTATING, qualified=True) == [], mutating_calls(aws, MUTATING, qualified=True)
    assert all(e["_check_mode"] for e in lifecycle(check)) and lifecycle(check, "resolved")
    for shown in ("DRY RUN, nothing changed. contained: iam_key_disable, waf_block, ec2_isolate", "left for a person"):
        assert shown in check.stdout, shown

    run = run_playbook(security_breach.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    checks = security_breach.verify(aws, context)
    assert any("access key(s) inactive" in line for line in checks)

    declared, resolved = lifecycle(run, "declared"), lifecycle(run, "resolved")
    assert [(d["severity"], d["type"]) for d in declared] == [("P1", "security_breach")]
    assert [r["status"] for r in resolved] == ["resolved"]
    tasks = [r for r in records(run) if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    actions = [r["action"] for r in tasks]
    # evidence first, then the symptom read, then the gate's one decision, then every containment
    contained = [i for i, r in enumerate(tasks) if (r.get("details") or {}).get("containment")]
    first_copy = next(i for i, a in enumerate(actions) if a and "evidence" in a and "copy" in a)
    symptom = actions.index("firebreak.runbooks.aws_triage_info")
    gates = [i for i, r in enumerate(tasks) if r["event"] == "note" and "Gate security-breach-containment" in r["msg"]]
    assert len(gates) == 1, [tasks[i]["msg"] for i in gates]
    assert first_copy < symptom < gates[0] < contained[0], (first_copy, symptom, gates, contained[:1])
    assert "symptom confirmed" in tasks[gates[0]]["msg"]
    steps = {c["step"] for i in contained for c in tasks[i]["details"]["containment"] if "step" in c}
    assert {"iam_key_disable", "waf_block", "ec2_isolate", "s3_public_block", "deploy_freeze"} <= steps, steps
    for i in contained:  # each containment's record carries what it read before and after
        assert "before" in tasks[i]["details"] and "after" in tasks[i]["details"], tasks[i]["action"]
    assert actions.index("firebreak.runbooks.aws_triage_info", contained[-1]) > contained[-1]  # triage after
    assert "left for a person:" in run.stdout
    report = run.timeline.with_name("report.md")
    assert report.is_file() and "P1" in report.read_text()
    security_breach.verify_record(run.timeline, report)

    state, seen = sandbox_state(aws, context), len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(security_breach.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    assert sandbox_state(aws, context) == state
    made = [c for c in mutating_calls(aws, MUTATING, qualified=True) if not c.startswith("s3:") or "Copy" not in c]
    assert made == [], made  # nothing in AWS changes (the evidence copy finds its objects there already)
    changed = sorted({r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"})
    assert changed == ["firebreak.runbooks.incident_report"], changed


def test_production_without_approval_stops_at_the_one_gate_showing_the_plan(aws, run_playbook):
    context = security_breach.inject(aws)
    before = sandbox_state(aws, context)
    args = extra_vars(context, firebreak_environment="production")
    del args["firebreak_gate_approvals"], args["incident_gate_allow_unpinned"]
    run = run_playbook(security_breach.PLAYBOOK, extra_vars=args)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gate security-breach-containment not confirmed" in text and "nothing was changed" in text, text[-3000:]
    assert "firebreak_gate_approvals" in text
    assert sandbox_state(aws, context) == before
    assert not lifecycle(run, "resolved")


def test_no_sign_of_a_breach_is_refused_then_forced_with_a_recorded_reason(aws, run_playbook):
    # GuardDuty is off and alice has no CloudTrail events: nothing says she is compromised
    keys = aws.client("iam").list_access_keys(UserName="alice")["AccessKeyMetadata"]
    base = {"security_breach_principal": "alice"}
    run = run_playbook(security_breach.PLAYBOOK, extra_vars=base)
    assert run.returncode != 0
    assert "No sign of a breach" in run.stdout and "-e security_breach_force=true" in run.stdout, run.stdout[-3000:]
    assert aws.client("iam").list_access_keys(UserName="alice")["AccessKeyMetadata"] == keys

    reason = "alice's laptop was stolen"
    forced = run_playbook(
        security_breach.PLAYBOOK,
        extra_vars={
            **base,
            "security_breach_force": True,
            "security_breach_force_reason": reason,
            "firebreak_gate_approvals": {security_breach.GATE: "yes"},
            "incident_gate_allow_unpinned": True,
        },
    )
    assert forced.returncode == 0, forced.output[-4000:]
    statuses = {k["Status"] for k in aws.client("iam").list_access_keys(UserName="alice")["AccessKeyMetadata"]}
    assert statuses == {"Inactive"}
    notes = [r["msg"] for r in records(forced) if r["event"] == "note" and reason in (r["msg"] or "")]
    assert notes


@first_case_in_make_test
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"security_breach_principal": "bad user!"}, 'security_breach_principal "bad user!" is not an IAM user name'),
        ({"security_breach_addresses": ["not-an-ip"]}, 'security_breach_addresses ["not-an-ip"] are not IPv4'),
        ({"security_breach_instance": "web-1"}, 'security_breach_instance "web-1" is not an EC2 instance id'),
        ({"security_breach_force": True}, "security_breach_force needs a reason"),
        ({"security_breach_severity": "P9"}, "security_breach_severity"),
    ],
)
def test_bad_input_stops_before_any_call(aws, run_playbook, extra, message):
    aws.proxy.clear_log()
    run = run_playbook(security_breach.PLAYBOOK, extra_vars={"security_breach_principal": "ci-deployer", **extra})
    assert run.returncode != 0
    assert message in " ".join(run.output.split()), run.output[-2000:]
    assert "Traceback" not in run.output and aws.proxy.log() == []


def test_nothing_named_is_refused(aws, run_playbook):
    aws.proxy.clear_log()
    run = run_playbook(security_breach.PLAYBOOK)
    assert run.returncode != 0
    assert "Nothing to contain" in run.stdout and aws.proxy.log() == []


def test_release_containment_after_the_breach_restores_the_sandbox_and_keeps_other_claims(aws, run_playbook, tmp_path):
    context = security_breach.inject(aws)
    drill = context["_drill"]
    before = security_breach.state(aws, drill)
    incident = {"timeline": tmp_path / "INC-BREACH" / "timeline.jsonl", "env": {"FIREBREAK_INCIDENT_ID": "INC-BREACH"}}
    args = extra_vars(context, security_breach_addresses=[drill["address"], SECOND])
    run = run_playbook(security_breach.PLAYBOOK, extra_vars=args, **incident)
    assert run.returncode == 0, run.output[-4000:]
    security_breach.verify(aws, context)
    # another incident blocks the second address too; someone turns one Block Public Access setting off by hand
    other = run_playbook(
        WAF_PLAYBOOK,
        extra_vars={"role_addresses": [SECOND]},
        timeline=tmp_path / "INC-OTHER" / "timeline.jsonl",
        env={"FIREBREAK_INCIDENT_ID": "INC-OTHER"},
    )
    assert other.returncode == 0, other.output[-3000:]
    s3 = aws.client("s3")
    bpa = security_breach.state(aws, drill)["bpa"]
    changed = dict(bpa, BlockPublicPolicy=False)
    s3.put_public_access_block(Bucket=drill["bucket"], PublicAccessBlockConfiguration=changed)

    released = run_playbook(
        RELEASE,
        extra_vars={"firebreak_gate_approvals": {"release-containment": "yes"}, "incident_gate_allow_unpinned": True},
        **incident,
    )
    assert released.returncode == 0, released.output[-4000:]
    after = security_breach.state(aws, drill)
    assert after["keys"] == before["keys"], "the keys are active again"
    assert drill["address"] not in after["addresses"] and SECOND in after["addresses"], after["addresses"]
    assert after["addresses"] == sorted([*before["addresses"], SECOND]), "only the other incident's claim is kept"
    assert after["groups"] == before["groups"], "the instance's interfaces have their groups back"
    assert after["transitions"] == before["transitions"] and all(after["transitions"].values()), "freeze lifted"
    # the setting changed by hand is left as it was changed (off); the others were released
    assert after["bpa"] is None or not any(after["bpa"].values()), after["bpa"]
    assert "kept for other incidents" in released.stdout and "INC-OTHER" in released.stdout, released.stdout[-3000:]
