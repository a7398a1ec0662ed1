"""``molecule test -s service_down``: the Molecule drill (extensions/molecule/) end to end, as a person runs it.

Its own sandbox (create starts one for FIREBREAK_SANDBOX_ENV under tmp_path, destroy stops it), the fault in
prepare, the scenario in converge, check and idempotence, recovery and the incident record in verify. Slow (a
sandbox start and five playbook runs): a proof, run by make proof.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.drill, pytest.mark.proof]


def test_molecule_test_service_down_passes_every_step(tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("MOLECULE_")}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        FIREBREAK_SANDBOX_ENV=str(tmp_path / "sandbox" / "env.sh"),
        FIREBREAK_DRILL_INCIDENTS=str(tmp_path / "incidents"),
        NO_COLOR="1",
    )
    proc = subprocess.run(
        [f"{bin_dir}/molecule", "test", "-s", "service_down"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "glob failed" not in out, "Molecule did not find the default scenario (extensions/molecule/default/)"
    for step in ("create", "prepare", "converge", "check", "idempotence", "verify", "destroy"):
        assert f"{step}: Executed: Successful" in out, f"molecule step {step} did not run: {out[-4000:]}"
    assert "shop-api runs shop-api:3" in out and "declared P2 (service_down) and resolved" in out

    # Beside the incident: .claims, the local claim directory (the rollback's lock lives there while it rolls back).
    incidents = tmp_path / "incidents"
    (incident,) = [path for path in incidents.iterdir() if not path.name.startswith(".")]
    assert not [lock for lock in (incidents / ".claims").rglob("*") if lock.is_file()], "a rollback lock was left"
    logs = sorted(path.name for path in incident.glob("converge-*.log"))
    assert logs == ["converge-1.log", "converge-2-check.log", "converge-3.log"], logs
    records = [json.loads(line) for line in (incident / "timeline.jsonl").read_text().splitlines()]
    rollbacks = [
        r
        for r in records
        if r.get("action") == "firebreak.runbooks.ecs_service_rollback"
        and r["event"] == "task_changed"
        and not r.get("check_mode")
    ]
    assert len(rollbacks) == 1, "converge rolled back once; check and idempotence changed nothing"
    assert (incident / "report.json").is_file()
    assert not (tmp_path / "sandbox" / "env.sh").exists(), "destroy did not stop the sandbox create started"
