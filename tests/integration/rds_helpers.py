"""Helpers shared by the RDS recovery tests (cluster and instance failover, point-in-time restore)."""

from __future__ import annotations

import json
import re

JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)
RDS_MUTATING = {
    "FailoverDBCluster",
    "RebootDBInstance",
    "RestoreDBClusterToPointInTime",
    "RestoreDBInstanceToPointInTime",
    "CreateDBInstance",
    "ModifyDBCluster",
    "ModifyDBInstance",
    "AddTagsToResource",
    "RemoveTagsFromResource",
    "DeleteDBCluster",
    "DeleteDBInstance",
}


def result_of(run, task: str) -> dict:
    """The localhost result of ``task`` from a run with the json stdout callback."""
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def rds_calls(aws) -> list[str]:
    return [entry["action"] for entry in aws.proxy.log() if entry["service"] == "rds"]


def mutating_calls(aws) -> list[str]:
    return [action for action in rds_calls(aws) if action in RDS_MUTATING]


def writer(aws, cluster: str) -> str | None:
    found = aws.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    writers = [m["DBInstanceIdentifier"] for m in found["DBClusterMembers"] if m["IsClusterWriter"]]
    assert len(writers) <= 1, writers
    return writers[0] if writers else None


def rds_state(aws) -> dict:
    """Every cluster and instance with the fields the steps could change, to compare before/after."""
    rds = aws.client("rds")
    clusters = {
        c["DBClusterIdentifier"]: {
            "members": sorted((m["DBInstanceIdentifier"], m["IsClusterWriter"]) for m in c["DBClusterMembers"]),
            "status": c["Status"],
            "tags": sorted((t["Key"], t["Value"]) for t in c.get("TagList") or []),
        }
        for c in rds.describe_db_clusters()["DBClusters"]
    }
    instances = {
        i["DBInstanceIdentifier"]: {
            "status": i["DBInstanceStatus"],
            "az": i.get("AvailabilityZone"),
            "cluster": i.get("DBClusterIdentifier"),
            "tags": sorted((t["Key"], t["Value"]) for t in i.get("TagList") or []),
        }
        for i in rds.describe_db_instances()["DBInstances"]
    }
    return {"clusters": clusters, "instances": instances}
