"""ecs_service_scale against the sandbox: scale out, record the old count, restore it; state read back from moto."""

from __future__ import annotations

import json

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/ecs/scale.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
MUTATING = {"UpdateService", "TagResource", "UntagResource"}


def service(aws) -> dict:
    return aws.client("ecs").describe_services(cluster="shop", services=["shop-api"], include=["TAGS"])["services"][0]


def counts(aws) -> tuple[int, int]:
    found = service(aws)
    return found["desiredCount"], found["runningCount"]


def tags(aws) -> dict:
    return {t["key"]: t["value"] for t in service(aws).get("tags") or []}


def result_of(run, task: str = "Scale") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def scale(run_playbook, check=False, diff=False, **options):
    extra = {f"ecs_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def actions(aws) -> list[str]:
    return [entry["action"] for entry in aws.proxy.log() if entry["service"] == "ecs"]


def test_check_mode_changes_nothing(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = scale(run_playbook, check=True, diff=True, desired_count=5)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["diff"] == {
        "before": {"desired_count": 2},
        "after": {"desired_count": 5},
    }
    assert counts(aws) == (2, 2) and not any(k.startswith("firebreak:scaled") for k in tags(aws))
    assert not MUTATING & set(actions(aws))


def test_scale_out_records_the_old_count_then_restore_puts_it_back(aws, run_playbook):
    run, result = scale(run_playbook, desired_count=5, incident_id="INC-S1")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and counts(aws) == (5, 5)
    assert result["before"]["desired_count"] == 2 and result["after"] == dict(result["after"], desired_count=5)
    assert result["scale"]["from"] == 2 and result["scale"]["to"] == 5 and result["scale"]["recorded"] is True
    recorded = tags(aws)
    assert recorded["firebreak:scaled-from"] == "2" and recorded["firebreak:scaled-to"] == "5"
    assert recorded["firebreak:incident"] == "INC-S1"

    aws.proxy.clear_log()
    run, again = scale(run_playbook, desired_count=5, incident_id="INC-S1")
    assert run.returncode == 0 and again["changed"] is False, run.output
    assert not MUTATING & set(actions(aws))

    # further out: the count to restore stays the one before the first scale-out
    run, further = scale(run_playbook, desired_count=7, incident_id="INC-S1")
    assert run.returncode == 0 and further["changed"] is True and counts(aws) == (7, 7), run.output
    assert tags(aws)["firebreak:scaled-from"] == "2" and tags(aws)["firebreak:scaled-to"] == "7"

    run, restored = scale(run_playbook, state="restored", incident_id="INC-S1")
    assert run.returncode == 0 and restored["changed"] is True, run.output
    assert counts(aws) == (2, 2)
    assert not any(k.startswith("firebreak:scaled") for k in tags(aws))

    aws.proxy.clear_log()
    run, twice = scale(run_playbook, state="restored", incident_id="INC-S1")
    assert run.returncode == 0 and twice["changed"] is False and "nothing to restore" in twice["msg"], run.output
    assert not MUTATING & set(actions(aws))


def test_restore_leaves_a_count_someone_changed_meanwhile_alone(aws, run_playbook):
    run, _ = scale(run_playbook, desired_count=4)
    assert run.returncode == 0, run.output
    aws.client("ecs").update_service(cluster="shop", service="shop-api", desiredCount=6)  # by hand, meanwhile
    run, result = scale(run_playbook, state="restored")
    assert run.returncode == 0, run.output
    assert result["changed"] is False and result["left_alone"] == {"desired_count": 6, "scaled_to": 4, "scaled_from": 2}
    assert counts(aws) == (6, 6) and tags(aws)["firebreak:scaled-from"] == "2"


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"desired_count": 1}, "desired_count 1 is lower than the service's desired count 2"),
        ({"desired_count": 9000}, "desired_count must be an integer from 0 to 5000"),
        ({"desired_count": 4, "service": "no-such-service"}, "ECS service 'no-such-service' not found"),
        ({}, "desired_count"),
    ],
    ids=["scale-in", "too-many", "missing-service", "no-count"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, expected):
    aws.proxy.clear_log()
    run, result = scale(run_playbook, **options)
    assert run.returncode != 0 and result.get("failed") is True
    assert expected in result["msg"], result["msg"]
    assert counts(aws) == (2, 2) and not MUTATING & set(actions(aws))


@pytest.mark.proof
def test_permanent_5xx_fails_within_the_budget_naming_call_code_and_counts(aws, run_playbook):
    aws.proxy.add_rule({"service": "ecs", "action": "UpdateService", "fault": "error", "status": 500})
    run, result = scale(run_playbook, desired_count=4, retry_budget=3)
    assert run.returncode != 0
    for expected in ("UpdateService", "InternalFailure", "shop-api", "desired count 2 -> 4"):
        assert expected in result["msg"], result["msg"]
    assert counts(aws) == (2, 2) and "firebreak:scaled-from" not in tags(aws)
