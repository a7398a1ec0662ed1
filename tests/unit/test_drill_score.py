"""``make drill-all``'s score table (sandbox/drill_all.py) and the Molecule drills' layout (extensions/molecule/).

No sandbox: the rows are built from report.json and timeline files written here, and the runner is given fake
drills. tests/integration/test_drill.py runs a broken drill for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sandbox import REPO_ROOT, drill_all
from sandbox.drill import DrillError
from sandbox.drill_molecule import RECORD_ONLY, changed_tasks
from sandbox.drills import FrameRecord, available, frame_record


def _report(tmp_path: Path, mitigation=12.5, recovery=40.0, steps=None) -> Path:
    steps = steps if steps is not None else [{"check_mode": False}, {"check_mode": False}, {"check_mode": True}]
    facts = {
        "clocks": {
            "mitigation": {"reached": mitigation is not None, "seconds": mitigation},
            "recovery": {"reached": recovery is not None, "seconds": recovery},
        },
        "steps": steps,
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(facts))
    return path


def _timeline(tmp_path: Path, *msgs: str) -> Path:
    path = tmp_path / "timeline.jsonl"
    path.write_text("".join(json.dumps({"seq": i, "event": "task_ok", "msg": m}) + "\n" for i, m in enumerate(msgs)))
    return path


def test_a_passed_drill_scores_its_clocks_steps_and_hand_offs(tmp_path):
    timeline = _timeline(
        tmp_path, "declared", "['symptom: ok', 'left for a person: read the logs; fix the build; release the freeze']"
    )
    score = drill_all.score_from_record("service_down", True, _report(tmp_path), timeline, seconds=33.33)
    assert score.passed
    assert (score.mitigation_seconds, score.recovery_seconds) == (12.5, 40.0)
    assert score.steps_run == 2, "check-mode steps are not steps run"
    assert score.steps_manual == 3
    table = drill_all.render_table([score])
    assert "| service_down | 12.5s | 40.0s | 2 | 3 | 33.3s | PASS |" in table
    assert "1 of 1 drills passed." in table
    assert drill_all.exit_status([score]) == 0


def test_a_drill_whose_verify_failed_is_FAIL_with_its_reason_and_the_exit_status_is_1(tmp_path):
    ok = drill_all.score_from_record("auth_attack", True, _report(tmp_path), None)
    failed = drill_all.score_from_record(
        "service_down", False, _report(tmp_path, None, None, []), None, reason="recovery did not happen: bad rev"
    )
    table = drill_all.render_table([ok, failed])
    assert "| service_down | not reached | not reached | 0 | — | 0.0s | FAIL |" in table
    assert "- FAIL service_down: recovery did not happen: bad rev" in table
    assert "1 of 2 drills passed." in table
    assert drill_all.exit_status([ok, failed]) == 1


def test_a_drill_with_no_report_does_not_pass(tmp_path):
    score = drill_all.score_from_record("data_loss", True, tmp_path / "missing.json", None)
    assert not score.passed and "no report.json" in score.reason
    assert drill_all.exit_status([]) == 1, "no drills run is not a pass"


def test_minutes_are_shown_as_minutes():
    assert drill_all._clock(75.0) == "1m15.0s"
    assert drill_all._clock(None) == "not reached"


def test_hand_offs_are_counted_once_per_run_from_the_fullest_summary():
    records = [
        {"event": "note", "msg": "left for a person: a; b"},
        {"event": "task_ok", "msg": "['x', 'left for a person: a; b']"},
        {"event": "task_ok", "msg": 'left for a person: ["one", "two", "three"]'},
        {"event": "task_ok", "msg": ["not a string"]},
    ]
    assert drill_all.steps_left_manual(records) == 3
    assert drill_all.steps_left_manual([{"event": "note", "msg": "nothing left"}]) == 0


class _FakeSandbox:
    def __init__(self, workdir):
        self.resets = self.drills = 0

    def start(self):
        return self

    def reset(self):
        self.resets += 1

    def stop(self):
        pass


def test_the_runner_scores_every_drill_in_order_and_a_failure_does_not_stop_the_others(tmp_path, monkeypatch):
    """run_all with fake drills: the one whose verify fails is FAIL, the others still run and pass; the sandboxes
    are reset between drills (not before the first)."""
    boxes = []

    def sandbox(workdir):
        boxes.append(_FakeSandbox(workdir))
        return boxes[-1]

    def fake_run(scenario, box, incidents_dir, incident_id, broken=False, output=None):
        box.drills += 1
        timeline = Path(incidents_dir) / incident_id / "timeline.jsonl"
        timeline.write_text(json.dumps({"seq": 1, "event": "note", "msg": "fault"}) + "\n")
        _report(timeline.parent)
        if broken or scenario == "b":
            raise DrillError("recovery did not happen: still broken")

    monkeypatch.setattr(drill_all, "Sandbox", sandbox)
    monkeypatch.setattr(drill_all, "run_drill", fake_run)
    scores, errors = drill_all.run_all(["a", "b", "c", "d"], tmp_path, broken={"d"}, jobs=2, workroot=tmp_path / "w")
    assert not errors
    assert [(s.scenario, s.passed) for s in scores] == [("a", True), ("b", False), ("c", True), ("d", False)]
    assert scores[3].broken and "FAIL (broken run)" in drill_all.render_table(scores)
    assert "recovery did not happen: still broken" in scores[1].reason
    assert sum(box.drills for box in boxes) == 4
    for box in boxes:  # reset between a sandbox's drills, not before its first
        assert box.resets == max(box.drills - 1, 0)
    assert drill_all.exit_status(scores) == 1


def test_drill_all_refuses_an_unknown_scenario(capsys):
    assert drill_all.main(["nope"]) == 2
    assert drill_all.main(["--break", "nope"]) == 2
    assert "unknown scenario(s) nope" in capsys.readouterr().err


def test_every_drill_has_a_molecule_scenario_and_every_scenario_a_drill():
    root = REPO_ROOT / "extensions" / "molecule"
    scenarios = {path.parent.name for path in root.glob("*/molecule.yml")} - {"default"}
    assert scenarios == set(available())
    for name in scenarios:
        config = yaml.safe_load((root / name / "molecule.yml").read_text())
        assert config == {"scenario": {"name": name}}, f"{name}: the settings of a drill go in config.yml"
        playbook = REPO_ROOT / available()[name].PLAYBOOK
        assert playbook.is_file(), f"{name}: converge runs {playbook}, which does not exist"
    # Molecule looks for extensions/molecule/default/molecule.yml on every run ("glob failed" without it): the
    # shared sandbox, no drill (its sequences never prepare, converge or verify, which need a drill's fault)
    default = yaml.safe_load((root / "default" / "molecule.yml").read_text())["scenario"]
    assert default["name"] == "default"
    for key, sequence in default.items():
        if key.endswith("_sequence"):
            assert set(sequence) <= {"create", "destroy"}, f"default {key}: {sequence}"
    base = yaml.safe_load((root / "config.yml").read_text())
    sequence = base["scenario"]["test_sequence"]
    for step in ("create", "prepare", "converge", "check", "idempotence", "verify", "destroy"):
        assert step in sequence
    assert sequence.index("converge") < sequence.index("idempotence") < sequence.index("verify")
    for step, playbook in base["ansible"]["playbooks"].items():
        assert (root / "service_down" / playbook).resolve().is_file(), f"{step}: {playbook}"


def test_idempotence_counts_the_runs_changes_not_the_reports_rewrite():
    records = [
        {"seq": 1, "event": "task_changed", "action": "firebreak.runbooks.ecs_service_rollback"},
        {"seq": 5, "event": "task_changed", "action": next(iter(RECORD_ONLY))},
        {"seq": 6, "event": "task_ok", "action": "firebreak.runbooks.ecs_service_rollback"},
    ]
    assert changed_tasks(records, after_seq=4) == []
    assert len(changed_tasks(records, after_seq=0)) == 1


def _frame_timeline(tmp_path, events=("declared", "resolved"), gate="Gate g passed", check_mode=False):
    recs = [
        {
            "event": "task_changed",
            "action": "firebreak.runbooks.incident_lifecycle",
            "check_mode": check_mode,
            "details": {"lifecycle": {"event": e, "severity": "P2", "type": "service_down"}},
        }
        for e in events
    ]
    recs.append({"event": "note", "msg": f"{gate}: why"})
    timeline = tmp_path / "timeline.jsonl"
    timeline.write_text("".join(json.dumps(r) + "\n" for r in recs))
    report = tmp_path / "report.md"
    report.write_text("Severity P2")
    return timeline, report


def test_frame_record_passes_a_complete_record(tmp_path):
    frame = frame_record(*_frame_timeline(tmp_path), gate="g")
    assert isinstance(frame, FrameRecord)
    assert frame.summary() == ["declared P2 (service_down) and resolved in the timeline", "gate: Gate g passed"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": ("declared",)}, "the incident was not resolved"),
        ({"check_mode": True}, "no declaration"),
        ({"gate": "Gate other passed"}, "no decision of gate g"),
    ],
)
def test_frame_record_names_what_is_missing(tmp_path, kwargs, message):
    with pytest.raises(AssertionError, match=message):
        frame_record(*_frame_timeline(tmp_path, **kwargs), gate="g")


def test_frame_record_checks_the_severity_in_the_report(tmp_path):
    timeline, report = _frame_timeline(tmp_path)
    report.write_text("no severity here")
    with pytest.raises(AssertionError, match="does not name the severity P2"):
        frame_record(timeline, report)
    assert frame_record(timeline, report, severity_in_report=False).declared["severity"] == "P2"


def test_left_manual_counts_items_not_the_semicolons_inside_them():
    """The summary as the timeline records it: the debug's list of lines as its str(), an item holding an
    apostrophe in double quotes; an item's own aside in parentheses keeps its '; '."""
    summary = [
        "symptom: 5xx at 12%",
        "left for a person: read the function's logs (seed 1; the IaC); the code fix; putting the old limits back.",
    ]
    assert drill_all.steps_left_manual([{"event": "task_ok", "msg": str(summary)}]) == 3
    text = "left for a person: the rows (run the integrity queries; this playbook cannot run SQL); the cut-over"
    assert drill_all.steps_left_manual([{"event": "note", "msg": text}]) == 2
    assert drill_all.manual_items(" a [x; y]; b {c; d}; ") == ["a [x; y]", "b {c; d}"]
    assert drill_all.manual_items(' ["one; two", "three"]') == ["one; two", "three"]
    assert drill_all.manual_items(" ") == []


def test_left_manual_of_the_high_error_rate_summary_is_its_five_items():
    """high_error_rate's summary on a scale-out without drained targets: five items, one of which used to hold a
    '; ' of its own and was counted twice (6)."""
    playbook = (REPO_ROOT / "playbooks" / "high_error_rate.yml").read_text(encoding="utf-8")
    assert "APIs); a circuit" not in " ".join(playbook.split())
    items = [
        "find the failing endpoints and their pattern (users, regions, features) in CloudWatch Logs Insights",
        "check the dependencies (database, Redis, third-party APIs), where a circuit breaker for a failing one is a "
        "code change",
        "put the old count back after the fix (scale_out_state=restored; see the timeline note)",
        "add monitoring for the root cause",
        "the post-incident review",
    ]
    msg = str(["cause: errors; step: scale_out", "left for a person: " + "; ".join(items)])
    assert drill_all.steps_left_manual([{"event": "task_ok", "msg": msg}]) == 5


def test_a_rerun_refusal_passes_check_and_idempotence_only_as_the_drills_own_refusal_with_nothing_changed():
    from types import SimpleNamespace

    from sandbox.drill_molecule import rerun_refused

    refuses = SimpleNamespace(RERUN_REFUSAL="shows no failed deploy")
    out = "fatal: [localhost]: FAILED! => Deployment shop/api shows no\n failed deploy: ... Nothing was changed."
    assert rerun_refused(refuses, 2, out, []) == "shows no failed deploy"
    assert rerun_refused(refuses, 1, out, []) == "", "the first converge is the fix: a refusal there fails"
    assert rerun_refused(refuses, 3, out, [{"event": "task_changed"}]) == "", "a refusal after a change fails"
    assert rerun_refused(refuses, 2, "fatal: a module failed", []) == "", "any other failure fails"
    assert rerun_refused(SimpleNamespace(), 2, out, []) == "", "a drill without RERUN_REFUSAL never refuses"
    assert {name for name, module in available().items() if getattr(module, "RERUN_REFUSAL", "")} == {
        "bad_deploy",
        "k8s_service_down",
    }
