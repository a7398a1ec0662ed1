"""A Neptune-engine cluster (seed serverless-neptune-runbook.md): writer and reader in two AZs.

``seed(make_client, manifest)`` runs after ``platform.seed`` (it reuses the Aurora cluster's DB subnet
group and the ``db`` security group) and returns the ``neptune`` area of the manifest.  Neptune is
served by the RDS API (``DescribeDBClusters``, ``FailoverDBCluster``), so the runbooks' RDS steps
handle it like Aurora.  Three calls: cheap enough for every reset.
"""

from __future__ import annotations

REGION_AZS = ("us-east-1a", "us-east-1b")
SANDBOX_TAG = {"Key": "firebreak:sandbox", "Value": "true"}


def seed(make_client, manifest: dict) -> dict:
    rds = make_client("rds")
    subnet_group = manifest["aurora"]["subnet_group"]
    cluster = rds.create_db_cluster(
        DBClusterIdentifier="graph-db",
        Engine="neptune",
        DBSubnetGroupName=subnet_group,
        VpcSecurityGroupIds=[manifest["network"]["security_groups"]["db"]],
        BackupRetentionPeriod=7,
        Tags=[SANDBOX_TAG],
    )["DBCluster"]
    # The writer is created first; the reader has the higher failover priority (tier 0).
    instances = (("graph-db-1", REGION_AZS[0], 1), ("graph-db-2", REGION_AZS[1], 0))
    for instance_id, zone, tier in instances:
        rds.create_db_instance(
            DBInstanceIdentifier=instance_id,
            DBClusterIdentifier="graph-db",
            Engine="neptune",
            DBInstanceClass="db.r5.large",
            AvailabilityZone=zone,
            PromotionTier=tier,
            Tags=[SANDBOX_TAG],
        )
    return {
        "cluster_id": "graph-db",
        "cluster_arn": cluster["DBClusterArn"],
        "engine": "neptune",
        "subnet_group": subnet_group,
        "writer_id": "graph-db-1",
        "reader_ids": ["graph-db-2"],
        "instance_ids": [i[0] for i in instances],
    }
