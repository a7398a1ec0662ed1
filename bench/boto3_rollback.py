"""The baseline for the ECS rollback benchmark: the same API calls as ``ecs_service_rollback``, in boto3.

    python bench/boto3_rollback.py CLUSTER SERVICE BAD_REVISION

Reads the endpoint and credentials from the environment (the sandbox's ``env()``). Rolls the service
back from BAD_REVISION (``family:revision``) to the previous ACTIVE revision, tags the service with the
rollback, waits until the service runs the target and is at its desired count, and reads target health.
"""

from __future__ import annotations

import os
import sys
import time

import boto3


def main(cluster: str, service: str, bad: str) -> int:
    endpoint = os.environ["FIREBREAK_AWS_ENDPOINT_URL"]
    ecs = boto3.client("ecs", endpoint_url=endpoint)
    elbv2 = boto3.client("elbv2", endpoint_url=endpoint)

    current = ecs.describe_services(cluster=cluster, services=[service], include=["TAGS"])["services"][0]
    running = current["taskDefinition"].rsplit("/", 1)[-1]
    if running != bad:
        return 0
    family, revision = running.split(":")
    arns = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    older = sorted(int(arn.rsplit(":", 1)[1]) for arn in arns if int(arn.rsplit(":", 1)[1]) < int(revision))
    target = ecs.describe_task_definition(taskDefinition=f"{family}:{older[-1]}")["taskDefinition"]
    ecs.tag_resource(
        resourceArn=current["serviceArn"],
        tags=[
            {"key": "firebreak:rolled-back-from", "value": running},
            {"key": "firebreak:rolled-back-to", "value": f"{family}:{older[-1]}"},
        ],
    )
    ecs.update_service(cluster=cluster, service=service, taskDefinition=target["taskDefinitionArn"])
    deadline = time.monotonic() + 600
    while True:
        now = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        if now["taskDefinition"].rsplit("/", 1)[-1] in (f"{family}:{older[-1]}", target["taskDefinitionArn"]) and (
            now["runningCount"] == now["desiredCount"]
        ):
            break
        if time.monotonic() > deadline:
            return 1
        time.sleep(1)
    for balancer in now.get("loadBalancers", []):
        elbv2.describe_target_health(TargetGroupArn=balancer["targetGroupArn"])
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
