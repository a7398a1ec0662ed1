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
