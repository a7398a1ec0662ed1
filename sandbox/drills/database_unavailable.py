"""Drill: the Aurora writer of ``orders-db`` fails (seeds/incident-procedures.md "Database Unavailable").

The fault: the sandbox cannot make moto's writer fail (moto keeps every cluster ``available`` and records no
failure events), so the drill says what a person would see and forces the runbook with that reason
(``database_unavailable_force``): the symptom check still runs, reads ``available`` and records it next to the
reason. ``database_unavailable_failover_from`` names the failing writer, so a re-run changes nothing.
``verify`` checks in moto that the reader is the writer now and the cluster is available.
"""

from __future__ import annotations

PLAYBOOK = "playbooks/database_unavailable.yml"
DESCRIPTION = "Aurora writer failed (forced: moto keeps it available): fail orders-db over to its reader, verify"


def _writer(sandbox, cluster: str) -> str:
    found = sandbox.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    return next(m["DBInstanceIdentifier"] for m in found["DBClusterMembers"] if m["IsClusterWriter"])


def inject(sandbox) -> dict:
    seeded = (sandbox.manifest or {}).get("aws", {}).get("aurora")
    if not seeded:
        raise RuntimeError("the sandbox has no Aurora seed (manifest['aws']['aurora']); was it started with AWS?")
    cluster = seeded["cluster_id"]
    writer = _writer(sandbox, cluster)
    reader = next(i for i in seeded["instance_ids"] if i != writer)
    return {
        "database_unavailable_kind": "cluster",
        "database_unavailable_cause": "failover",
        "database_unavailable_cluster": cluster,
        "database_unavailable_failover_from": writer,
        "database_unavailable_force": True,
        "database_unavailable_force_reason": (
            f"drill: writer {writer} of {cluster} refuses connections (the sandbox keeps it 'available')"
        ),
        "firebreak_gate_approvals": {"database-unavailable-failover": "yes"},
        "incident_gate_allow_unpinned": True,
        "_drill": {
            "cluster": cluster,
            "writer": writer,
            "reader": reader,
            "fault": f"writer {writer} of {cluster} failed (forced: moto cannot fail it)",
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    drill = context["_drill"]
    found = sandbox.client("rds").describe_db_clusters(DBClusterIdentifier=drill["cluster"])["DBClusters"][0]
    writer = _writer(sandbox, drill["cluster"])
    assert writer != drill["writer"], f"{drill['cluster']} still has the failed writer {drill['writer']}"
    assert writer == drill["reader"], f"{drill['cluster']}'s writer is {writer}, expected {drill['reader']}"
    assert found["Status"] == "available", f"{drill['cluster']} is {found['Status']}, not available"
    return [f"{drill['cluster']}: writer {writer} (was {drill['writer']}), status {found['Status']}"]
