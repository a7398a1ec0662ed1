"""Issue 15 on the deploy freeze: a pipeline frozen by two incidents stays frozen (and flagged) until the last
release; a release whose pipeline was deleted meanwhile reports it gone and lifts the flag."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import recap, role
from tests.integration.test_deploy_freeze import flag, inbound, pipeline  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

VARS = {"deploy_freeze_pipelines": ["app-deploy"]}
OPEN = {"Build": (True, None), "Deploy": (True, None)}


def run_as(run_playbook, tmp_path, incident, **variables):
    return role(
        run_playbook,
        "deploy_freeze",
        timeline=tmp_path / incident / "timeline.jsonl",
        env={"FIREBREAK_INCIDENT_ID": incident},
        **variables,
    )


def frozen(aws) -> dict:
    return {stage: enabled for stage, (enabled, _reason) in inbound(aws).items()}


def test_a_pipeline_frozen_by_two_incidents(aws, run_playbook, pipeline, tmp_path):  # noqa: F811
    first = run_as(run_playbook, tmp_path, "INC-A", **VARS)
    assert first.returncode == 0, first.output
    second = run_as(run_playbook, tmp_path, "INC-B", **VARS)
    assert second.returncode == 0, second.output
    assert frozen(aws) == {"Build": False, "Deploy": False} and flag(aws) is not None

    release_a = run_as(run_playbook, tmp_path, "INC-A", deploy_freeze_state="released")
    assert release_a.returncode == 0, release_a.output
    assert frozen(aws) == {"Build": False, "Deploy": False}, "INC-B still claims the freeze"
    assert flag(aws) is not None, "INC-B still claims the flag"
    assert "still claimed by INC-B" in release_a.stdout

    release_b = run_as(run_playbook, tmp_path, "INC-B", deploy_freeze_state="released")
    assert release_b.returncode == 0, release_b.output
    assert recap(release_b)["failed"] == 0
    assert inbound(aws) == OPEN, "the last claimant's release lifts the stages INC-A froze"
    assert flag(aws) is None, "and the flag"


def test_second_incident_released_first(aws, run_playbook, pipeline, tmp_path):  # noqa: F811
    for incident in ("INC-A", "INC-B"):
        run = run_as(run_playbook, tmp_path, incident, **VARS)
        assert run.returncode == 0, run.output
    release_b = run_as(run_playbook, tmp_path, "INC-B", deploy_freeze_state="released")
    assert release_b.returncode == 0, release_b.output
    assert frozen(aws) == {"Build": False, "Deploy": False} and flag(aws) is not None
    release_a = run_as(run_playbook, tmp_path, "INC-A", deploy_freeze_state="released")
    assert release_a.returncode == 0, release_a.output
    assert inbound(aws) == OPEN and flag(aws) is None


def test_release_with_the_pipeline_deleted_lifts_the_rest(aws, run_playbook, pipeline, tmp_path):  # noqa: F811
    run = run_as(run_playbook, tmp_path, "INC-GONE", **VARS)
    assert run.returncode == 0, run.output
    aws.client("codepipeline").delete_pipeline(name="app-deploy")
    released = run_as(run_playbook, tmp_path, "INC-GONE", deploy_freeze_state="released")
    assert released.returncode == 0, released.output
    assert recap(released)["failed"] == 0
    assert flag(aws) is None, "the flag is lifted although the pipeline is gone"
    assert "the pipeline no longer exists" in released.stdout
