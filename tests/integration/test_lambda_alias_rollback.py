"""lambda_alias_rollback against the sandbox: the alias read back from moto, not only the module's word."""

from __future__ import annotations

import json
import time

import pytest

from sandbox.seed.platform import _zip
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/lambda/alias_rollback.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
MUTATING = {"UpdateAlias", "TagResource", "UntagResource", "PublishVersion", "UpdateFunctionConfiguration"}


def result_of(run, task="Roll back") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def rollback(run_playbook, check=False, diff=False, **options):
    extra = {f"lambda_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def alias(aws) -> tuple[str, dict]:
    found = aws.client("lambda").get_alias(FunctionName="thumbnailer", Name="live")
    return found["FunctionVersion"], (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def tags(aws) -> dict:
    return aws.client("lambda").list_tags(Resource=aws.manifest["aws"]["lambda"]["function_arn"])["Tags"]


def mutating_calls(aws, since):
    """Lambda calls after ``since`` (a log seq) that change something. rest-json: action from method+path."""
    found = []
    for entry in aws.proxy.log():
        if entry["seq"] <= since or entry["service"] != "lambda":
            continue
        if entry["method"] in ("PUT", "POST", "DELETE"):
            found.append((entry["method"], entry["path"]))
    return found


def mark(aws) -> int:
    log = aws.proxy.log()
    return log[-1]["seq"] if log else 0


def publish_third_version(aws) -> str:
    client = aws.client("lambda")
    client.update_function_code(FunctionName="thumbnailer", ZipFile=_zip("def handler(e, c):\n    return 3\n"))
    return client.publish_version(FunctionName="thumbnailer")["Version"]


def test_check_mode_reports_the_target_and_changes_nothing(aws, run_playbook):
    seq = mark(aws)
    run, result = rollback(run_playbook, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["target_version"] == "1"
    assert result["diff"]["before"]["function_version"] == "2"
    assert result["diff"]["after"]["function_version"] == "1"
    assert alias(aws) == ("2", {})
    assert "firebreak:alias-rollback:live" not in tags(aws)
    assert mutating_calls(aws, seq) == []


def test_rollback_to_the_previous_version_is_recorded_and_not_repeated(aws, run_playbook):
    run, result = rollback(run_playbook)
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert alias(aws) == ("1", {})
    assert result["before"]["function_version"] == "2" and result["after"]["function_version"] == "1"
    assert "verified" in result["msg"]
    record = tags(aws)["firebreak:alias-rollback:live"]
    assert record.startswith("from=2,to=1,at=")
    assert result["rollback"]["recorded"] is True

    seq = mark(aws)
    run, again = rollback(run_playbook)
    assert run.returncode == 0, run.output
    assert again["changed"] is False and "already rolled back from 2 to 1" in again["msg"]
    assert alias(aws) == ("1", {})
    assert mutating_calls(aws, seq) == []


def test_rollback_from_a_version_the_alias_is_not_on_changes_nothing(aws, run_playbook):
    run, result = rollback(run_playbook, rollback_from="1")
    assert run.returncode == 0, run.output
    assert result["changed"] is False and "not 1 (rollback_from)" in result["msg"]
    assert alias(aws) == ("2", {})


def test_weighted_routing_is_cleared_or_kept_as_asked(aws, run_playbook):
    third = publish_third_version(aws)
    client = aws.client("lambda")
    client.update_alias(
        FunctionName="thumbnailer",
        Name="live",
        FunctionVersion=third,
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.2}},
    )
    run, result = rollback(run_playbook, routing="keep")
    assert run.returncode == 0, run.output
    assert alias(aws) == ("2", {"1": 0.2})
    assert result["after"]["routing"] == {"1": 0.2}

    client.update_alias(
        FunctionName="thumbnailer",
        Name="live",
        FunctionVersion=third,
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    run, result = rollback(run_playbook, rollback_from=third)  # routing: clear (default)
    assert run.returncode == 0, run.output
    assert alias(aws) == ("2", {})


def test_explicit_version(aws, run_playbook):
    publish_third_version(aws)
    run, result = rollback(run_playbook, version="1")
    assert run.returncode == 0, run.output
    assert alias(aws) == ("1", {}) and result["target_version"] == "1"


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"function": "no-such-function"}, "function 'no-such-function' not found"),
        ({"alias": "no-such-alias"}, "alias 'no-such-alias' of function 'thumbnailer' not found"),
        ({"version": "9"}, "version '9' of function 'thumbnailer' does not exist"),
        ({"version": "latest"}, "version 'latest' is not a version number"),
    ],
    ids=["unknown-function", "unknown-alias", "unknown-version", "malformed-version"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, expected):
    seq = mark(aws)
    run, result = rollback(run_playbook, **options)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result.get("changed") is False
    assert alias(aws) == ("2", {})
    assert mutating_calls(aws, seq) == []


def test_no_lower_version_fails_clearly(aws, run_playbook):
    aws.client("lambda").update_alias(FunctionName="thumbnailer", Name="live", FunctionVersion="1")
    run, result = rollback(run_playbook)
    assert run.returncode != 0
    assert "no published version lower than 1" in result["msg"]


@pytest.mark.proof
def test_permanent_5xx_on_update_alias_fails_within_the_budget_naming_call_and_code(aws, run_playbook):
    aws.proxy.add_rule({"service": "lambda", "method": "PUT", "path": "/aliases/live", "fault": "error", "status": 500})
    started = time.monotonic()
    run, result = rollback(run_playbook, retry_budget=8)
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    assert "UpdateAlias" in result["msg"] and "InternalFailure" in result["msg"], result["msg"]
    assert elapsed < 60
    assert alias(aws) == ("2", {})
