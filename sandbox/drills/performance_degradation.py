"""Drill: the shop API is slow (seeds/k8s-playbooks.md "Playbook: Performance Degradation"; the P2 path of
seeds/incident-procedures.md; seeds/eks-batch-stepfunctions-plan.md "ALB latency", "normal p95").

The fault: the ALB in front of the seeded ``shop-api`` ECS service answers with a p95 ``TargetResponseTime`` of
2.4 s against a 1 s SLO, while the ``reports-db`` instance behind it runs out of CPU on ``db.t3.medium``. moto
evaluates no CloudWatch metrics and has no extended statistics (p95), so the fault proxy answers
``GetMetricStatistics`` as CloudWatch documents it: once with the p95 rising over the SLO (the symptom check's read),
then with it back under the SLO (what the verification reads after the scale-out; moto cannot make the service
faster). moto accepts any instance class and changes it at once.

The runbook (``playbooks/performance_degradation.yml``) must confirm the p95 over the threshold, scale ``shop-api``
out from 2 to 4 tasks, scale ``reports-db`` up to ``db.t3.large`` behind its own gate (the drill confirms it),
record the old values, and verify the p95 back under the SLO.
"""

from __future__ import annotations

import datetime as dt

PLAYBOOK = "playbooks/performance_degradation.yml"
DESCRIPTION = "ALB p95 over the SLO: scale the ECS service out and the DB instance class up, verify p95"
THRESHOLD = 1.0
SLOW = (0.9, 1.6, 2.4)  # p95 in seconds, oldest datapoint first: rising over the SLO
FAST = (0.8, 0.4, 0.3)  # after the scale-out
DESIRED = 4
DB_CLASS = "db.t3.large"
DB_INSTANCE = "reports-db"


def load_balancer(sandbox) -> str:
    """The ALB's CloudWatch dimension (``app/<name>/<id>``, its ARN's suffix)."""
    return _ecs(sandbox)["load_balancer_arn"].split(":loadbalancer/", 1)[1]


def _ecs(sandbox) -> dict:
    seeded = (sandbox.manifest or {}).get("aws", {}).get("ecs")
    if not seeded:
        raise RuntimeError("the sandbox has no ECS seed (manifest['aws']['ecs']); was it started with AWS?")
    return seeded


def latency(sandbox, values, count: int | None = 1) -> str:
    """The fault proxy answers the next ``count`` (None: every) GetMetricStatistics with these p95 values."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    points = [
        {
            "Timestamp": (now - dt.timedelta(minutes=len(values) - n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ExtendedStatistics": {"p95": value},
            "Unit": "Seconds",
        }
        for n, value in enumerate(values)
    ]
    return sandbox.proxy.add_rule(
        {
            "service": "monitoring",
            "action": "GetMetricStatistics",
            "fault": "canned",
            "count": count,
            "body": {"Label": "TargetResponseTime", "Datapoints": points},
            "description": f"ALB TargetResponseTime p95 {values[-1]} s (moto: no extended statistics)",
        }
    )


def service(sandbox) -> dict:
    seeded = _ecs(sandbox)
    return sandbox.client("ecs").describe_services(cluster=seeded["cluster"], services=[seeded["service"]])["services"][
        0
    ]


def db_class(sandbox, instance: str = DB_INSTANCE) -> str:
    found = sandbox.client("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    return found["DBInstanceClass"]


def inject(sandbox) -> dict:
    """Slow the ALB down (p95 over the SLO once, then back under it); return the playbook's extra vars and, under
    ``_drill``, what ``verify`` needs."""
    seeded = _ecs(sandbox)
    before = service(sandbox)["desiredCount"]
    old_class = db_class(sandbox)
    latency(sandbox, SLOW, count=1)
    latency(sandbox, FAST, count=None)
    return {
        "performance_degradation_load_balancer": load_balancer(sandbox),
        "performance_degradation_threshold": THRESHOLD,
        "performance_degradation_ecs_cluster": seeded["cluster"],
        "performance_degradation_ecs_service": seeded["service"],
        "performance_degradation_ecs_desired_count": DESIRED,
        "performance_degradation_db_instance": DB_INSTANCE,
        "performance_degradation_db_instance_class": DB_CLASS,
        "performance_degradation_health_timeout": 30,
        "firebreak_gate_approvals": {"performance-degradation-db-scale": "yes"},
        "incident_gate_allow_unpinned": True,
        "_drill": {
            "cluster": seeded["cluster"],
            "service": seeded["service"],
            "desired_before": before,
            "class_before": old_class,
            "fault": (
                f"ALB p95 {SLOW[-1]} s over the {THRESHOLD} s SLO; {seeded['service']} runs {before} tasks, "
                f"{DB_INSTANCE} is {old_class}"
            ),
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    """Check in moto: the service runs the scaled-out count, the instance has the new class, the old values kept."""
    drill = context["_drill"]
    found = service(sandbox)
    assert found["desiredCount"] == DESIRED, f"{drill['service']} wants {found['desiredCount']} tasks, not {DESIRED}"
    assert found["runningCount"] == DESIRED, f"{drill['service']} runs {found['runningCount']} tasks, not {DESIRED}"
    listed = sandbox.client("ecs").list_tags_for_resource(resourceArn=found["serviceArn"])["tags"]
    tags = {t["key"]: t["value"] for t in listed}
    recorded = tags.get("firebreak:scaled-from")
    assert recorded == str(drill["desired_before"]), f"the old desired count is not recorded: {tags}"
    klass = db_class(sandbox)
    assert klass == DB_CLASS, f"{DB_INSTANCE} is {klass}, not {DB_CLASS}"
    return [
        f"{drill['service']}: {found['runningCount']}/{found['desiredCount']} tasks (was {drill['desired_before']})",
        f"{DB_INSTANCE}: {klass} (was {drill['class_before']})",
    ]
