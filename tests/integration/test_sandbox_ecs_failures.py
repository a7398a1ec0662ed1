"""The sandbox's ECS and ELBv2 show a revision that cannot run as AWS does (issue 16 part 2, issue 20 part 5).

Image convention shared with the Kubernetes API test server (docs/sandbox-kubernetes.md): a tag that
starts with ``bad``/``broken`` is never pulled, one that starts with ``crash``/``exit`` exits. Each test
is written from the AWS documentation cited in its docstring and talks to the sandbox through boto3.
"""

from __future__ import annotations

import time

import pytest

from sandbox.seed import ecs as seed_ecs

pytestmark = [pytest.mark.integration]

CLUSTER, SERVICE = seed_ecs.CLUSTER, seed_ecs.SERVICE
BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}


def deploy(aws, tag: str, **kwargs) -> str:
    ecs = aws.client("ecs")
    arn = seed_ecs.register_revision(ecs, f"{seed_ecs.IMAGE}:{tag}")["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=arn, **kwargs)
    return arn


def service(aws) -> dict:
    return aws.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def stopped_tasks(aws) -> list[dict]:
    ecs = aws.client("ecs")
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
    return ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []


def target_states(aws) -> list[tuple]:
    tg = aws.manifest["aws"]["ecs"]["target_group_arn"]
    found = aws.client("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return [(d["TargetHealth"]["State"], d["TargetHealth"].get("Reason")) for d in found]


def test_a_good_revision_still_deploys_at_once(aws):
    """Rolling update (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html):
    a new PRIMARY deployment replaces the old one once its tasks run; the service reaches a steady state."""
    arn = deploy(aws, "1.3.0")
    found = service(aws)
    [primary] = found["deployments"]
    assert primary["taskDefinition"] == arn
    assert (primary["status"], primary["rolloutState"], primary["failedTasks"]) == ("PRIMARY", "COMPLETED", 0)
    assert found["runningCount"] == found["desiredCount"] == 2
    assert found["events"][0]["message"] == "(service shop-api) has reached a steady state."
    assert {state for state, _ in target_states(aws)} == {"healthy"}


def test_an_image_that_cannot_be_pulled_stops_its_tasks(aws):
    """Stopped task errors (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html)
    and CannotPullContainer errors (.../task_cannot_pull_image.html): the task stops with stopCode
    TaskFailedToStart and a stoppedReason starting ``CannotPullContainerError:``; DescribeTasks shows
    lastStatus and desiredStatus STOPPED; ListTasks(desiredStatus=STOPPED) lists it."""
    deploy(aws, "bad-build")
    tasks = stopped_tasks(aws)
    assert len(tasks) >= 2
    for task in tasks:
        assert (task["lastStatus"], task["desiredStatus"]) == ("STOPPED", "STOPPED")
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"].startswith("CannotPullContainerError: ")
        assert f"{seed_ecs.IMAGE}:bad-build" in task["stoppedReason"]
        assert task["group"] == "service:shop-api"
    running = aws.client("ecs").list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="RUNNING")
    assert running["taskArns"] == []


def test_an_essential_container_that_exits_stops_its_tasks(aws):
    """Stopped task errors (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html):
    ``Essential container in task exited``, stopCode EssentialContainerExited, the container's exit code."""
    deploy(aws, "crash-1.3.0")
    tasks = stopped_tasks(aws)
    assert tasks
    for task in tasks:
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        assert [c["exitCode"] for c in task["containers"]] == [1]
        assert [c["lastStatus"] for c in task["containers"]] == ["STOPPED"]


def test_a_failing_deployment_counts_failed_tasks_and_stays_in_progress(aws):
    """DescribeServices Deployment (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html):
    failedTasks counts tasks that failed to reach RUNNING; without the circuit breaker the rollout stays
    IN_PROGRESS; service event messages (.../developerguide/service-event-messages-list.html):
    ``(service x) is unable to consistently start tasks successfully``."""
    bad = deploy(aws, "broken-2")
    found = wait_for(lambda: (s := service(aws))["deployments"][0]["failedTasks"] >= 4 and s)
    [primary] = found["deployments"]
    assert (primary["taskDefinition"], primary["status"], primary["rolloutState"]) == (bad, "PRIMARY", "IN_PROGRESS")
    assert found["runningCount"] == primary["runningCount"] == 0 < found["desiredCount"]
    messages = [event["message"] for event in found["events"]]
    assert any(m.startswith("(service shop-api) is unable to consistently start tasks successfully.") for m in messages)
    assert any(m.startswith("(service shop-api) has started 2 tasks: (task ") for m in messages)


def test_the_circuit_breaker_fails_the_deployment(aws):
    """Deployment circuit breaker (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html,
    API_ServiceDeploymentCircuitBreaker: threshold 0.5 x desired count, at least 3, at most 200): once
    failedTasks reaches the threshold the deployment is FAILED with a rolloutStateReason and no more
    tasks are launched."""
    deploy(aws, "bad-build", deploymentConfiguration=BREAKER)
    found = wait_for(lambda: (s := service(aws))["deployments"][0]["rolloutState"] == "FAILED" and s)
    assert found, "the deployment never failed"
    [primary] = found["deployments"]
    assert primary["failedTasks"] >= 3
    assert "circuit breaker" in primary["rolloutStateReason"]
    assert any(e["message"].endswith("deployment failed: tasks failed to start.") for e in found["events"])
    failed = primary["failedTasks"]
    time.sleep(1.2)
    assert service(aws)["deployments"][0]["failedTasks"] == failed


def test_targets_are_unhealthy_until_a_good_revision_serves_them(aws):
    """DescribeTargetHealth (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html):
    State unhealthy, Reason Target.FailedHealthChecks while the service's tasks keep stopping; after
    UpdateService to a revision that runs, the targets are healthy, the tasks run and the new deployment
    is COMPLETED."""
    deploy(aws, "crash-now", deploymentConfiguration=BREAKER)
    assert set(target_states(aws)) == {("unhealthy", "Target.FailedHealthChecks")}
    time.sleep(0.6)
    assert set(target_states(aws)) == {("unhealthy", "Target.FailedHealthChecks")}, "unhealthy stays unhealthy"

    good = aws.manifest["aws"]["ecs"]["current_arn"]
    aws.client("ecs").update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=good)
    found = service(aws)
    [primary] = found["deployments"]
    assert (primary["taskDefinition"], primary["rolloutState"], primary["failedTasks"]) == (good, "COMPLETED", 0)
    assert found["runningCount"] == found["desiredCount"] == 2
    assert {state for state, _ in target_states(aws)} == {"healthy"}
