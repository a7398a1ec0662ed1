"""The service_down scenario end to end: inject the drill's fault, run the runbook, verify recovery in moto."""

from __future__ import annotations

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
