"""The post-incident report's facts, chart and review date, rendered from crafted timelines (no ansible-playbook):
clocks from the first event by step_kind, the lifecycle's severity/status/roles/communications, targets and failed
targets, the review due date in business days, hostile text in Markdown and Mermaid, caps, unfinished runs, and a
deterministic report.json."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import lifecycle as lc  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import report as rp  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402

T0 = datetime(2025, 12, 26, 14, 0, tzinfo=UTC)  # a Friday
HOSTILE = (
    'API: down #1; `rm` <script>alert(1)</script> %%{init: {"theme":"dark"}}%% '
    "\nsection evil\nclick a call b() [x](y) | ``` &amp; #58; ﬂ°°58¶ß"
)


class Timeline:
    """Builds a verified-looking list of records, one run (``run_id``) at a time."""

    def __init__(self, incident_id="INC-R"):
        self.records = []
        self.incident_id = incident_id
        self.run_id = None
        self.state = None

    def add(self, minutes, event, **kw):
        rec = tl.new_record(
            seq=len(self.records) + 1,
            ts=tl.utc_timestamp(T0 + timedelta(minutes=minutes)),
            event=event,
            incident_id=self.incident_id,
            operator={"user": "ana", "source": "local"},
            **kw,
        )
        rec["run_id"] = self.run_id
        rec["hash"] = f"{rec['seq']:064x}"
        self.records.append(rec)
        return rec

    def start(self, minutes, run_id="run-1", check_mode=False):
        self.run_id = run_id
        return self.add(minutes, "playbook_start", playbook="playbooks/x.yml", check_mode=check_mode)

    def end(self, minutes, failed_hosts=()):
        details = {"outcome": "failed" if failed_hosts else "ok", "failed_hosts": sorted(failed_hosts), "stats": {}}
        return self.add(minutes, "playbook_end", playbook="playbooks/x.yml", details=details)

    def step(self, minutes, kind, host="localhost", event="task_changed", task=None, check_mode=False, **details):
        return self.add(
            minutes,
            event,
            task=task or f"{kind} step",
            host=host,
            action="ansible.builtin.command",  # classification never looks at the action
            changed=event == "task_changed",
            check_mode=check_mode,
            details=dict(details, step_kind=kind),
        )

    def life(self, minutes, fn, params):
        entry = fn(params, self.state, T0 + timedelta(minutes=minutes))
        rec = self.add(
            minutes,
            "task_ok",
            task="lifecycle",
            host="localhost",
            action="firebreak.runbooks.incident_lifecycle",
            details={"lifecycle": entry},
        )
        self.state = lc.fold([dict(entry, seq=rec["seq"])], self.state)
        return rec

    def declare(self, minutes, **params):
        base = {"incident_id": self.incident_id, "title": "API down", "severity": "P2", "roles": {"commander": "@jane"}}
        return self.life(minutes, lc.declare, dict(base, **params))

    def facts(self, **kw):
        return rp.report_facts(self.records, "/x/timeline.jsonl", **kw)[0]

    def render(self, **kw):
        return rp.render(self.records, "/x/timeline.jsonl", **kw)


def incident(resolved=True, first_event_at="2025-12-26T13:50:00Z"):
    """A declared incident on one host: mitigation, a failing and a passing verification, containment, resolve."""
    t = Timeline()
    t.start(0)
    t.declare(2, first_event_at=first_event_at, impact="checkout errors", roles={"commander": "@jane"})
    t.step(3, "verification", event="task_ok", passed=True, checks=[{"verdict": "pass"}])  # before mitigation
    t.step(4, "mitigation", check_mode=True)  # a dry run counts for nothing
    t.step(5, "evidence")
    t.step(6, "mitigation", task="Roll back api")
    t.step(7, "verification", event="task_ok", passed=None, checks=[{"verdict": "pass"}, {"verdict": "fail"}])
    t.step(8, "verification", event="task_failed", passed=False)
    t.step(
        9, "containment", containment=[{"id": "c1", "incident_id": "INC-R", "step": "waf_block", "resource": "ipset"}]
    )
    t.step(10, "verification", event="task_ok", task="Verify health", passed=True, checks=[{"verdict": "pass"}])
    t.life(11, lc.update, {"severity": "P1", "status": "identified", "roles": {"comms": "@kim"}})
    t.life(
        12,
        lc.delivery,
        {"channel": "chat", "for_event": "update", "delivered": False, "attempts": 2, "error": "timed out"},
    )
    t.life(13, lc.delivery, {"channel": "status_page", "for_event": "update", "delivered": True, "attempts": 1})
    if resolved:
        t.life(30, lc.resolve, {"update": "rolled back"})
    t.end(31)
    return t


# ------------------------------------------------------------------ clocks


def test_clocks_run_from_the_first_event_given_at_declaration():
    facts = incident().facts()
    assert facts["first_event"] == {"at": "2025-12-26T13:50:00.000Z", "source": "declaration"}
    clocks = facts["clocks"]
    assert {name: clocks[name]["seconds"] for name in rp.CLOCKS} == {
        "declaration": 12 * 60.0,
        "mitigation": 16 * 60.0,
        "containment": 19 * 60.0,
        "recovery": 20 * 60.0,  # the passing verification at 14:10, not the one before mitigation nor the failing ones
        "resolution": 40 * 60.0,
    }
    assert clocks["recovery"]["at"] == "2025-12-26T14:10:00.000Z" and clocks["recovery"]["basis"] == "verification"
    assert clocks["mitigation"]["task"] == "Roll back api" and clocks["mitigation"]["seq"] == 6
    assert clocks["declaration"]["seq"] == 2 and clocks["resolution"]["seq"] == 14


def test_without_a_first_event_at_the_clocks_run_from_the_first_record():
    facts = incident(first_event_at=None).facts()
    assert facts["first_event"] == {"at": "2025-12-26T14:00:00.000Z", "source": "first_record"}
    assert facts["clocks"]["declaration"]["seconds"] == 120.0 and facts["clocks"]["mitigation"]["seconds"] == 360.0


def test_a_verification_with_one_failing_check_is_not_recovery():
    t = Timeline()
    t.start(0)
    t.step(1, "mitigation")
    t.step(2, "verification", event="task_ok", checks=[{"verdict": "pass"}, {"verdict": "fail"}])
    assert not t.facts()["clocks"]["recovery"]["reached"]
    t.step(3, "verification", event="task_ok", passed=True, checks=[{"verdict": "pass"}])
    assert t.facts()["clocks"]["recovery"]["seconds"] == 180.0


def test_steps_are_classified_by_their_recorded_kind_never_by_the_module():
    t = Timeline()
    t.start(0)
    t.add(
        1, "task_changed", task="rollback", action="firebreak.runbooks.ecs_service_rollback", changed=True, details={}
    )
    assert not t.facts()["clocks"]["mitigation"]["reached"]  # no step_kind: not a step
    t.step(2, "mitigation")  # ansible.builtin.command with a mitigation's result
    facts = t.facts()
    assert facts["clocks"]["mitigation"]["seq"] == 3
    assert [(s["seq"], s["kind"], s["target"], s["result"]) for s in facts["steps"]] == [
        (3, "mitigation", "localhost", "changed")
    ]


def test_facts_carry_severity_status_roles_and_communications():
    facts = incident().facts()
    assert facts["severity"] == "P1" and facts["severity_source"] == "lifecycle"
    assert [h["severity"] for h in facts["severity_history"]] == ["P2", "P1"]
    assert [h["status"] for h in facts["status_history"]] == ["investigating", "identified", "resolved"]
    assert facts["status"] == "resolved" and facts["resolved"] is True
    assert facts["roles"] == {"commander": "@jane", "comms": "@kim"}
    assert [(h["role"], h["person"]) for h in facts["role_history"]] == [("commander", "@jane"), ("comms", "@kim")]
    assert [(c["channel"], c["delivered"]) for c in facts["communications"]] == [
        ("chat", False),
        ("status_page", True),
    ]
    assert facts["communications_not_delivered"] == 1 and facts["impact"] == "checkout errors"
    assert facts["review_due"] == facts["review"]["due"] == "2026-01-02"
    assert facts["containments"]["open"][0]["id"] == "c1" and facts["containments"]["released"] == []


def test_the_summary_and_milestones_in_markdown():
    md = incident().render()[0]
    summary = md.split("## Incident Summary\n", 1)[1].split("\n## ", 1)[0]
    assert "- **Severity**: P1 \\(P2 → P1\\)" in summary
    assert "- **Status**: resolved at 2025-12-26 14:30:00 UTC" in summary
    assert "- **Impact**: checkout errors" in summary
    assert "- **Roles**: Incident Commander: @jane; Communications Lead: @kim" in summary
    assert "- **Time to declare**: 12 minutes (14:02:00 UTC, seq 2)" in summary
    assert "- **Time to recovery**: 20 minutes (14:10:00 UTC, seq 10)" in summary
    assert "- **Post-incident review due**: 2026-01-02 (P1: within 5 business days of the resolution)" in summary
    table = md.split("## Time to Containment and Recovery\n", 1)[1].split("\n## ", 1)[0]
    assert "| Declaration | 14:02:00 UTC | 12 minutes | seq 2: lifecycle record |" in table
    assert "| Recovery | 14:10:00 UTC | 20 minutes | seq 10: Verify health" in table
    assert "The chat post of the update record was not delivered: timed out" in md
    assert "Release the containment applied at seq 9" in md and "[Due: 2026-01-02]" in md


# ------------------------------------------------------------------ unfinished, undeclared


def test_an_unresolved_incident_says_so_and_its_missing_clocks_are_not_reached():
    t = incident(resolved=False)
    t.records.pop()  # the run has no end either (interrupted)
    md, text, facts = t.render()
    assert facts["resolved"] is False and facts["status"] == "identified"
    assert facts["clocks"]["resolution"] == {"reached": False, "at": None, "seconds": None, "seq": None}
    assert facts["review"]["due"] is None and "not resolved" in facts["review"]["note"]
    assert "- **Status**: **unresolved** (status identified)" in md
    assert "- **Time to resolution**: not reached (the incident is not resolved)" in md
    assert "not set: due 5 business days after the resolution; the incident is not resolved" in md
    assert "not resolved :active" in md  # the open phase in the chart
    assert json.loads(text)["targets"][0]["status"] == "unfinished"


def test_a_timeline_without_lifecycle_or_steps_still_renders():
    t = Timeline()
    t.start(0)
    t.add(1, "note", msg="looking", details={"kind": "observation", "severity": "P3"})
    md, _text, facts = t.render()
    assert facts["declared"] is False and facts["status"] is None and facts["severity"] == "P3"
    assert facts["severity_source"] == "note" and facts["targets"] == []
    assert all(not facts["clocks"][name]["reached"] for name in rp.CLOCKS)
    assert "- **Status**: not declared" in md and "- **Time to mitigation**: not reached" in md


# ------------------------------------------------------------------ review due date


@pytest.mark.parametrize(
    ("resolved_at", "severity", "due"),
    [
        ("2025-12-26T14:00:00Z", "P1", "2026-01-02"),  # Friday + 5 business days: the next Friday
        ("2025-12-27T09:00:00Z", "P2", "2026-01-02"),  # Saturday: Monday is the first business day
        ("2025-12-29T23:59:00Z", "P2", "2026-01-05"),  # Monday
        ("2025-12-26T14:00:00Z", "P3", "2026-01-09"),  # ten business days
    ],
)
def test_review_due_skips_weekends(resolved_at, severity, due):
    assert rp.review_due(severity, resolved_at, rp.review_policy())["due"] == due


def test_review_policy_is_data_and_can_be_overridden():
    policy = rp.review_policy({"P3": 2, "P4": "3", "P1": None})
    assert policy == {"P1": None, "P2": 5, "P3": 2, "P4": 3}
    assert rp.review_due("P4", "2025-12-26T14:00:00Z", policy)["due"] == "2025-12-31"
    none = rp.review_due("P1", "2025-12-26T14:00:00Z", policy)
    assert none["due"] is None and none["required"] is False and "no review required for P1" in none["note"]
    holidays = rp.review_holidays(["2025-12-29", "2026-01-01"])
    assert rp.review_due("P2", "2025-12-26T14:00:00Z", policy, holidays)["due"] == "2026-01-06"
    assert rp.review_due("P4", None, rp.review_policy())["required"] is False


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"P5": 3}, "review_policy 'P5'"),
        ({"P1": 0}, "review_policy P1=0"),
        ({"P2": "soon"}, "review_policy P2='soon'"),
        ({"P2": True}, "review_policy P2=True"),
        (["P1"], "must be a mapping"),
    ],
)
def test_a_bad_review_policy_names_the_value(policy, message):
    with pytest.raises(rp.ReportInputError, match=re.escape(message)):
        rp.review_policy(policy)
    with pytest.raises(rp.ReportInputError, match="'next friday' is not a date"):
        rp.review_holidays(["next friday"])


def test_the_report_uses_the_given_review_policy():
    facts = incident().facts(review={"P1": 1})
    assert facts["review"]["due"] == "2025-12-29" and facts["review"]["policy"]["P1"] == 1


# ------------------------------------------------------------------ targets (fan-out)


def fanout(end=True):
    t = Timeline()
    t.start(0)
    t.declare(1)
    for i, host in enumerate(("acct-a", "acct-b", "acct-c", "acct-d")):
        t.step(2 + i / 10, "mitigation", host=host, task=f"Roll back on {host}")
    t.add(3, "task_failed", task="Verify health", host="acct-b", msg="1/1 check(s) failed", details={})
    t.add(3.1, "host_unreachable", task="Verify health", host="acct-c", msg="timed out")
    t.add(3.2, "task_failed", task="Optional probe", host="acct-d", details={"ignore_errors": True})
    t.add(3.3, "task_failed", task="Rescued step", host="acct-a", details={})
    t.add(3.4, "task_ok", task="Rescue: roll forward", host="acct-a", details={})  # a rescue: acct-a goes on
    for host in ("acct-a", "acct-d"):
        t.step(4, "verification", host=host, event="task_ok", passed=True)
    t.add(5, "task_ok", task="lifecycle only", host="controller", details={})
    if end:
        t.end(6, failed_hosts=["acct-b", "acct-c"])
    return t


@pytest.mark.parametrize("end", [True, False])
def test_failed_targets_are_listed_and_the_others_finished(end):
    facts = fanout(end).facts()
    status = {t["name"]: t["status"] for t in facts["targets"]}
    assert status == {
        "acct-a": "finished" if end else "unfinished",
        "acct-b": "failed",
        "acct-c": "failed",
        "acct-d": "finished" if end else "unfinished",
    }  # "controller" ran no step and did not fail: not a target
    assert facts["failed_targets"] == ["acct-b", "acct-c"]
    failure = {t["name"]: t["failure"] for t in facts["targets"]}
    assert failure["acct-b"]["what"] == "Verify health failed" and failure["acct-c"]["what"] == "unreachable"
    recovered = {t["name"]: t["recovered_at"] for t in facts["targets"]}
    assert recovered["acct-a"] == "2025-12-26T14:04:00.000Z" and recovered["acct-b"] is None


def test_the_run_end_decides_when_there_is_one():
    t = fanout()
    t.records[-1]["details"]["failed_hosts"] = ["acct-b"]  # acct-c came back and finished, per the run's end
    assert t.facts()["failed_targets"] == ["acct-b"]


def test_actions_are_grouped_by_target_and_the_failed_ones_listed():
    md = fanout().render()[0]
    targets = md.split("## Targets\n", 1)[1].split("\n## ", 1)[0]
    assert (
        "| acct-b | 1 | 1 | 14:02:06 UTC | - | **failed** at seq 7: Verify health failed — 1/1 check\\(s\\) failed |"
        in targets
    )
    assert "| acct-c | 1 | 1 | 14:02:12 UTC | - | **failed** at seq 8: unreachable — timed out |" in targets
    assert "| acct-a | 2 | 1 | 14:02:00 UTC | 14:04:00 UTC | finished |" in targets
    assert "Failed targets (2): acct-b, acct-c. The other targets went on." in targets
    actions = md.split("## Actions\n", 1)[1].split("\n## ", 1)[0]
    headings = re.findall(r"^### (.+)$", actions, re.M)
    assert headings == ["Target acct-a", "Target acct-b", "Target acct-c", "Target acct-d"]
    assert "#### seq 4 — 14:02:06 UTC — Roll back on acct-b" in actions
    chart = mermaid(md)
    assert "    section target acct-b" in chart and ":crit, milestone" in chart
    assert "- **Targets**: 4 (2 failed: acct-b, acct-c)" in md


def test_one_target_is_not_grouped():
    md = incident().render()[0]
    assert "## Targets" not in md and "### Target" not in md and "section Key actions" in mermaid(md)


# ------------------------------------------------------------------ Mermaid and hostile text

# a text: no syntax character, except in the entity codes Mermaid draws back (#58; for ":")
_NAME = r"(?:[^:#;%`{}<>\n\"'\\\[\]|=]|#\d+;)+"
_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_KEYWORDS = ("title", "section", "dateFormat", "axisFormat", "click", "excludes", "includes", "todayMarker", "acc")
_TASK = rf"(?P<task>{_NAME}) :(?:(?:crit|done|active|milestone), )*[a-z]+\d+, {_TIME}, (?:{_TIME}|0s)"
_LINE = re.compile(
    rf"^(gantt|    title {_NAME}|    dateFormat YYYY-MM-DD HH:mm:ss|    axisFormat %[-%A-Za-z: ]+"
    rf"|    todayMarker off|    section {_NAME}|    {_TASK})$"
)


def mermaid(md):
    return md.split("```mermaid\n", 1)[1].split("\n```", 1)[0]


def assert_valid_chart(chart):
    lines = chart.split("\n")
    assert lines[0] == "gantt"
    ids = []
    for line in lines:
        match = _LINE.match(line)
        assert match, f"not a gantt line: {line!r}"
        if match.group("task"):
            assert not match.group("task").startswith(_KEYWORDS), line
            ids.append(re.search(r", ([a-z]+\d+), ", line).group(1))
    assert len(ids) == len(set(ids)), "task ids repeat"


def hostile_timeline(actions=3):
    t = Timeline("INC-H")
    t.start(0)
    # incident_declare refuses such a title now; a timeline written before that, or by hand, can still hold one
    t.declare(1, title="placeholder", impact=HOSTILE)
    t.records[-1]["details"]["lifecycle"]["title"] = HOSTILE
    t.state["title"] = HOSTILE
    for i in range(actions):
        t.step(2 + i / 60, "mitigation", host=f"h{i % 2}", task=f"{HOSTILE} {i}")
    t.add(3 + actions / 60, "task_failed", task=HOSTILE, host="h1", msg=HOSTILE, details={})
    t.add(4 + actions / 60, "note", msg=HOSTILE, details={"kind": "decision"})
    t.end(5 + actions / 60, failed_hosts=["h1"])
    return t


def test_hostile_titles_and_task_names_cannot_break_the_chart():
    md = hostile_timeline().render()[0]
    chart = mermaid(md)
    assert_valid_chart(chart)
    assert "`" not in chart and "%%" not in chart and "<script" not in chart and "\nsection evil" not in chart
    assert "API#58; down #35;1#59; #96;rm#96; #60;script#62;" in chart  # entity codes Mermaid draws back
    # an entity code in the text, and Mermaid's own placeholder characters, stay text
    assert rp.mermaid_text("#58; ﬂ°°58¶ß") == "#35;58#59; #64258;#176;#176;58#182;#223;"


def test_hostile_text_stays_inert_markdown():
    md = hostile_timeline().render()[0]
    outside = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1$", "", md)  # everything outside fenced blocks
    outside = re.sub(r"(?<![`\\])(`+)(?!`)(.+?)(?<!`)\1(?!`)", "", outside)  # and inline code spans
    assert "<script>" not in outside and "\nsection evil" not in outside and "\nclick a call" not in outside
    assert not re.search(
        r"^#{1,6} (?!Post-incident|Incident|Phases|Timeline|Targets|Actions|Target|Notes|Time "
        r"|Follow-ups|Root|Contributing|What|Action|seq |Containments)",
        outside,
        re.M,
    )
    heading = md.split("\n", 1)[0]
    assert heading.startswith("# Post-incident report: INC-H — API: down \\#1; \\`rm\\` \\<script\\>")
    timeline = md.split("## Timeline\n", 1)[1].split("\n## ", 1)[0]
    assert all(
        re.match(r"^(`{3,}|--- \d{4}|All times|\d\d:\d\d:\d\d UTC - #\d+ |$)", line) for line in timeline.split("\n")
    )


def test_a_huge_timeline_caps_the_chart_and_says_how_many_were_left_out():
    t = hostile_timeline(actions=500)
    md, _text, facts = t.render(chart_max=25)
    chart = mermaid(md)
    assert_valid_chart(chart)
    assert len(re.findall(r", a\d+, ", chart)) == 25
    assert facts["chart"] == {"key_actions": 501, "shown": 25, "left_out": 476, "max": 25}
    assert "The chart shows 25 of 501 key actions (the milestones and failures first); 476 left out." in md
    assert re.search(r"^    failed - .+ :crit, milestone, ", chart, re.M)  # the failure is kept despite the cap
    timeline = md.split("## Timeline\n", 1)[1].split("\n## ", 1)[0]
    assert all(f" - #{rec['seq']} " in timeline for rec in t.records)  # every record is still in the timeline


def test_chart_phases_follow_the_milestones_in_time_order():
    chart = mermaid(incident().render()[0])
    assert_valid_chart(chart)
    phases = re.findall(r"^    (.+?) :done, ph\d+, (\S+ \S+), (\S+ \S+)$", chart, re.M)
    assert [p[0] for p in phases] == [
        "first event to declared",
        "declared to mitigated",
        "mitigated to contained",
        "contained to recovered",
        "recovered to resolved",
    ]
    assert phases[0][1:] == ("2025-12-26 13:50:00", "2025-12-26 14:02:00")


def test_mermaid_text_escapes_every_syntax_character():
    text = rp.mermaid_text("a:b#c;d%e{f}g`h<i>j&k\"l'm\\n[o]p|q=r\x00s\u202et" + "x" * 200, limit=60)
    for ch in ":%{}`<>&\"'\\[]|=\x00\u202e":
        assert ch not in text, ch
    assert text.startswith(
        "a#58;b#35;c#59;d#37;e#123;f#125;g#96;h#60;i#62;j#38;k#34;l#39;m#92;n#91;o#93;p#124;q#61;rst"
    )
    assert text.endswith("…")
    assert rp.mermaid_text("") == "-" and rp.mermaid_text(None) == "-"


# ------------------------------------------------------------------ report.json


def test_report_json_is_deterministic_sorted_and_equal_to_the_facts():
    t = fanout()
    first = t.render()[1]
    again = rp.render(json.loads(json.dumps(t.records)), "/x/timeline.jsonl")[1]
    assert first == again and first.endswith("}\n")
    data = json.loads(first)
    assert first == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data["schema"] == rp.SCHEMA and data["incident_id"] == "INC-R"
    assert data["timeline"]["records"] == len(t.records) and data["timeline"]["last_hash"] == t.records[-1]["hash"]
    for name in rp.CLOCKS:
        assert set(data["clocks"][name]) >= {"reached", "at", "seconds", "seq"}


# ------------------------------------------------------------------ first_event_at at declaration


def test_first_event_at_is_checked_and_kept():
    params = {"title": "x", "severity": "P2", "roles": {"commander": "@a"}}
    entry = lc.declare(dict(params, first_event_at="2025-12-26T13:30:00.5+01:00"), None, T0)
    assert entry["first_event_at"] == "2025-12-26T12:30:00.500Z"
    assert lc.fold([entry])["first_event_at"] == "2025-12-26T12:30:00.500Z"
    assert "Started: 2025-12-26 12:30 UTC" in lc.render(entry, None, lc.resolve_policy())["chat"]
    assert lc.declare(params, None, T0)["first_event_at"] is None
    with pytest.raises(lc.LifecycleError, match="first_event_at '2025-12-26T13:30:00' is not an ISO 8601 time with a"):
        lc.declare(dict(params, first_event_at="2025-12-26T13:30:00"), None, T0)
    with pytest.raises(lc.LifecycleError, match="first_event_at 'yesterday'"):
        lc.declare(dict(params, first_event_at="yesterday"), None, T0)
    with pytest.raises(lc.LifecycleError, match="later than the declaration"):
        lc.declare(dict(params, first_event_at="2025-12-26T15:00:00Z"), None, T0)


def test_a_first_event_after_the_first_record_does_not_make_clocks_negative():
    t = Timeline()
    t.start(0)
    t.step(1, "mitigation")
    t.declare(2, first_event_at="2025-12-26T14:01:30Z")
    facts = t.facts()
    assert facts["first_event"]["at"] == "2025-12-26T14:00:00.000Z"
    assert facts["first_event"]["source"].startswith("first_record")
    assert all((facts["clocks"][n]["seconds"] or 0) >= 0 for n in rp.CLOCKS)
