"""The ecs_service_restart and scale_out roles: check mode, converge, idempotence, bad input, against the sandbox."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

RESTART = "tests/integration/playbooks/ecs/role_restart.yml"
SCALE = "tests/integration/playbooks/ecs/role_scale_out.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def service(aws) -> dict:
    return aws.client("ecs").describe_services(cluster="shop", services=["shop-api"], include=["TAGS"])["services"][0]


def state(aws) -> dict:
    """What the roles may change: deployment id, counts, firebreak tags."""
    found = service(aws)
    return {
        "deployment": next(d["id"] for d in found["deployments"] if d["status"] == "PRIMARY"),
        "counts": (found["desiredCount"], found["runningCount"]),
        "tags": {t["key"]: t["value"] for t in found.get("tags") or [] if t["key"].startswith("firebreak:")},
    }


def test_restart_role_check_mode_changes_nothing(aws, run_playbook):
    before = state(aws)
    run = run_playbook(RESTART, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert "(new deployment)" in run.stdout, run.stdout  # the diff
    assert state(aws) == before


def test_restart_role_converge_then_idempotence(aws, run_playbook):
    before = state(aws)
    first = run_playbook(RESTART)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1 and recap(first)["failed"] == 0, first.stdout
    after = state(aws)
    assert after["deployment"] != before["deployment"]
    assert after["tags"]["firebreak:restarted-deployment"] == after["deployment"]
    assert after["tags"]["firebreak:restarted-for"].startswith("INC-TEST-"), "the role passes the incident id"

    second = run_playbook(RESTART)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert state(aws) == after


def test_restart_role_rejects_a_wrong_type_before_anything(aws, run_playbook):
    before = state(aws)
    run = run_playbook(RESTART, extra_vars={"ecs_service_restart_min_interval": "soon"})
    assert run.returncode != 0 and "ecs_service_restart_min_interval" in run.stdout
    assert state(aws) == before


def test_scale_out_role_check_mode_changes_nothing(aws, run_playbook):
    before = state(aws)
    run = run_playbook(SCALE, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert state(aws) == before


def test_scale_out_role_converge_idempotence_and_restore(aws, run_playbook):
    first = run_playbook(SCALE)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    scaled = state(aws)
    assert scaled["counts"] == (4, 4) and scaled["tags"]["firebreak:scaled-from"] == "2"

    second = run_playbook(SCALE)
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.output
    assert state(aws) == scaled

    restored = run_playbook(SCALE, extra_vars={"scale_out_state": "restored"})
    assert restored.returncode == 0 and recap(restored)["changed"] == 1, restored.output
    assert state(aws)["counts"] == (2, 2) and "firebreak:scaled-from" not in state(aws)["tags"]
    again = run_playbook(SCALE, extra_vars={"scale_out_state": "restored"})
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"count": 1}, "desired_count 1 is lower than the service's desired count 2"),
        ({"scale_out_platform": "nomad"}, "scale_out_platform"),
    ],
    ids=["scale-in", "unknown-platform"],
)
def test_scale_out_role_bad_input_names_the_value_and_changes_nothing(aws, run_playbook, extra, expected):
    before = state(aws)
    run = run_playbook(SCALE, extra_vars=extra)
    assert run.returncode != 0 and expected in run.stdout, run.stdout[-2000:]
    assert state(aws) == before
