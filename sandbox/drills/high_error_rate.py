"""Drill: a high error rate on the ECS service after a deploy (seeds/incident-procedures.md "High Error Rate", P2;
seeds/ecs-fargate-plan.md 1 "ALB 5xx/latency high").

The fault: a new revision of the seeded ``shop-api`` family (image ``...:1.3.0``, which starts) is deployed, and the
ALB in front of the service reports a burst of target 5xx answers and a p95 response time of 2.5 s. The runbook
(``playbooks/high_error_rate.yml``) reads the errors, finds the deployment recent, rolls the service back to the
previous revision (the seeded current one, 3), and verifies the 5xx count and p95 below their thresholds.

moto keeps no ALB metrics and has no percentiles (docs/sandbox.md): the fault proxy answers the next
``GetMetricStatistics`` calls with what CloudWatch would answer during the errors (``arm_errors``), as the
health_verify tests do; afterwards moto answers (no datapoints: no 5xx published, no slow requests), which is the
recovered ALB. The first two calls are the runbook's symptom read (the 5xx count, then the p95); its CPU and memory
reads and its verification get moto's answers.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from sandbox.drills import frame_record
from sandbox.seed import ecs as seed_ecs

PLAYBOOK = "playbooks/high_error_rate.yml"
DESCRIPTION = "ECS service on a new revision, ALB 5xx and p95 high: roll back the recent deploy, verify errors and p95"
NEW_IMAGE = f"{seed_ecs.IMAGE}:1.3.0"
ERRORS_5XX = 180.0
P95_SECONDS = 2.5


def _manifest(sandbox) -> dict:
    manifest = (sandbox.manifest or {}).get("aws", {}).get("ecs")
    if not manifest:
        raise RuntimeError("the sandbox has no ECS seed (manifest['aws']['ecs']); was it started with AWS?")
    return manifest


def _revision(task_definition: str) -> str:
    return task_definition.rsplit("/", 1)[-1]


def arm_errors(sandbox, count: int = 2) -> str:
    """The next ``count`` GetMetricStatistics answers show the errors: one datapoint a minute ago with the 5xx
    count (Sum) and the p95 response time (ExtendedStatistics), as CloudWatch documents the answer."""
    at = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)).replace(microsecond=0)
    point = {
        "Timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Sum": ERRORS_5XX,
        "ExtendedStatistics": {"p95": P95_SECONDS},
        "Unit": "None",
    }
    return sandbox.proxy.add_rule(
        {
            "fault": "canned",
            "service": "monitoring",
            "action": "GetMetricStatistics",
            "count": count,
            "body": {"Label": "shop-alb", "Datapoints": [point]},
            "description": "drill high_error_rate: ALB 5xx and p95 during the errors",
        }
    )


def load_balancer_dimension(sandbox) -> str:
    """``app/<name>/<id>`` of the seeded ALB, as CloudWatch names it."""
    return _manifest(sandbox)["load_balancer_arn"].split(":loadbalancer/", 1)[1]


def inject(sandbox) -> dict:
    """Deploy a new revision to the seeded service and arm the ALB's errors; return the playbook's extra vars and,
    under ``_drill``, what ``verify`` needs."""
    seeded = _manifest(sandbox)
    ecs = sandbox.client("ecs")
    family, cluster, service = seeded["family"], seeded["cluster"], seeded["service"]
    good = f"{family}:{seeded['current']}"

    new = seed_ecs.register_revision(ecs, NEW_IMAGE)
    new_ref = f"{family}:{new['revision']}"
    ecs.update_service(cluster=cluster, service=service, taskDefinition=new["taskDefinitionArn"])
    running = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["taskDefinition"]
    if _revision(running) != new_ref:
        raise RuntimeError(f"fault injection failed: {service} runs {running}, expected {new_ref}")
    arm_errors(sandbox)

    return {
        "high_error_rate_platform": "ecs",
        "high_error_rate_cluster": cluster,
        "high_error_rate_service": service,
        "high_error_rate_load_balancer": seeded["load_balancer_arn"],
        "_drill": {
            "cluster": cluster,
            "service": service,
            "good": good,
            "bad": new_ref,
            "target_group_arn": seeded["target_group_arn"],
            "fault": (
                f"{service} in cluster {cluster} was deployed on {new_ref} ({NEW_IMAGE}); the ALB reports "
                f"{ERRORS_5XX:.0f} target 5xx a minute and p95 {P95_SECONDS} s"
            ),
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    """Check in moto that the service runs the previous revision again, steady, with healthy targets."""
    drill = context["_drill"]
    ecs = sandbox.client("ecs")
    found = ecs.describe_services(cluster=drill["cluster"], services=[drill["service"]])["services"]
    assert found, f"service {drill['service']} not found in cluster {drill['cluster']}"
    service = found[0]
    running = _revision(service["taskDefinition"])
    assert running != drill["bad"], f"{drill['service']} still runs the new revision {drill['bad']}: not rolled back"
    assert running == drill["good"], f"{drill['service']} runs {running}, expected the previous {drill['good']}"
    assert service["runningCount"] == service["desiredCount"], (
        f"{drill['service']} runs {service['runningCount']} of {service['desiredCount']} desired tasks"
    )
    health = sandbox.client("elbv2").describe_target_health(TargetGroupArn=drill["target_group_arn"])
    states = [d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]]
    assert states and states.count("healthy") == len(states), f"targets not all healthy: {states}"
    return [
        f"{drill['service']} runs {running}, not the new {drill['bad']}",
        f"{service['runningCount']}/{service['desiredCount']} tasks running, {len(states)} targets healthy",
    ]


def verify_record(timeline: Path, report: Path) -> list[str]:
    """The frame's record: declared and resolved (not check mode), the gate's decision, the rollback, the cause
    note, and a report naming the severity."""
    frame = frame_record(timeline, report)
    assert frame.changed("ecs_service_rollback"), f"no rollback in {timeline}"
    causes = [r["msg"] for r in frame.records if r["event"] == "note" and "cause recent_deploy" in (r.get("msg") or "")]
    assert causes, f"no note of the cause (recent_deploy) in {timeline}"
    declared = frame.declared
    return [
        f"declared {declared['severity']} ({declared['type']}) and resolved in the timeline",
        f"gate: {frame.gates[-1].split(':', 1)[0]}; cause recent_deploy noted",
        f"report {Path(report).name} verifies the chain and names severity {declared['severity']}",
    ]
