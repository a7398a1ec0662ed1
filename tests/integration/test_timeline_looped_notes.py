"""A note task with a loop (found by the load proof, issue 20 item 3: a responder writing twenty notes in one task):
the timeline callback recorded one ``note`` record, "All items completed", with the twenty notes hidden in its
details, so the report and every reader counting notes saw one. Each item is its own note record now, in order."""

from __future__ import annotations

import json

import pytest

from tests.integration.load_helpers import NOTES

pytestmark = pytest.mark.integration


def test_each_item_of_a_looped_note_is_a_note_record(run_playbook):
    run = run_playbook(NOTES, extra_vars={"load_responder": "r1", "load_notes": 5})
    assert run.returncode == 0, run.output
    records = [json.loads(line) for line in run.timeline.read_text().splitlines()]
    notes = [r for r in records if r["event"] == "note"]
    assert [r["msg"] for r in notes] == [f"load note r1-{i}" for i in range(5)]
    assert all(r["details"] == {"kind": "observation", "msg": r["msg"]} for r in notes), notes
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
