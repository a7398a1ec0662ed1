"""ECS steps, measured side by side in one run (issue 6 item 7).

1. ``service_down`` (the scenario playbook, the incident frame on): time from the command's start to its first
   mutating AWS call and to its ``UpdateService``, read from the fault proxy's request log, against the floor measured
   in the same run (``bench/playbooks/first_call_floor.yml``: an empty playbook plus a thin module making the one
   ``UpdateService`` call); beside it the old shape of the scenario (a separate triage module task before the
   rollback, ``bench/playbooks/service_down_triage_first.yml``). Target: <= 1.1x the floor.
2. Each ECS step (rollback with capture, restart, scale-out), as one ``ansible-playbook`` module task, against a
   thin-module floor making the same AWS calls (``bench/playbooks/library/thin_ecs.py``: AnsibleModule + boto3 and
   nothing else; the proxy log proves the calls are the same) -- target <= 1.1x -- and against the seeds' own AWS
   CLI commands for the step run as a shell script (``bench/cli/ecs_<step>.sh``) -- target: faster than the CLI.
   A second floor makes the same calls in a thin AnsibleAWSModule module (``thin_aws_ecs.py``, the framework every
   step module must use): it splits a step's distance from the plain floor into the framework's start-up cost and
   the step's own work. The target is judged against the plain floor.

The AWS CLI (``awscli``) pins a botocore other than the collection's, so it goes into its own venv,
``bench/.awscli-venv``, which this benchmark creates (pip, from the configured package index) the first time; when
it cannot, the CLI comparison is skipped with the reason. Every figure is the median of ``--repeat`` runs, each from
a freshly reset sandbox (and, for the rollback, a freshly injected bad deploy).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sandbox import REPO_ROOT
from sandbox.drills import service_down

BIN = Path(sys.executable).parent
AWSCLI_VENV = REPO_ROOT / "bench" / ".awscli-venv"
MUTATING = {"UpdateService", "TagResource", "UntagResource", "RegisterTaskDefinition", "DeregisterTaskDefinition"}
TARGETS = {"first_mutation_vs_floor": 1.1, "step_vs_thin_ratio": 1.1, "step_vs_cli_ratio": 1.0}
SCALE_TO = 4


def _run(cmd: list[str], env: dict, what: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr}")
    return elapsed


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


_RUNS = iter(range(1, 1 << 30))


def _fresh_timeline(env: dict) -> dict:
    """``env`` with a timeline of its own for one run. Each run starts from a freshly reset sandbox, whose reset also
    empties the evidence bucket: a timeline kept across runs would be copied out to it record by record (the durable
    copy's catch-up, docs/timeline.md) before the run's first record, more for every later run and shape."""
    base = env.get("FIREBREAK_TIMELINE") or str(Path(tempfile.mkdtemp(prefix="fb-bench-")) / "timeline.jsonl")
    return {**env, "FIREBREAK_TIMELINE": str(Path(base).with_suffix(f".{next(_RUNS)}.jsonl"))}


def _calls(box) -> list[str]:
    return [entry["action"] for entry in box.proxy.log() if entry["service"] in ("ecs", "elasticloadbalancing")]


# -- 1. time to the first mutating call ------------------------------------------------------------------------


def first_mutation(box, env: dict, repeat: int) -> dict:
    """Seconds from ``ansible-playbook``'s start to the first mutating call and to ``UpdateService`` reaching the
    fault proxy: the framed scenario, the old triage-first shape, and the floor (an empty playbook plus a thin module
    making the one UpdateService call), side by side in each repetition on a freshly injected fault."""
    shapes = {
        "service_down": "playbooks/service_down.yml",
        "triage_first (old shape)": "bench/playbooks/service_down_triage_first.yml",
        "floor": "bench/playbooks/first_call_floor.yml",
    }
    runs: dict[str, dict[str, list[float]]] = {name: {"first_mutation": [], "update_service": []} for name in shapes}
    for _ in range(repeat):
        for name, playbook in shapes.items():
            box.reset_aws()
            context = service_down.inject(box)
            extra = {key: value for key, value in context.items() if not key.startswith("_")}
            if name == "floor":
                good = context["_drill"]["good"]
                extra = {
                    "bench_cluster": context["_drill"]["cluster"],
                    "bench_service": context["_drill"]["service"],
                    "bench_task_definition": good,
                }
            box.proxy.clear_log()
            run_env = _fresh_timeline(env)
            started = datetime.now(UTC)
            _run([str(BIN / "ansible-playbook"), playbook, "-e", json.dumps(extra)], run_env, name)
            log = box.proxy.log()
            mutating = [e for e in log if e["action"] in MUTATING]
            update = next(e for e in log if e["action"] == "UpdateService")
            runs[name]["first_mutation"].append((datetime.fromisoformat(mutating[0]["time"]) - started).total_seconds())
            runs[name]["update_service"].append((datetime.fromisoformat(update["time"]) - started).total_seconds())
            service_down.verify(box, context)
    # The same machine's cost of an empty ansible-playbook in this run (0.55 s idle, DESIGN.md "Speed"): under
    # load every figure grows with it, so it is reported beside them.
    empty = [
        _run([str(BIN / "ansible-playbook"), "tests/integration/playbooks/noop.yml"], env, "empty")
        for _ in range(repeat)
    ]
    figures = {
        name: {
            "first_mutation_s": _median(values["first_mutation"]),
            "update_service_s": _median(values["update_service"]),
            "runs": values,
        }
        for name, values in runs.items()
    }
    floor = figures["floor"]["update_service_s"]
    for name in shapes:
        if name != "floor":
            figures[name]["first_mutation_vs_floor"] = round(figures[name]["first_mutation_s"] / floor, 2)
            figures[name]["update_service_vs_floor"] = round(figures[name]["update_service_s"] / floor, 2)
    figures["empty_playbook_s"] = _median(empty)
    return figures


# -- 2. step vs thin floor vs AWS CLI ------------------------------------------------------------------------


def awscli(env: dict) -> tuple[Path | None, str]:
    """The ``aws`` executable of ``bench/.awscli-venv`` (created and installed here when missing), or the reason
    it is not available."""
    aws = AWSCLI_VENV / "bin" / "aws"
    if aws.exists():
        return aws, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True, capture_output=True, timeout=120)
        subprocess.run(
            [str(AWSCLI_VENV / "bin" / "pip"), "install", "--quiet", "awscli"],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        shutil.rmtree(AWSCLI_VENV, ignore_errors=True)
        return None, f"could not install awscli into {AWSCLI_VENV.relative_to(REPO_ROOT)}: {detail.strip()[-300:]}"
    return (aws, "") if aws.exists() else (None, "awscli installed no 'aws' executable")


def _prepare(box, kind: str) -> dict:
    """Reset the sandbox for one run of ``kind``; return the extra vars of the step and the thin floor."""
    box.reset_aws()
    seeded = box.manifest["aws"]["ecs"]
    extra = {"bench_cluster": seeded["cluster"], "bench_service": seeded["service"], "bench_kind": kind}
    if kind == "rollback":
        extra["bench_rollback_from"] = service_down.inject(box)["_drill"]["bad"]
    elif kind == "scale":
        extra["bench_desired_count"] = SCALE_TO
    box.proxy.clear_log()
    return extra


def _check(box, kind: str, before: dict) -> None:
    service = box.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    if kind == "rollback":
        assert service["taskDefinition"].rsplit("/", 1)[-1] == "shop-api:3", service["taskDefinition"]
    elif kind == "scale":
        assert service["desiredCount"] == SCALE_TO, service["desiredCount"]
    else:
        primary = next(d["id"] for d in service["deployments"] if d["status"] == "PRIMARY")
        assert primary != before.get("deployment"), "no new deployment"


def compare_step(box, env: dict, kind: str, repeat: int, aws: Path | None) -> dict:
    variants = ["step", "thin", "thin_aws"] + (["cli"] if aws else [])
    times: dict[str, list[float]] = {variant: [] for variant in variants}
    sequences: dict[str, list[str]] = {}
    cli_env = dict(env, PATH=f"{aws.parent}{os.pathsep}{env.get('PATH', '')}") if aws else env
    for _ in range(repeat):
        for variant in variants:
            extra = _prepare(box, kind)
            run_env = _fresh_timeline(env)
            service = box.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
            before = {"deployment": next(d["id"] for d in service["deployments"] if d["status"] == "PRIMARY")}
            box.proxy.clear_log()
            if variant == "step":
                cmd = [str(BIN / "ansible-playbook"), f"bench/playbooks/ecs_{kind}_step.yml", "-e", json.dumps(extra)]
                times[variant].append(_run(cmd, run_env, f"{kind} step"))
            elif variant == "thin":
                cmd = [str(BIN / "ansible-playbook"), "bench/playbooks/ecs_thin.yml", "-e", json.dumps(extra)]
                times[variant].append(_run(cmd, run_env, f"{kind} thin floor"))
            elif variant == "thin_aws":
                cmd = [str(BIN / "ansible-playbook"), "bench/playbooks/ecs_thin_aws.yml", "-e", json.dumps(extra)]
                times[variant].append(_run(cmd, run_env, f"{kind} thin AnsibleAWSModule floor"))
            else:
                cmd = ["bash", f"bench/cli/ecs_{kind}.sh", extra["bench_cluster"], extra["bench_service"]]
                if kind == "scale":
                    cmd.append(str(SCALE_TO))
                times[variant].append(_run(cmd, cli_env, f"{kind} AWS CLI script"))
            sequences.setdefault(variant, _calls(box))
            _check(box, kind, before)
    medians = {variant: _median(values) for variant, values in times.items()}
    result = {
        "step_s": medians["step"],
        "thin_s": medians["thin"],
        "step_vs_thin": round(medians["step"] / medians["thin"], 2),
        "same_calls_as_thin": sequences["step"] == sequences["thin"] == sequences["thin_aws"],
        "thin_aws_s": medians["thin_aws"],
        "step_vs_thin_aws": round(medians["step"] / medians["thin_aws"], 2),
        "thin_aws_vs_thin": round(medians["thin_aws"] / medians["thin"], 2),
        "calls": {variant: len(calls) for variant, calls in sequences.items()},
        "step_calls": sequences["step"],
        "runs": times,
    }
    if not result["same_calls_as_thin"]:
        result["thin_calls"], result["thin_aws_calls"] = sequences["thin"], sequences["thin_aws"]
    if "cli" in medians:
        result.update(cli_s=medians["cli"], step_vs_cli=round(medians["step"] / medians["cli"], 2))
    return result


def run(box, args) -> dict:
    """Figures for ``make bench``: ``first_mutation`` and ``steps`` (rollback, restart, scale)."""
    # As a responder runs it: the incident timeline callback on (ansible.cfg), for the step and its floor alike.
    env = {**os.environ, **box.env(), "FIREBREAK_INCIDENT_ID": "BENCH-ECS"}
    env["FIREBREAK_TIMELINE"] = str(box.workdir / "bench-ecs-timeline.jsonl")
    aws, why = awscli(env)
    figures = {"first_mutation": first_mutation(box, env, args.repeat)}
    figures["steps"] = {
        kind: compare_step(box, env, kind, args.repeat, aws) for kind in ("rollback", "restart", "scale")
    }
    figures["awscli"] = str(aws.relative_to(REPO_ROOT)) if aws else f"skipped: {why}"
    figures["targets"] = TARGETS
    return figures


def report(figures: dict) -> list[str]:
    """Lines for the console and for bench/results.md's ``## ecs`` section."""

    def verdict(value, target):
        return "meets" if value <= target else "MISSES"

    first = dict(figures["first_mutation"])
    empty = first.pop("empty_playbook_s")
    lines = [
        f"an empty ansible-playbook took {empty}s in this run (0.55s on an idle machine): figures below scale with it"
    ]
    floor = first.pop("floor")
    lines.append(
        f"floor (an empty playbook plus a thin module making the one UpdateService call): UpdateService "
        f"{floor['update_service_s']}s after the command started"
    )
    for name, shape in first.items():
        lines.append(
            f"{name}: first mutating call {shape['first_mutation_s']}s = {shape['first_mutation_vs_floor']}x the "
            f"floor ({verdict(shape['first_mutation_vs_floor'], TARGETS['first_mutation_vs_floor'])} <= "
            f"{TARGETS['first_mutation_vs_floor']}x); UpdateService {shape['update_service_s']}s = "
            f"{shape['update_service_vs_floor']}x the floor ({round(shape['first_mutation_s'] / empty, 2)}x an empty "
            "playbook)"
        )
    for kind, step in figures["steps"].items():
        line = (
            f"{kind}: step {step['step_s']}s vs thin floor {step['thin_s']}s = {step['step_vs_thin']}x "
            f"({verdict(step['step_vs_thin'], TARGETS['step_vs_thin_ratio'])} <= {TARGETS['step_vs_thin_ratio']}x; "
            f"same {step['calls']['step']} calls: {step['same_calls_as_thin']})"
        )
        if "thin_aws_s" in step:
            line += (
                f"; the same calls in a thin AnsibleAWSModule module {step['thin_aws_s']}s: the framework "
                f"{step['thin_aws_vs_thin']}x the thin floor, the step {step['step_vs_thin_aws']}x the framework floor"
            )
        if "cli_s" in step:
            line += (
                f"; AWS CLI script {step['cli_s']}s ({step['calls'].get('cli')} calls) = {step['step_vs_cli']}x "
                f"({verdict(step['step_vs_cli'], TARGETS['step_vs_cli_ratio'])} < 1x)"
            )
        else:
            line += f"; AWS CLI {figures['awscli']}"
        lines.append(line)
    return lines
