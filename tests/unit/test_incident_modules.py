"""Unit tests of the incident_note module and the incident_report action, without ansible-playbook."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.action import incident_note as incident_note_action  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.action import incident_report  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.modules import incident_note  # noqa: E402


def _run_note(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        incident_note.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_note_defaults_to_an_observation_and_changes_nothing(capsys):
    code, out = _run_note({"msg": "api latency back to normal"}, capsys)
    assert code == 0
    assert out["changed"] is False
    assert out["note"] == {"msg": "api latency back to normal", "kind": "observation"}


def test_note_keeps_severity_and_audience_and_works_in_check_mode(capsys):
    args = {"msg": "status page updated", "kind": "communication", "severity": "P1", "audience": "#incident-response"}
    code, out = _run_note({**args, "_ansible_check_mode": True}, capsys)
    assert code == 0
    assert out["note"] == args


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"msg": "x", "kind": "rumour"}, "rumour"),
        ({"msg": "x", "severity": "P9"}, "P9"),
        ({"msg": "  "}, "msg"),
        ({"msg": "dump " + "y" * 8000}, "8005 characters (at most 8000)"),
    ],
)
def test_note_bad_input_fails_naming_the_value(args, named, capsys):
    code, out = _run_note(args, capsys)
    assert code == 1
    assert out["failed"] is True
    assert named in out["msg"]


def _note_action(args, check_mode=False):
    task = SimpleNamespace(
        args=args, check_mode=check_mode, diff=False, async_val=0, action="firebreak.runbooks.incident_note"
    )
    task.get_validated_value = mock.MagicMock()
    action = incident_note_action.ActionModule(
        task=task,
        connection=mock.MagicMock(),
        play_context=SimpleNamespace(check_mode=check_mode, remote_addr=None),
        loader=mock.MagicMock(),
        templar=mock.MagicMock(),
        shared_loader_obj=mock.MagicMock(),
    )
    return action.run(task_vars={})


def test_the_note_action_returns_what_the_module_returns_without_a_module_process(capsys):
    """The controller-side note (plugins/action/incident_note.py) and the module build the same result."""
    args = {"msg": "rolling back", "kind": "decision", "severity": "P2", "audience": "#inc"}
    result = _note_action(dict(args), check_mode=True)
    _code, out = _run_note(dict(args), capsys)
    assert not result.get("failed") and result["changed"] is False
    assert (result["note"], result["msg"]) == (out["note"], out["msg"]) == (args, "rolling back")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"msg": "x", "kind": "rumour"}, "rumour"),
        ({"msg": "x", "severity": "P9"}, "P9"),
        ({"msg": "  "}, "msg"),
        ({"msg": "dump " + "y" * 8000}, "8005 characters (at most 8000)"),
    ],
)
def test_the_note_action_fails_on_bad_input_naming_the_value(args, named):
    try:
        result = _note_action(args)
    except Exception as exc:  # ansible raises argument spec errors as AnsibleActionFail
        assert named in str(exc)
    else:
        assert result["failed"] is True and named in result["msg"]


def _action(args, check_mode=False, diff=False):
    task = SimpleNamespace(
        args=args, check_mode=check_mode, diff=diff, async_val=0, action="firebreak.runbooks.incident_report"
    )
    task.get_validated_value = mock.MagicMock()
    play_context = SimpleNamespace(check_mode=check_mode, remote_addr=None)
    action = incident_report.ActionModule(
        task=task,
        connection=mock.MagicMock(),
        play_context=play_context,
        loader=mock.MagicMock(),
        templar=mock.MagicMock(),
        shared_loader_obj=mock.MagicMock(),
    )
    return action.run(task_vars={})


@pytest.fixture
def timeline(tmp_path):
    path = tmp_path / "INC-UNIT" / "timeline.jsonl"
    tl.append_record(path, {"incident_id": "INC-UNIT", "event": "playbook_start", "playbook": "p.yml"})
    tl.append_record(
        path,
        {
            "incident_id": "INC-UNIT",
            "event": "task_changed",
            "task": "Roll back",
            "role": "firebreak.runbooks.ecs_rollback",
            "action": "firebreak.runbooks.ecs_service_rollback",
            "host": "localhost",
            "changed": True,
            "check_mode": False,
            "details": {"before": {"task_definition": "shop-api:4"}, "after": {"task_definition": "shop-api:3"}},
        },
    )
    return path


def test_report_action_writes_report_beside_the_timeline_and_is_idempotent(timeline):
    first = _action({"timeline": str(timeline)})
    report = timeline.with_name("report.md")
    assert first["changed"] is True and first["verified"] is True and first["records"] == 2
    text = report.read_text()
    assert "shop-api:4" in text and "shop-api:3" in text and "INC-UNIT" in text
    again = _action({"timeline": str(timeline)})
    assert again["changed"] is False


def test_report_action_check_mode_writes_nothing(timeline):
    result = _action({"timeline": str(timeline)}, check_mode=True, diff=True)
    assert result["changed"] is True
    assert "shop-api:3" in result["diff"]["after"]
    assert not timeline.with_name("report.md").exists()


def test_report_action_names_the_first_bad_seq(timeline):
    lines = timeline.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("shop-api:3", "shop-api:2")
    timeline.write_text("".join(lines))
    result = _action({"timeline": str(timeline)})
    assert result["failed"] is True and result["verified"] is False
    assert result["bad_seq"] == 2
    assert "seq 2" in result["msg"]
    assert not timeline.with_name("report.md").exists()


def test_report_action_on_a_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope" / "timeline.jsonl"
    result = _action({"timeline": str(missing)})
    assert result["failed"] is True
    assert str(missing) in result["msg"]


def test_report_action_refuses_to_overwrite_the_timeline(timeline):
    with pytest.raises(incident_report.AnsibleActionFail, match="is the timeline itself"):
        _action({"timeline": str(timeline), "dest": str(timeline)})


def test_report_action_writes_report_json_beside_it_and_returns_a_summary(timeline, tmp_path):
    result = _action({"timeline": str(timeline)})
    data = json.loads(timeline.with_name("report.json").read_text())
    assert result["json_dest"] == str(timeline.with_name("report.json"))
    assert data["incident_id"] == "INC-UNIT" and data["clocks"]["mitigation"]["reached"] is False  # no step_kind
    assert result["summary"]["incident_id"] == "INC-UNIT" and result["summary"]["resolved"] is False
    assert set(result["summary"]["clocks"]) == {"declaration", "mitigation", "containment", "recovery", "resolution"}
    # a report elsewhere: its JSON is named after it
    dest = tmp_path / "out" / "INC-UNIT.md"
    other = _action({"timeline": str(timeline), "dest": str(dest)})
    assert (
        other["json_dest"] == str(tmp_path / "out" / "INC-UNIT.json") and (tmp_path / "out" / "INC-UNIT.json").exists()
    )
    # the JSON alone changed (removed): the task reports a change and writes it back
    timeline.with_name("report.json").unlink()
    again = _action({"timeline": str(timeline)})
    assert again["changed"] is True and timeline.with_name("report.json").exists()
    assert _action({"timeline": str(timeline)})["changed"] is False


def test_report_action_check_mode_writes_no_json_either(timeline):
    result = _action({"timeline": str(timeline)}, check_mode=True)
    assert result["changed"] is True
    assert not timeline.with_name("report.md").exists() and not timeline.with_name("report.json").exists()


def test_report_action_refuses_a_json_dest_that_is_the_timeline(timeline):
    with pytest.raises(incident_report.AnsibleActionFail, match=r"json_dest .* is the timeline"):
        _action({"timeline": str(timeline), "json_dest": str(timeline)})


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"review_policy": {"P7": 1}}, "review_policy 'P7'"),
        ({"review_policy": {"P1": -2}}, "review_policy P1=-2"),
        ({"review_holidays": ["31/12/2025"]}, "'31/12/2025' is not a date"),
        ({"chart_max_actions": -1}, "chart_max_actions=-1"),
    ],
)
def test_report_action_bad_report_options_fail_naming_them_and_write_nothing(timeline, args, named):
    result = _action({"timeline": str(timeline), **args})
    assert result["failed"] is True and named in result["msg"]
    assert not timeline.with_name("report.md").exists() and not timeline.with_name("report.json").exists()


def _append(path, msg):
    tl.append_record(path, {"incident_id": "INC-UNIT", "event": "note", "details": {"msg": msg}})


def _bucket_seals(monkeypatch, listing):
    """The seal bucket stood in for by ``listing`` (called when the action lists it); returns the call count."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import seal as seal_lib

    calls = []

    def fake_list(s3, caller, bucket, prefix, incident_id):
        calls.append(incident_id)
        return [seal_lib.parse_seal(seal, source=f"s3://{bucket}/seal") for seal in listing()]

    monkeypatch.setattr(incident_report, "list_seals", fake_list)
    monkeypatch.setattr(incident_report, "s3_client", lambda *a, **k: mock.MagicMock())
    return calls


def test_a_responder_sealing_between_the_read_and_the_seal_listing_is_not_a_removal(timeline, monkeypatch):
    """The race the eight-responder load test found: the report read 2 records; before it listed the seals another
    responder of the incident appended record 3 and sealed it. The timeline is read again, once; all verifies."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import seal as seal_lib

    def another_responder():
        _append(timeline, "another responder's note")
        return [seal_lib.make_seal(tl.verify_timeline(timeline), operator="bob")]

    calls = _bucket_seals(monkeypatch, another_responder)
    result = _action({"timeline": str(timeline), "seal_bucket": "evidence", "durable": False})
    assert not result.get("failed"), result["msg"]
    assert (result["records"], result["seals_checked"], len(calls)) == (3, 1, 1)


def test_a_seal_beyond_the_timeline_after_the_second_read_is_still_a_removal(timeline, monkeypatch):
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import seal as seal_lib

    _append(timeline, "to be removed")
    sealed = seal_lib.make_seal(tl.verify_timeline(timeline))
    lines = timeline.read_bytes().splitlines(keepends=True)
    timeline.write_bytes(b"".join(lines[:-1]))
    _bucket_seals(monkeypatch, lambda: [sealed])
    result = _action({"timeline": str(timeline), "seal_bucket": "evidence", "durable": False})
    assert result["failed"] is True and result["verified"] is False
    assert "the timeline has only 2 records, the seal covers 3: records were removed" in result["msg"]


def test_a_timeline_rewritten_between_the_two_reads_is_refused(timeline, monkeypatch):
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import seal as seal_lib

    def rewrite():
        records = tl.verify_timeline(timeline)
        timeline.unlink()
        tl.append_record(timeline, {"incident_id": "INC-UNIT", "event": "playbook_start", "playbook": "other.yml"})
        for _ in range(3):
            _append(timeline, "rewritten")
        return [dict(seal_lib.make_seal(records), seq=5)]

    _bucket_seals(monkeypatch, rewrite)
    result = _action({"timeline": str(timeline), "seal_bucket": "evidence", "durable": False})
    assert result["failed"] is True
    assert "changed while it was read, and not by appending (its first 2 records differ" in result["msg"]
