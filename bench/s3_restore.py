"""S3 point-in-time restore of N keys under a prefix: the module against a plain sequential boto3 loop.

Both restore the same history (in two buckets seeded identically), through a fault proxy that adds
20 ms to every call, so that concurrency counts as it would against AWS. Calls are counted from that
proxy's request log. ``run(box, args)`` returns the figures; ``python -m bench.s3_restore --keys N``
runs it alone.

The history: every key has a version before the restore time; after it, one key in four is
overwritten and one in four deleted (the rest unchanged). Versions listed: 1.5 N.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

from sandbox import CREDENTIALS, REGION, REPO_ROOT, Sandbox, s3_history
from sandbox.fault_proxy import FaultProxy

BIN = Path(sys.executable).parent
PREFIX = "data/"
LATENCY = 0.020
TARGETS = {"speedup": 8.0, "calls_per_changed_key": 1.0}


def _client(url: str, pool: int = 32):
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=pool),
    )


def key_name(i: int) -> str:
    return f"{PREFIX}{i // 1000:02d}/object-{i:05d}.json"


def seed(s3, buckets, count: int, concurrency: int = 16) -> str:
    """Seed each bucket with the same history; returns the restore time."""

    def before(args):
        bucket, i = args
        s3.put_object(Bucket=bucket, Key=key_name(i), Body=b'{"v": 1, "i": %d}' % i, ContentType="application/json")

    def after(args):
        bucket, i = args
        if i % 4 == 1:
            s3.put_object(Bucket=bucket, Key=key_name(i), Body=b'{"v": 2, "corrupt": true}')
        elif i % 4 == 2:
            s3.delete_object(Bucket=bucket, Key=key_name(i))

    for bucket in buckets:
        s3_history.versioned_bucket(s3, bucket)
    work = [(bucket, i) for bucket in buckets for i in range(count)]
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(before, work))
        at = s3_history.split()
        list(pool.map(after, [w for w in work if w[1] % 4 in (1, 2)]))
    return at


def check(s3, bucket: str, count: int, sample: int = 200) -> None:
    """Every sampled key holds its body of the time (read directly from moto)."""
    step = max(1, count // sample)

    def one(i):
        body = s3_history.body(s3, bucket, key_name(i))
        assert body == b'{"v": 1, "i": %d}' % i, (bucket, key_name(i), body)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(0, count, step)))


class QueryLoggingProxy(FaultProxy):
    """The fault proxy, also keeping each S3 request's query (the request log has method and path only:
    ``GET /bucket?versions`` and ``GET /bucket?versioning`` differ only there)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests: list[dict] = []

    def _record(self, req, status, decision, elapsed) -> None:
        super()._record(req, status, decision, elapsed)
        if req.service == "s3":
            with self._lock:
                self.requests.append(
                    {
                        "method": req.method,
                        "path": req.path,
                        "query": req.query,
                        "status": status,
                        "done": time.perf_counter(),
                        "elapsed": elapsed,
                    }
                )


def _classify(entry: dict) -> str:
    query = entry["query"]
    if entry["method"] == "GET" and entry["path"].count("/") == 1:
        return "list" if query.startswith("versions") or "&versions" in query or query == "versions=" else "bucket"
    return {"PUT": "mutating", "POST": "mutating", "DELETE": "mutating", "HEAD": "head"}.get(entry["method"], "get")


def _calls(entries, changed: int, versions: int) -> dict:
    kinds = [_classify(e) for e in entries]
    lists, writes, heads = kinds.count("list"), kinds.count("mutating"), kinds.count("head")
    listed = [e for e, k in zip(entries, kinds, strict=True) if k == "list"]
    acting = [e for e, k in zip(entries, kinds, strict=True) if k in ("mutating", "head")]
    phases = {}
    if listed:
        phases["listing_s"] = round(listed[-1]["done"] - (listed[0]["done"] - listed[0]["elapsed"]), 2)
        phases["list_call_s"] = round(sum(e["elapsed"] for e in listed) / len(listed), 2)
    if acting:
        phases["acting_s"] = round(acting[-1]["done"] - (acting[0]["done"] - acting[0]["elapsed"]), 2)
    return {
        **phases,
        "total": len(entries),
        "list": lists,
        "list_bound": math.ceil(versions / 1000),
        "mutating": writes,
        "head": heads,
        "mutating_per_changed_key": round(writes / changed, 3) if changed else None,
        "other": len(entries) - lists - writes - heads,
        "calls_per_changed_key": round((writes + heads) / changed, 3) if changed else None,
    }


def run(box: Sandbox, args) -> dict:
    count = int(getattr(args, "s3_keys", 10000))
    concurrency = int(getattr(args, "s3_concurrency", 32))
    direct = _client(box.moto_url)
    started = time.perf_counter()
    stamp = int(time.time())
    buckets = {"module": f"bench-module-{stamp}", "loop": f"bench-loop-{stamp}", "floor": f"bench-floor-{stamp}"}
    at = seed(direct, list(buckets.values()), count)
    seeding = time.perf_counter() - started
    versions = count + count // 4 + count // 4 + (1 if count % 4 > 1 else 0) + (1 if count % 4 > 2 else 0)
    changed = sum(1 for i in range(count) if i % 4 in (1, 2))

    proxy = QueryLoggingProxy(upstream=box.moto_url)
    url = proxy.start()
    proxy.add_rule({"service": "s3", "fault": "latency", "seconds": LATENCY})
    env = {
        **os.environ,
        **box.env(),
        "FIREBREAK_AWS_ENDPOINT_URL": url,
        "AWS_ENDPOINT_URL": url,
        "FIREBREAK_INCIDENT_ID": "BENCH-S3",
        "FIREBREAK_TIMELINE": str(box.workdir / "bench-s3-timeline.jsonl"),
    }
    results = {"keys": count, "versions": versions, "changed_keys": changed, "seed_s": round(seeding, 1)}
    try:
        for kind in ("module", "loop", "floor"):
            mark = len(proxy.requests)
            if kind == "module":
                extra = {"bench_bucket": buckets[kind], "bench_prefix": PREFIX, "bench_time": at,
                         "bench_concurrency": concurrency}  # fmt: skip
                cmd = [str(BIN / "ansible-playbook"), "bench/playbooks/s3_restore.yml", "-e", json.dumps(extra)]
            else:
                workers = str(concurrency if kind == "floor" else 1)
                cmd = [sys.executable, "bench/boto3_s3_restore.py", buckets[kind], PREFIX, at, workers]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"{kind} restore failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr}")
            entries = proxy.requests[mark:]
            results[kind] = {"seconds": round(elapsed, 2), "calls": _calls(entries, changed, versions)}
            check(direct, buckets[kind], count)
    finally:
        proxy.stop()
    results["speedup"] = round(results["loop"]["seconds"] / results["module"]["seconds"], 2)
    results["floor_speedup"] = round(results["loop"]["seconds"] / results["floor"]["seconds"], 2)
    module_acting, loop_acting = results["module"]["calls"].get("acting_s"), results["loop"]["calls"].get("acting_s")
    if module_acting and loop_acting:
        results["acting_speedup"] = round(loop_acting / module_acting, 2)
    results["load_1m"] = round(os.getloadavg()[0], 1)
    results["targets"] = TARGETS
    return results


def render(results: dict) -> str:
    """The ``## s3_restore`` section of bench/results.md."""
    m, lp, fl = results["module"], results["loop"], results["floor"]
    mc, lc, fc = m["calls"], lp["calls"], fl["calls"]
    return "\n".join(
        [
            "## s3_restore",
            "",
            f"Restore of {results['keys']:,} keys under a prefix ({results['versions']:,} versions listed, "
            f"{results['changed_keys']:,} keys changed: one in four overwritten, one in four deleted) to a point in "
            "time, through the fault proxy adding 20 ms per call; moto in server mode behind it. Same run, same "
            "history (three buckets seeded identically). Calls counted from the proxy's request log.",
            "",
            "| | seconds | list calls (bound) | mutating calls | HeadObject | calls per changed key |",
            "|---|---|---|---|---|---|",
            f"| `s3_object_restore` (ansible-playbook, concurrency {results.get('concurrency', 32)}) | "
            f"{m['seconds']} | {mc['list']} ({mc['list_bound']}) | {mc['mutating']} | {mc['head']} | "
            f"{mc['calls_per_changed_key']} |",
            f"| sequential boto3 loop | {lp['seconds']} | {lc['list']} ({lc['list_bound']}) | {lc['mutating']} | "
            f"{lc['head']} | {lc['calls_per_changed_key']} |",
            f"| floor: the same boto3 calls on {results.get('concurrency', 32)} threads, nothing else | "
            f"{fl['seconds']} | {fc['list']} ({fc['list_bound']}) | {fc['mutating']} | {fc['head']} | "
            f"{fc['calls_per_changed_key']} |",
            "",
            f"Phases (from the proxy's request times): listing {mc.get('listing_s')} s vs {lc.get('listing_s')} s "
            f"({mc.get('list_call_s')} s per ListObjectVersions page in moto); acting {mc.get('acting_s')} s vs "
            f"{lc.get('acting_s')} s (**{results.get('acting_speedup')}x**); the floor: listing "
            f"{fc.get('listing_s')} s, acting {fc.get('acting_s')} s. Machine load (1 min) at the end: "
            f"{results.get('load_1m')}.",
            "",
            f"Speed-up: **{results['speedup']}x** (target >= {TARGETS['speedup']}x); the floor, the most any "
            f"concurrent client reached against this sandbox in this run: {results['floor_speedup']}x. Mutating "
            f"calls per changed key: **{mc['mutating_per_changed_key']}** (target 1; none for unchanged keys). "
            f"List calls {mc['list']} <= ceil(versions/1000) = {mc['list_bound']}.",
            "",
        ]
    )


def write_section(text: str, path: Path = REPO_ROOT / "bench" / "results.md") -> None:
    """Replace (or append) the ``## s3_restore`` section of ``path``, leaving other sections alone."""
    existing = path.read_text() if path.exists() else "# Benchmark results\n\n"
    lines = existing.splitlines(keepends=True)
    out, skipping = [], False
    for line in lines:
        if line.startswith("## "):
            skipping = line.strip() == "## s3_restore"
        if not skipping:
            out.append(line)
    body = "".join(out).rstrip("\n") + "\n\n" + text
    path.write_text(body)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.s3_restore", description=__doc__.splitlines()[0])
    parser.add_argument("--s3-keys", type=int, default=10000)
    parser.add_argument("--s3-concurrency", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.md")
    args = parser.parse_args(argv)
    with Sandbox(kubernetes=False) as box:
        results = run(box, args)
    results["concurrency"] = args.s3_concurrency
    print(json.dumps(results, indent=2))
    if not args.no_write:
        write_section(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
