"""``make drill`` refuses an unknown scenario and says which ones exist."""

from __future__ import annotations

import subprocess
import sys

from sandbox import REPO_ROOT
from sandbox.drill import main
from sandbox.drills import available


def test_unknown_scenario_lists_the_known_ones_and_exits_2(capsys):
    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'nope'" in err
    for name in available():
        assert name in err
    assert "service_down" in available()


def test_make_drill_with_an_unknown_scenario_fails():
    proc = subprocess.run(
        ["make", "-s", "drill", "SCENARIO=nope", f"BIN={sys.executable.rsplit('/', 1)[0]}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "unknown scenario 'nope'" in proc.stderr
    assert "service_down" in proc.stderr


def test_a_sandbox_that_does_not_start_fails_the_drill_with_a_message(monkeypatch, capsys):
    import sandbox.drill as drill_module

    def refuse(self):
        raise drill_module.SandboxError("moto exited with 1; see moto.log")

    monkeypatch.setattr(drill_module.Sandbox, "start", refuse)
    assert main(["service_down"]) == 1
    assert "the sandbox did not start: moto exited with 1" in capsys.readouterr().err
