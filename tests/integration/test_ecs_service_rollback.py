"""ecs_service_rollback and ecs_service_status_info against the sandbox (moto behind the fault proxy).

Every test asserts the service's state in moto, not only what the module said.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from sandbox.seed import ecs as seed_ecs
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

ROLLBACK = "tests/integration/playbooks/ecs/rollback.yml"
STATUS = "tests/integration/playbooks/ecs/status.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
MUTATING = {"UpdateService", "TagResource", "UntagResource", "RegisterTaskDefinition", "DeregisterTaskDefinition"}


def running(aws) -> str:
    """``family:revision`` the seeded service runs, read from moto."""
    service = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    return service["taskDefinition"].rsplit("/", 1)[-1]


def service_tags(aws) -> dict:
    arn = aws.manifest["aws"]["ecs"]["service_arn"]
    tags = aws.client("ecs").list_tags_for_resource(resourceArn=arn)["tags"]
    return {t["key"]: t["value"] for t in tags}


def result_of(run, task: str) -> dict:
    """The localhost result of ``task`` from a run with the json stdout callback."""
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def rollback(run_playbook, check=False, diff=False, env=None, **options):
    extra = {f"ecs_{key}": value for key, value in options.items()}
    run = run_playbook(ROLLBACK, extra_vars=extra, check=check, diff=diff, env={**JSON_OUTPUT, **(env or {})})
    return run, result_of(run, "Roll back")


def calls(aws) -> list[str]:
    return [entry["action"] for entry in aws.proxy.log() if entry["service"] == "ecs"]


def test_check_mode_with_diff_changes_nothing_and_reports_the_target(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = rollback(run_playbook, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["target_task_definition"] == aws.manifest["aws"]["ecs"]["revisions"]["2"]
    assert result["diff"] == {"before": {"task_definition": "shop-api:3"}, "after": {"task_definition": "shop-api:2"}}
    assert result["before"]["task_definition"] == "shop-api:3"
    assert "would roll back" in result["msg"]
    # nothing changed in moto, and no mutating call was even attempted
    assert running(aws) == "shop-api:3"
    assert not any(key.startswith("firebreak:") for key in service_tags(aws))
    assert not MUTATING & set(calls(aws)), calls(aws)


def test_apply_rolls_back_to_the_previous_revision_and_rerun_is_a_no_op(aws, run_playbook):
    run, result = rollback(run_playbook)
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert running(aws) == "shop-api:2"
    assert result["before"] == {"task_definition": "shop-api:3", "desired_count": 2, "running_count": 2}
    assert result["after"] == {"task_definition": "shop-api:2", "desired_count": 2, "running_count": 2}
    assert result["service"]["arn"] == aws.manifest["aws"]["ecs"]["service_arn"]
    assert result["target_health"][0]["target_group_arn"] == aws.manifest["aws"]["ecs"]["target_group_arn"]
    assert result["target_health"][0]["healthy"] == 2
    tags = service_tags(aws)
    assert tags["firebreak:rolled-back-from"] == "shop-api:3" and tags["firebreak:rolled-back-to"] == "shop-api:2"

    run, again = rollback(run_playbook)
    assert run.returncode == 0, run.output
    assert again["changed"] is False
    assert "already rolled back from shop-api:3 to shop-api:2" in again["msg"]
    assert running(aws) == "shop-api:2", "a re-run must not roll back to N-2"


def test_explicit_target_revision_one(aws, run_playbook):
    run, result = rollback(run_playbook, task_definition="shop-api:1")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["after"]["task_definition"] == "shop-api:1"
    assert running(aws) == "shop-api:1"


def test_explicit_target_as_arn_and_as_revision_number(aws, run_playbook):
    arn = aws.manifest["aws"]["ecs"]["revisions"]["1"]
    run, result = rollback(run_playbook, task_definition=arn)
    assert run.returncode == 0, run.output
    assert running(aws) == "shop-api:1"
    run, result = rollback(run_playbook, task_definition="1")  # already there, given as a revision number
    assert run.returncode == 0 and result["changed"] is False, run.output


def test_rollback_from_a_revision_the_service_is_not_on_changes_nothing(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = rollback(run_playbook, rollback_from="shop-api:2")
    assert run.returncode == 0, run.output
    assert result["changed"] is False
    assert "not shop-api:2 (rollback_from)" in result["msg"]
    assert running(aws) == "shop-api:3"
    assert not MUTATING & set(calls(aws))


def test_rollback_from_the_current_revision_rolls_back(aws, run_playbook):
    run, result = rollback(run_playbook, rollback_from="shop-api:3")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and running(aws) == "shop-api:2"


def _deregister_revision_one(aws):
    aws.client("ecs").deregister_task_definition(taskDefinition="shop-api:1")


def _register_other_family(aws):
    ecs = aws.client("ecs")
    ecs.register_task_definition(
        family="billing-api",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=seed_ecs.container_definitions("registry.local/billing-api:1.0.0"),
    )


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "prepare", "expected"),
    [
        ({"task_definition": "shop-api:99"}, None, "task definition 'shop-api:99' does not exist"),
        ({"task_definition": "shop-api:1"}, _deregister_revision_one, "'shop-api:1' is INACTIVE"),
        ({"task_definition": "billing-api:1"}, _register_other_family, "'billing-api:1' is of family 'billing-api'"),
        ({"task_definition": "arn:aws:ecs:bogus"}, None, "malformed task definition 'arn:aws:ecs:bogus'"),
        ({"service": "no-such-service"}, None, "ECS service 'no-such-service' not found in cluster 'shop'"),
        ({"cluster": "no-such-cluster"}, None, "ECS cluster 'no-such-cluster' not found"),
    ],
    ids=[
        "missing-revision",
        "inactive-revision",
        "other-family",
        "malformed-arn",
        "missing-service",
        "missing-cluster",
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, prepare, expected):
    if prepare:
        prepare(aws)
    aws.proxy.clear_log()
    run, result = rollback(run_playbook, **options)
    assert run.returncode != 0, "the task must fail"
    assert result.get("failed") is True
    assert expected in result["msg"], result["msg"]
    assert result.get("changed") is False
    assert running(aws) == "shop-api:3"
    assert not MUTATING & set(calls(aws)), calls(aws)


def test_other_family_is_allowed_when_asked(aws, run_playbook):
    _register_other_family(aws)
    run, _result = rollback(run_playbook, task_definition="billing-api:1", allow_other_family=True)
    assert run.returncode == 0, run.output
    assert running(aws) == "billing-api:1"


@pytest.mark.proof
def test_throttled_update_service_is_retried(aws, run_playbook):
    # AWS_MAX_ATTEMPTS=1 turns botocore's own retries off: the module's AWSRetry must do it.
    aws.proxy.add_rule({"service": "ecs", "action": "UpdateService", "fault": "throttle", "count": 2})
    aws.proxy.clear_log()
    run, result = rollback(run_playbook, env={"AWS_MAX_ATTEMPTS": "1"})
    assert run.returncode == 0, run.output
    assert result["changed"] is True and running(aws) == "shop-api:2"
    updates = [e for e in aws.proxy.log() if e["action"] == "UpdateService"]
    assert [e["fault"] for e in updates] == ["throttle", "throttle", None], updates


def test_no_wait_still_changes_the_service(aws, run_playbook):
    run, result = rollback(run_playbook, wait=False)
    assert run.returncode == 0, run.output
    assert "not waiting" in result["msg"]
    assert running(aws) == "shop-api:2"


def test_status_info_lists_revisions_newest_first_and_target_health(aws, run_playbook):
    ecs = aws.client("ecs")
    bad = seed_ecs.register_revision(ecs, "registry.local/shop-api:bad-build")
    ecs.update_service(cluster="shop", service="shop-api", taskDefinition=f"shop-api:{bad['revision']}")
    ecs.deregister_task_definition(taskDefinition="shop-api:1")
    aws.proxy.clear_log()

    run = run_playbook(STATUS, env=JSON_OUTPUT, check=True)
    assert run.returncode == 0, run.output
    result = result_of(run, "Triage")
    assert result["changed"] is False
    revisions = result["task_definitions"]
    assert [r["revision"] for r in revisions] == [4, 3, 2, 1]
    assert [r["status"] for r in revisions] == ["ACTIVE", "ACTIVE", "ACTIVE", "INACTIVE"]
    assert revisions[0]["images"] == ["registry.local/shop-api:bad-build"] and revisions[0]["current"] is True
    assert revisions[1]["images"] == ["registry.local/shop-api:1.2.0"] and revisions[1]["current"] is False
    service = result["service"]
    assert service["task_definition_revision"] == "shop-api:4"
    # The sandbox shows the bad image's tasks stopping and its targets failing (docs/sandbox.md).
    assert (service["desired_count"], service["running_count"], service["status"]) == (2, 0, "ACTIVE")
    assert service["deployments"][0]["failed_tasks"] >= 2
    assert service["load_balancers"][0]["target_group_arn"] == aws.manifest["aws"]["ecs"]["target_group_arn"]
    health = result["target_health"]
    assert len(health) == 1 and health[0]["unhealthy"] == 2 and health[0]["states"] == {"unhealthy": 2}
    assert sorted(t["id"] for t in health[0]["targets"]) == aws.manifest["aws"]["ecs"]["target_ips"]
    assert not MUTATING & set(calls(aws))

    run = run_playbook(STATUS, extra_vars={"ecs_revisions": 2}, env=JSON_OUTPUT)
    assert [r["revision"] for r in result_of(run, "Triage")["task_definitions"]] == [4, 3]


# -- issue 5 item 9: a permanent 5xx on UpdateService ---------------------------------------------------


BUDGET_5XX = 12
RECORD_GRACE = 3  # seconds from the module's exit to the controller's failure record, under load


def _timeline(run) -> list[dict]:
    return [json.loads(line) for line in run.timeline.read_text().splitlines()]


@pytest.mark.proof
def test_permanent_5xx_on_update_service_fails_within_the_budget_claims_nothing_and_a_rerun_completes(
    aws, run_playbook
):
    rule = aws.proxy.add_rule({"service": "ecs", "action": "UpdateService", "fault": "error", "status": 500})
    aws.proxy.clear_log()
    # A budget lower than the default (60 s; tests/unit/test_step.py proves the default's bound with a fake
    # clock) proves the same behaviour in a fifth of the time.
    run, result = rollback(run_playbook, retry_budget=BUDGET_5XX)
    assert run.returncode != 0, run.output
    log = aws.proxy.log()
    first_call = datetime.fromisoformat(log[0]["time"])
    failed = next(r for r in _timeline(run) if r["event"] == "task_failed")
    step_seconds = (datetime.fromisoformat(failed["ts"].replace("Z", "+00:00")) - first_call).total_seconds()
    updates = [e for e in log if e["action"] == "UpdateService"]
    # The budget bounds the calls: no attempt starts after it. The failure record is written by the controller
    # once the module has exited, which under load takes a moment more (CI once saw 12.007 s for a 12 s budget).
    last_attempt = (datetime.fromisoformat(updates[-1]["time"]) - first_call).total_seconds()
    assert last_attempt < BUDGET_5XX, f"an attempt started {last_attempt:.1f}s after the first call"
    assert step_seconds < BUDGET_5XX + RECORD_GRACE, f"the step took {step_seconds:.1f}s to fail"
    assert len(updates) > 1 and all(e["status"] == 500 for e in updates), "a 5xx is retried, within the budget"
    message = result["msg"]
    for expected in ("UpdateService", "InternalFailure", "shop-api", "shop-api:2"):
        assert expected in message, f"{expected!r} not in {message!r}"
    assert result["aws_operation"] == "UpdateService" and result["aws_error_code"] == "InternalFailure"
    # nothing claims a rollback that did not happen
    assert running(aws) == "shop-api:3"
    tags = service_tags(aws)
    assert "firebreak:rolled-back-to" not in tags and "firebreak:rolled-back-from" not in tags, tags
    assert tags.get("firebreak:rollback-pending", "").startswith("from=shop-api:3 to=shop-api:2"), tags
    assert result["rollback"]["state"] == "pending"

    # the fault clears: a re-run (same options) completes the pending rollback and records it
    aws.proxy.remove_rule(rule)
    run, again = rollback(run_playbook, retry_budget=10)
    assert run.returncode == 0, run.output
    assert again["changed"] is True and "pending" in again["msg"], again["msg"]
    assert running(aws) == "shop-api:2"
    tags = service_tags(aws)
    assert tags["firebreak:rolled-back-from"] == "shop-api:3" and tags["firebreak:rolled-back-to"] == "shop-api:2"
    assert "firebreak:rollback-pending" not in tags
    run, third = rollback(run_playbook, retry_budget=10)
    assert run.returncode == 0 and third["changed"] is False and running(aws) == "shop-api:2"


def test_update_reached_but_unrecorded_is_reconciled_not_rolled_back_further(aws, run_playbook):
    # A pending record whose update did reach the service (the final tag was lost): the re-run records it.
    ecs = aws.client("ecs")
    arn = aws.manifest["aws"]["ecs"]["service_arn"]
    ecs.tag_resource(
        resourceArn=arn, tags=[{"key": "firebreak:rollback-pending", "value": "from=shop-api:3 to=shop-api:2"}]
    )
    ecs.update_service(cluster="shop", service="shop-api", taskDefinition="shop-api:2")
    aws.proxy.clear_log()
    run, result = rollback(run_playbook, retry_budget=10)
    assert run.returncode == 0, run.output
    assert running(aws) == "shop-api:2", "the reconciling run must not roll back to N-2"
    assert "UpdateService" not in calls(aws)
    tags = service_tags(aws)
    assert tags["firebreak:rolled-back-to"] == "shop-api:2" and "firebreak:rollback-pending" not in tags
    assert result["changed"] is True and "recorded" in result["msg"]


@pytest.mark.proof
def test_throttled_twice_update_service_succeeds_with_bounded_retries(aws, run_playbook):
    aws.proxy.add_rule({"service": "ecs", "action": "UpdateService", "fault": "throttle", "count": 2})
    aws.proxy.clear_log()
    run, result = rollback(run_playbook, retry_budget=20)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and running(aws) == "shop-api:2"
    assert [e["fault"] for e in aws.proxy.log() if e["action"] == "UpdateService"] == ["throttle", "throttle", None]
