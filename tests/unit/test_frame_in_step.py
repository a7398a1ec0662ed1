"""The incident frame's work done inside a step's own task (plugins/plugin_utils/frame.py, the action plugin of
ecs_service_rollback, and the timeline callback writing several records for one task): the declaration and the
gate's decision are recorded as the tasks they replace, in order, at the time each was done, before the step."""

from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible.errors import AnsibleActionFail
from ansible_collections.firebreak.runbooks.plugins.callback.incident_timeline import CallbackModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import (
    append_record,
    new_record,
    verify_timeline,
)
from ansible_collections.firebreak.runbooks.plugins.plugin_utils import frame

DECLARE = {
    "action": frame.LIFECYCLE,
    "task": "Declare the incident",
    "role": "firebreak.runbooks.incident_declare",
    "register": "incident_declare_result",
    "args": {
        "event": "declared",
        "incident_id": "INC-F1",
        "title": "api down",
        "severity": "P2",
        "type": "service_down",
        "roles": {"commander": "alice"},
    },
}
GATE = {
    "action": frame.NOTE,
    "task": "Record the gate's decision in the timeline",
    "role": "firebreak.runbooks.incident_gate",
    "args": {"kind": "decision", "msg": "Gate g passed without approval"},
}


@pytest.fixture
def timeline(tmp_path, monkeypatch):
    path = tmp_path / "timeline.jsonl"
    monkeypatch.setenv("FIREBREAK_TIMELINE", str(path))
    monkeypatch.setenv("FIREBREAK_INCIDENT_ID", "INC-F1")
    return path


def test_run_before_declares_then_notes_in_order_with_the_time_each_ran(timeline):
    entries, facts, failure = frame.run_before({"before": [DECLARE, GATE]}, check_mode=False)
    assert failure is None
    assert [e["action"] for e in entries] == [frame.LIFECYCLE, frame.NOTE]
    assert entries[0]["result"]["lifecycle"]["event"] == "declared"
    assert entries[0]["result"]["lifecycle"]["severity"] == "P2"
    assert entries[1]["result"]["note"] == {"kind": "decision", "msg": "Gate g passed without approval"}
    assert entries[0]["ts"] <= entries[1]["ts"]
    assert facts == {"incident_declare_result": entries[0]["result"]}


def test_a_bad_declaration_stops_the_frame_before_the_gate_and_names_the_value(timeline):
    bad = dict(DECLARE, args=dict(DECLARE["args"], severity="P9"))
    entries, _facts, failure = frame.run_before({"before": [bad, GATE]}, check_mode=False)
    assert failure is not None and "P9" in failure["msg"]
    assert len(entries) == 1  # the gate's note was not made


def test_a_frame_with_an_unknown_key_or_action_is_refused():
    with pytest.raises(AnsibleActionFail, match="unknown key"):
        frame.check_frame({"declare": {}})
    with pytest.raises(AnsibleActionFail, match="needs an action"):
        frame.check_frame({"before": [{"action": "ansible.builtin.command"}]})


def test_validation_names_the_bad_value():
    spec = {"sev": {"type": "str", "choices": ["P1", "P2"]}}
    templar = SimpleNamespace(template=lambda value: value)
    assert frame.validate({"validate": {"argument_spec": spec}}, {"sev": "P2"}, templar) == ""
    assert "P9" in frame.validate({"validate": {"argument_spec": spec}}, {"sev": "P9"}, templar)
    assert frame.refusal({"refuse_var": "why"}, {"why": None}, templar) == ""
    assert frame.refusal({"refuse_var": "why"}, {"why": " bad\n name "}, templar) == "bad name"


def _callback(path):
    cb = CallbackModule()
    cb._path = str(path)
    cb._incident_id = "INC-F1"
    cb._operator = {"user": "t", "source": "local"}
    cb._play = "p"
    cb._play_check_mode = False
    cb._run_id = "run-1"
    return cb


def _result(res, action="firebreak.runbooks.ecs_service_rollback"):
    task = SimpleNamespace(
        no_log=False,
        check_mode=False,
        _resolved_action=action,
        action=action,
        _role=None,
        name="Roll back",
        args={},
        _ds={"name": "Roll back"},
    )
    return SimpleNamespace(
        task=task,
        task_fields={"name": "Roll back"},
        result=res,
        host=SimpleNamespace(get_name=lambda: "localhost", vars={}),
    )


@pytest.mark.parametrize("outcome", ["ok", "failed"])
def test_one_task_writes_the_frame_records_then_its_own(timeline, outcome):
    entries, facts, _ = frame.run_before({"before": [DECLARE, GATE]}, check_mode=False)
    time.sleep(0.01)
    res = {
        "changed": outcome == "ok",
        "msg": "rolled back" if outcome == "ok" else "the rollback failed",
        "step_kind": "mitigation",
        "timeline_before": entries,
        "ansible_facts": facts,
    }
    if outcome == "failed":
        res["failed"] = True
    cb = _callback(timeline)
    getattr(cb, f"v2_runner_on_{outcome}")(_result(res))
    records = verify_timeline(str(timeline))
    assert [(r["event"], r["action"]) for r in records] == [
        ("task_ok", frame.LIFECYCLE),
        ("note", frame.NOTE),
        ("task_changed" if outcome == "ok" else "task_failed", "firebreak.runbooks.ecs_service_rollback"),
    ]
    declared, note, step = records
    assert declared["details"]["lifecycle"]["event"] == "declared"
    assert declared["role"] == "firebreak.runbooks.incident_declare" and declared["task"] == "Declare the incident"
    assert note["msg"] == "Gate g passed without approval" and note["details"]["kind"] == "decision"
    # each at the time it was done, not when the step's result came back
    assert declared["ts"] == entries[0]["ts"] and note["ts"] == entries[1]["ts"]
    assert declared["ts"] <= note["ts"] < step["ts"]
    # the step's own record does not repeat them
    assert "timeline_before" not in (step["details"] or {}) and "ansible_facts" not in (step["details"] or {})


def test_a_frame_record_never_carries_a_time_before_the_file_s_last_record(timeline):
    entries, _facts, _ = frame.run_before({"before": [GATE]}, check_mode=False)
    time.sleep(0.01)
    later = append_record(str(timeline), new_record(incident_id="INC-F1", event="note", msg="another writer"))
    cb = _callback(timeline)
    cb.v2_runner_on_ok(_result({"changed": False, "timeline_before": entries}))
    records = verify_timeline(str(timeline))
    assert records[1]["action"] == frame.NOTE and records[1]["ts"] == later["ts"]  # clamped, not backwards
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    assert json.loads(timeline.read_text().splitlines()[1])["seq"] == 2


def test_the_specs_are_read_from_the_scenario_s_meta_file_and_its_roles_in_order(tmp_path):
    meta = REPO_ROOT / "playbooks" / "service_down.meta.yml"
    conf = {
        "validate": {
            "specs": [
                {"file": "service_down.meta.yml", "exclude": ["incident_id"]},
                {"role": "incident_declare"},
                {"role": "incident_gate", "entry": "policy"},
                {"role": "ecs_rollback"},
            ]
        }
    }
    spec = frame.argument_spec(conf, lambda name: str(REPO_ROOT / "playbooks" / name))
    assert "service_down_cluster" in spec and "incident_id" not in spec
    assert {"incident_declare_severity", "ecs_rollback_cluster"} <= set(spec)
    # the same spec the playbook's __service_down_spec combines for the gated path
    import yaml

    options = yaml.safe_load(meta.read_text())["argument_specs"]["main"]["options"]
    assert spec["service_down_cluster"] == options["service_down_cluster"]
    templar = SimpleNamespace(template=lambda value: value)
    assert "P9" in frame.validate(conf, {"incident_declare_severity": "P9"}, templar, lambda n: str(meta))
    given = {
        "incident_declare_severity": "P1",
        "incident_declare_title": "api down",
        "incident_declare_commander": "alice",
        "incident_gate_name": "g",
        "incident_gate_step_kind": "rollback",
        "ecs_rollback_cluster": "shop",
        "ecs_rollback_service": "shop-api",
    }
    assert frame.validate(conf, given, templar, lambda n: str(meta)) == ""
    assert "missing required arguments: ecs_rollback_cluster" in frame.validate(
        conf, {k: v for k, v in given.items() if k != "ecs_rollback_cluster"}, templar, lambda n: str(meta)
    )


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ({"role": "../etc"}, "'../etc' is not a role name"),
        ({"role": "x", "file": "y"}, "give either file or role"),
        ({}, "give either file or role"),
        ({"role": "ecs_rollback", "entry": "nope"}, "has no argument_specs.nope"),
    ],
)
def test_a_bad_spec_entry_is_refused_naming_it(item, named):
    with pytest.raises(AnsibleActionFail, match=named.replace(".", r"\.").replace("(", r"\(")):
        frame.argument_spec({"validate": {"specs": [item]}}, lambda name: name)
