"""Benchmark: blocking 10,000 addresses with ``wafv2_ip_block`` against a per-address loop, in one run.

    python -m bench.waf_block [--addresses N] [--loop-sample N]

The fault proxy adds 20 ms to every WAFv2 call (AWS-like latency). The step is one ``ansible-playbook``
run (start-up included) that reads the web ACL and the IP set, writes the merged list once and reads the
set back (the step contract: ``after`` is what the API answers, so a role verifies the real state). The
baseline is what a per-address tool does (``community.aws.wafv2_ip_set`` in a loop, or a shell loop over
``aws wafv2 update-ip-set``): for each address, read the set for its lock token and write it back with
the address added, in boto3 (no Python or Ansible start-up counted for it). The loop is bounded: it
blocks ``--loop-sample`` addresses (200) and the time for all of them is extrapolated linearly. That
is a lower bound: each write of the real loop carries a list growing to 10,000 entries.
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

from sandbox import REPO_ROOT, Sandbox

LATENCY = {"service": "wafv2", "fault": "latency", "seconds": 0.02, "description": "AWS-like latency"}
TARGETS = {"max_calls": 4, "min_speedup": 100.0}  # 3 calls to block, 1 to read the set back


def addresses(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct /32s in 198.18.0.0/15 (benchmarking range, RFC 2544)."""
    return [f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32" for i in range(offset, offset + count)]


def wafv2_calls(box) -> list[str]:
    return [entry["action"] for entry in box.proxy.log() if entry["service"] == "wafv2"]


def empty(box, ip_set: dict) -> None:
    client = box.client("wafv2")
    token = client.get_ip_set(Name=ip_set["name"], Scope="REGIONAL", Id=ip_set["id"])["LockToken"]
    client.update_ip_set(Name=ip_set["name"], Scope="REGIONAL", Id=ip_set["id"], Addresses=[], LockToken=token)


def bench_step(box, count: int, workdir: Path) -> dict:
    box.reset_aws()
    waf = box.manifest["aws"]["waf"]
    empty(box, waf["ip_set"])  # an IP set holds at most 10,000: start from an empty one
    box.proxy.add_rule(LATENCY)
    extra = {"bench_ip_set": waf["ip_set"]["arn"], "bench_web_acl": waf["web_acl"]["arn"]}
    extra["bench_addresses"] = addresses(count)
    vars_file = workdir / "waf_block_vars.json"
    vars_file.write_text(json.dumps(extra))
    env = {**os.environ, **box.env(), "FIREBREAK_TIMELINE": str(workdir / "waf_block.jsonl")}
    env["FIREBREAK_INCIDENT_ID"] = "BENCH-WAF"
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "bench/playbooks/waf_block.yml",
        "-e",
        f"@{vars_file}",
    ]
    box.proxy.clear_log()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"wafv2_ip_block run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    calls = wafv2_calls(box)
    stored = box.client("wafv2").get_ip_set(Name=waf["ip_set"]["name"], Scope="REGIONAL", Id=waf["ip_set"]["id"])
    held = len(stored["IPSet"]["Addresses"])
    assert held == count, f"the IP set holds {held} addresses"
    return {"addresses": count, "seconds": round(elapsed, 3), "api_calls": len(calls), "calls": calls}


def bench_loop(box, sample: int, count: int) -> dict:
    box.reset_aws()
    waf = box.manifest["aws"]["waf"]["ip_set"]
    empty(box, waf)
    box.proxy.add_rule(LATENCY)
    client = box.client("wafv2")
    box.proxy.clear_log()
    started = time.perf_counter()
    for address in addresses(sample):
        answer = client.get_ip_set(Name=waf["name"], Scope="REGIONAL", Id=waf["id"])
        client.update_ip_set(
            Name=waf["name"],
            Scope="REGIONAL",
            Id=waf["id"],
            Addresses=[*answer["IPSet"]["Addresses"], address],
            LockToken=answer["LockToken"],
        )
    elapsed = time.perf_counter() - started
    calls = len(wafv2_calls(box))
    return {
        "addresses_timed": sample,
        "seconds_timed": round(elapsed, 3),
        "api_calls_timed": calls,
        "extrapolated_seconds": round(elapsed * count / sample, 1),
        "extrapolated_api_calls": calls * count // sample,
    }


def run(box, args) -> dict:
    """Figures for ``count`` addresses: the step against the per-address loop (extrapolated)."""
    count = getattr(args, "addresses", 10000)
    sample = min(getattr(args, "loop_sample", 200), count)
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-waf-") as tmp:
        step = bench_step(box, count, Path(tmp))
    loop = bench_loop(box, sample, count)
    speedup = loop["extrapolated_seconds"] / step["seconds"]
    return {
        "latency_ms_per_call": 20,
        "step": step,
        "loop": loop,
        "speedup": round(speedup, 1),
        "targets": TARGETS,
        "meets_targets": step["api_calls"] <= TARGETS["max_calls"] and speedup >= TARGETS["min_speedup"],
    }


def report(figures: dict) -> list[str]:
    """Lines for bench/results.md (``make bench``)."""
    step, loop = figures["step"], figures["loop"]
    calls_ok = "meets" if step["api_calls"] <= TARGETS["max_calls"] else "MISSES"
    speed_ok = "meets" if figures["speedup"] >= TARGETS["min_speedup"] else "MISSES"
    return [
        f"blocking {step['addresses']:,} addresses in the seeded IP set (emptied first), the fault proxy adding "
        f"{figures['latency_ms_per_call']} ms to every WAFv2 call",
        f"step (one `ansible-playbook` run of `wafv2_ip_block`, start-up and timeline included): {step['seconds']} s, "
        f"**{step['api_calls']} calls** ({', '.join(step['calls'])}; {calls_ok} <= {TARGETS['max_calls']})",
        f"per-address loop (GetIPSet + UpdateIPSet per address, boto3): {loop['api_calls_timed']} calls / "
        f"{loop['seconds_timed']} s for {loop['addresses_timed']} addresses -> {loop['extrapolated_api_calls']:,} "
        f"calls / {loop['extrapolated_seconds']} s for all (linear: a lower bound, the real loop's list grows)",
        f"speed-up **{figures['speedup']}x** ({speed_ok} >= {TARGETS['min_speedup']:.0f}x)",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.waf_block", description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=10000)
    parser.add_argument("--loop-sample", type=int, default=200)
    args = parser.parse_args(argv)
    with Sandbox(kubernetes=False) as box:
        figures = run(box, args)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
