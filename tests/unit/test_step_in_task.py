"""The framed rollback run in its task's worker (plugins/plugin_utils/step_in_task.py): where it may, and that it
answers as the module process would (validation, the step contract, no_log values, a crash)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError
from ansible_collections.firebreak.runbooks.plugins.plugin_utils import step_in_task

NAME = "firebreak.runbooks.step_under_test"
SPEC = {"cluster": {"type": "str", "required": True}, "keys": {"type": "list", "elements": "str", "default": []}}
TEMPLAR = SimpleNamespace(template=lambda value: value)


def _action(transport="local", async_val=0, environment=None):
    return SimpleNamespace(
        _connection=SimpleNamespace(transport=transport),
        _task=SimpleNamespace(async_val=async_val, environment=environment if environment is not None else []),
    )


@pytest.mark.parametrize(
    ("action", "task_vars", "why"),
    [
        (_action(), {"ansible_python_interpreter": sys.executable}, ""),
        (_action(environment=[{}, None]), {"ansible_python_interpreter": sys.executable}, ""),
        (_action(transport="ssh"), {"ansible_python_interpreter": sys.executable}, "not the local connection"),
        (_action(async_val=30), {"ansible_python_interpreter": sys.executable}, "async"),
        (_action(environment=[{"AWS_PROFILE": "x"}]), {"ansible_python_interpreter": sys.executable}, "environment"),
        (_action(), {}, "it would be discovered"),
        (_action(), {"ansible_python_interpreter": "/usr/bin/python2"}, "is not the controller's Python"),
    ],
)
def test_the_step_runs_in_the_worker_only_where_the_module_process_would_be_the_same(action, task_vars, why):
    found = step_in_task.usable(action, task_vars, TEMPLAR)
    assert (found == "") if not why else (why in found)


def _run(run_fn, args, check_mode=False):
    return step_in_task.run(NAME, SPEC, run_fn, "mitigation", args, check_mode, False)


def test_a_missing_or_unknown_option_fails_as_ansible_words_it_before_the_step_runs():
    ran = []
    missing = _run(lambda module, result: ran.append(1), {})
    assert missing["failed"] is True and missing["msg"] == "missing required arguments: cluster"
    unknown = _run(lambda module, result: ran.append(1), {"cluster": "shop", "bogus": 1})
    assert unknown["msg"].startswith(f"Unsupported parameters for ({NAME}) module: bogus.")
    assert ran == []


def test_a_mapping_given_for_a_list_names_the_value():
    out = _run(lambda module, result: None, {"cluster": "shop", "keys": {"a": 1}})
    assert out["failed"] is True and 'keys: expected a list, got the mapping {"a": 1}' in out["msg"]


def test_the_result_keeps_the_step_contract_and_the_invocation():
    def run(module, result):
        assert module.params["cluster"] == "shop" and module.params["region"] is None
        module.warn("careful")
        return {"changed": True, "msg": "rolled back", "before": {"td": "a:4"}, "after": {"td": "a:3"}}

    out = _run(run, {"cluster": "shop"})
    assert out["changed"] is True and not out.get("failed")
    assert (out["step_kind"], out["predicted"], out["containment"]) == ("mitigation", False, [])
    assert out["warnings"] == ["careful"]
    assert out["invocation"]["module_args"]["cluster"] == "shop"
    assert _run(run, {"cluster": "shop"}, check_mode=True)["predicted"] is True


def test_a_failed_call_fails_naming_the_call_the_code_and_the_resource_with_what_was_done():
    def run(module, result):
        result["captured"] = {"service": "shop-api"}
        raise StepAWSError("UpdateService", "ThrottlingException", "rate exceeded", resource="service shop/shop-api")

    out = _run(run, {"cluster": "shop"})
    assert out["failed"] is True and out["step_kind"] == "mitigation"
    assert (out["aws_operation"], out["aws_error_code"]) == ("UpdateService", "ThrottlingException")
    assert "service shop/shop-api" in out["msg"] and out["captured"] == {"service": "shop-api"}


def test_bad_input_found_by_the_step_fails_without_a_traceback():
    def run(module, result):
        raise StepError("cluster 'a b' is not an ECS cluster name")

    out = _run(run, {"cluster": "a b"})
    assert out["failed"] is True and out["msg"] == "cluster 'a b' is not an ECS cluster name"
    assert "exception" not in out


def test_a_no_log_value_is_never_in_the_result():
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"

    def run(module, result):
        return {"changed": False, "msg": f"used {module.params['secret_key']}"}

    out = _run(run, {"cluster": "shop", "secret_key": secret, "access_key": "AKIAEXAMPLE"})
    assert secret not in repr(out)
    assert out["invocation"]["module_args"]["secret_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_a_bug_in_the_step_is_a_module_failure_with_its_traceback():
    def run(module, result):
        raise KeyError("oops")

    out = _run(run, {"cluster": "shop"})
    assert out["failed"] is True and out["msg"].startswith("MODULE FAILURE: KeyError")
    assert "Traceback" in out["exception"]
