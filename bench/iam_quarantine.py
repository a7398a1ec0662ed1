"""Benchmark: quarantining 200 IAM users' keys in one concurrent step against sequential loops, in one run.

    python -m bench.iam_quarantine [--users N] [--workers N] [--loop-sample N]

The fault proxy adds 20 ms to every IAM call (AWS-like latency). Each user has one active access key.
Three ways, each on its own fresh users, each one ``ansible-playbook`` run (start-up included):

* ``concurrent``: one ``iam_credential_quarantine`` call with all users, ``max_workers`` threads;
* ``sequential``: the same single call with ``max_workers: 1`` (the same API calls, one after another);
* ``task_loop``: an Ansible ``loop:`` calling the module once per user (what a role looping over users does),
  bounded: ``--loop-sample`` users are timed and the time for all is extrapolated linearly.

Every user's key is checked Inactive afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from sandbox import CREDENTIALS, REGION, REPO_ROOT, Sandbox

LATENCY = {"service": "iam", "fault": "latency", "seconds": 0.02, "description": "AWS-like latency"}
TARGETS = {"min_speedup": 5.0}


def make_users(box, prefix: str, count: int) -> list[str]:
    """Users with one active key each, created straight on moto (no proxy latency: set-up is not timed)."""
    iam = boto3.client(
        "iam", endpoint_url=box.moto_url, region_name=REGION, **{k.lower(): v for k, v in CREDENTIALS.items()}
    )
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    for name in names:
        iam.create_user(UserName=name)
        iam.create_access_key(UserName=name)
    return names


def check_inactive(box, names: list[str]) -> None:
    iam = boto3.client(
        "iam", endpoint_url=box.moto_url, region_name=REGION, **{k.lower(): v for k, v in CREDENTIALS.items()}
    )
    for name in names:
        statuses = {key["Status"] for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]}
        assert statuses == {"Inactive"}, f"{name}: {statuses}"


def timed_run(box, workdir: Path, extra: dict) -> tuple[float, int]:
    vars_file = workdir / "vars.json"
    vars_file.write_text(json.dumps(extra))
    env = {
        **os.environ,
        **box.env(),
        "FIREBREAK_TIMELINE": str(workdir / "iam.jsonl"),
        "FIREBREAK_INCIDENT_ID": "BENCH-IAM",
    }
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        f"bench/playbooks/iam_quarantine{'_loop' if extra.get('bench_per_user') else ''}.yml",
        "-e",
        f"@{vars_file}",
    ]
    box.proxy.clear_log()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"iam_credential_quarantine run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    calls = len([e for e in box.proxy.log() if e["service"] in ("iam", "sts")])
    return elapsed, calls


def run(box, args) -> dict:
    count = getattr(args, "users", 200)
    workers = getattr(args, "workers", 16)
    sample = min(getattr(args, "loop_sample", 10), count)
    box.reset_aws()
    box.proxy.add_rule(LATENCY)
    figures = {"latency_ms_per_call": 20, "users": count, "workers": workers}
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-iam-") as tmp:
        workdir = Path(tmp)
        for kind, size, extra in (
            ("concurrent", count, {"bench_workers": workers}),
            ("sequential", count, {"bench_workers": 1}),
            ("task_loop", sample, {"bench_workers": 1, "bench_per_user": True}),
        ):
            names = make_users(box, f"bench-{kind}", size)
            seconds, calls = timed_run(box, workdir, {"bench_users": names, **extra})
            check_inactive(box, names)
            figures[kind] = {"users_timed": size, "seconds": round(seconds, 3), "api_calls": calls}
    loop = figures["task_loop"]
    loop["extrapolated_seconds"] = round(loop["seconds"] * count / sample, 1)
    figures["speedup_vs_sequential"] = round(figures["sequential"]["seconds"] / figures["concurrent"]["seconds"], 1)
    figures["speedup_vs_task_loop"] = round(loop["extrapolated_seconds"] / figures["concurrent"]["seconds"], 1)
    figures["targets"] = TARGETS
    figures["meets_targets"] = figures["speedup_vs_sequential"] >= TARGETS["min_speedup"]
    return figures


def report(figures: dict) -> list[str]:
    """Lines for bench/results.md (``make bench``)."""
    conc, seq, loop = figures["concurrent"], figures["sequential"], figures["task_loop"]
    verdict = "meets" if figures["meets_targets"] else "MISSES"
    return [
        f"{figures['users']} IAM users with one active key each, the fault proxy adding "
        f"{figures['latency_ms_per_call']} ms to every IAM call; each way on fresh users, every key checked Inactive",
        f"one call, `max_workers: {figures['workers']}`: {conc['seconds']} s, {conc['api_calls']} calls",
        f"one call, `max_workers: 1` (the same calls in sequence): {seq['seconds']} s, {seq['api_calls']} calls",
        f"Ansible `loop:` of one call per user: {loop['seconds']} s for {loop['users_timed']} users -> "
        f"{loop['extrapolated_seconds']} s for {figures['users']}",
        f"speed-up **{figures['speedup_vs_sequential']}x** against the sequential calls ({verdict} >= "
        f"{TARGETS['min_speedup']:.0f}x), {figures['speedup_vs_task_loop']}x against the task loop",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.iam_quarantine", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--loop-sample", type=int, default=10)
    args = parser.parse_args(argv)
    with Sandbox(kubernetes=False) as box:
        figures = run(box, args)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
