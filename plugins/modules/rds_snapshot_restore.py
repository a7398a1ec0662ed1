#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_snapshot_restore
short_description: Restore a DB cluster or instance from its latest (or a given) snapshot into a new identifier
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the last-resort step of a database that failed completely - "restore from the latest snapshot into a
    new identifier" - in one call. It picks the latest C(available) snapshot of O(source) (automated or manual,
    see O(snapshot_type)) or takes O(snapshot), restores it into the NEW identifier O(target)
    (C(RestoreDBClusterFromSnapshot) or C(RestoreDBInstanceFromDBSnapshot)), creates a restored cluster's
    instances (the restore API creates none), waits until everything is C(available) and returns the new
    endpoints.
  - B(Everything written after the snapshot is lost.) The result names the snapshot and its time and reports the
    data loss window (now minus the snapshot time, RV(data_loss_window)). Scenarios gate the step (gate step kind
    RV(gate_kind), C(data_restore)).
  - Never overwrites - O(target) must differ from the source, and an existing O(target) is refused, naming it,
    unless it is our own restore of the same source (tag C(firebreak:restored-from)), for the same incident (tag
    C(firebreak:incident), when O(incident_id) is given), from the same snapshot (tag
    C(firebreak:restored-from-snapshot); with the latest snapshot, any earlier restore of the source is
    accepted). Then the run finishes the job - missing instances are created, a complete restore is no change.
  - The source may be gone (a complete failure). Its DB subnet group, VPC security groups and parameter group (and
    for an instance the option group, Multi-AZ and class; for a cluster one instance per member with the member's
    class, Availability Zone and promotion tier) are copied when it still exists; O(subnet_group),
    O(security_groups), O(parameter_group) and O(instance_class) override them, and are what is used when it is
    gone.
  - The restore carries the source's tags, O(tags), the incident tags and the markers C(firebreak:restored-from),
    C(firebreak:restored-from-snapshot) and C(firebreak:restored-to-time) (the snapshot's time).
  - In check mode the module reads and validates everything and reports the plan (RV(after) is then a prediction),
    with a diff, but makes no call that changes anything.
options:
  kind:
    description:
      - What is restored - a DB C(cluster) (Aurora, Neptune, DocumentDB; from DB cluster snapshots) or a DB
        C(instance) (from DB snapshots).
    type: str
    choices: [cluster, instance]
    default: cluster
  source:
    description:
      - Identifier of the DB cluster or instance whose latest snapshot is restored. It need not exist any more.
      - Optional with O(snapshot) (the snapshot names its source).
      - RDS identifiers are case-insensitive and stored in lower case, so the module folds O(source) and O(target)
        to lower case and reports them so.
    type: str
  snapshot:
    description:
      - Identifier or ARN of the snapshot to restore, instead of the latest one of O(source).
    type: str
  snapshot_type:
    description:
      - Which snapshots of O(source) are candidates for the latest - C(any) (automated and manual), C(automated) or
        C(manual). Ignored with O(snapshot).
    type: str
    choices: [any, automated, manual]
    default: any
  target:
    description:
      - Identifier of the NEW cluster or instance. A cluster's instances are named C(<target>-1) (the writer) to
        C(<target>-N).
    type: str
    required: true
  instances:
    description:
      - For a cluster, create its instances (one per source member, or O(instance_count) when the source is gone).
        With V(false), only the cluster.
    type: bool
    default: true
  instance_count:
    description:
      - How many instances a restored cluster gets when its source is gone (the first is the writer).
    type: int
    default: 1
  instance_class:
    description:
      - The DB instance class of the restored instance(s). Default - the source's (each member's). Required for a
        cluster whose source is gone (unless O(instances=false)).
    type: str
  subnet_group:
    description:
      - The DB subnet group of the restore. Default - the source's, when it still exists.
    type: str
  security_groups:
    description:
      - The VPC security group ids of the restore. Default - the source's, when it still exists.
    type: list
    elements: str
  parameter_group:
    description:
      - The DB cluster parameter group (cluster) or DB parameter group (instance). Default - the source's, when it
        still exists and is not an AWS default group.
    type: str
  tags:
    description:
      - Tags to add to the restore (and a cluster's instances), beside the source's tags.
    type: dict
    default: {}
  wait:
    description:
      - Wait until the restored instance(s) are C(available). The module always waits for a restored cluster
        before creating its instances.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait for each of the cluster and the instances, in seconds.
    type: int
    default: 3600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - moto (the sandbox) restores at once, takes an automated snapshot of every instance it creates (Aurora members
    included, which AWS does not; O(kind=instance) refuses those snapshots by engine), and deletes an instance's
    automated snapshots with it, as AWS does unless backups are retained.
seealso:
  - module: firebreak.runbooks.rds_cluster_pitr
  - module: firebreak.runbooks.rds_instance_pitr
"""

EXAMPLES = r"""
- name: Restore the orders cluster from its latest snapshot into orders-db-snap
  firebreak.runbooks.rds_snapshot_restore:
    source: orders-db
    target: orders-db-snap
    incident_id: INC-2026-0042
  register: restore

- name: Restore the reports instance from a given manual snapshot; the instance is gone, so name its network
  firebreak.runbooks.rds_snapshot_restore:
    kind: instance
    snapshot: reports-db-before-migration
    target: reports-db-snap
    subnet_group: reports-subnets
    security_groups: [sg-0123456789abcdef0]
    incident_id: INC-2026-0042
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "restored orders-db-snap from snapshot rds:orders-db-2026-11-24-03-10 (taken 2026-11-24T03:10:00Z)"
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: recovery}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation:
  description: The AWS API call that failed.
  returned: on its failure
  type: str
  sample: RestoreDBClusterFromSnapshot
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
actions:
  description: What the run did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: ["restore cluster orders-db-snap from snapshot rds:orders-db-2026-11-24-03-10",
           "create instance orders-db-snap-1 (writer)"]
snapshot:
  description: The snapshot restored (C(id), C(arn), C(type), C(source), C(created) ISO 8601 UTC, C(engine),
    C(engine_version), C(chosen) - C(latest) or C(given)).
  returned: when a snapshot was found
  type: dict
  sample: {"id": "rds:orders-db-2026-11-24-03-10", "type": "automated", "source": "orders-db",
           "created": "2026-11-24T03:10:00Z", "engine": "aurora-postgresql", "chosen": "latest"}
data_loss_window:
  description: What the restore loses - C(snapshot_time), C(now), C(seconds) between them and a C(text) for the report.
  returned: when a snapshot was found
  type: dict
  sample: {"snapshot_time": "2026-11-24T03:10:00Z", "now": "2026-11-24T13:40:00Z", "seconds": 37800,
           "text": "writes after 2026-11-24T03:10:00Z (10h 30m 00s before now) are not in the restore"}
source:
  description: The source (C(id), C(exists), C(arn), C(engine)).
  returned: when known
  type: dict
  sample: {"id": "orders-db", "exists": true, "arn": "arn:aws:rds:us-east-1:123456789012:cluster:orders-db",
           "engine": "aurora-postgresql"}
target:
  description: The restore (C(id), C(arn), C(status)).
  returned: always
  type: dict
  sample: {"id": "orders-db-snap", "arn": "arn:aws:rds:us-east-1:123456789012:cluster:orders-db-snap",
           "status": "available"}
copied:
  description:
    - The settings of the restore (C(subnet_group), C(security_groups), C(parameter_group); for an instance also
      C(option_group), C(multi_az), C(instance_class)) and C(how) each was chosen (C(given), C(source) or
      C(snapshot default)).
  returned: when the restore was planned
  type: dict
tags:
  description: The tags the restore carries (or would carry).
  returned: when the restore was planned
  type: dict
  sample: {"firebreak:restored-from": "orders-db", "firebreak:restored-from-snapshot": "rds:orders-db-2026-11-24-03-10"}
instances:
  description:
    - A restored cluster's instances, writer first, with C(id), C(source), C(writer), C(instance_class),
      C(availability_zone), C(promotion_tier), C(parameter_group) and C(action) (C(created), C(existing) or, in
      check mode, C(create)).
  returned: always
  type: list
  elements: dict
endpoints:
  description: The restore's endpoints - a cluster's C(writer), C(reader), C(port) and each instance's address; an
    instance's C(address) and C(port).
  returned: always
  type: dict
  sample: {"writer": "orders-db-snap.cluster-abc.us-east-1.rds.amazonaws.com", "port": 5432}
gate_kind:
  description: The gate policy's step kind for this step (C(data_restore)); scenarios pass it to C(incident_gate).
  returned: always
  type: str
  sample: data_restore
before:
  description: What existed before the step (C(target_exists), C(target_instances)).
  returned: always
  type: dict
after:
  description: The restore read back after the step (C(id), C(status), C(members), C(instances)); in check mode, the
    plan.
  returned: always
  type: dict
incident_id:
  description: The incident this step acted for, when given.
  returned: when O(incident_id) is set
  type: str
  sample: INC-2026-0042
diff:
  description: The target and its instances before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import rds as rdsu
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    aws_client,
    iso_utc,
    run_aws_step,
    utc_now,
)

ARGUMENT_SPEC = dict(
    kind=dict(type="str", choices=["cluster", "instance"], default="cluster"),
    source=dict(type="str"),
    snapshot=dict(type="str"),
    snapshot_type=dict(type="str", choices=["any", "automated", "manual"], default="any"),
    target=dict(type="str", required=True),
    instances=dict(type="bool", default=True),
    instance_count=dict(type="int", default=1),
    instance_class=dict(type="str"),
    subnet_group=dict(type="str"),
    security_groups=dict(type="list", elements="str"),
    parameter_group=dict(type="str"),
    tags=dict(type="dict", default={}),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=3600),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)

STEP = "rds_snapshot_restore"
GATE_KIND = "data_restore"


def _source_plan(target_id: str, count: int, instance_class: str) -> list:
    """The instances of a restored cluster whose source is gone: ``count`` of ``instance_class``, the first the
    writer."""
    room = len(f"-{count}")
    return [
        {
            "id": rdsu.derived_identifier(f"{target_id}-{index}", "target", target_id, room),
            "source": None,
            "writer": index == 1,
            "instance_class": instance_class,
            "availability_zone": None,
            "promotion_tier": None,
            "parameter_group": None,
        }
        for index in range(1, count + 1)
    ]


def validate(p) -> dict:
    """The checked input: identifiers folded, options that cannot work refused before any call."""
    kind = p["kind"]
    source_id = rdsu.validate_identifier(p["source"], "source") if p["source"] else None
    target_id = rdsu.validate_identifier(p["target"], "target")
    snapshot_id = str(p["snapshot"] or "").strip() or None
    if source_id is None and snapshot_id is None:
        raise rdsu.RDSInputError("give source (its latest snapshot is restored) or snapshot (the one to restore)")
    if source_id == target_id:
        raise rdsu.RDSInputError(
            f"target {target_id!r} must differ from the source: the restore goes into a NEW {kind}"
        )
    if p["wait_timeout"] < 0:
        raise rdsu.RDSInputError(f"wait_timeout must be >= 0, got {p['wait_timeout']}")
    if not 1 <= p["instance_count"] <= 16:
        raise rdsu.RDSInputError(f"instance_count must be from 1 to 16, got {p['instance_count']}")
    klass = rdsu.validate_instance_class(p["instance_class"]) if p["instance_class"] else None
    groups = [str(g).strip() for g in p["security_groups"] or [] if str(g).strip()]
    return {
        "kind": kind,
        "source": source_id,
        "target": target_id,
        "snapshot": snapshot_id,
        "class": klass,
        "groups": groups,
    }


class Restore:
    def __init__(self, module, state, kind):
        self.module, self.p, self.state, self.kind = module, module.params, state, kind
        self.caller = Caller(self.p["retry_budget"])
        self.rds = aws_client(module, "rds")

    def read(self, ident):
        if self.kind == "cluster":
            return rdsu.describe_cluster(self.caller, self.rds, ident, missing_ok=True)
        return rdsu.describe_instance(self.caller, self.rds, ident, missing_ok=True)

    def identity(self, found, ident):
        if found is None:
            return {"id": ident, "arn": None, "status": None}
        if self.kind == "cluster":
            return {"id": found["DBClusterIdentifier"], "arn": found.get("DBClusterArn"), "status": found.get("Status")}
        return {
            "id": found["DBInstanceIdentifier"],
            "arn": found.get("DBInstanceArn"),
            "status": found.get("DBInstanceStatus"),
        }

    def endpoints(self, found, instances):
        if self.kind == "instance":
            return rdsu.endpoints_of(instance=found)
        out = rdsu.endpoints_of(cluster=found)
        out["instances"] = {i: rdsu.endpoints_of(instance=inst).get("address") for i, inst in sorted(instances.items())}
        return out

    def after_of(self, found, instances):
        if self.kind == "instance":
            return {
                "id": found["DBInstanceIdentifier"],
                "status": found.get("DBInstanceStatus"),
                "instance_class": found.get("DBInstanceClass"),
            }
        return {
            "id": found["DBClusterIdentifier"],
            "status": found.get("Status"),
            "members": sorted(rdsu.cluster_members(found)),
            "instances": {i: inst.get("DBInstanceStatus") for i, inst in sorted(instances.items())},
        }


def pick_snapshot(r: Restore, v: dict, source_id):
    """The snapshot to restore and its source identifier: the given one, or the latest of the source."""
    p = r.p
    if v["snapshot"]:
        snap = rdsu.describe_snapshot(r.caller, r.rds, v["kind"], v["snapshot"])
        if source_id and snap["source"] and snap["source"] != source_id:
            raise rdsu.RDSInputError(
                f"snapshot {v['snapshot']!r} is a snapshot of {snap['source']!r}, not of source {source_id!r}"
            )
        if snap["status"] != "available":
            raise rdsu.RDSInputError(f"snapshot {snap['id']!r} is {snap['status']}, not available: cannot restore it")
        return dict(snap, chosen="given"), source_id or snap["source"]
    found = rdsu.list_snapshots(r.caller, r.rds, v["kind"], source_id)
    return dict(rdsu.choose_snapshot(found, source_id, p["snapshot_type"]), chosen="latest"), source_id


def snapshot_view(snap: dict) -> dict:
    return dict(snap, created=iso_utc(snap["created"]))


def run(module, state: dict) -> dict:
    p = module.params
    v = validate(p)
    kind, target_id, incident = v["kind"], v["target"], p["incident_id"]
    now = utc_now()
    r = Restore(module, state, kind)
    actions: list = []
    result = {
        "changed": False,
        "actions": actions,
        "instances": [],
        "endpoints": {},
        "gate_kind": GATE_KIND,
        "target": {"id": target_id, "arn": None, "status": None},
        "before": {"target_exists": False, "target_instances": []},
        "after": {},
    }
    if incident:
        result["incident_id"] = incident
    state["result"] = result

    snap, source_id = pick_snapshot(r, v, v["source"])
    if source_id is None:
        raise rdsu.RDSInputError(f"snapshot {snap['id']!r} does not name its source: give source")
    if source_id == target_id:
        raise rdsu.RDSInputError(
            f"target {target_id!r} must differ from the source: the restore goes into a NEW {kind}"
        )
    if kind == "instance" and str(snap["engine"] or "").startswith(rdsu.CLUSTER_ENGINES):
        raise rdsu.RDSInputError(
            f"snapshot {snap['id']!r} is of {snap['engine']} instance {source_id!r}, a cluster member: restore its "
            "cluster (kind=cluster)"
        )
    source = r.read(source_id)
    if kind == "instance" and source is not None and source.get("DBClusterIdentifier"):
        raise rdsu.RDSInputError(
            f"DB instance {source_id!r} is a member of DB cluster {source['DBClusterIdentifier']!r}: restore the "
            "cluster (kind=cluster)"
        )
    source_arn = (source or {}).get("DBClusterArn" if kind == "cluster" else "DBInstanceArn")
    result["source"] = {"id": source_id, "exists": source is not None, "arn": source_arn, "engine": snap["engine"]}

    target = r.read(target_id)
    if target is not None:
        tags_now = rdsu.tag_dict(target.get("TagList"))
        used = rdsu.check_snapshot_target(kind, target_id, tags_now, source_id, incident, v["snapshot"])
        if used != snap["id"]:  # our earlier restore of an older "latest" snapshot: report that one
            try:
                snap = dict(rdsu.describe_snapshot(r.caller, r.rds, kind, used), chosen="latest")
            except rdsu.RDSInputError:
                taken = tags_now.get(rdsu.TAG_RESTORED_TO_TIME)
                snap = dict(snap, id=used, arn=None, type=None, created=rdsu.as_utc(taken) if taken else None)
    result["snapshot"] = snapshot_view(snap)
    if snap["created"] is not None:
        result["data_loss_window"] = rdsu.data_loss_window(snap["created"], now)

    # The restore's settings and instances: the source's where it exists, else what was given.
    given = {
        "subnet_group": p["subnet_group"],
        "security_groups": v["groups"],
        "parameter_group": p["parameter_group"],
        "instance_class": v["class"],
    }
    settings = rdsu.restored_settings(source, kind, given)
    plan, existing = [], {}
    if kind == "cluster" and p["instances"]:
        if source is not None:
            plan = rdsu.cluster_instance_plan(source, rdsu.cluster_instances(r.caller, r.rds, source), target_id)
            for item in plan:
                item["instance_class"] = v["class"] or item["instance_class"]
        elif v["class"]:
            plan = _source_plan(target_id, p["instance_count"], v["class"])
        else:
            raise rdsu.RDSInputError(
                f"DB cluster {source_id!r} no longer exists, so its instance classes are unknown: give instance_class "
                "(and instance_count) for the restored cluster's instances"
            )
        existing = rdsu.cluster_instances(r.caller, r.rds, target) if target is not None else {}
    missing = [item for item in plan if item["id"] not in existing]
    clashes = rdsu.instance_id_clashes(r.caller, r.rds, [item["id"] for item in missing])
    if clashes:
        raise rdsu.RDSInputError(
            f"DB instance identifier(s) {', '.join(clashes)} already exist outside {target_id!r}: "
            "choose another target identifier"
        )

    source_tags = rdsu.tag_dict((source or {}).get("TagList"))
    source_tags.pop(rdsu.TAG_RESTORED_FROM_SNAPSHOT, None)
    label = iso_utc(snap["created"]) if snap["created"] else "unknown"
    tags = rdsu.restore_tags(source_tags, source_id, label, incident, STEP, p["tags"])
    tags[rdsu.TAG_RESTORED_FROM_SNAPSHOT] = snap["id"]
    result.update(copied=settings, tags=tags)
    result["before"] = {"target_exists": target is not None, "target_instances": sorted(existing)}
    if target is None:
        actions.append(f"restore {kind} {target_id} from snapshot {snap['id']}")
    for item in missing:
        actions.append(f"create instance {item['id']}{' (writer)' if item['writer'] else ''}")
    result["changed"] = bool(actions)
    if module._diff:
        result["diff"] = {
            "before": {kind: target_id if target is not None else None, "instances": sorted(existing)},
            "after": {kind: target_id, "instances": sorted({*existing, *(i["id"] for i in plan)})},
        }
    loss = result.get("data_loss_window", {}).get("text", "")

    if module.check_mode:
        result["instances"] = [dict(i, action="existing" if i["id"] in existing else "create") for i in plan]
        result["target"] = r.identity(target, target_id)
        result["after"] = {"id": target_id, "status": r.identity(target, target_id)["status"] or "planned"}
        if kind == "cluster":
            result["after"].update(members=sorted(i["id"] for i in plan), instances={})
        result["endpoints"] = r.endpoints(target, existing) if target is not None else {}
        verb = "would" if result["changed"] else "no change:"
        result["msg"] = f"check mode: {verb} {'; '.join(actions) or 'the restore is complete'}"
        if result["changed"] and loss:
            result["msg"] += f" - {loss}"
        return result

    created = []
    if kind == "cluster":
        if target is None:
            params = dict(
                DBClusterIdentifier=target_id,
                SnapshotIdentifier=snap["id"],
                Engine=snap["engine"],
                Tags=rdsu.tag_list(tags),
            )
            if settings["subnet_group"]:
                params["DBSubnetGroupName"] = settings["subnet_group"]
            if settings["security_groups"]:
                params["VpcSecurityGroupIds"] = settings["security_groups"]
            if not rdsu.is_default_group(settings["parameter_group"]):
                params["DBClusterParameterGroupName"] = settings["parameter_group"]
            r.caller(
                r.rds, "restore_db_cluster_from_snapshot", f"DB cluster {target_id!r} from {snap['id']!r}", **params
            )
            state["acted"] = True
        final = rdsu.wait_cluster_available(
            r.caller, r.rds, target_id, p["wait_timeout"], f"the restored DB cluster {target_id!r} to be available"
        )
        have = rdsu.tag_dict(final.get("TagList"))
        lacking = {k: val for k, val in tags.items() if have.get(k) != val}
        if lacking and target is None:
            rdsu.add_tags(r.caller, r.rds, final["DBClusterArn"], lacking)
        instance_tags = {k: val for k, val in tags.items() if k != rdsu.TAG_RESTORED_TO_TIME}
        created = rdsu.create_cluster_instances(
            r.caller, r.rds, target_id, snap["engine"], missing, instance_tags, p["wait_timeout"], state
        )
        if p["wait"] and plan:
            rdsu.wait_cluster_instances(r.caller, r.rds, target_id, [i["id"] for i in plan], p["wait_timeout"])
        final = rdsu.describe_cluster(r.caller, r.rds, target_id)
        instances = rdsu.cluster_instances(r.caller, r.rds, final)
    else:
        if target is None:
            params = dict(
                DBInstanceIdentifier=target_id,
                DBSnapshotIdentifier=snap["id"],
                Tags=rdsu.tag_list(tags),
            )
            if settings.get("instance_class"):
                params["DBInstanceClass"] = settings["instance_class"]
            if source is not None:
                params["MultiAZ"] = bool(settings["multi_az"])
                if not settings["multi_az"] and source.get("AvailabilityZone"):
                    params["AvailabilityZone"] = source["AvailabilityZone"]
            if settings["subnet_group"]:
                params["DBSubnetGroupName"] = settings["subnet_group"]
            if settings["security_groups"]:
                params["VpcSecurityGroupIds"] = settings["security_groups"]
            if not rdsu.is_default_group(settings["parameter_group"]):
                params["DBParameterGroupName"] = settings["parameter_group"]
            if not rdsu.is_default_group(settings.get("option_group")):
                params["OptionGroupName"] = settings["option_group"]
            r.caller(
                r.rds,
                "restore_db_instance_from_db_snapshot",
                f"DB instance {target_id!r} from {snap['id']!r}",
                **params,
            )
            state["acted"] = True
        if p["wait"]:
            final = rdsu.wait_instance_available(
                r.caller, r.rds, target_id, p["wait_timeout"], f"the restored DB instance {target_id!r} to be available"
            )
        else:
            final = rdsu.describe_instance(r.caller, r.rds, target_id)
        have = rdsu.tag_dict(final.get("TagList"))
        lacking = {k: val for k, val in tags.items() if have.get(k) != val}
        if lacking and target is None:
            rdsu.add_tags(r.caller, r.rds, final["DBInstanceArn"], lacking)
        instances = {}
    result["instances"] = [dict(i, action="created" if i["id"] in created else "existing") for i in plan]
    result["target"] = r.identity(final, target_id)
    result["after"] = r.after_of(final, instances)
    result["endpoints"] = r.endpoints(final, instances)
    taken = f"taken {result['snapshot']['created']}" if result["snapshot"]["created"] else "time unknown"
    if target is None:
        result["msg"] = f"restored {target_id} from snapshot {snap['id']} ({taken})"
    elif created:
        result["msg"] = f"finished {target_id} (restored from snapshot {snap['id']}, {taken})"
    else:
        result["msg"] = f"no change: {target_id} is our complete restore from snapshot {snap['id']} ({taken})"
    if created:
        result["msg"] += f"; created {', '.join(created)}"
    if result["changed"] and loss:
        result["msg"] += f"; {loss}"
    return result


def main():
    run_aws_step(rdsu.with_state(run), "recovery", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
