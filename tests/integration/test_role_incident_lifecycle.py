"""incident_declare, incident_update and incident_resolve against a local capture server (a thread on 127.0.0.1):
the rendered posts arrive, the webhook URLs never reach the timeline, a P2 -> P1 change shortens the update
cadence, and a webhook that is down or slow costs a bounded wait, is recorded as not delivered and never stops
the mitigation that follows."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from tests.integration.scenario_helpers import lifecycle, records

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/lifecycle/frame.yml"


class Capture(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay=0.0):
        self.requests: list[tuple[str, dict]] = []
        self.delay = delay
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.delay:
            time.sleep(self.server.delay)
        self.server.requests.append((self.path, json.loads(body)))
        try:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # the client gave up (the slow case)

    def log_message(self, *args):
        pass


@pytest.fixture
def capture():
    servers = []

    def start(delay=0.0):
        server = Capture(delay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: connections are refused


def test_declare_update_resolve_post_the_rendered_texts_and_keep_the_urls_out(run_playbook, capture, tmp_path):
    server = capture()
    chat, status = f"{server.url}/services/T0/B0/SECRET-chat", f"{server.url}/status/SECRET-page"
    run = run_playbook(
        PLAYBOOK,
        {"marker": str(tmp_path / "mitigated"), "chat_url": chat, "status_url": status, "update_severity": "P1"},
    )
    assert run.returncode == 0, run.output[-3000:]
    paths = [path for path, _ in server.requests]
    assert paths == ["/services/T0/B0/SECRET-chat", "/status/SECRET-page"] * 3
    texts = [body["text"] for path, body in server.requests if "chat" in path]
    assert texts[0].startswith("\U0001f6a8 INCIDENT DECLARED") and "Severity: P2 - High" in texts[0]
    assert "Incident Commander: @jane" in texts[0] and "updates every 30 minutes" in texts[0]
    assert texts[1].startswith("\U0001f4ca INCIDENT UPDATE") and "Severity: P1 - Critical (was P2)" in texts[1]
    assert "Communications Lead: @kim" in texts[1] and "Status: Identified" in texts[1]
    assert texts[2].startswith("\u2705 INCIDENT RESOLVED") and "Connection pool reset" in texts[2]
    pages = [body for path, body in server.requests if "status" in path]
    assert [(p["event"], p["status"]) for p in pages] == [
        ("declared", "investigating"),
        ("update", "identified"),
        ("resolved", "resolved"),
    ]

    text = run.timeline.read_text()
    assert "SECRET" not in text and str(server.server_address[1]) not in text
    deliveries = lifecycle(run, "delivery")
    assert [(d["channel"], d["for_event"], d["delivered"]) for d in deliveries] == [
        ("chat", "declared", True),
        ("status_page", "declared", True),
        ("chat", "update", True),
        ("status_page", "update", True),
        ("chat", "resolved", True),
        ("status_page", "resolved", True),
    ]
    # the P2 -> P1 change is recorded and the cadence re-evaluated: 30 minutes at P2, 15 at P1
    declared, update = lifecycle(run, "declared")[0], lifecycle(run, "update")[0]
    assert declared["update_every_minutes"] == 30 and declared["policy_name"] == "incident-procedures"
    assert (update["previous_severity"], update["severity"], update["update_every_minutes"]) == ("P2", "P1", 15)
    due = time.mktime(time.strptime(update["next_update_due"][:19], "%Y-%m-%dT%H:%M:%S"))
    at = time.mktime(time.strptime(update["at"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert due - at == 15 * 60
    assert (
        f"P1 identified: next update due {update['next_update_due']} (every 15 minutes at this severity)" in run.stdout
    )
    assert update["role_changes"] == [{"role": "comms", "person": "@kim", "previous": None, "at": update["at"]}]
    resolved = lifecycle(run, "resolved")[0]
    assert resolved["status"] == "resolved" and resolved["previous_status"] == "identified"


@pytest.mark.parametrize("failure", ["down", "slow"])
def test_a_webhook_down_or_slow_never_stops_the_mitigation(run_playbook, capture, tmp_path, failure):
    if failure == "down":
        url = f"http://127.0.0.1:{closed_port()}/services/SECRET-down"
    else:
        url = f"{capture(delay=4).url}/services/SECRET-slow"
    marker = tmp_path / "mitigated"
    run = run_playbook(PLAYBOOK, {"marker": str(marker), "chat_url": url, "timeout": 1, "retries": 1})
    assert run.returncode == 0, run.output[-3000:]
    assert marker.read_text() == "mitigated\n", "the change after the failed post did not happen"
    deliveries = lifecycle(run, "delivery")
    assert [(d["for_event"], d["delivered"], d["attempts"]) for d in deliveries] == [
        ("declared", False, 2),
        ("update", False, 2),
        ("resolved", False, 2),
    ]
    assert all(d["error"] and "SECRET" not in d["error"] for d in deliveries)
    assert "SECRET" not in run.timeline.read_text()
    lines = [rec for rec in records(run) if rec["event"] == "task_changed"]
    assert [rec["task"] for rec in lines] == ["Mitigate (a harmless change standing in for the first mitigating call)"]
    assert any("NOT delivered" in (rec.get("msg") or "") for rec in records(run))
    # the wait is bounded by the plan the record carries (no timed assertion: this machine's load varies)
    plans = [rec["details"]["post"] for rec in records(run) if (rec.get("details") or {}).get("post")]
    assert [(p["timeout"], p["retries"], p["delay"]) for p in plans] == [(1, 1, 1)] * 3


def test_posting_later_puts_the_first_mitigation_before_any_module_process(run_playbook, capture, tmp_path):
    server = capture()
    run = run_playbook(
        PLAYBOOK,
        {
            "marker": str(tmp_path / "mitigated"),
            "chat_url": f"{server.url}/hook",
            "post_when": "later",
            "stop_after": "declare",
        },
    )
    assert run.returncode == 0, run.output[-3000:]
    tasks = [rec for rec in records(run) if rec["event"].startswith("task_") and rec["event"] != "task_skipped"]
    actions = [rec["action"] for rec in tasks]
    first_module = next(
        i
        for i, a in enumerate(actions)
        if a.startswith("ansible.builtin.")
        and a
        not in (
            "ansible.builtin.include_role",
            "ansible.builtin.include_tasks",
            "ansible.builtin.validate_argument_spec",
        )
    )
    assert actions[first_module] == "ansible.builtin.copy", actions  # the mitigation, then the post
    assert "firebreak.runbooks.incident_lifecycle" in actions[:first_module]
    assert [body["text"].split("\n")[0] for _, body in server.requests] == ["\U0001f6a8 INCIDENT DECLARED \U0001f6a8"]


def test_an_update_recorded_now_is_posted_later_with_the_post_entry_point(run_playbook, capture, tmp_path):
    server = capture()
    args = {
        "marker": str(tmp_path / "m"),
        "chat_url": f"{server.url}/hook",
        "post_when": "later",
        "stop_after": "update",
    }
    run = run_playbook(PLAYBOOK, args)
    assert run.returncode == 0, run.output[-3000:]
    firsts = [body["text"].split("\n")[0] for _, body in server.requests]
    assert firsts[0].startswith("\U0001f6a8 INCIDENT DECLARED") and firsts[1].startswith("\U0001f4ca INCIDENT UPDATE")
    assert [(d["for_event"], d["delivered"]) for d in lifecycle(run, "delivery")] == [
        ("declared", True),
        ("update", True),
    ]


def test_a_bad_status_order_fails_naming_the_values(run_playbook, tmp_path):
    run = run_playbook(PLAYBOOK, {"marker": str(tmp_path / "m"), "stop_after": "update"})
    assert run.returncode == 0, run.output[-3000:]
    again = run_playbook(
        "tests/integration/playbooks/lifecycle/update.yml", {"status": "investigating"}, timeline=run.timeline
    )
    assert again.returncode != 0
    assert "status cannot go back from identified to investigating" in again.output


def test_check_mode_runs_the_frame_posts_nothing_and_a_real_run_ignores_it(run_playbook, capture, tmp_path):
    server = capture()
    args = {"marker": str(tmp_path / "mitigated"), "chat_url": f"{server.url}/hook", "update_severity": "P1"}
    dry = run_playbook(PLAYBOOK, args, check=True)
    assert dry.returncode == 0, dry.output[-3000:]
    assert server.requests == [] and not (tmp_path / "mitigated").exists()
    assert [e["event"] for e in lifecycle(dry)] == ["declared", "update", "resolved"]
    real = run_playbook(PLAYBOOK, args, timeline=dry.timeline)
    assert real.returncode == 0, real.output[-3000:]
    assert len(server.requests) == 3  # declared, update, resolved: the dry run's records did not count
