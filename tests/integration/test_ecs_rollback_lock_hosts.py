"""Two responders on two machines roll one ECS service back at once (ecs_service_rollback's rollback lock).

Each run has its own claims directory (its own machine: the local lock cannot see the other) and both name the
sandbox's evidence bucket: the lock object taken there with a conditional write is what orders them. The fault proxy
holds the first UpdateService for a few seconds, so the second run arrives while the first holds the lock. Exactly one
UpdateService reaches the sandbox; the other run changes nothing and names the incident holding the lock; both
timelines verify; no lock is left, in the bucket or in either directory.
"""

from __future__ import annotations

import pytest

from sandbox.drills import service_down
from tests.integration.load_helpers import Run, ecs_calls, timeline_module, wait_all

pytestmark = pytest.mark.integration

ROLLBACK = "tests/integration/playbooks/ecs/rollback.yml"
LOCKS = "firebreak/locks/"


def rollback_record(recs: list[dict]) -> dict:
    found = [r for r in recs if r.get("action") == "firebreak.runbooks.ecs_service_rollback"]
    assert len(found) == 1, [r.get("event") for r in recs]
    return found[0]


def test_two_hosts_rolling_one_service_back_at_once_make_one_rollback(aws, tmp_path):
    tl = timeline_module()
    context = service_down.inject(aws)
    drill = context["_drill"]
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    logs = tmp_path / "logs"
    logs.mkdir()
    aws.proxy.clear_log()
    aws.proxy.add_rule({"service": "ecs", "action": "UpdateService", "fault": "latency", "seconds": 4, "count": 1})

    runs = []
    for host, incident in (("host-a", "INC-LOCK-A"), ("host-b", "INC-LOCK-B")):
        extra = {
            "ecs_cluster": context["service_down_cluster"],
            "ecs_service": drill["service"],
            "ecs_claims_bucket": bucket,
            "ecs_claims_dir": str(tmp_path / host / ".claims"),
        }
        timeline = tmp_path / host / "incidents" / incident / "timeline.jsonl"
        runs.append(Run(aws, host, ROLLBACK, incident, timeline, extra, logs))
    wait_all(runs, 240)
    for run in runs:
        assert run.proc.returncode == 0, run.output[-3000:]

    # exactly one rollback reached the sandbox, and the service runs the good revision
    assert ecs_calls(aws.proxy.log(), "UpdateService") == [drill["service"]]
    ecs = aws.client("ecs")
    found = ecs.describe_services(cluster=context["service_down_cluster"], services=[drill["service"]])["services"][0]
    assert found["taskDefinition"].rsplit("/", 1)[-1] == drill["good"], found["taskDefinition"]

    # both timelines verify; one run rolled back, the other changed nothing and says who holds the rollback
    results = {}
    for run in runs:
        recs = tl.verify_timeline(str(run.timeline))  # raises on a torn line or a broken chain
        assert {r["incident_id"] for r in recs} == {run.incident}
        results[run.incident] = rollback_record(recs)
    changed = [incident for incident, rec in results.items() if rec["changed"]]
    assert len(changed) == 1, {i: r.get("msg") for i, r in results.items()}
    (other,) = set(results) - set(changed)
    waited = results[other]
    assert f"already being done by incident {changed[0]} (operator " in waited["msg"], waited["msg"]
    assert "nothing changed by this run" in waited["msg"]
    assert f"s3://{bucket}/{LOCKS}" in waited["msg"], "the lock named is the bucket's, not a local file"

    # no lock left anywhere
    left = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=LOCKS).get("Contents", [])
    assert left == [], [o["Key"] for o in left]
    for host in ("host-a", "host-b"):
        assert not [p for p in (tmp_path / host / ".claims").rglob("*") if p.is_file()], f"{host} kept a local lock"
