"""``make drill`` end to end: fault injected, runbook run, recovery verified, report rendered."""

from __future__ import annotations

import json
import types

import pytest

from sandbox import drill, drill_all
from sandbox.drills import available

pytestmark = [pytest.mark.integration, pytest.mark.drill]


def _records(timeline):
    return [json.loads(line) for line in timeline.read_text().splitlines()]


def test_service_down_drill_recovers_and_writes_timeline_and_report(aws, tmp_path):
    result = drill.run_drill("service_down", aws, tmp_path / "incidents", incident_id="DRILL-test")
    assert result.timeline == tmp_path / "incidents" / "DRILL-test" / "timeline.jsonl"
    assert result.timeline.is_file() and result.report.is_file()
    assert result.checks, "the scenario's verify() reported no checks"
    report = result.report.read_text()
    assert "DRILL-test" in report
    assert "ecs_service_rollback" in report
    notes = [record for record in _records(result.timeline) if record["event"] == "note"]
    assert notes and "fault injected" in notes[0]["msg"] and "bad revision" in notes[0]["msg"]
    assert _records(result.timeline)[0]["event"] in ("playbook_start", "note")
    # the frame's record: declared and resolved, the gate's decision, a report naming the severity
    assert any("declared P2 (service_down) and resolved" in line for line in result.checks), result.checks
    assert any(line.startswith("gate: Gate service-down-rollback passed") for line in result.checks), result.checks
    assert "P2" in report


def test_a_drill_whose_record_is_incomplete_fails(aws, tmp_path, monkeypatch):
    """verify_record can fail: a runbook that rolls back without the frame (the old shape) is not a passed drill."""
    real = available()["service_down"]
    fake = types.SimpleNamespace(
        PLAYBOOK="bench/playbooks/service_down_triage_first.yml",
        DESCRIPTION="no frame",
        inject=real.inject,
        verify=real.verify,
        verify_record=real.verify_record,
    )
    monkeypatch.setattr(drill, "available", lambda: {"service_down": fake})
    with pytest.raises(drill.DrillError, match="the incident record is incomplete: no declaration"):
        drill.run_drill("service_down", aws, tmp_path / "incidents", incident_id="DRILL-noframe")


def test_a_drill_whose_runbook_does_not_recover_fails(aws, tmp_path, monkeypatch):
    real = available()["service_down"]
    fake = types.SimpleNamespace(
        PLAYBOOK="tests/integration/playbooks/noop.yml", DESCRIPTION="noop", inject=real.inject, verify=real.verify
    )
    monkeypatch.setattr(drill, "available", lambda: {"service_down": fake})
    with pytest.raises(drill.DrillError, match="recovery did not happen"):
        drill.run_drill("service_down", aws, tmp_path / "incidents", incident_id="DRILL-noop")


@pytest.mark.proof
def test_the_broken_drill_is_scored_FAIL_from_its_record(aws, tmp_path):
    """``make drill-all BREAK=service_down``'s row, for real: the runbook runs in check mode, the bad revision
    stays, verify fails, and the row is FAIL (broken run) with verify's reason; the report of the failed drill is
    still rendered and shows no mitigation (a proof: three playbook runs)."""
    score = drill_all.drill_and_score("service_down", aws, tmp_path / "incidents", broken=True)
    assert not score.passed and score.broken
    assert "recovery did not happen" in score.reason and "still runs the bad revision" in score.reason
    assert score.mitigation_seconds is None and score.steps_run == 0, score
    running = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    assert running["taskDefinition"].endswith(":4"), "the broken drill changed the service"
    table = drill_all.render_table([score])
    assert "| service_down | not reached | not reached | 0 |" in table and "FAIL (broken run)" in table
    assert drill_all.exit_status([score]) == 1
