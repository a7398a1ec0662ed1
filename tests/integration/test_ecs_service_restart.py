"""ecs_service_restart against the sandbox: the state is read back from moto, not only what the module said.

moto replaces the PRIMARY deployment's id and createdAt on forceNewDeployment (it never replaces tasks): that id is
what these tests verify, with the UpdateService call in the fault proxy's log and the restart record on the service.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/ecs/restart.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
MUTATING = {"UpdateService", "TagResource", "UntagResource"}


def service(aws) -> dict:
    return aws.client("ecs").describe_services(cluster="shop", services=["shop-api"], include=["TAGS"])["services"][0]


def primary_id(aws) -> str:
    return next(d["id"] for d in service(aws)["deployments"] if d["status"] == "PRIMARY")


def tags(aws) -> dict:
    return {t["key"]: t["value"] for t in service(aws).get("tags") or []}


def result_of(run, task: str = "Restart") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def restart(run_playbook, check=False, diff=False, **options):
    extra = {f"ecs_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def actions(aws) -> list[str]:
    return [entry["action"] for entry in aws.proxy.log() if entry["service"] == "ecs"]


def test_check_mode_changes_nothing(aws, run_playbook):
    before = primary_id(aws)
    aws.proxy.clear_log()
    run, result = restart(run_playbook, check=True, diff=True, incident_id="INC-R1")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would restart" in result["msg"]
    assert result["diff"]["before"] == {"deployment_id": before}
    assert primary_id(aws) == before and not any(k.startswith("firebreak:") for k in tags(aws))
    assert not MUTATING & set(actions(aws)), actions(aws)


def test_restart_forces_a_new_deployment_records_it_and_a_rerun_in_the_window_is_a_no_op(aws, run_playbook):
    before = primary_id(aws)
    aws.proxy.clear_log()
    run, result = restart(run_playbook, incident_id="INC-R1", capture=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["msg"].startswith("restarted shop-api") and "stable" in result["msg"]
    # the call was made (proxy log), before the record; the deployment changed (moto); the service is stable
    assert actions(aws).index("UpdateService") < actions(aws).index("TagResource")
    after = primary_id(aws)
    assert after != before and result["after"]["deployment_id"] == after and result["before"]["deployment_id"] == before
    now = service(aws)
    assert now["runningCount"] == now["desiredCount"] == 2
    assert now["taskDefinition"].rsplit("/", 1)[-1] == "shop-api:3", "a restart keeps the task definition"
    recorded = tags(aws)
    assert recorded["firebreak:restarted-deployment"] == after and recorded["firebreak:restarted-for"] == "INC-R1"
    assert recorded["firebreak:incident"] == "INC-R1"
    assert result["restart"]["recorded"] is True and result["target_health"][0]["healthy"] == 2
    assert result["captured"]["service"]["task_definition_revision"] == "shop-api:3"
    assert result["captured"]["target_health"][0]["healthy"] == 2

    aws.proxy.clear_log()
    run, again = restart(run_playbook, incident_id="INC-R1")
    assert run.returncode == 0, run.output
    assert again["changed"] is False and "within min_interval" in again["msg"], again["msg"]
    assert primary_id(aws) == after and not MUTATING & set(actions(aws))

    # another incident, or min_interval 0, restarts again
    run, other = restart(run_playbook, incident_id="INC-R2")
    assert run.returncode == 0 and other["changed"] is True, run.output
    assert primary_id(aws) != after and tags(aws)["firebreak:restarted-for"] == "INC-R2"
    third = primary_id(aws)
    run, forced = restart(run_playbook, incident_id="INC-R2", min_interval=0)
    assert run.returncode == 0 and forced["changed"] is True and primary_id(aws) != third, run.output


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"service": "no-such-service"}, "ECS service 'no-such-service' not found in cluster 'shop'"),
        ({"cluster": "no-such-cluster"}, "ECS cluster 'no-such-cluster' not found"),
        ({"min_interval": -5}, "min_interval must be >= 0, got -5"),
    ],
    ids=["missing-service", "missing-cluster", "negative-interval"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, expected):
    before = primary_id(aws)
    aws.proxy.clear_log()
    run, result = restart(run_playbook, **options)
    assert run.returncode != 0 and result.get("failed") is True
    assert expected in result["msg"], result["msg"]
    assert result.get("changed") is False
    assert primary_id(aws) == before and not MUTATING & set(actions(aws))


@pytest.mark.proof
def test_permanent_5xx_fails_within_the_budget_naming_call_code_and_service_and_records_nothing(aws, run_playbook):
    aws.proxy.add_rule({"service": "ecs", "action": "UpdateService", "fault": "error", "status": 500})
    before = primary_id(aws)
    run, result = restart(run_playbook, incident_id="INC-R1", retry_budget=3)
    assert run.returncode != 0
    for expected in ("UpdateService", "InternalFailure", "shop-api", "not restarted"):
        assert expected in result["msg"], result["msg"]
    assert result["changed"] is False and result["aws_error_code"] == "InternalFailure"
    assert primary_id(aws) == before and "firebreak:restarted-at" not in tags(aws)
