#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_cluster_pitr
short_description: Restore an Aurora, Neptune or DocumentDB cluster to a point in time into a new cluster with instances
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "restore from point-in-time backup" of a data loss or corruption incident in one call. It
    reads the source cluster and its instances, validates the restore time, restores into a NEW cluster
    O(target) with C(RestoreDBClusterToPointInTime), creates the instances the restore API does not create (one
    per source member, same class, Availability Zone and promotion tier, the writer first), waits until
    everything is C(available) and returns the new endpoints.
  - The source is never modified (no call writes to it), except by the optional cut-over, which needs
    O(cutover=true) and O(cutover_confirm) set to the source identifier.
  - The restore time is checked against the source's C(EarliestRestorableTime) and C(LatestRestorableTime) and
    against now (moto accepts any time; AWS rejects some only after the call). An empty O(restore_time) (or
    C(latest)) restores to the latest restorable time.
  - Copied from the source - the DB subnet group, the VPC security groups, the cluster parameter group (unless it
    is an AWS default group, which the restore gets anyway), the KMS key (encrypted sources) and the tags, plus
    O(tags), the incident tags and the markers C(firebreak:restored-from) (the source identifier) and
    C(firebreak:restored-to-time) (ISO 8601 UTC, or C(latest)).
  - An existing O(target) is refused, naming it, unless it is our own earlier restore - it carries
    C(firebreak:restored-from) naming the source and, when O(incident_id) is given, C(firebreak:incident)
    naming the incident (and, for an explicit time, the same C(firebreak:restored-to-time)). Then the run
    finishes the job - a half-created cluster gets its missing instances; a complete one is no change.
  - With O(cutover=true) the source is renamed C(<source>-replaced-<incident>) and the restored cluster takes
    the source's identifier (so its endpoint names). A re-run after a cut-over, or after a half-done one,
    finishes it or reports no change.
  - In check mode the module reads and validates everything and reports the plan, with a diff, but makes no
    call that changes anything.
options:
  source:
    description:
      - Identifier of the DB cluster to restore from. Never modified (except by the cut-over).
      - RDS identifiers are case-insensitive and stored in lower case, so the module folds O(source), O(target) and
        O(cutover_confirm) to lower case and reports them so.
    type: str
    required: true
  target:
    description:
      - Identifier of the NEW cluster. Its instances are named C(<target>-1) (the writer) to C(<target>-N).
      - Every identifier derived from it is checked before anything is changed, so it may have at most 61
        characters (60 for ten source members or more).
    type: str
    required: true
  restore_time:
    description:
      - The time to restore to, ISO 8601 (C(2026-11-24T09:30:00Z), C(2026-11-24T10:30:00+01:00); without an
        offset it is UTC) or epoch seconds.
      - Empty or C(latest) means the latest restorable time.
    type: str
    default: ""
  instances:
    description:
      - Create the instances of the restored cluster (one per source member). With V(false), only the cluster.
    type: bool
    default: true
  tags:
    description:
      - Tags to add to the restored cluster and its instances, beside the source's tags.
    type: dict
    default: {}
  cutover:
    description:
      - After the restore, rename the source to C(<source>-replaced-<incident>) and the restored cluster to the
        source's identifier. Needs O(cutover_confirm) and O(incident_id).
    type: bool
    default: false
  cutover_confirm:
    description:
      - The source identifier, typed again to confirm the cut-over.
    type: str
  wait:
    description:
      - Wait until the instances are C(available). The module always waits for the restored cluster before
        creating its instances, and for the renames of a cut-over.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait for each of the cluster, the instances and each rename, in seconds.
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
  - moto (the sandbox) accepts any restore time, creates the restored cluster at once, and loses the members of a
    renamed cluster (its instances stay with the old identifier), so a cut-over in the sandbox shows the right
    identifiers and tags but wrong members.
seealso:
  - module: firebreak.runbooks.rds_instance_pitr
"""

EXAMPLES = r"""
- name: Restore the orders cluster to 09:30 UTC into orders-db-restored
  firebreak.runbooks.rds_cluster_pitr:
    source: orders-db
    target: orders-db-restored
    restore_time: "2026-11-24T10:30:00+01:00"
    incident_id: INC-2026-0042
  register: restore

- name: Restore to the latest restorable time and cut over (rename the source away)
  firebreak.runbooks.rds_cluster_pitr:
    source: orders-db
    target: orders-db-restored
    cutover: true
    cutover_confirm: orders-db
    incident_id: INC-2026-0042
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "restored orders-db to 2026-11-24T09:30:00Z into orders-db-restored; created orders-db-restored-1"
actions:
  description: What the run did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: ["restore cluster orders-db-restored", "create instance orders-db-restored-1 (writer)"]
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: recovery}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
source:
  description: The source cluster (C(id), C(arn), C(engine)).
  returned: always
  type: dict
  sample: {"id": "orders-db", "arn": "arn:aws:rds:us-east-1:123456789012:cluster:orders-db",
           "engine": "aurora-postgresql"}
target:
  description: The restored cluster (C(id), C(arn), C(status)); after a cut-over C(id) is the source's identifier.
  returned: always
  type: dict
  sample: {"id": "orders-db-restored", "arn": "arn:aws:rds:us-east-1:123456789012:cluster:orders-db-restored",
           "status": "available"}
restore_time:
  description: The time restored to (ISO 8601 UTC), or null for the latest restorable time.
  returned: always
  type: str
  sample: "2026-11-24T09:30:00Z"
use_latest:
  description: Whether the restore was to the latest restorable time.
  returned: always
  type: bool
  sample: false
restore_window:
  description: The source's restorable window (C(earliest), C(latest), ISO 8601 UTC) and C(how) it was known.
  returned: when the source was read
  type: dict
  contains:
    earliest:
      description: The earliest restorable time (ISO 8601 UTC).
      returned: always
      type: str
      sample: "2026-11-17T09:00:00Z"
    latest:
      description: The latest restorable time (ISO 8601 UTC).
      returned: always
      type: str
      sample: "2026-11-24T12:55:00Z"
    how:
      description: C(reported) by AWS, or how the earliest time was derived.
      returned: always
      type: str
      sample: reported
copied:
  description: What was copied from the source (C(subnet_group), C(security_groups), C(parameter_group), C(kms_key_id)).
  returned: when the source was read
  type: dict
  sample: {"subnet_group": "orders-db-subnets", "security_groups": ["sg-0123"], "parameter_group": null,
           "kms_key_id": null}
tags:
  description: The tags the restored cluster carries (or would carry).
  returned: when the source was read
  type: dict
  sample: {"firebreak:restored-from": "orders-db", "firebreak:restored-to-time": "2026-11-24T09:30:00Z"}
instances:
  description:
    - The restored cluster's instances, writer first, with C(id), C(source), C(writer), C(instance_class),
      C(availability_zone), C(promotion_tier), C(parameter_group) and C(action) (C(created), C(existing) or, in
      check mode, C(create)).
  returned: always
  type: list
  elements: dict
endpoints:
  description: The restored cluster's C(writer) and C(reader) endpoints, C(port), and each instance's address.
  returned: always
  type: dict
  sample: {"writer": "orders-db-restored.cluster-abc.us-east-1.rds.amazonaws.com",
           "reader": "orders-db-restored.cluster-ro-abc.us-east-1.rds.amazonaws.com", "port": 5432,
           "instances": {"orders-db-restored-1": "orders-db-restored-1.abc.us-east-1.rds.amazonaws.com"}}
cutover:
  description: The cut-over (C(source), C(replaced), C(restored), C(done)), when asked.
  returned: when O(cutover=true) or a cut-over was found done
  type: dict
  sample: {"source": "orders-db", "replaced": "orders-db-replaced-inc-42", "restored": "orders-db-restored",
           "done": true}
before:
  description: What existed before the step (C(target_exists), C(target_instances)).
  returned: always
  type: dict
after:
  description: The restored cluster after the step (C(id), C(status), C(members)); in check mode, the plan.
  returned: always
  type: dict
incident_id:
  description: The incident this step acted for, when given.
  returned: when O(incident_id) is set
  type: str
  sample: INC-2026-0042
diff:
  description: The restored cluster and its instances before and after, when run with C(--diff).
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
    source=dict(type="str", required=True),
    target=dict(type="str", required=True),
    restore_time=dict(type="str", default=""),
    instances=dict(type="bool", default=True),
    tags=dict(type="dict", default={}),
    cutover=dict(type="bool", default=False),
    cutover_confirm=dict(type="str"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=3600),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)

STEP = "pitr_restore"


class Restore:
    def __init__(self, module, state):
        self.module = module
        self.p = module.params
        self.state = state
        self.caller = Caller(self.p["retry_budget"])
        self.rds = aws_client(module, "rds")
        self.actions = []

    # -- reads -------------------------------------------------------------------------------------
    def cluster(self, ident, missing_ok=True):
        return rdsu.describe_cluster(self.caller, self.rds, ident, missing_ok=missing_ok)

    def wait_cluster(self, ident, what):
        return rdsu.wait_cluster_available(self.caller, self.rds, ident, self.p["wait_timeout"], what)

    def rename(self, old, new):
        self.caller(
            self.rds,
            "modify_db_cluster",
            f"DB cluster {old!r} (rename to {new!r})",
            DBClusterIdentifier=old,
            NewDBClusterIdentifier=new,
            ApplyImmediately=True,
        )
        self.state["acted"] = True
        return self.wait_cluster(new, f"DB cluster {old!r} to be renamed {new!r}")

    def endpoints(self, cluster, instances):
        out = rdsu.endpoints_of(cluster=cluster)
        out["instances"] = {i: rdsu.endpoints_of(instance=inst).get("address") for i, inst in sorted(instances.items())}
        return out

    def after_of(self, cluster, instances):
        return {
            "id": cluster.get("DBClusterIdentifier"),
            "status": cluster.get("Status"),
            "members": sorted(rdsu.cluster_members(cluster)),
            "instances": {i: inst.get("DBInstanceStatus") for i, inst in sorted(instances.items())},
        }


def run(module, state: dict) -> dict:
    p = module.params
    source_id = rdsu.validate_identifier(p["source"], "source")
    target_id = rdsu.validate_identifier(p["target"], "target")
    if target_id == source_id:
        raise rdsu.RDSInputError(
            f"target {target_id!r} must differ from the source: the restore goes into a NEW cluster"
        )
    if p["wait_timeout"] < 0:
        raise rdsu.RDSInputError(f"wait_timeout must be >= 0, got {p['wait_timeout']}")
    incident = p["incident_id"]
    cut = rdsu.cutover_plan(source_id, target_id, incident, p["cutover_confirm"]) if p["cutover"] else None
    now = utc_now()
    r = Restore(module, state)
    result = {"changed": False, "actions": r.actions, "instances": [], "endpoints": {}, "use_latest": False}
    result["restore_time"] = None
    if incident:
        result["incident_id"] = incident
    state["result"] = result

    source = r.cluster(source_id)
    # A cut-over already made: the source identifier is our restore (re-run: no change).
    if source is not None:
        source_tags = rdsu.tag_dict(source.get("TagList"))
        done_before, _why = rdsu.restore_ownership(source_tags, source_id, incident)
        if done_before:
            instances = rdsu.cluster_instances(r.caller, r.rds, source)
            replaced = rdsu.replaced_identifier(source_id, incident) if incident else None
            result.update(
                source={"id": source_id, "arn": source.get("DBClusterArn"), "engine": source.get("Engine")},
                target={"id": source_id, "arn": source.get("DBClusterArn"), "status": source.get("Status")},
                before={"target_exists": True, "target_instances": sorted(instances)},
                after=r.after_of(source, instances),
                endpoints=r.endpoints(source, instances),
                cutover={"source": source_id, "replaced": replaced, "restored": target_id, "done": True},
                tags=source_tags,
                msg=f"no change: {source_id} already is our restore of {source_id} (cut over)",
            )
            result["instances"] = [{"id": i, "action": "existing"} for i in sorted(instances)]
            return result
    elif cut is not None and r.cluster(cut["replaced"]) is not None:
        # A cut-over stopped half-way: the source was renamed, the restore not yet.
        restored = r.cluster(target_id)
        if restored is None:
            raise rdsu.RDSInputError(
                f"DB cluster {source_id!r} not found: it was renamed {cut['replaced']!r} but the restore "
                f"{target_id!r} does not exist; rename {cut['replaced']!r} back to {source_id!r} by hand and re-run"
            )
        rdsu.check_existing_target(
            "cluster", target_id, rdsu.tag_dict(restored.get("TagList")), source_id, incident, "latest"
        )
        result["before"] = {"target_exists": True, "target_instances": []}
        r.actions.append(f"rename cluster {target_id} to {source_id}")
        if module.check_mode:
            result.update(
                changed=True, msg=f"check mode: would rename {target_id} to {source_id} (finish the cut-over)"
            )
            result["after"] = {"id": source_id}
            return result
        final = r.rename(target_id, source_id)
        instances = rdsu.cluster_instances(r.caller, r.rds, final)
        result.update(
            changed=True,
            source={"id": source_id, "arn": None, "engine": final.get("Engine")},
            target={"id": source_id, "arn": final.get("DBClusterArn"), "status": final.get("Status")},
            after=r.after_of(final, instances),
            endpoints=r.endpoints(final, instances),
            cutover=dict(cut, done=True),
            msg=f"finished the cut-over: {cut['replaced']} is the old {source_id}, {source_id} is the restore",
        )
        return result
    if source is None:
        raise rdsu.RDSInputError(f"DB cluster {source_id!r} not found")

    # Validate everything before the first change.
    earliest, latest, how = rdsu.cluster_restore_window(source)
    result["restore_window"] = {"earliest": iso_utc(earliest), "latest": iso_utc(latest), "how": how}
    decision = rdsu.validate_restore_time(p["restore_time"], earliest, latest, now, f"DB cluster {source_id!r}")
    label = rdsu.restore_label(decision)
    result["use_latest"] = decision["use_latest"]
    result["restore_time"] = iso_utc(decision["restore_time"])
    result["source"] = {"id": source_id, "arn": source.get("DBClusterArn"), "engine": source.get("Engine")}

    target = r.cluster(target_id)
    if target is not None:
        rdsu.check_existing_target(
            "cluster", target_id, rdsu.tag_dict(target.get("TagList")), source_id, incident, label
        )
        if target.get("Engine") != source.get("Engine"):
            raise rdsu.RDSInputError(
                f"target {target_id!r} is a {target.get('Engine')} cluster, not {source.get('Engine')}"
            )
    if cut is not None and r.cluster(cut["replaced"]) is not None:
        raise rdsu.RDSInputError(f"cut-over: DB cluster {cut['replaced']!r} already exists; choose another incident id")
    source_instances = rdsu.cluster_instances(r.caller, r.rds, source)
    plan = rdsu.cluster_instance_plan(source, source_instances, target_id) if p["instances"] else []
    existing = rdsu.cluster_instances(r.caller, r.rds, target) if target is not None else {}
    missing = [item for item in plan if item["id"] not in existing]
    clashes = rdsu.instance_id_clashes(r.caller, r.rds, [item["id"] for item in missing])
    if clashes:
        raise rdsu.RDSInputError(
            f"DB instance identifier(s) {', '.join(clashes)} already exist outside {target_id!r}: "
            "choose another target identifier"
        )

    settings = rdsu.copied_settings(source, "cluster")
    tags = rdsu.restore_tags(rdsu.tag_dict(source.get("TagList")), source_id, label, incident, STEP, p["tags"])
    result.update(copied=settings, tags=tags)
    result["before"] = {"target_exists": target is not None, "target_instances": sorted(existing)}
    if target is None:
        r.actions.append(f"restore cluster {target_id} from {source_id} to {label}")
    for item in missing:
        r.actions.append(f"create instance {item['id']}{' (writer)' if item['writer'] else ''}")
    if cut is not None:
        r.actions += [f"rename cluster {source_id} to {cut['replaced']}", f"rename cluster {target_id} to {source_id}"]
        result["cutover"] = dict(cut, done=False)
    result["changed"] = bool(r.actions)
    if module._diff:
        result["diff"] = {
            "before": {"cluster": target_id if target is not None else None, "instances": sorted(existing)},
            "after": {"cluster": target_id, "instances": sorted({*existing, *(i["id"] for i in plan)})},
        }

    if module.check_mode:
        result["instances"] = [dict(i, action="existing" if i["id"] in existing else "create") for i in plan]
        result["target"] = {
            "id": target_id,
            "arn": (target or {}).get("DBClusterArn"),
            "status": (target or {}).get("Status"),
        }
        result["after"] = {
            "id": target_id,
            "status": "planned",
            "members": sorted(i["id"] for i in plan),
            "instances": {},
        }
        result["endpoints"] = r.endpoints(target, existing) if target is not None else {}
        verb = "would" if result["changed"] else "no change:"
        result["msg"] = f"check mode: {verb} {'; '.join(r.actions) or 'the restore is complete'}"
        return result

    # Act: restore, wait for the cluster, tag, create the instances (writer first), wait, cut over.
    if target is None:
        params = dict(DBClusterIdentifier=target_id, SourceDBClusterIdentifier=source_id, Tags=rdsu.tag_list(tags))
        if decision["use_latest"]:
            params["UseLatestRestorableTime"] = True
        else:
            params["RestoreToTime"] = decision["restore_time"]
        if settings["subnet_group"]:
            params["DBSubnetGroupName"] = settings["subnet_group"]
        if settings["security_groups"]:
            params["VpcSecurityGroupIds"] = settings["security_groups"]
        if settings["kms_key_id"]:
            params["KmsKeyId"] = settings["kms_key_id"]
        if not rdsu.is_default_group(settings["parameter_group"]):
            params["DBClusterParameterGroupName"] = settings["parameter_group"]
        r.caller(r.rds, "restore_db_cluster_to_point_in_time", f"DB cluster {target_id!r} from {source_id!r}", **params)
        state["acted"] = True
    target = r.wait_cluster(target_id, f"the restored DB cluster {target_id!r} to be available")
    have = rdsu.tag_dict(target.get("TagList"))
    lacking = {k: v for k, v in tags.items() if have.get(k) != v}
    if lacking:
        rdsu.add_tags(r.caller, r.rds, target["DBClusterArn"], lacking)

    instance_tags = {k: v for k, v in tags.items() if k != rdsu.TAG_RESTORED_TO_TIME}
    created = rdsu.create_cluster_instances(
        r.caller, r.rds, target_id, source["Engine"], missing, instance_tags, p["wait_timeout"], state
    )
    plan_ids = [i["id"] for i in plan]
    if p["wait"] and plan_ids:
        rdsu.wait_cluster_instances(r.caller, r.rds, target_id, plan_ids, p["wait_timeout"])
    final = r.cluster(target_id, missing_ok=False)
    instances = rdsu.cluster_instances(r.caller, r.rds, final)
    result["instances"] = [dict(i, action="created" if i["id"] in created else "existing") for i in plan]

    if cut is not None:
        r.rename(source_id, cut["replaced"])
        final = r.rename(target_id, source_id)
        instances = rdsu.cluster_instances(r.caller, r.rds, final)
        result["cutover"] = dict(cut, done=True)
    result["target"] = {
        "id": final["DBClusterIdentifier"],
        "arn": final.get("DBClusterArn"),
        "status": final.get("Status"),
    }
    result["after"] = r.after_of(final, instances)
    result["endpoints"] = r.endpoints(final, instances)
    if r.actions or created:
        what = (
            f"restored {source_id} to {label} into {target_id}"
            if "restore" in " ".join(r.actions)
            else f"finished {target_id}"
        )
        extra = f"; created {', '.join(created)}" if created else ""
        if cut is not None:
            extra += f"; cut over ({source_id} is now the restore, the old one is {cut['replaced']})"
        result["msg"] = what + extra
    else:
        result["msg"] = f"no change: {target_id} is our complete restore of {source_id}"
    return result


def main():
    run_aws_step(rdsu.with_state(run), "recovery", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
