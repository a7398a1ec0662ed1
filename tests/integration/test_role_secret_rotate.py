"""The secret_rotate role: check mode, converge, idempotence, and no secret value in the timeline."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import recap, role, timeline_text
from tests.integration.test_secret_rotate import deployment_id, readers, secret_value  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def test_check_mode_changes_nothing(aws, run_playbook, readers):  # noqa: F811
    before = secret_value(aws)
    run = role(run_playbook, "secret_rotate", check=True, diff=True, secret_rotate_secret="app/admin")
    assert run.returncode == 0, run.output
    assert secret_value(aws) == before
    assert deployment_id(aws, "admin-api") == readers["admin-api"]


def test_converge_idempotence_and_no_value_in_the_timeline(aws, run_playbook, readers, tmp_path):  # noqa: F811
    timeline = tmp_path / "timeline.jsonl"
    old_version, old = secret_value(aws)
    first = role(run_playbook, "secret_rotate", timeline=timeline, secret_rotate_secret="app/admin")
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    new_version, new = secret_value(aws)
    assert new_version != old_version and new["ADMIN_PASS"] != old["ADMIN_PASS"]
    assert deployment_id(aws, "admin-api") != readers["admin-api"]

    second = role(run_playbook, "secret_rotate", timeline=timeline, secret_rotate_secret="app/admin")
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout
    assert secret_value(aws)[0] == new_version

    text = timeline_text(first) + first.output + second.output
    assert new_version in text, "version ids are recorded"
    for value in (old["ADMIN_PASS"], new["ADMIN_PASS"]):
        assert value not in text
