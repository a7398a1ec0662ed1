"""``make bench``: the speed targets of DESIGN.md, measured side by side in one run against the sandbox.

    python -m bench.run [--repeat N] [--steps N]

1. One ECS rollback step (``ansible-playbook`` with one ``ecs_service_rollback`` task, Ansible start-up
   and the timeline included) against a boto3 script making the same calls (Python start-up included).
   Target: within 3x.
2. The incident timeline's share of a long playbook: N module tasks with the callback enabled and with
   a config that does not enable it. Target: under 2%.

Every figure is the median of ``--repeat`` runs; each rollback run starts from a freshly injected fault.
Results are printed and written to bench/results/<UTC time>.json. Benchmarks report; they never fail a
build (only a run that breaks exits non-zero).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sandbox import REPO_ROOT, Sandbox
from sandbox.drills import service_down

BIN = Path(sys.executable).parent
TARGETS = {"rollback_ratio": 3.0, "timeline_overhead_pct": 2.0}
# Benchmarks by topic: bench/<topic>.py exposes run(box, args) -> dict of figures (and report(figures) -> lines,
# printed and written to bench/results.md under "## <topic>"). One entry per topic.
TOPICS = {
    "ecs": "bench.ecs",
    "s3_restore": "bench.s3_restore",
    "waf_block": "bench.waf_block",
    "iam_quarantine": "bench.iam_quarantine",
    "eda": "bench.eda",
    "scenarios": "bench.scenarios",
}
CORE = ("rollback", "timeline")
REPEATED_TOPICS = ("ecs",)  # the topics that take --repeat; the others run once
RESULTS_MD = REPO_ROOT / "bench" / "results.md"


def write_section(topic: str, lines: list[str], when: str) -> None:
    """Replace (or add) the ``## <topic>`` section of bench/results.md, leaving the other sections alone."""
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# make bench: results\n"
    body = f"## {topic}\n\nMeasured {when}.\n\n" + "".join(f"- {line}\n" for line in lines) + "\n"
    head, sep, rest = text.partition(f"## {topic}\n")
    if sep:
        after = rest.find("\n## ")
        text = head + body + (rest[after + 1 :] if after >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    RESULTS_MD.write_text(text)


def _timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def bench_rollback(box: Sandbox, env: dict, repeat: int) -> dict:
    times: dict[str, list[float]] = {"ansible": [], "boto3": []}
    for _ in range(repeat):
        for kind in times:  # side by side: each repetition measures both, on the same fresh fault
            box.reset_aws()
            fault = service_down.inject(box)["_drill"]
            if kind == "boto3":
                cmd = [sys.executable, "bench/boto3_rollback.py", fault["cluster"], fault["service"], fault["bad"]]
            else:
                extra = {
                    "bench_cluster": fault["cluster"],
                    "bench_service": fault["service"],
                    "bench_rollback_from": fault["bad"],
                }
                cmd = [str(BIN / "ansible-playbook"), "bench/playbooks/rollback.yml", "-e", json.dumps(extra)]
            times[kind].append(_timed(cmd, env))
            running = box.client("ecs").describe_services(cluster=fault["cluster"], services=[fault["service"]])
            assert running["services"][0]["taskDefinition"].rsplit("/", 1)[-1] == fault["good"], kind
    ansible, boto = statistics.median(times["ansible"]), statistics.median(times["boto3"])
    return {"ansible_s": round(ansible, 3), "boto3_s": round(boto, 3), "ratio": round(ansible / boto, 2), "runs": times}


def bench_timeline(env: dict, repeat: int, steps: int, workdir: Path) -> dict:
    playbook = workdir / "long.yml"
    tasks = "".join(
        f'    - name: Step {i}\n      ansible.builtin.command: "true"\n      changed_when: false\n'
        for i in range(steps)
    )
    playbook.write_text(
        f"- name: Long playbook\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n{tasks}"
    )
    # Both runs read a copy of ansible.cfg with its relative paths made absolute (ansible resolves them
    # against the config file's directory), so the same inventory and collections are used; the only
    # difference is the callbacks_enabled line.
    config = (REPO_ROOT / "ansible.cfg").read_text().replace("./", f"{REPO_ROOT}/").splitlines()
    with_cfg, without_cfg = workdir / "timeline.cfg", workdir / "no-timeline.cfg"
    with_cfg.write_text("\n".join(config) + "\n")
    without_cfg.write_text("\n".join(line for line in config if not line.startswith("callbacks_enabled")) + "\n")
    cmd = [str(BIN / "ansible-playbook"), str(playbook)]
    times: dict[str, list[float]] = {"with": [], "without": []}
    for i in range(repeat):
        timeline = workdir / f"timeline-{len(times['with'])}.jsonl"
        runs = [
            ("with", {**env, "ANSIBLE_CONFIG": str(with_cfg), "FIREBREAK_TIMELINE": str(timeline)}),
            ("without", {**env, "ANSIBLE_CONFIG": str(without_cfg)}),
        ]
        # ABBA order (with, without, without, with, ...): a machine that speeds up or slows down over the
        # minutes a run takes does not favour one side
        for kind, run_env in runs if i % 2 == 0 else runs[::-1]:
            times[kind].append(_timed(cmd, run_env))
        records = len(timeline.read_text().splitlines())
        assert records >= steps + 3, f"the timeline has {records} records for {steps} steps"
    with_t, without_t = statistics.median(times["with"]), statistics.median(times["without"])
    overhead = (with_t - without_t) / without_t * 100
    pairs = [round((w - wo) / wo * 100, 2) for w, wo in zip(times["with"], times["without"], strict=True)]
    record_ms = record_cost(steps, workdir)
    task_ms = without_t / steps * 1000
    return {
        "steps": steps,
        "with_s": round(with_t, 3),
        "without_s": round(without_t, 3),
        "overhead_pct": round(overhead, 2),
        "record_ms": round(record_ms, 3),
        "task_ms": round(task_ms, 1),
        "record_share_pct": round(record_ms / task_ms * 100, 2),
        "pair_overheads_pct": pairs,
        "runs": times,
    }


COMMAND_RESULT = {
    "changed": False,
    "cmd": ["true"],
    "rc": 0,
    "stdout": "",
    "stderr": "",
    "start": "2026-11-24 19:00:00.000000",
    "end": "2026-11-24 19:00:00.003000",
    "delta": "0:00:00.003000",
    "msg": "",
    "stdout_lines": [],
    "stderr_lines": [],
    "invocation": {"module_args": {"_raw_params": "true", "_uses_shell": False, "chdir": None, "creates": None}},
}


def record_cost(records: int, workdir: Path) -> float:
    """Milliseconds per record of the callback's own work for one ``command`` task's result, in process:
    redaction, capping, hashing, the locked append and its fsync (what each task adds to a run)."""
    sys.path.insert(0, str(REPO_ROOT / "collections"))
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl

    path = workdir / "record-cost.jsonl"
    started = time.perf_counter()
    for i in range(records):
        details, _ = tl.result_details(COMMAND_RESULT, task_args={"_raw_params": "true"})
        rec = tl.new_record(
            incident_id="BENCH",
            operator={"user": "bench", "host": "localhost"},
            playbook="long.yml",
            run_id="bench",
            event="task_ok",
            play="Long playbook",
            task=f"Step {i}",
            action="ansible.builtin.command",
            host="localhost",
            check_mode=False,
            changed=False,
            details=details,
        )
        tl.append_record(path, rec, expect_incident="BENCH")
    elapsed = time.perf_counter() - started
    assert len(tl.verify_timeline(path)) == records
    return elapsed / records * 1000


def timeline_report(figures: dict) -> list[str]:
    runs = ", ".join(f"{w:.1f}" for w in figures["runs"]["with"])
    runs_without = ", ".join(f"{w:.1f}" for w in figures["runs"]["without"])
    verdict = "meets" if figures["overhead_pct"] < TARGETS["timeline_overhead_pct"] else "MISSES"
    return [
        f"{figures['steps']} `ansible.builtin.command` tasks on localhost; both runs read the same copy of ansible.cfg "
        "(same inventory and collections) except for its `callbacks_enabled` line",
        f"with the timeline {figures['with_s']} s, without {figures['without_s']} s (medians): overhead "
        f"**{figures['overhead_pct']}%** ({verdict} < {TARGETS['timeline_overhead_pct']}%); runs with [{runs}], "
        f"without [{runs_without}], in ABBA order; each pair's overhead: "
        f"{', '.join(f'{p}%' for p in figures.get('pair_overheads_pct', []))} (run-to-run noise on this machine)",
        f"the callback's own work per record, in process (redaction, caps, hash chain, locked append, fsync): "
        f"{figures['record_ms']} ms = {figures['record_share_pct']}% of a task's {figures['task_ms']} ms "
        "(the part of the overhead that is not run-to-run noise)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat",
        type=int,
        help="runs per figure (default 5; the scenarios topic runs each variant once unless given)",
    )
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument(
        "--only", nargs="+", choices=sorted([*CORE, *TOPICS]), help="run only these (default: all of them)"
    )
    parser.add_argument("--s3-keys", type=int, default=10000, help="keys restored by the s3_restore benchmark")
    parser.add_argument("--s3-concurrency", type=int, default=32)
    parser.add_argument("--scenario", nargs="+", help="the scenarios topic: only these scenarios (default: every one)")
    args = parser.parse_args(argv)
    args.repeat_given = args.repeat is not None
    if args.repeat is None:
        args.repeat = 5

    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    # only the scenarios topic needs the Kubernetes API test server (two of its scenarios are Kubernetes ones)
    wants_kubernetes = args.only is None or "scenarios" in args.only
    topics: dict[str, dict] = {}
    rollback = timeline = None
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-") as tmp, Sandbox(kubernetes=wants_kubernetes) as box:
        env = {**os.environ, **box.env(), "FIREBREAK_INCIDENT_ID": "BENCH", "FIREBREAK_TIMELINE": f"{tmp}/bench.jsonl"}
        load = round(os.getloadavg()[0], 2)
        if args.only is None or "rollback" in args.only:
            rollback = bench_rollback(box, env, args.repeat)
        if args.only is None or "timeline" in args.only:
            timeline = bench_timeline(env, args.repeat, args.steps, Path(tmp))
            lines = timeline_report(timeline)
            print("== timeline\n" + "\n".join(lines))
            write_section("timeline", lines, f"{when} (median of {args.repeat} runs; 1-minute load {load})")
        for topic, name in TOPICS.items():
            if args.only is None or topic in args.only:
                module = importlib.import_module(name)
                topics[topic] = module.run(box, args)
                if hasattr(module, "render"):  # a topic that writes its own section
                    text = module.render(topics[topic])
                    print(f"== {topic}\n{text}")
                    module.write_section(text)
                    continue
                lines = module.report(topics[topic]) if hasattr(module, "report") else [json.dumps(topics[topic])]
                print(f"== {topic}\n" + "\n".join(lines))
                load = round(os.getloadavg()[0], 2)
                runs = f"median of {args.repeat} runs" if topic in REPEATED_TOPICS else "one run"
                write_section(topic, lines, f"{when} ({runs}; 1-minute load {load})")

    results = {
        "when": when,
        "machine": {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2)},
        "rollback": rollback,
        "timeline": timeline,
        **topics,
        "targets": TARGETS,
    }
    out = REPO_ROOT / "bench" / "results" / f"{results['when'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    def verdict(value: float, target: float) -> str:
        return "meets target" if value <= target else "MISSES target"

    if rollback is not None:
        print(
            f"ECS rollback step: ansible-playbook {rollback['ansible_s']}s vs boto3 script {rollback['boto3_s']}s "
            f"= {rollback['ratio']}x ({verdict(rollback['ratio'], TARGETS['rollback_ratio'])} "
            f"<= {TARGETS['rollback_ratio']}x)"
        )
    if timeline is not None:
        print(
            f"timeline on {timeline['steps']} module tasks: {timeline['with_s']}s with, {timeline['without_s']}s "
            f"without = {timeline['overhead_pct']}% "
            f"({verdict(timeline['overhead_pct'], TARGETS['timeline_overhead_pct'])} "
            f"< {TARGETS['timeline_overhead_pct']}%)"
        )
    print(f"medians of {args.repeat} runs each; all runs in {out.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
