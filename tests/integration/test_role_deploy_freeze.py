"""The deploy_freeze role: check mode, converge, idempotence, release through the lookup."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import recap, role
from tests.integration.test_deploy_freeze import flag, inbound, pipeline  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

VARS = {"deploy_freeze_pipelines": ["app-deploy"]}
OPEN = {"Build": (True, None), "Deploy": (True, None)}


def test_check_mode_changes_nothing(aws, run_playbook, pipeline):  # noqa: F811
    run = role(run_playbook, "deploy_freeze", check=True, diff=True, **VARS)
    assert run.returncode == 0, run.output
    assert inbound(aws) == OPEN and flag(aws) is None


def test_converge_idempotence_and_release(aws, run_playbook, pipeline, tmp_path):  # noqa: F811
    timeline = tmp_path / "timeline.jsonl"
    first = role(run_playbook, "deploy_freeze", timeline=timeline, **VARS)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert {stage: enabled for stage, (enabled, _r) in inbound(aws).items()} == {"Build": False, "Deploy": False}
    assert flag(aws) is not None

    second = role(run_playbook, "deploy_freeze", timeline=timeline, **VARS)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout

    released = role(run_playbook, "deploy_freeze", timeline=timeline, deploy_freeze_state="released")
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1
    assert "left alone:" not in released.stdout  # nothing changed meanwhile: no "left alone: []" nor "{}"
    assert inbound(aws) == OPEN and flag(aws) is None

    again = role(run_playbook, "deploy_freeze", timeline=timeline, deploy_freeze_state="released")
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0


def test_a_parameter_name_that_climbs_is_refused_naming_it_and_nothing_changes(aws, run_playbook, pipeline):  # noqa: F811
    run = role(run_playbook, "deploy_freeze", deploy_freeze_parameter="../etc/x", **VARS)
    assert run.returncode != 0
    assert "invalid SSM parameter name '../etc/x': a name in a hierarchy must be fully qualified" in run.stdout
    assert inbound(aws) == OPEN
    assert aws.client("ssm").describe_parameters()["Parameters"] == []


def test_nothing_to_freeze_is_named_alone(aws, run_playbook, pipeline):  # noqa: F811
    run = role(run_playbook, "deploy_freeze", deploy_freeze_pipelines=[], deploy_freeze_parameter="")
    assert run.returncode != 0
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("fatal:")]
    assert 'freezing needs deploy_freeze_pipelines and/or deploy_freeze_parameter (got [] and \\"\\")' in line, line
    assert "incident" not in line.split('"msg"', 1)[1]
    assert inbound(aws) == OPEN
