"""make test runs `pytest --dist loadgroup` so that the tests marked `xdist_group` (the AWX loader's, which share
one load) run on one worker. pytest 9.2 moved the node id xdist 3.8 rewrites, and the grouping then stopped without
a word: every worker ran the loader's setup (4 x 110 s in CI). This runs a small suite the way make test does and
fails when grouped tests land on more than one worker."""

from __future__ import annotations

import re
import subprocess
import sys


def test_loadgroup_sends_a_group_to_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.xdist_group('together')\n"
        "@pytest.mark.parametrize('n', range(6))\n"
        "def test_member(n):\n"
        "    pass\n",
        encoding="utf-8",
    )
    (tmp_path / "test_other.py").write_text("def test_a():\n    pass\ndef test_b():\n    pass\n", encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-v"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    grouped = r"\[(gw\d+)\] \[\s*\d+%\] PASSED test_grouped\.py::test_member\[\d\]@together"
    workers = set(re.findall(grouped, run.stdout))
    assert len(re.findall(r"PASSED test_grouped\.py::test_member", run.stdout)) == 6, run.stdout[-3000:]
    assert len(workers) == 1, f"the group ran on {sorted(workers) or 'workers without its @together suffix'}"
