"""Seed: the ECS Fargate service of the "FastAPI on ECS Fargate" plan (seeds/ecs-fargate-plan.md).

Cluster ``shop`` runs service ``shop-api`` (FARGATE, awsvpc, desired count 2) behind an internet-facing
ALB, on task definition ``shop-api:3``; revisions 1..3 of the family are ACTIVE, so a runbook has a
"last stable" revision to roll back to. Two IP targets are registered so the target group reports
healthy targets (moto reports registered targets as healthy).

Runs before every AWS test: keep it to the calls the scenarios need (~20 requests, well under 0.5 s).
"""

from __future__ import annotations

CLUSTER = "shop"
SERVICE = "shop-api"
FAMILY = "shop-api"
IMAGE = "registry.local/shop-api"
IMAGE_TAGS = {1: "1.0.0", 2: "1.1.0", 3: "1.2.0"}
CURRENT_REVISION = 3
CONTAINER_PORT = 8000
LOG_GROUP = "/ecs/shop-api"
ALB_NAME = "shop-alb"
TARGET_GROUP_NAME = "shop-api-tg"
DESIRED_COUNT = 2
# Task IPs as ECS would register them (awsvpc: one ENI per task, in the seeded subnets' 10.0.0.0/16).
TARGET_IPS = ("10.20.1.10", "10.20.2.10")  # inside the seeded subnets


def container_definitions(image: str, region: str = "us-east-1") -> list[dict]:
    """The container of the shop-api task definition, with ``image``."""
    return [
        {
            "name": "api",
            "image": image,
            "essential": True,
            "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": LOG_GROUP,
                    "awslogs-region": region,
                    "awslogs-stream-prefix": "api",
                },
            },
        }
    ]


def register_revision(ecs, image: str) -> dict:
    """Register the next revision of the family with ``image``; return the task definition."""
    return ecs.register_task_definition(
        family=FAMILY,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=container_definitions(image, ecs.meta.region_name),
    )["taskDefinition"]


def seed(make_client, network: dict) -> dict:
    """Create cluster, task definition revisions, ALB, target group, listener and service; return their ids.

    ``revisions`` maps the revision number, as a string (JSON keys), to its ARN; ``current`` is the revision
    number (int) the service runs."""
    ecs = make_client("ecs")
    elbv2 = make_client("elbv2")

    cluster_arn = ecs.create_cluster(clusterName=CLUSTER)["cluster"]["clusterArn"]
    revisions = {}
    for revision, tag in sorted(IMAGE_TAGS.items()):
        # keys are strings, as in the sandbox's manifest.json
        revisions[str(revision)] = register_revision(ecs, f"{IMAGE}:{tag}")["taskDefinitionArn"]

    subnets = list(network["subnet_ids"])
    lb_arn = elbv2.create_load_balancer(
        Name=ALB_NAME,
        Subnets=subnets,
        SecurityGroups=[network["security_groups"]["alb"]],
        Scheme="internet-facing",
        Type="application",
    )["LoadBalancers"][0]["LoadBalancerArn"]
    tg_arn = elbv2.create_target_group(
        Name=TARGET_GROUP_NAME,
        Protocol="HTTP",
        Port=CONTAINER_PORT,
        VpcId=network["vpc_id"],
        TargetType="ip",
        HealthCheckProtocol="HTTP",
        HealthCheckPath="/health",
        Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]["TargetGroupArn"]
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
    )["Listeners"][0]["ListenerArn"]

    service_arn = ecs.create_service(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition=revisions[str(CURRENT_REVISION)],
        desiredCount=DESIRED_COUNT,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [network["security_groups"]["app"]],
                "assignPublicIp": "DISABLED",
            }
        },
        loadBalancers=[{"targetGroupArn": tg_arn, "containerName": "api", "containerPort": CONTAINER_PORT}],
    )["service"]["serviceArn"]
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": ip, "Port": CONTAINER_PORT} for ip in TARGET_IPS])

    return {
        "cluster": CLUSTER,
        "cluster_arn": cluster_arn,
        "service": SERVICE,
        "service_arn": service_arn,
        "family": FAMILY,
        "revisions": revisions,
        "current": CURRENT_REVISION,
        "current_arn": revisions[str(CURRENT_REVISION)],
        "load_balancer_arn": lb_arn,
        "target_group_arn": tg_arn,
        "listener_arn": listener_arn,
        "target_ips": list(TARGET_IPS),
        "log_group": LOG_GROUP,
    }
