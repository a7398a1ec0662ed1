"""Helpers of the load proof (tests/integration/test_proof_load.py): more ECS services like the seeded one, the
service_down drill's fault injected on each, ansible-playbook runs started together, timelines read and verified."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from sandbox import REPO_ROOT
from sandbox.drills import service_down
from sandbox.seed import ecs as seed_ecs

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
GOOD_REVISION = 3  # as the seed: revisions 1..3 good, the service on 3, the drill's bad deploy makes 4
IMAGE = "registry.local/{name}"


def timeline_module():
    """The collection's timeline code (what ``incident_report`` verifies with)."""
    if str(REPO_ROOT / "collections") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "collections"))
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline

    return timeline


def add_service(aws, name: str, index: int) -> dict:
    """A service like the seeded ``shop-api`` in cluster ``shop``: its own family ``name`` (revisions 1..3, on 3),
    its own target group with two targets; returns what ``break_service`` and the checks need."""
    ecs, elbv2 = aws.client("ecs"), aws.client("elbv2")
    network = aws.manifest["aws"]["network"]
    cluster = aws.manifest["aws"]["ecs"]["cluster"]
    image = IMAGE.format(name=name)

    def register(tag):
        return ecs.register_task_definition(
            family=name,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=seed_ecs.container_definitions(f"{image}:{tag}"),
        )["taskDefinition"]["taskDefinitionArn"]

    revisions = [register(tag) for _, tag in sorted(seed_ecs.IMAGE_TAGS.items())]
    tg_arn = elbv2.create_target_group(
        Name=f"{name}-tg", Protocol="HTTP", Port=seed_ecs.CONTAINER_PORT, VpcId=network["vpc_id"], TargetType="ip",
        HealthCheckProtocol="HTTP", HealthCheckPath="/health", Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]["TargetGroupArn"]  # fmt: skip
    ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition=revisions[GOOD_REVISION - 1],
        desiredCount=seed_ecs.DESIRED_COUNT,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(network["subnet_ids"]),
                "securityGroups": [network["security_groups"]["app"]],
                "assignPublicIp": "DISABLED",
            }
        },
        loadBalancers=[{"targetGroupArn": tg_arn, "containerName": "api", "containerPort": seed_ecs.CONTAINER_PORT}],
    )
    targets = [{"Id": f"10.20.{1 + side}.{100 + index}", "Port": seed_ecs.CONTAINER_PORT} for side in (0, 1)]
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=targets)
    return {"cluster": cluster, "service": name, "family": name, "target_group_arn": tg_arn, "image": image}


def break_service(aws, svc: dict) -> dict:
    """The service_down drill's fault on ``svc``: a bad-build revision deployed (as ``service_down.inject`` does on
    the seeded service); returns the scenario's extra vars."""
    ecs = aws.client("ecs")
    bad = ecs.register_task_definition(
        family=svc["family"],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=seed_ecs.container_definitions(f"{svc['image']}:bad-build"),
    )["taskDefinition"]
    ecs.update_service(cluster=svc["cluster"], service=svc["service"], taskDefinition=bad["taskDefinitionArn"])
    svc.update(bad=f"{svc['family']}:{bad['revision']}", good=f"{svc['family']}:{GOOD_REVISION}")
    return {
        "service_down_cluster": svc["cluster"],
        "service_down_service": svc["service"],
        "service_down_rollback_from": svc["bad"],
    }


def service_state(aws, svc: dict) -> dict:
    """What the sandbox says of ``svc`` now: the revision it runs, tasks, rollout, images, target health."""
    ecs = aws.client("ecs")
    found = ecs.describe_services(cluster=svc["cluster"], services=[svc["service"]])["services"][0]
    images = [
        c["image"]
        for c in ecs.describe_task_definition(taskDefinition=found["taskDefinition"])["taskDefinition"][
            "containerDefinitions"
        ]
    ]
    health = aws.client("elbv2").describe_target_health(TargetGroupArn=svc["target_group_arn"])
    tags = ecs.list_tags_for_resource(resourceArn=found["serviceArn"]).get("tags", [])
    return {
        "revision": found["taskDefinition"].rsplit("/", 1)[-1],
        "running": f"{found['runningCount']}/{found['desiredCount']}",
        "rollout": found["deployments"][0].get("rolloutState"),
        "images": images,
        "targets": sorted(d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]),
        "tags": {t["key"]: t["value"] for t in tags if t["key"].startswith("firebreak:")},
    }


def playbook_env(sandbox, incident: str, timeline: Path) -> dict:
    env = {**os.environ, **sandbox.env()}
    env.update(
        {
            "FIREBREAK_TIMELINE": str(timeline),
            "FIREBREAK_INCIDENT_ID": incident,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


class Run:
    """One ``ansible-playbook`` process started now (output to a file: 20 pipes filling up would stall them)."""

    def __init__(self, sandbox, name: str, playbook: str, incident: str, timeline: Path, extra: dict, logs: Path):
        self.name, self.incident, self.timeline = name, incident, timeline
        self.log = logs / f"{name}.log"
        cmd = [ANSIBLE_PLAYBOOK, playbook, "-e", json.dumps({"incident_id": incident, **extra})]
        self.started = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=playbook_env(sandbox, incident, timeline), stdout=out, stderr=subprocess.STDOUT
            )
        self.ended = None

    def poll(self) -> bool:
        if self.ended is None and self.proc.poll() is not None:
            self.ended = time.monotonic()
        return self.ended is not None

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def wall(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def wait_all(runs: list[Run], timeout: float) -> int:
    """Wait for every run (killing what is left at ``timeout``); returns the most that ran at once."""
    deadline, peak = time.monotonic() + timeout, 0
    while True:
        running = [run for run in runs if not run.poll()]
        peak = max(peak, len(running))
        if not running:
            return peak
        if time.monotonic() > deadline:
            for run in running:
                run.proc.kill()
                run.proc.wait()
            raise AssertionError(f"{len(running)} runs still running after {timeout:.0f}s: {[r.name for r in running]}")
        time.sleep(0.2)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def signature(recs: list[dict]) -> list[tuple]:
    """The shape of a timeline: each record's event and action (what a lost or extra record changes)."""
    return [(r.get("event"), r.get("action") or "", r.get("task") or "") for r in recs]


SERVICE_NAME = re.compile(r"\bload-\d\d\b")


def services_named(text: str) -> set[str]:
    return set(SERVICE_NAME.findall(text))


def ecs_calls(log: list[dict], action: str) -> list[str]:
    """The service each ``action`` the fault proxy saw was about (ECS speaks JSON: its params are logged)."""
    return [(e.get("params") or {}).get("service", "?") for e in log if e["service"] == "ecs" and e["action"] == action]


__all__ = ["service_down"]


# -- the containment ledger, read back ---------------------------------------------------------------------------

WAF_ROLE = "tests/integration/playbooks/waf/role.yml"
IAM_ROLE = "tests/integration/playbooks/iam/role.yml"
NOTES = "tests/integration/playbooks/load/notes.yml"


def ip_set_addresses(aws) -> list[str]:
    waf = aws.manifest["aws"]["waf"]["ip_set"]
    return aws.client("wafv2").get_ip_set(Name=waf["name"], Scope="REGIONAL", Id=waf["id"])["IPSet"]["Addresses"]


def ledger_objects(aws) -> list[dict]:
    """Every claim and marker in the evidence bucket: ``{"resource", "item", "kind", "incident_id"}``."""
    from urllib.parse import unquote

    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    prefix = "firebreak/claims/"
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    found = []
    for page in pages:
        for obj in page.get("Contents") or []:
            resource, item, kind, incident = obj["Key"][len(prefix) :].split("/")
            found.append({"resource": unquote(resource), "item": unquote(item), "kind": kind,
                          "incident_id": unquote(incident)})  # fmt: skip
    return found


def held(aws, incident: str) -> set[tuple[str, str]]:
    """(resource, item) the ledger says ``incident`` claims now."""
    return {
        (o["resource"], o["item"]) for o in ledger_objects(aws) if o["kind"] == "claim" and o["incident_id"] == incident
    }


def _details(rec: dict, key: str) -> list[dict]:
    value = (rec.get("details") or {}).get(key)
    return value if isinstance(value, list) else [value] if isinstance(value, dict) else []


def claim_accounts(recs: list[dict]) -> tuple[set, set]:
    """``(claimed, released)`` of a timeline: the (resource, item) its containment entries claimed (WAF: claimed and
    added; IAM: claimed), and those of the entries a release entry names."""
    entries = {}
    for rec in recs:
        if rec.get("check_mode") or rec.get("event") not in ("task_ok", "task_changed"):
            continue
        for entry in _details(rec, "containment"):
            items = list(entry.get("claimed") or []) + list((entry.get("changed") or {}).get("added") or [])
            entries[entry["id"]] = {(entry["resource"], item) for item in items}
    released_ids = {
        i
        for rec in recs
        if not rec.get("check_mode")
        for r in _details(rec, "release")
        for i in r.get("releases") or []
    }
    claimed = set().union(*entries.values()) if entries else set()
    released = set().union(*(entries[i] for i in released_ids if i in entries)) if released_ids else set()
    return claimed, released
