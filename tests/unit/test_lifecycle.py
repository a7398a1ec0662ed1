"""The incident lifecycle without ansible-playbook: policy, transitions, state folded from records, rendering,
the post plan, and the action plugin's argument spec mirroring the module documentation."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.action import incident_lifecycle as action  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import lifecycle as lc  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import report as rp  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.modules import incident_lifecycle as doc  # noqa: E402

T0 = datetime(2025, 12, 27, 14, 0, tzinfo=timezone.utc)


def declared(severity="P2", **extra):
    params = {
        "incident_id": "INC-1",
        "title": "API unavailable",
        "severity": severity,
        "roles": {"commander": "@jane", "tech_lead": "@john", "scribe": ""},
        "impact": "API errors",
        "services": ["api"],
        **extra,
    }
    return lc.declare(params, None, T0)


def as_records(*entries):
    return [
        {
            "seq": i,
            "event": "task_ok",
            "action": "firebreak.runbooks.incident_lifecycle",
            "check_mode": False,
            "incident_id": "INC-1",
            "details": {"lifecycle": entry},
        }
        for i, entry in enumerate(entries, start=1)
    ]


def test_the_presets_are_the_seeds_tables():
    procedures, serverless = lc.resolve_policy(), lc.resolve_policy("serverless")
    assert [procedures[s]["response_minutes"] for s in lc.SEVERITIES] == [15, 60, 240, None]
    assert [serverless[s]["response_minutes"] for s in lc.SEVERITIES] == [5, 15, 60, None]
    assert [procedures[s]["update_every_minutes"] for s in lc.SEVERITIES] == [15, 30, None, None]
    assert [lc.response_text(procedures[s]["response_minutes"]) for s in lc.SEVERITIES] == [
        "15 minutes",
        "1 hour",
        "4 hours",
        "next business day",
    ]


def test_an_organisation_overrides_the_policy_and_bad_overrides_are_named():
    policy = lc.resolve_policy("incident-procedures", {"P2": {"update_every_minutes": 20, "response_minutes": "30"}})
    assert policy["P2"]["update_every_minutes"] == 20 and policy["P2"]["response_minutes"] == 30
    assert lc.PRESETS["incident-procedures"]["P2"]["update_every_minutes"] == 30  # the preset is not changed
    with pytest.raises(lc.LifecycleError, match="'P5'"):
        lc.resolve_policy(overrides={"P5": {}})
    with pytest.raises(lc.LifecycleError, match=r"P1\.cadence: unknown key"):
        lc.resolve_policy(overrides={"P1": {"cadence": 5}})
    with pytest.raises(lc.LifecycleError, match="must be positive"):
        lc.resolve_policy(overrides={"P1": {"update_every_minutes": 0}})
    with pytest.raises(lc.LifecycleError, match="unknown severity policy preset 'pager'"):
        lc.resolve_policy("pager")


def test_a_declaration_records_roles_policy_and_the_next_update():
    entry = declared()
    assert entry["status"] == "investigating" and entry["roles"] == {"commander": "@jane", "tech_lead": "@john"}
    assert entry["next_update_due"] == "2025-12-27T14:30:00.000Z"
    assert entry["response_due"] == "2025-12-27T15:00:00.000Z"
    assert [h["role"] for h in entry["role_history"]] == ["commander", "tech_lead"]
    with pytest.raises(lc.LifecycleError, match=r"roles\.commander"):
        lc.declare({"title": "x", "severity": "P1", "roles": {}}, None, T0)
    with pytest.raises(lc.LifecycleError, match=r"unknown role.*boss"):
        lc.declare({"title": "x", "severity": "P1", "roles": {"commander": "a", "boss": "b"}}, None, T0)
    with pytest.raises(lc.LifecycleError, match="'P0' is not one of"):
        lc.declare({"title": "x", "severity": "P0", "roles": {"commander": "a"}}, None, T0)


def test_a_severity_change_is_recorded_and_shortens_the_cadence():
    state = lc.fold(lc.lifecycle_records(as_records(declared("P2"))))
    entry = lc.update(
        {
            "severity": "P1",
            "status": "identified",
            "update": "pool exhausted",
            "roles": {"comms": "@kim", "commander": "@jane"},
        },
        state,
        T0 + timedelta(minutes=10),
    )
    assert (entry["previous_severity"], entry["severity"], entry["update_every_minutes"]) == ("P2", "P1", 15)
    assert entry["next_update_due"] == "2025-12-27T14:25:00.000Z"
    assert entry["role_changes"] == [{"role": "comms", "person": "@kim", "previous": None, "at": entry["at"]}]
    state = lc.fold([entry], state)
    assert state["severity"] == "P1" and [h["severity"] for h in state["severity_history"]] == ["P2", "P1"]
    assert [h["status"] for h in state["status_history"]] == ["investigating", "identified"]
    assert state["roles"]["comms"] == "@kim" and len(state["role_history"]) == 3


def test_statuses_only_move_forward_and_resolve_closes():
    state = lc.fold(lc.lifecycle_records(as_records(declared(status="identified"))))
    with pytest.raises(lc.LifecycleError, match="cannot go back from identified to investigating"):
        lc.update({"status": "investigating"}, state, T0)
    with pytest.raises(lc.LifecycleError, match="set by incident_resolve"):
        lc.update({"status": "resolved"}, state, T0)
    with pytest.raises(lc.LifecycleError, match="run incident_declare first"):
        lc.update({}, None, T0)
    entry = lc.resolve({"update": "restored"}, state, T0 + timedelta(hours=2, minutes=15))
    assert entry["duration_seconds"] == 8100 and entry["status"] == "resolved"
    closed = lc.fold([entry], state)
    assert lc.resolve({}, closed, T0) is None  # already resolved: nothing recorded
    with pytest.raises(lc.LifecycleError, match="was resolved at"):
        lc.update({}, closed, T0)
    assert lc.declare({"title": "again", "severity": "P3", "roles": {"commander": "a"}}, closed, T0)  # reopens
    assert lc.declare({"title": "again", "severity": "P3", "roles": {"commander": "a"}}, state, T0) is None


def test_check_mode_and_failed_records_are_not_state():
    records = as_records(declared())
    records[0]["check_mode"] = True
    assert lc.fold(lc.lifecycle_records(records)) is None
    records[0].update(check_mode=False, event="task_failed")
    assert lc.fold(lc.lifecycle_records(records)) is None


def test_the_texts_follow_the_seed_templates():
    entry = declared("P1")
    texts = lc.render(entry, None, lc.resolve_policy())
    assert texts["chat"].splitlines()[:7] == [
        "\U0001f6a8 INCIDENT DECLARED \U0001f6a8",
        "",
        "Incident: INC-1 API unavailable",
        "Severity: P1 - Critical",
        "Status: Investigating",
        "Impact: API errors",
        "Started: 2025-12-27 14:00 UTC",
    ]
    assert "Incident Commander: @jane\nTech Lead: @john" in texts["chat"]
    assert texts["chat"].endswith("We are investigating and will provide updates every 15 minutes.")
    assert texts["status_page"].splitlines()[:2] == ["Title: API unavailable", "Status: Investigating"]
    assert "Updates will be posted every 15 minutes." in texts["status_page"]
    state = lc.fold(lc.lifecycle_records(as_records(entry)))
    upd = lc.update({"status": "identified", "update": "restarting"}, state, T0 + timedelta(hours=1))
    text = lc.render(upd, state, lc.resolve_policy())["chat"]
    assert text.startswith("\U0001f4ca INCIDENT UPDATE [15:00 UTC]") and text.endswith("Next update: 15:15 UTC")
    res = lc.resolve({"update": "pool reset"}, state, T0 + timedelta(hours=2, minutes=15))
    text = lc.render(res, state, lc.resolve_policy())["chat"]
    assert "Duration: 2 hours 15 minutes" in text and "Summary:\npool reset" in text


def test_a_delivery_error_loses_its_urls():
    entry = lc.delivery(
        {
            "channel": "chat",
            "for_event": "declared",
            "delivered": False,
            "error": "failed: https://hooks.slack.com/services/T/B/SECRET timed out",
        },
        None,
        T0,
    )
    assert "SECRET" not in entry["error"] and "<url>" in entry["error"]
    with pytest.raises(lc.LifecycleError, match="channel 'email'"):
        lc.delivery({"channel": "email", "for_event": "declared"}, None, T0)


def test_the_post_plan_fits_the_budget():
    assert lc.post_plan(60, 5, 2) == {"timeout": 5, "retries": 2, "delay": 1, "budget": 60}
    assert lc.post_plan(12, 5, 2)["retries"] == 1  # 2 x 5 s + 1 s
    assert lc.post_plan(3, 5, 2) == {"timeout": 3, "retries": 0, "delay": 1, "budget": 3}


def test_the_action_spec_mirrors_the_documentation():
    options = yaml.safe_load(doc.DOCUMENTATION)["options"]
    assert set(options) == set(action.ARGUMENT_SPEC)
    for name, spec in action.ARGUMENT_SPEC.items():
        for key in ("type", "default", "choices", "required", "elements"):
            assert options[name].get(key) == spec.get(key), (name, key)


def test_the_report_classifies_no_lifecycle_record_as_a_step():
    for rec in as_records(declared(), lc.delivery({"channel": "chat", "for_event": "declared"}, None, T0)):
        assert tl.record_step_kind(rec) is None


def test_the_report_shows_severity_roles_status_history_and_communications():
    first = declared("P2")
    state = lc.fold(lc.lifecycle_records(as_records(first)))
    upd = lc.update(
        {"severity": "P1", "status": "identified", "roles": {"comms": "@kim"}}, state, T0 + timedelta(minutes=5)
    )
    post = lc.delivery(
        {"channel": "chat", "for_event": "update", "delivered": False, "attempts": 3, "error": "timed out"},
        state,
        T0 + timedelta(minutes=6),
    )
    records = as_records(first, upd, post)
    for rec in records:
        rec.update(ts=rec["details"]["lifecycle"]["at"], task="lifecycle", host="localhost")
    report = rp.render(records, "timeline.jsonl")[0]
    assert "- **Severity**: P1 \\(P2 → P1\\)" in report  # Markdown-escaped
    section = report.split("## Incident Lifecycle\n", 1)[1].split("\n## ", 1)[0]
    assert "| 2025-12-27 14:00 UTC | P2 | investigating |" in section
    assert "| 2025-12-27 14:05 UTC | P1 | identified |" in section
    assert "Communications Lead: @kim" in section
    assert "update to chat: **NOT delivered** (timed out) after 3 attempt(s)" in section


def test_the_timeline_is_found_where_the_callback_writes_it(tmp_path, monkeypatch):
    """Under ansible-runner or ansible-rulebook FIREBREAK_INCIDENTS_DIR says where the callback writes: a declaration
    recorded there must be found by the next update (it was looked for under ./incidents)."""
    monkeypatch.delenv("FIREBREAK_TIMELINE", raising=False)
    monkeypatch.setenv("FIREBREAK_INCIDENTS_DIR", str(tmp_path / "runs"))
    path, incident = action.timeline_path({"incident_id": "INC-7"}, {})
    assert (path, incident) == (str(tmp_path / "runs" / "INC-7" / "timeline.jsonl"), "INC-7")
    monkeypatch.setenv("FIREBREAK_TIMELINE", str(tmp_path / "t.jsonl"))
    assert action.timeline_path({"incident_id": "INC-7"}, {})[0] == str(tmp_path / "t.jsonl")
