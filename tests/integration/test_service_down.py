"""The service_down scenario end to end: inject the drill's fault, run the runbook, verify recovery in moto."""

from __future__ import annotations

import json

import pytest

from sandbox.drills import service_down

pytestmark = [pytest.mark.integration, pytest.mark.drill]


def running(aws) -> str:
    service = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    return service["taskDefinition"].rsplit("/", 1)[-1]


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def test_scenario_recovers_the_service(aws, run_playbook):
    context = service_down.inject(aws)
    assert running(aws) == context["_drill"]["bad"] == "shop-api:4"

    run = run_playbook(service_down.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output
    checks = service_down.verify(aws, context)
    assert running(aws) == "shop-api:3"
    assert any("shop-api:3" in line for line in checks)
    assert "rolled back shop-api from shop-api:4 to shop-api:3" in run.stdout

    again = run_playbook(service_down.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output
    assert "changed=0" in again.stdout, "a re-run of the scenario must change nothing"
    assert running(aws) == "shop-api:3"


def test_the_rollback_evidence_shows_the_bad_state_before_and_the_healthy_state_after(aws, run_playbook):
    """The sandbox shows the bad revision as ECS and the ALB would (tasks stopping, targets unhealthy):
    the rollback module's captured before-state must say so, and its after-state must be healthy."""
    context = service_down.inject(aws)
    target_group = context["_drill"]["target_group_arn"]
    run = run_playbook(
        service_down.PLAYBOOK, extra_vars=extra_vars(context), env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    )
    assert run.returncode == 0, run.output
    # Other steps print one-line JSON of their own; the callback's document is the one with "plays".
    decoder, text, data = json.JSONDecoder(), run.stdout, None
    for at in (i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")):
        doc = decoder.raw_decode(text, at)[0]
        if "plays" in doc:
            data = doc
            break
    assert data, run.output[-3000:]
    [result] = [
        entry["hosts"]["localhost"]
        for play in data["plays"]
        for entry in play["tasks"]
        if "Capture the before-state, roll back" in entry["task"]["name"]
    ]

    before = result["captured"]
    [health] = before["target_health"]
    assert (health["target_group_arn"], health["healthy"], health["unhealthy"]) == (target_group, 0, 2)
    assert {t["reason"] for t in health["targets"]} == {"Target.FailedHealthChecks"}
    summary = before["service"]
    assert summary["task_definition_revision"] == "shop-api:4"
    assert summary["running_count"] == 0
    assert summary["deployments"][0]["failed_tasks"] >= 2
    messages = [event["message"] for event in summary["events"]]
    assert any(m.startswith("(service shop-api) has started 2 tasks") for m in messages), messages

    [after] = result["target_health"]
    assert (after["healthy"], after["unhealthy"]) == (2, 0)
    found = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    assert (found["runningCount"], found["deployments"][0]["rolloutState"]) == (2, "COMPLETED")
    assert found["events"][0]["message"] == "(service shop-api) has reached a steady state."


def test_verify_fails_when_the_service_was_not_rolled_back(aws):
    context = service_down.inject(aws)
    with pytest.raises(AssertionError, match="still runs the bad revision shop-api:4"):
        service_down.verify(aws, context)


def test_scenario_check_mode_changes_nothing(aws, run_playbook):
    context = service_down.inject(aws)
    aws.proxy.clear_log()
    run = run_playbook(service_down.PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True)
    assert run.returncode == 0, run.output
    assert "DRY RUN, nothing changed. check mode: would roll back shop-api from shop-api:4 to shop-api:3" in run.stdout
    assert running(aws) == "shop-api:4"
    mutating = {"UpdateService", "TagResource", "UntagResource"}
    assert not mutating & {entry["action"] for entry in aws.proxy.log()}


def test_scenario_refuses_a_non_local_endpoint(aws, run_playbook):
    context = service_down.inject(aws)
    run = run_playbook(
        service_down.PLAYBOOK,
        extra_vars=extra_vars(context),
        env={"FIREBREAK_AWS_ENDPOINT_URL": "https://ecs.us-east-1.amazonaws.com"},
    )
    assert run.returncode != 0
    assert "requires local endpoints" in run.stdout
    assert running(aws) == "shop-api:4"
