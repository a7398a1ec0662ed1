"""A Kubernetes step against an API server that does not answer fails within its retry budget, naming the server
and the call, instead of holding the job until someone kills it (kubernetes' client sets no timeout of its own)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.k8s_api import JSON_OUTPUT, result_of

pytestmark = [pytest.mark.integration, pytest.mark.proof]  # an API server that never answers: a fault (make proof)

PLAYBOOK = "tests/integration/playbooks/k8s/unanswered.yml"

# What kubernetes.core reads while it creates its client (no discovery cache for a new server).
DISCOVERY = {
    "/version": {"major": "1", "minor": "30", "gitVersion": "v1.30.0"},
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
}


@pytest.fixture
def answers_only_discovery():
    """Answers the discovery reads, then holds every other request without an answer (up to 90 s)."""
    release = threading.Event()
    held = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = DISCOVERY.get(self.path.split("?")[0])
            if body is None:
                held.append(self.path)
                release.wait(90)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", held
    release.set()
    server.shutdown()
    server.server_close()


def scale(run_playbook, host, budget):
    began = time.monotonic()
    run = run_playbook(PLAYBOOK, extra_vars={"k8s_host": host, "k8s_retry_budget": budget}, env=JSON_OUTPUT)
    return run, result_of(run, "Scale"), time.monotonic() - began


def test_a_server_that_never_answers_fails_the_step_when_it_creates_its_client(run_playbook, silent_server):
    host, accepted = silent_server
    run, result, seconds = scale(run_playbook, host, 0)
    assert run.returncode != 0
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == f"cannot create a Kubernetes client: no answer from the Kubernetes API at {host} within 10s"
    assert accepted  # it connected, and no answer came
    assert seconds < 60, seconds  # a bound on a failure, not a speed goal: without one, the step never ended


def test_a_read_that_gets_no_answer_is_retried_within_the_budget_then_fails_naming_it(
    run_playbook, answers_only_discovery
):
    host, held = answers_only_discovery
    run, result, seconds = scale(run_playbook, host, 25)  # attempts of 12 s: half the budget
    assert run.returncode != 0
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(
        f"GET Namespace shop failed: no answer from the Kubernetes API at {host} within 12s (2 attempts in "
    ), result["msg"]
    assert result["msg"].endswith("s; retry_budget 25s)")
    # the namespace read, sent twice (once per attempt: urllib3's own retries are off); no write was sent
    assert held == ["/api/v1/namespaces/shop"] * 2
    assert seconds < 60, seconds


def test_a_bad_retry_budget_is_refused_naming_it_before_any_call(run_playbook, answers_only_discovery):
    host, held = answers_only_discovery
    run, result, _ = scale(run_playbook, host, -3)
    assert run.returncode != 0 and result["changed"] is False
    assert result["msg"] == "retry_budget must be an integer >= 0, got -3"
    assert held == []
