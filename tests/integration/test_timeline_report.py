"""The post-incident report on a timeline written by real tasks: the lifecycle roles (declared with a first event
time and a hostile title, a severity change, a role change, posts that were not delivered), a mitigation on three
inventory hosts, one of them failing, a real health_verify (http, against a local server) on the others, and the
resolution; then ``playbooks/incident_report.yml`` writes report.md and report.json.

No sandbox is needed: every host is this machine (tests/integration/playbooks/timeline/inventory.ini)."""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
PLAYBOOKS = REPO / "tests" / "integration" / "playbooks" / "timeline"
INVENTORY = PLAYBOOKS / "inventory.ini"
REPORT = REPO / "playbooks" / "incident_report.yml"
TITLE = 'API: down #1; `rm -rf` <b>bold</b> %%{init: {"theme":"dark"}}%% | [x](y)'


def run(playbook, timeline, extra_vars, incident_id="INC-REPORT", extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_", "ANSIBLE_"))}
    env.update(
        {
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "FIREBREAK_TIMELINE": str(timeline),
            "FIREBREAK_INCIDENT_ID": incident_id,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **(extra_env or {}),
        }
    )
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(INVENTORY), str(playbook), "-e", json.dumps(extra_vars)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    proc.output = f"{proc.stdout}\n{proc.stderr}"
    return proc


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def health_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def incident(tmp_path, health_url, resolve=True):
    timeline = tmp_path / "INC-REPORT" / "timeline.jsonl"
    first_event = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    proc = run(
        PLAYBOOKS / "report_fanout.yml",
        timeline,
        {
            "title": TITLE,
            "first_event_at": first_event.isoformat().replace("+00:00", "Z"),
            "chat_url": f"http://127.0.0.1:{closed_port()}/hook",
            "fail_host": "web2",
            "health_url": health_url,
            "resolve": resolve,
        },
    )
    assert proc.returncode == 2, proc.output[-4000:]  # web2 failed; the other targets and the frame went on
    assert "AccessDenied" in proc.output
    return timeline, first_event


@pytest.fixture(scope="module")
def resolved(tmp_path_factory, health_url):
    tmp_path = tmp_path_factory.mktemp("resolved")
    timeline, first_event = incident(tmp_path, health_url)
    # the custom stats (set_stats) are what AWX keeps as the job's artifacts
    proc = run(REPORT, timeline, {"incident_timeline": str(timeline)}, extra_env={"ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    assert proc.returncode == 0, proc.output[-4000:]
    return timeline, first_event, proc


def records(timeline):
    return [json.loads(line) for line in timeline.read_text(encoding="utf-8").splitlines()]


def test_report_json_has_the_facts_from_the_records(resolved):
    timeline, first_event, proc = resolved
    data = json.loads((timeline.parent / "report.json").read_text(encoding="utf-8"))
    recs = records(timeline)
    by_task = {}
    for rec in recs:
        by_task.setdefault(rec["task"], []).append(rec)
    assert data["schema"] == "firebreak.runbooks.report/1" and data["incident_id"] == "INC-REPORT"
    assert data["title"] == TITLE and data["impact"] == "Checkout errors for some users"
    assert (data["severity"], data["status"], data["resolved"]) == ("P1", "resolved", True)
    assert [h["severity"] for h in data["severity_history"]] == ["P2", "P1"]
    assert [h["status"] for h in data["status_history"]] == ["investigating", "monitoring", "resolved"]
    assert data["roles"] == {"commander": "@jane", "tech_lead": "@john", "comms": "@kim"}
    assert data["communications"] and not any(c["delivered"] for c in data["communications"])
    assert [c["for_event"] for c in data["communications"]] == ["declared", "update", "resolved"]
    assert data["communications_not_delivered"] == 3

    # clocks: from the first event given at declaration, to the records that reached them
    assert data["first_event"] == {
        "at": first_event.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": "declaration",
    }
    declared = next(r for r in recs if (r["details"] or {}).get("lifecycle", {}).get("event") == "declared")
    mitigation = by_task["Roll back api: revision 142 -> 141 #1"][0]
    recovery = by_task["Verify health"][0]
    clocks = data["clocks"]
    assert clocks["declaration"]["seq"] == declared["seq"]
    assert (clocks["mitigation"]["seq"], clocks["mitigation"]["at"]) == (mitigation["seq"], mitigation["ts"])
    assert (clocks["recovery"]["seq"], clocks["recovery"]["basis"]) == (recovery["seq"], "verification")
    assert recovery["action"] == "firebreak.runbooks.health_verify" and recovery["details"]["passed"] is True
    assert clocks["containment"] == {"reached": False, "at": None, "seconds": None, "seq": None}
    for name in ("declaration", "mitigation", "recovery", "resolution"):
        at = datetime.fromisoformat(clocks[name]["at"])
        assert clocks[name]["seconds"] == pytest.approx((at - first_event).total_seconds(), abs=0.002), name
        assert 600 <= clocks[name]["seconds"] < 900, name  # about ten minutes after the first event
    assert (
        clocks["declaration"]["seconds"]
        < clocks["mitigation"]["seconds"]
        < clocks["recovery"]["seconds"]
        < clocks["resolution"]["seconds"]
    )

    # targets, steps, review
    assert sorted((t["name"], t["status"]) for t in data["targets"]) == [
        ("web1", "finished"),
        ("web2", "failed"),
        ("web3", "finished"),
    ]
    assert data["failed_targets"] == ["web2"]
    web2 = next(t for t in data["targets"] if t["name"] == "web2")
    assert web2["failure"]["what"] == "Assume the target's role (fails on one target) failed"
    assert "AccessDenied" in web2["failure"]["msg"]
    kinds = sorted((s["target"], s["kind"], s["result"]) for s in data["steps"])
    assert kinds == [
        ("web1", "mitigation", "changed"),
        ("web1", "verification", "ok"),
        ("web2", "mitigation", "changed"),
        ("web3", "mitigation", "changed"),
        ("web3", "verification", "ok"),
    ]
    resolved_day = datetime.fromisoformat(data["resolved_at"]).date()
    due = datetime.fromisoformat(data["review"]["due"]).date()
    assert data["review"]["business_days"] == 5 and due > resolved_day
    assert sum(1 for d in range(1, (due - resolved_day).days + 1) if (resolved_day + timedelta(d)).weekday() < 5) == 5
    assert data["timeline"]["records"] == len(recs) and data["timeline"]["last_hash"] == recs[-1]["hash"]
    # the job's artifacts (set_stats) carry the summary
    stats = proc.stdout.split("CUSTOM STATS:", 1)[1]
    assert '"firebreak_report"' in stats and '"failed_targets": [' in stats and '"web2"' in stats
    assert str(timeline.parent / "report.json") in stats


def test_report_md_has_the_sections_chart_and_targets(resolved):
    timeline, _first_event, _proc = resolved
    md = (timeline.parent / "report.md").read_text(encoding="utf-8")
    summary = md.split("## Incident Summary\n", 1)[1].split("\n## ", 1)[0]
    assert "- **Severity**: P1 \\(P2 → P1\\)" in summary
    assert "- **Status**: resolved at " in summary and "- **Impact**: Checkout errors for some users" in summary
    assert "- **Roles**: Incident Commander: @jane; Tech Lead: @john; Communications Lead: @kim" in summary
    assert "- **Targets**: 3 (1 failed: web2)" in summary
    assert "(given at declaration)" in summary
    for label in ("Time to declare", "Time to mitigation", "Time to recovery", "Time to resolution"):
        assert re.search(rf"^- \*\*{label}\*\*: \d+ minutes? .*\(\d\d:\d\d:\d\d UTC, seq \d+\)$", summary, re.M), label
    assert "- **Time to containment**: not reached" in summary
    assert re.search(
        r"^- \*\*Post-incident review due\*\*: \d{4}-\d\d-\d\d \(P1: within 5 business days", summary, re.M
    )
    chart = md.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    assert chart.startswith("gantt\n    title Incident INC-REPORT - API#58; down #35;1#59; #96;rm -rf#96;")
    assert "    section target web2" in chart and ":crit, milestone" in chart
    assert "verification - Verify health (passed)" in chart
    for line in chart.split("\n")[1:]:
        assert line.startswith("    ") and "`" not in line and "%%" not in line, line
    targets = md.split("## Targets\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^\| web2 \| 1 \| 1 \| \d\d:\d\d:\d\d UTC \| - \| \*\*failed\*\* at seq \d+: ", targets, re.M)
    assert "Failed targets (1): web2. The other targets went on." in targets
    actions = md.split("## Actions\n", 1)[1].split("\n## ", 1)[0]
    # grouped in the order the targets first appear in the timeline (the forks' order)
    order = [f"Target {t['name']}" for t in json.loads((timeline.parent / "report.json").read_text())["targets"]]
    assert re.findall(r"^### (.+)$", actions, re.M) == order and sorted(order) == [
        "Target web1",
        "Target web2",
        "Target web3",
    ]
    lifecycle = md.split("## Incident Lifecycle\n", 1)[1].split("\n## ", 1)[0]
    assert "declared to chat: **NOT delivered**" in lifecycle and "Communications Lead: @kim" in lifecycle
    assert "# Post-incident report: INC-REPORT — API: down \\#1; \\`rm -rf\\` \\<b\\>bold\\</b\\>" in md


def test_rendering_again_changes_nothing(resolved):
    timeline, _first_event, _proc = resolved
    before = {name: (timeline.parent / name).read_bytes() for name in ("report.md", "report.json")}
    again = run(REPORT, timeline, {"incident_timeline": str(timeline)})
    assert again.returncode == 0 and "changed=0" in again.stdout, again.output[-3000:]
    assert {name: (timeline.parent / name).read_bytes() for name in before} == before


def test_an_unresolved_incident_reports_unresolved_and_not_reached(tmp_path, health_url):
    timeline, _first_event = incident(tmp_path, health_url, resolve=False)
    dest = tmp_path / "out" / "INC-REPORT.md"
    proc = run(
        REPORT,
        timeline,
        {"incident_timeline": str(timeline), "incident_report_dest": str(dest), "firebreak_review_policy": {"P1": 2}},
    )
    assert proc.returncode == 0, proc.output[-3000:]
    data = json.loads((tmp_path / "out" / "INC-REPORT.json").read_text(encoding="utf-8"))
    assert (data["status"], data["resolved"], data["resolved_at"]) == ("monitoring", False, None)
    assert data["clocks"]["resolution"]["reached"] is False and data["clocks"]["recovery"]["reached"] is True
    assert data["review"]["due"] is None and data["review"]["policy"]["P1"] == 2
    md = dest.read_text(encoding="utf-8")
    assert "- **Status**: **unresolved** (status monitoring)" in md
    assert "- **Time to resolution**: not reached (the incident is not resolved)" in md
    assert "not set: due 2 business days after the resolution; the incident is not resolved" in md


def test_a_bad_review_policy_fails_naming_it(resolved, tmp_path):
    timeline, _first_event, _proc = resolved
    proc = run(
        REPORT,
        timeline,
        {
            "incident_timeline": str(timeline),
            "incident_report_dest": str(tmp_path / "r.md"),
            "firebreak_review_policy": {"P9": 3},
        },
    )
    assert proc.returncode != 0 and "review_policy 'P9': severities are P1, P2, P3, P4" in proc.output
    assert "Traceback" not in proc.output and not (tmp_path / "r.md").exists()
