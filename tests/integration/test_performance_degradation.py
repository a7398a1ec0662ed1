"""The performance_degradation scenario end to end on the incident frame: the ECS scale-out path (bad input refused,
--check changes nothing, converge, a re-run that changes nothing) and the DB class change's own gate (production
stops before it without an approval; the approval of the digest it printed finishes the job).

moto evaluates no CloudWatch metrics and has no extended statistics (p95): the fault proxy answers
GetMetricStatistics as CloudWatch documents it (sandbox/drills/performance_degradation.py ``latency``), slow for the
symptom check's read and fast for the verification's. moto accepts any instance class and changes it at once, so the
DB step's wait and a real failover are not exercised here (tests/integration/test_rds_instance_scale.py covers the
module against canned answers)."""

from __future__ import annotations

import re

import pytest

from sandbox.drills import performance_degradation as drill
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

PLAYBOOK = drill.PLAYBOOK
DB_KEYS = ("performance_degradation_db_instance", "performance_degradation_db_instance_class")
GATE_KEYS = ("firebreak_gate_approvals", "incident_gate_allow_unpinned")
MUTATING = {
    "UpdateService",
    "TagResource",
    "UntagResource",
    "ModifyDBInstance",
    "AddTagsToResource",
    "RebootDBInstance",
}


def extra_vars(context: dict, drop=()) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_") and key not in drop}


def state(aws) -> dict:
    """What the scenario may change: the service's counts and tags, the instance's class and tags."""
    found = drill.service(aws)
    tags = aws.client("ecs").list_tags_for_resource(resourceArn=found["serviceArn"])["tags"]
    rds = aws.client("rds")
    instance = rds.describe_db_instances(DBInstanceIdentifier=drill.DB_INSTANCE)["DBInstances"][0]
    db_tags = rds.list_tags_for_resource(ResourceName=instance["DBInstanceArn"])["TagList"]
    return {
        "desired": found["desiredCount"],
        "running": found["runningCount"],
        "task_definition": found["taskDefinition"],
        "tags": sorted((t["key"], t["value"]) for t in tags),
        "class": instance["DBInstanceClass"],
        "db_status": instance["DBInstanceStatus"],
        "db_tags": sorted((t["Key"], t["Value"]) for t in db_tags),
    }


def slow_then_fast(aws) -> None:
    """Replace the latency answers: the next read slow (p95 over the SLO), every later one fast."""
    for rule in aws.proxy.rules():
        if not rule["default"] and rule["action"] == "GetMetricStatistics":
            aws.proxy.remove_rule(rule["id"])
    drill.latency(aws, drill.SLOW, count=1)
    drill.latency(aws, drill.FAST, count=None)


def test_the_ecs_scale_out_previews_converges_and_a_rerun_changes_nothing(aws, run_playbook):
    context = drill.inject(aws)
    ecs_only = extra_vars(context, drop=DB_KEYS + GATE_KEYS)
    before = state(aws)
    assert (before["desired"], before["class"]) == (2, "db.t3.medium")

    # bad input: refused naming the value, before any call
    aws.proxy.clear_log()
    bad = run_playbook(PLAYBOOK, extra_vars={**ecs_only, "performance_degradation_ecs_service": "shop api!"})
    assert bad.returncode != 0
    assert 'performance_degradation_ecs_service "shop api!" is not an ECS service name' in " ".join(bad.stdout.split())
    assert aws.proxy.log() == [] and state(aws) == before

    # --check: a complete preview that changes nothing
    aws.proxy.clear_log()
    check = run_playbook(PLAYBOOK, extra_vars=ecs_only, check=True, diff=True)
    assert check.returncode == 0, check.output[-4000:]
    assert mutating_calls(aws, MUTATING) == [] and state(aws) == before
    out = " ".join(check.stdout.split())
    assert "DRY RUN, nothing changed." in out and "p95 2.4 > threshold 1.0" in out, out[-3000:]
    assert [e["event"] for e in lifecycle(records(check))] == ["declared", "update", "resolved"]
    assert all(e["_check_mode"] for e in lifecycle(records(check)))
    assert not check.timeline.with_name("report.md").exists()
    seen = len(records(check))

    # converge: the symptom read, the scale-out (old count recorded), p95 verified, resolved, reported, sealed
    slow_then_fast(aws)
    run = run_playbook(PLAYBOOK, extra_vars=ecs_only)
    assert run.returncode == 0, run.output[-4000:]
    after = state(aws)
    assert (after["desired"], after["running"]) == (drill.DESIRED, drill.DESIRED)
    assert ("firebreak:scaled-from", "2") in after["tags"] and ("firebreak:scaled-to", "4") in after["tags"]
    assert (after["class"], after["db_tags"]) == (before["class"], before["db_tags"])  # the DB was not named
    out = " ".join(run.stdout.split())
    assert "left for a person: the dashboards" in out

    rows = records(run)[seen:]
    assert [(d["severity"], d["type"]) for d in lifecycle(rows, "declared")] == [("P2", "performance_degradation")]
    assert [u["status"] for u in lifecycle(rows, "update")] == ["monitoring"]
    [resolved] = lifecycle(rows, "resolved")
    assert "ECS scaled shop-api: desired count 2 -> 4" in resolved["summary"], resolved["summary"]
    assert "recovered: all 2 check(s) passed" in resolved["summary"], resolved["summary"]
    tasks = [r for r in rows if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    actions = [r["action"] for r in tasks]
    scaled = [r for r in tasks if r["action"] == "firebreak.runbooks.ecs_service_scale" and not r["check_mode"]]
    assert [r["event"] for r in scaled] == ["task_changed"]
    assert scaled[0]["details"]["before"]["desired_count"] == 2
    assert scaled[0]["details"]["after"]["desired_count"] == drill.DESIRED
    first = tasks.index(scaled[0])
    symptom = actions.index("firebreak.runbooks.health_verify")
    assert actions.index("firebreak.runbooks.incident_lifecycle") < symptom < first  # declared, confirmed, acted
    assert tasks[symptom]["details"]["checks"][0]["verdict"] == "fail"  # the p95 over the SLO: the symptom
    gate = [
        r["msg"] for r in tasks[:first] if r["event"] == "note" and "Gate performance-degradation-scale-out" in r["msg"]
    ]
    assert gate and "passed without approval" in gate[0]
    notes = [r["msg"] for r in tasks[first:] if r["event"] == "note" and r["msg"].startswith("Old values")]
    assert notes and "ECS shop-api desired count 2 (role scale_out, scale_out_state=restored)" in notes[0]
    later = actions[first:]
    triage = first + later.index("firebreak.runbooks.aws_triage_info")  # read-only, after the first mitigation
    # the ECS section only (no DB or Lambda named); moto records no service events, so it reads 0 items
    assert [line.split(":")[0] for line in tasks[triage]["details"]["summary"]] == ["ecs"], tasks[triage]["details"]
    verify = tasks[first + later.index("firebreak.runbooks.health_verify")]["details"]
    assert [(c["kind"], c["verdict"]) for c in verify["checks"]] == [("metric", "pass"), ("ecs", "pass")]
    assert later.index("firebreak.runbooks.incident_report") < later.index("firebreak.runbooks.incident_seal")
    report = run.timeline.with_name("report.json")
    assert report.is_file() and "P2" in run.timeline.with_name("report.md").read_text()
    assert "hash chain verified" in run.timeline.with_name("report.md").read_text()

    # a re-run: p95 under the SLO and nothing left to scale, so it verifies and changes nothing in AWS
    seen = len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(PLAYBOOK, extra_vars=ecs_only)
    assert again.returncode == 0, again.output[-4000:]
    assert state(aws) == after and mutating_calls(aws, MUTATING) == []
    again_changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"]
    assert again_changed == ["firebreak.runbooks.incident_report"], again_changed
    assert "already scaled: " in " ".join(again.stdout.split())


def test_production_stops_before_the_db_class_change_without_an_approval_then_the_approval_finishes(aws, run_playbook):
    context = drill.inject(aws)
    production = {**extra_vars(context, drop=GATE_KEYS), "firebreak_environment": "production"}
    before = state(aws)

    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars=production)
    assert run.returncode != 0
    out = " ".join(run.stdout.split())
    assert "gate performance-degradation-db-scale not confirmed" in out and "nothing was changed" in out, out[-3000:]
    assert "firebreak_gate_approvals" in out
    # the scale-out ran (scale_out passes ungated in production, as the seeds scale first); the DB was not touched
    partial = state(aws)
    assert partial["desired"] == drill.DESIRED
    assert (partial["class"], partial["db_tags"], partial["db_status"]) == (
        before["class"],
        before["db_tags"],
        before["db_status"],
    )
    made = mutating_calls(aws, MUTATING)
    assert "ModifyDBInstance" not in made and "RebootDBInstance" not in made

    # the approval of the printed digest: the re-run leaves the scale-out alone and changes the class
    digest = re.search(r'"performance-degradation-db-scale": "([0-9a-f]{12})"', run.stdout).group(1)
    approval = {
        "firebreak_gate_approvals": {"performance-degradation-db-scale": digest},
        "firebreak_gate_approver": "alice",
    }
    slow_then_fast(aws)
    aws.proxy.clear_log()
    approved = run_playbook(PLAYBOOK, extra_vars={**production, **approval})
    assert approved.returncode == 0, approved.output[-4000:]
    assert drill.verify(aws, context)
    assert mutating_calls(aws, MUTATING).count("UpdateService") == 0  # the ECS service was already scaled out
    done = state(aws)
    assert ("firebreak:scaled-from-class", "db.t3.medium") in done["db_tags"]
    notes = [r["msg"] for r in records(approved) if r["event"] == "note"]
    assert any("Gate performance-degradation-db-scale approved" in n or "alice" in n for n in notes), notes[-5:]
