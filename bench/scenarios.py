"""Every scenario, side by side in one run (issue 20 item 6): the runbook against the seeds' own commands.

    python -m bench.run --only scenarios [--repeat N] [--scenario NAME ...]
    python -m bench.scenarios show NAME          # print the two baseline scripts of one scenario

For each scenario (``playbooks/<name>.yml``, its fault injected by ``sandbox/drills/<name>.py``), with the fault
proxy adding 20 ms to every AWS call, each run from a freshly reset sandbox and a freshly injected fault:

- **scenario**: ``ansible-playbook playbooks/<name>.yml`` with the drill's extra vars (the incident frame on:
  declaration, gates, timeline, containment ledger, verification), its wall time and its AWS API calls (the
  proxy's request log);
- **cli**: the same steps as the seeds' own AWS CLI commands (``aws ...``, one process per call; ``kubectl`` for
  the Kubernetes steps), run as one shell script;
- **boto3**: a plain Python script making the same calls as the CLI script (boto3, the kubernetes client for the
  Kubernetes steps) in one process, Python start-up included;
- **empty**: Ansible's fixed start-up, an empty playbook (``bench/playbooks/empty.yml``), measured once per
  repetition and reported apart: the ratios are given with it and without it (scenario time minus start-up).

Both baselines come from one list of steps per scenario (``BASELINES`` below): an AWS step is rendered as
``aws <service> <operation> --cli-input-json ...`` for the shell script and as ``client.<operation>(**params)`` for
the Python script, so both make the same calls, which the proxy log shows. A value the responder's script would read
from an earlier answer (a lock token, an ARN) is taken from that answer with a JMESPath expression (``--query`` in
the shell, ``jmespath.search`` in Python); per-item values of a loop (which object versions to restore) are read from
the sandbox before the clock starts, while the listing call itself is made in the timed run. After every run the
drill's own ``verify`` checks the fault was fixed: a baseline that did not fix it is reported as such.

The AWS CLI comes from ``bench/.awscli-venv`` (bench/ecs.py creates it): awscli cannot share the collection's venv
(awscli 1.46.3, the newest on the index, needs docutils<=0.19; requirements.txt pins docutils 0.23).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.scenario_baselines import BASELINES
from bench.scenario_steps import render_python, render_shell
from sandbox import REPO_ROOT
from sandbox.drills import available

BIN = Path(sys.executable).parent
LATENCY = {"fault": "latency", "seconds": 0.02, "description": "bench: 20 ms per AWS call"}
VARIANTS = ("scenario", "cli", "boto3")
RUN_TIMEOUT = 300  # seconds for one run of one variant
RESULTS_MD = REPO_ROOT / "bench" / "results.md"


# -- measuring --------------------------------------------------------------------------------------------------


def _run(cmd: list[str], env: dict, what: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({proc.returncode}): {' '.join(cmd)[:300]}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed


def aws_calls(log: list[dict]) -> dict:
    """The AWS API calls of one run from the proxy's request log: the total and the count per service."""
    per_service: dict[str, int] = {}
    for entry in log:
        per_service[entry["service"]] = per_service.get(entry["service"], 0) + 1
    return {"total": len(log), "per_service": dict(sorted(per_service.items()))}


def ratios(scenario_s: float, empty_s: float, cli_s: float | None, boto3_s: float | None) -> dict:
    """scenario/CLI and scenario/boto3, with Ansible's fixed start-up and without it (scenario minus start-up)."""
    work = max(scenario_s - empty_s, 0.0)
    out = {"work_s": round(work, 3)}
    for name, base in (("cli", cli_s), ("boto3", boto3_s)):
        if base:
            out[f"vs_{name}"] = round(scenario_s / base, 2)
            out[f"vs_{name}_without_startup"] = round(work / base, 2)
    return out


def run_one(box, name: str, module, variant: str, env: dict, workdir: Path) -> dict:
    """One run of one variant on a fresh sandbox and fault: its wall time, its AWS calls, and whether it fixed it."""
    box.reset()
    context = module.inject(box)
    extra = {key: value for key, value in context.items() if not key.startswith("_")}
    incident = f"BENCH-{name}-{variant}-{time.monotonic_ns()}"
    run_env = {**env, "FIREBREAK_INCIDENT_ID": incident, "FIREBREAK_TIMELINE": str(workdir / f"{incident}.jsonl")}
    if variant == "scenario":
        cmd = [str(BIN / "ansible-playbook"), module.PLAYBOOK, "-e", json.dumps({**extra, "incident_id": incident})]
    else:
        steps = BASELINES[name].steps(box, context)
        if variant == "cli":
            script = workdir / f"{name}.sh"
            script.write_text(render_shell(name, steps))
            cmd = ["bash", str(script)]
        else:
            script = workdir / f"{name}.py"
            script.write_text(render_python(name, steps))
            cmd = [sys.executable, str(script)]
    box.proxy.add_rule(LATENCY)
    box.proxy.clear_log()
    try:
        seconds = _run(cmd, run_env, f"{name} {variant}")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        said = [line for line in str(exc).splitlines() if line.strip()]
        error = said[0][:200] + (f" ... {said[-1][:300]}" if len(said) > 1 else "")
        return {"error": error, "calls": aws_calls(box.proxy.log())}
    calls = aws_calls(box.proxy.log())
    try:
        module.verify(box, context)
        fixed = True
    except AssertionError as exc:
        fixed = f"NOT FIXED: {str(exc)[:200]}"
    return {"s": round(seconds, 3), "calls": calls, "fixed": fixed}


def bench_scenario(box, name: str, module, env: dict, repeat: int, workdir: Path, aws: Path | None) -> dict:
    variants = [v for v in VARIANTS if v != "cli" or aws is not None]
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for _ in range(repeat):
        for variant in variants:  # side by side: each repetition runs every variant
            runs[variant].append(run_one(box, name, module, variant, env, workdir))
    figures: dict = {"seed": BASELINES[name].seed, "runs": runs}
    for variant, results in runs.items():
        times = [r["s"] for r in results if "s" in r]
        figures[variant] = {
            "s": round(statistics.median(times), 3) if times else None,
            "calls": results[-1]["calls"],
            "fixed": all(r.get("fixed") is True for r in results),
            "problems": sorted({r.get("error") or r["fixed"] for r in results if r.get("fixed") is not True}),
        }
    if aws is None:
        figures["cli"] = {"s": None, "skipped": "no aws CLI (see the awscli line)"}
    return figures


def run(box, args) -> dict:
    """Figures for ``make bench``: every scenario (``--scenario`` picks some) against its CLI and boto3 baselines.

    ``box`` is bench/run.py's sandbox; when it has no Kubernetes API test server, this topic starts its own full
    sandbox (moto, fault proxy, Kubernetes API test server) and leaves ``box`` alone."""
    from bench.ecs import awscli
    from sandbox import Sandbox

    repeat = max(1, args.repeat) if getattr(args, "repeat_given", False) else 1
    names = getattr(args, "scenario", None) or sorted(available())
    unknown = sorted(set(names) - set(available()))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(available()))}")
    drills = available()
    started = time.perf_counter()
    figures: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeat": repeat,
        "load_1m": {"start": round(os.getloadavg()[0], 2)},
    }
    with contextlib.nullcontext(box) if box.kube_server is not None else Sandbox() as own:
        workdir = own.workdir / "bench-scenarios"
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **own.env()}
        aws, why = awscli(env)
        figures["awscli"] = f"`aws` from {aws.relative_to(REPO_ROOT)}" if aws else f"skipped: {why}"
        if aws is not None:
            env["PATH"] = f"{aws.parent}{os.pathsep}{env.get('PATH', '')}"
        empty_env = {**env, "FIREBREAK_INCIDENT_ID": "BENCH-EMPTY", "FIREBREAK_TIMELINE": str(workdir / "empty.jsonl")}
        empty, scenarios = [], {}
        for name in names:
            print(f"-- scenarios: {name}", flush=True)
            empty.append(
                _run([str(BIN / "ansible-playbook"), "bench/playbooks/empty.yml"], empty_env, "empty playbook")
            )
            scenarios[name] = bench_scenario(own, name, drills[name], env, repeat, workdir, aws)
    figures["empty_s"] = round(statistics.median(empty), 3)
    figures["empty_runs"] = len(empty)
    for one in scenarios.values():
        if one["scenario"]["s"] is not None:
            one["ratios"] = ratios(one["scenario"]["s"], figures["empty_s"], one["cli"].get("s"), one["boto3"]["s"])
    figures["scenarios"] = scenarios
    figures["total_s"] = round(time.perf_counter() - started, 1)
    figures["load_1m"]["end"] = round(os.getloadavg()[0], 2)
    return figures


def _calls_text(calls: dict) -> str:
    per = ", ".join(f"{svc} {n}" for svc, n in calls["per_service"].items())
    return f"{calls['total']} ({per})" if per else "0"


def _cell(base: dict) -> str:
    if base.get("s") is None:
        return base.get("skipped") or "failed"
    mark = "" if base.get("fixed") else " NOT FIXED"
    return f"{base['s']} ({base['calls']['total']}){mark}"


def report(figures: dict) -> list[str]:
    """The ``## scenarios`` section's lines after its heading (a table with its notes); tested without a sandbox."""
    load = figures.get("load_1m", {})
    lines = [
        f"Measured {figures.get('when', '?')}: the fault proxy adds 20 ms to every AWS call; {figures['repeat']} run(s)"
        " "
        "per variant per scenario (the median when more), each on a freshly reset sandbox with the drill's fault "
        f"injected anew; the whole topic took {figures['total_s']} s. 1-minute load {load.get('start')} at the start, "
        f"{load.get('end')} at the end, on {os.cpu_count()} CPUs shared with other work (figures grow with it).",
        "",
        f"Ansible's fixed start-up, an empty playbook with the timeline on: **{figures['empty_s']} s** (median of "
        f'{figures["empty_runs"]} runs, one before each scenario). "w/o start-up" divides the scenario\'s time minus '
        "it. AWS calls are counted from the proxy's request log (the scenario's include the containment ledger's S3 "
        f"reads and writes). AWS CLI: {figures['awscli']}.",
        "",
        "| scenario | scenario s | its AWS calls | CLI script s (calls) | boto3 script s (calls) | scenario/CLI "
        "| w/o start-up | scenario/boto3 | w/o start-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for name, one in figures["scenarios"].items():
        scen, rat = one["scenario"], one.get("ratios", {})
        cells = [
            name,
            str(scen["s"]) if scen.get("s") is not None else "failed",
            _calls_text(scen["calls"]) if scen.get("calls") else "-",
            _cell(one["cli"]),
            _cell(one["boto3"]),
            *[
                f"{rat[key]}x" if key in rat else "-"
                for key in ("vs_cli", "vs_cli_without_startup", "vs_boto3", "vs_boto3_without_startup")
            ],
        ]
        lines.append("| " + " | ".join(cells) + " |")
        for variant in VARIANTS:
            for problem in one.get(variant, {}).get("problems") or []:
                notes.append(f"- {name} {variant}: {problem}")
    lines += ["", *notes] if notes else []
    lines += ["", "Baselines (bench/scenario_baselines.py; `python -m bench.scenarios show NAME` prints both scripts):"]
    lines += [f"- {name}: {one['seed']}" for name, one in figures["scenarios"].items()]
    return lines


def render(figures: dict) -> str:
    return "\n".join(["## scenarios", "", *report(figures)]) + "\n"


def write_section(text: str, path: Path = RESULTS_MD) -> None:
    """Replace (or append) the ``## scenarios`` section of ``path``, leaving the other sections alone."""
    existing = path.read_text() if path.exists() else "# make bench: results\n"
    out, skipping = [], False
    for line in existing.splitlines(keepends=True):
        if line.startswith("## "):
            skipping = line.strip() == "## scenarios"
        if not skipping:
            out.append(line)
    path.write_text("".join(out).rstrip("\n") + "\n\n" + text)


def show(name: str) -> int:
    """Print the two baseline scripts of one scenario, built against a fresh sandbox with its fault injected."""
    from sandbox import Sandbox

    with Sandbox() as box:
        context = available()[name].inject(box)
        steps = BASELINES[name].steps(box, context)
        print(f"# ---- {name}.sh\n{render_shell(name, steps)}\n# ---- {name}.py\n{render_python(name, steps)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "show" and sys.argv[2] in BASELINES:
        sys.exit(show(sys.argv[2]))
    print(f"usage: python -m bench.scenarios show {{{','.join(BASELINES)}}}", file=sys.stderr)
    sys.exit(2)
