"""The RDS step modules' flows against an in-memory RDS double: what moto cannot show (an encrypted
source's KMS key and custom parameter groups passed on, the writer created before the readers,
ForceFailover on the reboot, a writer that changes only after a few polls)."""

from __future__ import annotations

import copy
import datetime
import sys

import botocore.exceptions
import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import rds as rdsu
from ansible_collections.firebreak.runbooks.plugins.modules import (
    rds_cluster_failover,
    rds_cluster_pitr,
    rds_instance_failover,
)

UTC = datetime.UTC
NOW = datetime.datetime.now(UTC)


def _error(code, operation):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "not found"}}, operation)


class FakeRDS:
    """Just enough of RDS for the modules: clusters, instances, tags; records every call."""

    def __init__(self):
        self.clusters, self.instances, self.calls = {}, {}, []
        self.failover_after_polls = 0  # DescribeDBClusters answers before the writer really moves

    def _members(self, cluster_id):
        members = [i for i in self.instances.values() if i.get("DBClusterIdentifier") == cluster_id]
        members.sort(key=lambda i: i["_created"])
        writer = self.clusters[cluster_id].get("_writer") or (members[0]["DBInstanceIdentifier"] if members else None)
        return [
            {
                "DBInstanceIdentifier": i["DBInstanceIdentifier"],
                "IsClusterWriter": i["DBInstanceIdentifier"] == writer,
                "PromotionTier": i.get("PromotionTier", 1),
            }
            for i in members
        ]

    def describe_db_clusters(self, DBClusterIdentifier):
        self.calls.append(("describe_db_clusters", DBClusterIdentifier))
        if DBClusterIdentifier not in self.clusters:
            raise _error("DBClusterNotFoundFault", "DescribeDBClusters")
        cluster = self.clusters[DBClusterIdentifier]
        if cluster.get("_pending_writer"):
            if self.failover_after_polls <= 0:
                cluster["_writer"] = cluster.pop("_pending_writer")
            self.failover_after_polls -= 1
        out = {k: v for k, v in copy.deepcopy(cluster).items() if not k.startswith("_")}
        out["DBClusterMembers"] = self._members(DBClusterIdentifier)
        return {"DBClusters": [out]}

    def describe_db_instances(self, DBInstanceIdentifier=None, Filters=None, Marker=None):
        self.calls.append(("describe_db_instances", DBInstanceIdentifier or Filters))
        if DBInstanceIdentifier:
            if DBInstanceIdentifier not in self.instances:
                raise _error("DBInstanceNotFound", "DescribeDBInstances")
            found = [self.instances[DBInstanceIdentifier]]
        else:
            name, values = Filters[0]["Name"], Filters[0]["Values"]
            key = "DBClusterIdentifier" if name == "db-cluster-id" else "DBInstanceIdentifier"
            found = [i for i in self.instances.values() if i.get(key) in values]
        return {"DBInstances": [{k: v for k, v in copy.deepcopy(i).items() if not k.startswith("_")} for i in found]}

    def failover_db_cluster(self, **kw):
        self.calls.append(("failover_db_cluster", kw))
        self.clusters[kw["DBClusterIdentifier"]]["_pending_writer"] = kw["TargetDBInstanceIdentifier"]
        return {}

    def reboot_db_instance(self, **kw):
        self.calls.append(("reboot_db_instance", kw))
        return {}

    def add_tags_to_resource(self, **kw):
        self.calls.append(("add_tags_to_resource", kw))
        return {}

    def restore_db_cluster_to_point_in_time(self, **kw):
        self.calls.append(("restore_db_cluster_to_point_in_time", kw))
        source = self.clusters[kw["SourceDBClusterIdentifier"]]
        self.clusters[kw["DBClusterIdentifier"]] = dict(
            source,
            DBClusterIdentifier=kw["DBClusterIdentifier"],
            TagList=kw["Tags"],
            DBClusterArn=f"arn:aws:rds:us-east-1:1:cluster:{kw['DBClusterIdentifier']}",
            _writer=None,
        )
        return {}

    def create_db_instance(self, **kw):
        self.calls.append(("create_db_instance", kw))
        # AWS: the first instance of a cluster becomes its writer; a reader created before it would not.
        self.instances[kw["DBInstanceIdentifier"]] = dict(kw, DBInstanceStatus="available", _created=len(self.calls))
        return {}


def instance(ident, cluster=None, klass="db.r6g.large", az="us-east-1a", tier=1, **extra):
    return {
        "DBInstanceIdentifier": ident,
        "DBClusterIdentifier": cluster,
        "DBInstanceClass": klass,
        "AvailabilityZone": az,
        "PromotionTier": tier,
        "DBInstanceStatus": "available",
        "_created": 0,
        "DBInstanceArn": f"arn:aws:rds:us-east-1:1:db:{ident}",
        **extra,
    }


def seeded():
    rds = FakeRDS()
    rds.clusters["orders-db"] = {
        "DBClusterIdentifier": "orders-db",
        "DBClusterArn": "arn:aws:rds:us-east-1:1:cluster:orders-db",
        "Engine": "aurora-postgresql",
        "Status": "available",
        "StorageEncrypted": True,
        "KmsKeyId": "arn:aws:kms:us-east-1:1:key/abc",
        "DBSubnetGroup": "orders-subnets",
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1"}],
        "DBClusterParameterGroup": "orders-cluster-pg",
        "EarliestRestorableTime": NOW - datetime.timedelta(days=7),
        "LatestRestorableTime": NOW - datetime.timedelta(minutes=5),
        "TagList": [{"Key": "team", "Value": "orders"}],
        "_writer": "orders-db-1",
    }
    rds.instances["orders-db-1"] = instance(
        "orders-db-1", "orders-db", DBParameterGroups=[{"DBParameterGroupName": "orders-pg"}]
    )
    rds.instances["orders-db-2"] = instance(
        "orders-db-2",
        "orders-db",
        az="us-east-1b",
        tier=0,
        DBParameterGroups=[{"DBParameterGroupName": "default.aurora-postgresql15"}],
    )
    rds.instances["orders-db-2"]["_created"] = 1
    rds.instances["reports-db"] = instance("reports-db", MultiAZ=True, Engine="postgres", TagList=[])
    return rds


class FakeModule:
    def __init__(self, spec, rds, check_mode=False, **params):
        self.params = {name: opt.get("default") for name, opt in spec.items()}
        self.params.update(params)
        self.check_mode, self._diff, self.rds, self.warnings = check_mode, True, rds, []

    def client(self, service, config=None):
        assert service == "rds"
        return self.rds

    def warn(self, msg):
        self.warnings.append(msg)


def mutating(rds):
    return [name for name, _ in rds.calls if not name.startswith("describe")]


def test_cluster_pitr_passes_kms_key_and_custom_groups_and_creates_the_writer_first():
    rds = seeded()
    module = FakeModule(
        rds_cluster_pitr.ARGUMENT_SPEC,
        rds,
        source="orders-db",
        target="orders-new",
        restore_time=(NOW - datetime.timedelta(hours=1)).isoformat(),
        incident_id="INC-3",
    )
    result = rds_cluster_pitr.run(module, {})
    restore = next(kw for name, kw in rds.calls if name == "restore_db_cluster_to_point_in_time")
    assert restore["KmsKeyId"] == "arn:aws:kms:us-east-1:1:key/abc"
    assert restore["DBClusterParameterGroupName"] == "orders-cluster-pg"
    assert restore["DBSubnetGroupName"] == "orders-subnets" and restore["VpcSecurityGroupIds"] == ["sg-1"]
    assert isinstance(restore["RestoreToTime"], datetime.datetime) and "UseLatestRestorableTime" not in restore
    tags = {t["Key"]: t["Value"] for t in restore["Tags"]}
    assert (
        tags["team"] == "orders"
        and tags[rdsu.TAG_RESTORED_FROM] == "orders-db"
        and tags["firebreak:incident"] == "INC-3"
    )
    creates = [kw for name, kw in rds.calls if name == "create_db_instance"]
    assert [c["DBInstanceIdentifier"] for c in creates] == ["orders-new-1", "orders-new-2"]
    assert creates[0]["DBParameterGroupName"] == "orders-pg"  # the writer's custom group
    assert "DBParameterGroupName" not in creates[1]  # a default group is not passed
    assert (creates[1]["AvailabilityZone"], creates[1]["PromotionTier"]) == ("us-east-1b", 0)
    # the reader was created only after the restored cluster showed a writer
    reader_at = rds.calls.index(("create_db_instance", creates[1]))
    assert any(name == "describe_db_clusters" and arg == "orders-new" for name, arg in rds.calls[:reader_at][-2:])
    assert result["after"]["members"] == ["orders-new-1", "orders-new-2"]
    assert rds.clusters["orders-new"]["_writer"] is None and rds._members("orders-new")[0]["IsClusterWriter"] is True
    # the source: never written to (the only tags added, if any, are on the restore)
    tagged = [kw["ResourceName"] for name, kw in rds.calls if name == "add_tags_to_resource"]
    assert rds.clusters["orders-db"]["DBClusterArn"] not in tagged


def test_cluster_pitr_check_mode_makes_no_mutating_call():
    rds = seeded()
    module = FakeModule(rds_cluster_pitr.ARGUMENT_SPEC, rds, check_mode=True, source="orders-db", target="orders-new")
    result = rds_cluster_pitr.run(module, {})
    assert result["changed"] is True and mutating(rds) == []


def test_cluster_failover_waits_until_the_writer_really_changed(monkeypatch):
    rds = seeded()
    rds.failover_after_polls = 2  # the API accepted the failover; DescribeDBClusters shows it two polls later
    module = FakeModule(rds_cluster_failover.ARGUMENT_SPEC, rds, cluster="orders-db", target="orders-db-2")
    monkeypatch.setattr(rdsu, "FIRST_POLL_DELAY", 0.0)
    result = rds_cluster_failover.run(module, {})
    assert result["new_writer"] == "orders-db-2" and result["after"]["writer"] == "orders-db-2"
    polls = [arg for name, arg in rds.calls if name == "describe_db_clusters"]
    assert len(polls) >= 4, polls  # the first read, then polls until IsClusterWriter moved


def test_cluster_failover_times_out_naming_the_writer():
    rds = seeded()
    rds.failover_after_polls = 10**6
    module = FakeModule(
        rds_cluster_failover.ARGUMENT_SPEC, rds, cluster="orders-db", target="orders-db-2", wait_timeout=0
    )
    with pytest.raises(rdsu.RDSWaitTimeout, match="the writer is orders-db-1, not yet orders-db-2"):
        rds_cluster_failover.run(module, {})


def test_instance_failover_reboots_with_force_failover_and_records_it():
    rds = seeded()
    module = FakeModule(rds_instance_failover.ARGUMENT_SPEC, rds, instance="reports-db", incident_id="INC-3")
    result = rds_instance_failover.run(module, {})
    assert ("reboot_db_instance", {"DBInstanceIdentifier": "reports-db", "ForceFailover": True}) in rds.calls
    tags = next(kw for name, kw in rds.calls if name == "add_tags_to_resource")["Tags"]
    assert {"Key": rdsu.TAG_FAILOVER_INCIDENT, "Value": "INC-3"} in tags
    assert result["changed"] is True
