"""Drill: the ECS service is down after a bad deploy (seeds/ecs-fargate-plan.md, "Service Completely Down").

The fault: a new revision of the seeded ``shop-api`` family with a broken image (``...:bad-build``) is
registered and the service is updated to it, as a bad pipeline deploy would. The runbook
(``playbooks/service_down.yml``) must roll the service back to the last good revision (the seeded
current one, revision 3), wait until it is stable and verify target health.

The sandbox shows the bad revision as ECS and the ALB would (docs/sandbox.md, "ECS services that fail"):
its tasks keep stopping with ``CannotPullContainerError``, the service's deployment counts failed tasks,
runningCount is 0 and the targets are unhealthy until the service runs a good revision again.
``verify`` checks the rollback itself (the task definition) and that health really came back; ``verify_record``
checks the incident frame's record: the declaration and resolution in the timeline and a report naming the severity.
The drill runs non-interactively: the sandbox's gate policy runs a rollback ungated (docs/frame.md), so nothing is
asked; the gate's decision is in the timeline.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.drills import frame_record
from sandbox.seed import ecs as seed_ecs

PLAYBOOK = "playbooks/service_down.yml"
DESCRIPTION = "ECS service on a bad task definition revision: roll back, wait stable, verify targets"
BAD_IMAGE = f"{seed_ecs.IMAGE}:bad-build"


def _manifest(sandbox) -> dict:
    manifest = (sandbox.manifest or {}).get("aws", {}).get("ecs")
    if not manifest:
        raise RuntimeError("the sandbox has no ECS seed (manifest['aws']['ecs']); was it started with AWS?")
    return manifest


def _revision(task_definition: str) -> str:
    """``family:revision`` of an ARN or ``family:revision`` (moto stores what was passed)."""
    return task_definition.rsplit("/", 1)[-1]


def inject(sandbox) -> dict:
    """Deploy a bad revision to the seeded service; return the playbook's extra vars and, under ``_drill``,
    what ``verify`` needs."""
    seeded = _manifest(sandbox)
    ecs = sandbox.client("ecs")
    family, cluster, service = seeded["family"], seeded["cluster"], seeded["service"]
    good = f"{family}:{seeded['current']}"

    bad = seed_ecs.register_revision(ecs, BAD_IMAGE)
    bad_ref = f"{family}:{bad['revision']}"
    ecs.update_service(cluster=cluster, service=service, taskDefinition=bad["taskDefinitionArn"])
    running = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["taskDefinition"]
    if _revision(running) != bad_ref:
        raise RuntimeError(f"fault injection failed: {service} runs {running}, expected {bad_ref}")

    return {
        "service_down_cluster": cluster,
        "service_down_service": service,
        "service_down_rollback_from": bad_ref,
        "_drill": {
            "cluster": cluster,
            "service": service,
            "good": good,
            "bad": bad_ref,
            "bad_arn": bad["taskDefinitionArn"],
            "target_group_arn": seeded["target_group_arn"],
            "fault": f"{service} in cluster {cluster} was deployed on bad revision {bad_ref} (image {BAD_IMAGE})",
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    """Check in moto that the service runs the good revision again and its targets are healthy."""
    drill = context["_drill"]
    ecs = sandbox.client("ecs")
    found = ecs.describe_services(cluster=drill["cluster"], services=[drill["service"]])["services"]
    assert found, f"service {drill['service']} not found in cluster {drill['cluster']}"
    service = found[0]
    running = _revision(service["taskDefinition"])
    assert running != drill["bad"], (
        f"{drill['service']} still runs the bad revision {drill['bad']} ({BAD_IMAGE}): it was not rolled back"
    )
    assert running == drill["good"], (
        f"{drill['service']} runs {running}, expected the last good revision {drill['good']}"
    )
    assert service["runningCount"] == service["desiredCount"], (
        f"{drill['service']} runs {service['runningCount']} of {service['desiredCount']} desired tasks"
    )
    image = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    images = [c["image"] for c in image["containerDefinitions"]]
    assert BAD_IMAGE not in images, f"{running} still uses the bad image {BAD_IMAGE}"

    health = sandbox.client("elbv2").describe_target_health(TargetGroupArn=drill["target_group_arn"])
    states = [d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]]
    healthy = states.count("healthy")
    assert healthy > 0, f"no healthy targets in {drill['target_group_arn']} (states: {states})"

    return [
        f"{drill['service']} runs {running} (images {', '.join(images)}), not the bad {drill['bad']}",
        f"{service['runningCount']}/{service['desiredCount']} tasks running",
        f"{healthy}/{len(states)} targets healthy in {drill['target_group_arn'].rsplit(':', 1)[-1]}",
    ]


def verify_record(timeline: Path, report: Path) -> list[str]:
    """Check the frame's record of the drill: real (not check-mode) declared and resolved lifecycle records, the
    gate's decision, a rollback whose symptom was confirmed, and a report that names the severity."""
    frame = frame_record(timeline, report)
    # the rollback that changed the service (a re-run, as Molecule's idempotence step makes, records a no-op after it)
    rollbacks = frame.changed("ecs_service_rollback")
    assert rollbacks, f"no rollback changed the service in {timeline}"
    assert rollbacks[-1]["details"].get("symptom", {}).get("confirmed"), "the symptom was not confirmed"
    return [
        *frame.summary(),
        f"report {Path(report).name} verifies the chain and names severity {frame.declared['severity']}",
    ]
