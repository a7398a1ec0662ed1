"""``make drill``: start the sandbox, inject a fault, run the scenario runbook, verify, report.

    python -m sandbox.drill [SCENARIO] [--keep-sandbox]

Exit status: 0 when the service recovered and the report was written; 1 when the runbook failed
or recovery did not happen; 2 for an unknown scenario (the known ones are listed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sandbox import REPO_ROOT, Sandbox, SandboxError
from sandbox.drills import available


class DrillError(Exception):
    """The drill could not show recovery."""


@dataclass
class DrillResult:
    scenario: str
    incident_id: str
    timeline: Path
    report: Path
    checks: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _ansible_playbook(
    sandbox: Sandbox,
    playbook: str,
    extra_vars: dict,
    timeline: Path,
    incident_id: str,
    check: bool = False,
    output=None,
):
    """Run ``playbook`` against ``sandbox`` (its env, the incident's timeline); ``check`` adds ``--check``;
    ``output``: an open file for the run's output (default: this process's stdout)."""
    env = {**os.environ, **sandbox.env(), "FIREBREAK_TIMELINE": str(timeline), "FIREBREAK_INCIDENT_ID": incident_id}
    binary = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(binary), playbook, "-e", json.dumps({**extra_vars, "incident_id": incident_id})]
    if check:
        cmd.append("--check")
    stderr = subprocess.STDOUT if output is not None else None
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=False, stdout=output, stderr=stderr)


def render_report(sandbox, timeline: Path, incident_id: str, output=None):
    """``playbooks/incident_report.yml`` on the drill's timeline: ``report.md`` and ``report.json`` beside it."""
    return _ansible_playbook(
        sandbox,
        "playbooks/incident_report.yml",
        {"incident_timeline": str(timeline)},
        timeline,
        incident_id,
        output=output,
    )


def run_drill(
    scenario: str,
    sandbox: Sandbox,
    incidents_dir: Path,
    incident_id: str | None = None,
    broken: bool = False,
    output=None,
) -> DrillResult:
    """Run one drill against a started ``sandbox``; raise DrillError unless the service recovered.

    ``broken``: the deliberately broken drill: the runbook runs in check mode, so it plans its fix and applies
    nothing; the fault stays and ``verify`` must fail (docs/drills.md, "A broken run"). ``output``: an open file
    for the runs' output (``make drill-all`` keeps one log per drill)."""
    scenarios = available()
    if scenario not in scenarios:
        raise KeyError(scenario)
    module = scenarios[scenario]
    started = time.monotonic()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    incident_id = incident_id or f"DRILL-{scenario}-{stamp}"
    timeline = Path(incidents_dir) / incident_id / "timeline.jsonl"
    report = timeline.with_name("report.md")

    def say(line):
        print(line, file=output or sys.stdout, flush=True)

    say(f"==> drill {scenario}: injecting the fault")
    context = module.inject(sandbox)
    extra_vars = {key: value for key, value in context.items() if not key.startswith("_")}

    fault = context.get("_drill", {}).get("fault")
    if fault:
        # The injected fault opens the drill's timeline, so the report measures recovery from it.
        note = {"note": f"drill {scenario}: fault injected: {fault}", "kind": "observation"}
        noted = _ansible_playbook(sandbox, "playbooks/incident_note.yml", note, timeline, incident_id, output=output)
        if noted.returncode != 0:
            raise DrillError(f"could not record the injected fault in {timeline}")

    mode = " in check mode: the broken drill, nothing is fixed" if broken else ""
    say(f"==> drill {scenario}: running {module.PLAYBOOK}{mode} (incident {incident_id})")
    run = _ansible_playbook(sandbox, module.PLAYBOOK, extra_vars, timeline, incident_id, check=broken, output=output)
    if run.returncode != 0:
        raise DrillError(f"{module.PLAYBOOK} failed with exit status {run.returncode}; timeline: {timeline}")

    say(f"==> drill {scenario}: verifying recovery in the sandbox")
    try:
        checks = module.verify(sandbox, context)
    except AssertionError as exc:
        raise DrillError(f"recovery did not happen: {exc}") from exc

    say(f"==> drill {scenario}: rendering the post-incident report")
    reported = render_report(sandbox, timeline, incident_id, output=output)
    if reported.returncode != 0 or not report.exists():
        raise DrillError(f"incident_report.yml failed with exit status {reported.returncode} for {timeline}")
    if hasattr(module, "verify_record"):  # the incident frame's record: lifecycle, gate, report
        try:
            checks += module.verify_record(timeline, report)
        except AssertionError as exc:
            raise DrillError(f"the incident record is incomplete: {exc}") from exc
    return DrillResult(scenario, incident_id, timeline, report, checks, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    scenarios = available()
    parser = argparse.ArgumentParser(prog="make drill", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="service_down")
    parser.add_argument("--incidents-dir", default=str(REPO_ROOT / "incidents"))
    parser.add_argument("--keep-sandbox", action="store_true", help="leave the sandbox's files for inspection")
    args = parser.parse_args(argv)

    if args.scenario not in scenarios:
        print(f"make drill: unknown scenario {args.scenario!r}. Known scenarios:", file=sys.stderr)
        for name, module in scenarios.items():
            print(f"  {name:24} {module.DESCRIPTION}", file=sys.stderr)
        print("Run: make drill SCENARIO=<name>", file=sys.stderr)
        return 2

    workdir = REPO_ROOT / ".sandbox" / f"drill-{args.scenario}-{os.getpid()}"
    sandbox = Sandbox(workdir=workdir)
    print("==> starting the sandbox (moto, fault proxy, Kubernetes API test server) on 127.0.0.1", flush=True)
    try:
        sandbox.start()
    except SandboxError as exc:
        print(f"DRILL FAILED: the sandbox did not start: {exc}", file=sys.stderr)
        return 1
    try:
        result = run_drill(args.scenario, sandbox, Path(args.incidents_dir))
    except DrillError as exc:
        print(f"DRILL FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        sandbox.stop()
        if not args.keep_sandbox:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nDRILL PASSED: {result.scenario} recovered in {result.seconds:.1f}s (incident {result.incident_id})")
    for line in result.checks:
        print(f"  ok  {line}")
    print(f"timeline: {result.timeline}")
    print(f"report:   {result.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
