"""lambda_limits_raise against the sandbox: the function configuration read back from moto."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/lambda/limits.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}


def result_of(run, task="Raise") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def limits(run_playbook, check=False, diff=False, **options):
    extra = {f"lambda_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def configuration(aws) -> dict:
    client = aws.client("lambda")
    found = client.get_function_configuration(FunctionName="thumbnailer")
    reserved = client.get_function_concurrency(FunctionName="thumbnailer").get("ReservedConcurrentExecutions")
    return {"memory_size": found["MemorySize"], "timeout": found["Timeout"], "reserved_concurrency": reserved}


SEEDED = {"memory_size": 128, "timeout": 3, "reserved_concurrency": None}


def test_check_mode_changes_nothing(aws, run_playbook):
    run, result = limits(run_playbook, check=True, diff=True, memory_size=1024, timeout=60)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["diff"]["after"] == {"memory_size": 1024, "timeout": 60}
    assert configuration(aws) == SEEDED


def test_raise_records_old_values_rerun_is_a_no_op_and_restore_puts_them_back(aws, run_playbook):
    run, result = limits(run_playbook, memory_size=1024, timeout=60)
    assert run.returncode == 0, run.output
    assert configuration(aws) == {"memory_size": 1024, "timeout": 60, "reserved_concurrency": None}
    assert result["changes"] == {"memory_size": {"old": 128, "new": 1024}, "timeout": {"old": 3, "new": 60}}
    assert result["before"] == SEEDED and result["after"]["memory_size"] == 1024

    run, again = limits(run_playbook, memory_size=1024, timeout=60)
    assert run.returncode == 0 and again["changed"] is False, again

    # someone raises the timeout further meanwhile: the restore leaves it alone and says so
    aws.client("lambda").update_function_configuration(FunctionName="thumbnailer", Timeout=120)
    run, restored = limits(run_playbook, state="restored", previous=result["changes"])
    assert run.returncode == 0, run.output
    assert configuration(aws) == {"memory_size": 128, "timeout": 120, "reserved_concurrency": None}
    assert restored["changes"] == {"memory_size": {"old": 1024, "new": 128}}
    assert restored["left_alone"] == {"timeout": {"current": 120, "expected": 60, "old": 3}}

    run, again = limits(run_playbook, state="restored", previous=result["changes"])
    assert run.returncode == 0 and again["changed"] is False, again


def test_reserved_concurrency_raise_and_restore_removes_the_reservation(aws, run_playbook):
    run, refused = limits(run_playbook, reserved_concurrency=50)
    assert run.returncode != 0 and "reservation on an unreserved function" in refused["msg"]
    assert configuration(aws) == SEEDED
    run, result = limits(run_playbook, reserved_concurrency=50, force=True)
    assert run.returncode == 0, run.output
    assert configuration(aws)["reserved_concurrency"] == 50
    run, _ = limits(run_playbook, state="restored", previous=result["changes"])
    assert run.returncode == 0, run.output
    assert configuration(aws)["reserved_concurrency"] is None


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"timeout": 2}, "refusing to lower thumbnailer: timeout 2 (now 3)"),
        ({"memory_size": 64}, "memory_size 64 is out of range"),
        ({"memory_size": 20000}, "memory_size 20000 is out of range"),
        ({"timeout": 901}, "timeout 901 is out of range"),
        ({"function": "no-such-function", "memory_size": 512}, "function 'no-such-function' not found"),
        ({}, "give at least one of memory_size"),
        ({"state": "restored"}, "state=restored needs previous"),
    ],
    ids=[
        "lower",
        "memory-min",
        "memory-range",
        "timeout-range",
        "unknown-function",
        "nothing",
        "restore-without-previous",
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, expected):
    run, result = limits(run_playbook, **options)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result.get("changed") is False
    assert configuration(aws) == SEEDED


def test_lowering_is_allowed_with_force(aws, run_playbook):
    run, _ = limits(run_playbook, timeout=2, force=True)
    assert run.returncode == 0, run.output
    assert configuration(aws)["timeout"] == 2


@pytest.mark.proof
def test_permanent_5xx_on_the_update_fails_within_the_budget_naming_call_and_code(aws, run_playbook):
    aws.proxy.add_rule(
        {"service": "lambda", "method": "PUT", "path": "/functions/thumbnailer/configuration", "fault": "error"}
    )
    started = time.monotonic()
    run, result = limits(run_playbook, memory_size=1024)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert "UpdateFunctionConfiguration" in result["msg"] and "InternalFailure" in result["msg"], result["msg"]
    assert result["msg"].startswith("nothing raised on thumbnailer")
    assert result["changed"] is False and result["aws_error_code"] == "InternalFailure"
    assert configuration(aws) == SEEDED
