"""Shared fixtures: one sandbox per pytest worker, reset (not restarted) between tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sandbox import REPO_ROOT, Sandbox

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


@pytest.fixture(scope="session", autouse=True)
def _timeline_in_the_local_file_only():
    """Runs started with this process's environment keep their timeline in the local file only: the sandbox
    inventory names an evidence bucket, and without this every test's runs would also write their timelines
    there (a cost per run, and a second run of one incident in a new file would continue the first's chain).
    tests/integration/test_timeline_durable.py and test_awx_runner.py run their jobs with the durable copy on."""
    old = os.environ.get("FIREBREAK_TIMELINE_DURABLE")
    os.environ["FIREBREAK_TIMELINE_DURABLE"] = "false"
    yield
    if old is None:
        os.environ.pop("FIREBREAK_TIMELINE_DURABLE", None)
    else:
        os.environ["FIREBREAK_TIMELINE_DURABLE"] = old


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """A running sandbox (moto + fault proxy + Kubernetes API test server) for this worker."""
    box = Sandbox(workdir=tmp_path_factory.mktemp("sandbox"))
    box.start()
    yield box
    box.stop()


@pytest.fixture
def aws(sandbox):
    """The sandbox with AWS wiped, fault rules cleared and the seed data created again."""
    sandbox.reset_aws()
    return sandbox


@pytest.fixture
def kube(sandbox):
    """The sandbox with the Kubernetes store wiped and seeded again."""
    sandbox.reset_kubernetes()
    return sandbox


class PlaybookRun(subprocess.CompletedProcess):
    """A finished ``ansible-playbook`` run and the timeline it wrote."""

    timeline: Path

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


@pytest.fixture
def run_playbook(sandbox, tmp_path, request):
    """Run ``ansible-playbook`` from the repository root against the sandbox.

    Returns a ``PlaybookRun``; the timeline defaults to a file in the test's ``tmp_path``.  The timeline is kept
    in that file only (``FIREBREAK_TIMELINE_DURABLE=false``): a test of the durable copy in the evidence bucket
    turns it on with ``env={"FIREBREAK_TIMELINE_DURABLE": "true"}`` (tests/integration/test_timeline_durable.py).
    """

    def run(playbook, extra_vars=None, check=False, diff=False, timeline=None, env=None, args=(), timeout=300):
        timeline = Path(timeline or tmp_path / "incident" / "timeline.jsonl")
        run_env = {**os.environ, **sandbox.env()}
        run_env.update(
            {
                "FIREBREAK_TIMELINE": str(timeline),
                "FIREBREAK_INCIDENT_ID": f"INC-TEST-{request.node.name}"[:80],
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "FIREBREAK_TIMELINE_DURABLE": "false",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        run_env.update(env or {})
        cmd = [ANSIBLE_PLAYBOOK, str(playbook)]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        cmd += list(args)
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=run_env, capture_output=True, text=True, timeout=timeout)
        result = PlaybookRun(proc.args, proc.returncode, proc.stdout, proc.stderr)
        result.timeline = timeline
        return result

    return run


@pytest.fixture
def silent_server():
    """``(url, accepted)``: a TCP server on 127.0.0.1 that accepts connections and does not answer (a hung API
    server).  It drops each connection after 20 s, so that a client without a bound fails its test instead of
    hanging it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop, accepted = threading.Event(), []

    def accept():
        while not stop.is_set():
            try:
                conn = sock.accept()[0]
            except OSError:
                continue
            accepted.append(conn)
            threading.Timer(20, conn.close).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    sock.close()


def pytest_terminal_summary(terminalreporter, config):
    """The proof suites' tally (tests/integration/proof_faults), printed by the session that ran them: under xdist the
    controller never loads that directory's conftest, so the hook lives here."""
    if hasattr(config, "workerinput"):
        return
    from tests.integration.proof_faults import support

    text = support.summary(support.results_file(config))
    if text:
        terminalreporter.section("proof tally")
        terminalreporter.write_line(text)
