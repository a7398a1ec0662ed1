"""The high_error_rate scenario end to end on the incident frame: the drill's fault (a recent deploy while the ALB
reports 5xx and a slow p95) is previewed with --check, rolled back, verified and reported, and a re-run changes
nothing; production without an approval stops before the gated drain; a saturated service with no recent deploy is
scaled out with its old count recorded, and a re-run of that incident scales to the same target (nothing grows).

moto keeps no ALB metrics and no percentiles: ``high_error_rate.arm_errors`` has the fault proxy answer the symptom
read's two GetMetricStatistics calls (5xx count, p95) as CloudWatch would during the errors; the verification then
reads moto (no datapoints: no 5xx, no slow requests). Each test runs the playbook as few times as it can (the
test-time budget of docs/development.md)."""

from __future__ import annotations

import datetime

import pytest

from sandbox.drills import high_error_rate
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

PLAYBOOK = high_error_rate.PLAYBOOK
MUTATING = {
    "UpdateService",
    "TagResource",
    "UntagResource",
    "RegisterTaskDefinition",
    "DeregisterTaskDefinition",
    "DeregisterTargets",
    "RegisterTargets",
}


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def state(aws) -> dict:
    ecs = aws.client("ecs")
    service = ecs.describe_services(cluster="shop", services=["shop-api"], include=["TAGS"])["services"][0]
    tg = aws.manifest["aws"]["ecs"]["target_group_arn"]
    targets = aws.client("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {
        "task_definition": service["taskDefinition"].rsplit("/", 1)[-1],
        "desired": service["desiredCount"],
        "tags": sorted((t["key"], t["value"]) for t in service.get("tags") or []),
        "deployments": [(d["id"], d["taskDefinition"]) for d in service["deployments"]],
        "task_definitions": sorted(ecs.list_task_definitions(familyPrefix="shop-api")["taskDefinitionArns"]),
        "targets": sorted(t["Target"]["Id"] for t in targets),
    }


def test_recent_deploy_is_previewed_rolled_back_verified_and_a_rerun_changes_nothing(aws, run_playbook):
    context = high_error_rate.inject(aws)
    before = state(aws)
    assert before["task_definition"] == context["_drill"]["bad"] == "shop-api:4"

    # --check: the whole plan, nothing changed in AWS, nothing recorded as real
    aws.proxy.clear_log()
    dry = run_playbook(PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True)
    assert dry.returncode == 0, dry.output[-4000:]
    assert state(aws) == before and mutating_calls(aws, MUTATING) == []
    assert "DRY RUN, nothing changed. check mode: would roll back shop-api from shop-api:4 to shop-api:3" in dry.stdout
    assert "cause: recent_deploy; step: rollback" in dry.stdout
    symptom = "ALB 5xx per minute: Sum 180.0 > threshold 10.0; ALB p95 response time: p95 2.5 > threshold 1.0"
    assert symptom in dry.stdout
    assert [e["event"] for e in lifecycle(dry)] == ["declared", "update", "resolved"]
    assert lifecycle(dry, real=True) == [] and not dry.timeline.with_name("report.md").exists()

    # converge: the errors are still there (the proxy answers the symptom read again)
    high_error_rate.arm_errors(aws)
    run = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    checks = high_error_rate.verify(aws, context)
    assert state(aws)["task_definition"] == "shop-api:3" and any("shop-api:3" in line for line in checks)
    assert "rolled back shop-api from shop-api:4 to shop-api:3" in run.stdout
    assert "left for a person: find the failing endpoints" in run.stdout

    declared, resolved = lifecycle(run, "declared", real=True), lifecycle(run, "resolved", real=True)
    assert [(d["severity"], d["type"], d["environment"]) for d in declared] == [("P2", "high_error_rate", "sandbox")]
    assert declared[0]["title"] == "High error rate on shop-api"
    assert [u["status"] for u in lifecycle(run, "update", real=True)] == ["monitoring"]
    assert len(resolved) == 1 and "from shop-api:4 to shop-api:3" in resolved[0]["summary"]
    tasks = [r for r in records(run) if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    tasks = [r for r in tasks if not r.get("check_mode")]
    actions = [r["action"] for r in tasks]
    [rollback] = [r for r in tasks if r["action"] == "firebreak.runbooks.ecs_service_rollback"]
    assert rollback["event"] == "task_changed"
    assert rollback["details"]["before"]["task_definition"].endswith("shop-api:4")
    assert rollback["details"]["after"]["task_definition"].endswith("shop-api:3")
    first = tasks.index(rollback)
    probe = next(r for r in tasks if r["action"] == "firebreak.runbooks.health_verify")
    assert tasks.index(probe) < first and probe["details"]["passed"] is False  # the symptom, read before
    assert actions.index("firebreak.runbooks.ecs_service_status_info") < first  # the read-only triage
    assert actions.index("firebreak.runbooks.incident_lifecycle") < first  # declared before the change
    gate = [r["msg"] for r in tasks[:first] if r["event"] == "note" and "Gate high-error-rate-rollback" in r["msg"]]
    assert gate and "passed without approval" in gate[0]
    verified = [r for r in tasks[first:] if r["action"] == "firebreak.runbooks.health_verify"]
    assert verified and verified[-1]["details"]["passed"] is True
    assert {c["target"] for c in verified[-1]["details"]["checks"]} >= {"ALB 5xx per minute", "ALB p95 response time"}
    assert actions.index("firebreak.runbooks.aws_triage_info") > first  # evidence after the mitigation
    assert actions.index("firebreak.runbooks.incident_report") < actions.index("firebreak.runbooks.incident_seal")
    report = run.timeline.with_name("report.md")
    assert report.is_file() and "hash chain verified" in report.read_text()
    assert any("verifies the chain" in line for line in high_error_rate.verify_record(run.timeline, report))

    # re-run with the errors still reported (an alarm lags): the rollback is recognised, nothing changes in AWS
    converged, seen = state(aws), len(records(run))
    high_error_rate.arm_errors(aws)
    aws.proxy.clear_log()
    again = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    assert "cause: already_rolled_back; step: rollback" in again.stdout
    assert "already rolled back from shop-api:4 to shop-api:3" in again.stdout
    again_changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"]
    assert again_changed == ["firebreak.runbooks.incident_report"], again_changed
    assert state(aws) == converged and mutating_calls(aws, MUTATING) == []


def test_production_without_approval_stops_before_the_drain_saying_how_to_confirm(aws, run_playbook):
    context = high_error_rate.inject(aws)
    target = aws.manifest["aws"]["ecs"]["target_ips"][0]
    before = state(aws)
    aws.proxy.clear_log()
    run = run_playbook(
        PLAYBOOK,
        extra_vars={
            **extra_vars(context),
            "firebreak_environment": "production",
            "high_error_rate_drain_targets": target,
        },
    )
    assert run.returncode != 0
    text = " ".join(run.output.split())
    assert "gate high-error-rate-drain not confirmed (approval_required in production): nothing was changed" in text
    assert '"firebreak_gate_approvals": {"high-error-rate-drain":' in text  # how to confirm
    assert "check mode: would deregister 1 target(s) from 1 target group(s)" in text  # the plan it showed
    assert "1 change(s) on 1 resource(s)" in text
    assert state(aws) == before and mutating_calls(aws, MUTATING) == []
    assert not lifecycle(run, "resolved", real=True)


def test_saturated_service_without_a_recent_deploy_is_scaled_out_and_the_old_count_recorded(aws, run_playbook):
    """No deploy injected. The seeded service's only deployment is seconds old in a fresh sandbox, so a window of 0
    minutes says no deployment counts as recent; CPU at 97% (moto keeps this metric) is the resource constraint."""
    now = datetime.datetime.now(datetime.UTC)
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/ECS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "ClusterName", "Value": "shop"}, {"Name": "ServiceName", "Value": "shop-api"}],
                "Value": 97.0,
                "Unit": "Percent",
                "Timestamp": now - datetime.timedelta(minutes=1),
            }
        ],
    )
    high_error_rate.arm_errors(aws)
    before = state(aws)
    extra = {
        "high_error_rate_load_balancer": aws.manifest["aws"]["ecs"]["load_balancer_arn"],
        "high_error_rate_deploy_window": 0,
    }
    run = run_playbook(PLAYBOOK, extra_vars=extra)
    assert run.returncode == 0, run.output[-4000:]
    assert "cause: resources; step: scale_out; signs: saturated: Maximum 97.0 > threshold 85.0" in run.stdout
    after = state(aws)
    assert (before["desired"], after["desired"]) == (2, 4)
    assert after["task_definition"] == before["task_definition"] == "shop-api:3"  # not rolled back
    assert any(key.startswith("firebreak") and value == "2" for key, value in after["tags"]), after["tags"]
    service = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    assert service["runningCount"] == 4
    notes = [r["msg"] for r in records(run) if r["event"] == "note" and "cause resources" in (r.get("msg") or "")]
    assert notes and "scale_out_state=restored" in notes[0]
    [scale] = [
        r for r in records(run) if r["action"] == "firebreak.runbooks.ecs_service_scale" and not r.get("check_mode")
    ]
    assert scale["event"] == "task_changed" and scale["details"]["before"]["desired_count"] == 2
    assert [r["status"] for r in lifecycle(run, "resolved", real=True)] == ["resolved"]

    # a re-run of the incident (the errors gone, the CPU still high): the target is twice the count before the
    # incident's first scale-out (read back from its timeline), not twice the count now, so nothing grows
    again = run_playbook(PLAYBOOK, extra_vars=extra)
    assert again.returncode == 0, again.output[-4000:]
    assert state(aws) == after
    [_, rescale] = [
        r for r in records(again) if r["action"] == "firebreak.runbooks.ecs_service_scale" and not r.get("check_mode")
    ]
    assert rescale["event"] == "task_ok" and rescale["details"]["after"]["desired_count"] == 4
