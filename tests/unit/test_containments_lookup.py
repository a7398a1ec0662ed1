"""The containments lookup finds the incident's timeline where the timeline callback writes it
(FIREBREAK_INCIDENTS_DIR under ansible-runner or ansible-rulebook), as Ansible loads it (an ad-hoc run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = str(Path(sys.executable).parent / "ansible")


def lookup(tmp_path, **env):
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    run_env.update(env, ANSIBLE_NOCOLOR="1")
    expr = "{{ lookup('firebreak.runbooks.containments', incident_id='INC-9') }}"
    cmd = [ANSIBLE, "localhost", "-c", "local", "-m", "ansible.builtin.debug", "-a", f"msg={expr}"]
    return subprocess.run(cmd, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=120)


def test_without_a_timeline_it_reads_under_firebreak_incidents_dir(tmp_path):
    run = lookup(tmp_path, FIREBREAK_INCIDENTS_DIR=str(tmp_path / "runs"))
    assert run.returncode != 0
    assert str(tmp_path / "runs" / "INC-9" / "timeline.jsonl") in run.stdout + run.stderr, run.stdout + run.stderr
