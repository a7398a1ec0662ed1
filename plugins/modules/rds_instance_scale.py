#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_instance_scale
short_description: Change an RDS or Aurora DB instance's class (recording the old class) or restore the recorded class
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "scale up the database instance class" of a performance degradation incident in one call.
    With O(state=scaled) it reads the instance, checks O(instance_class) against the engine's orderable classes,
    changes the class with C(ModifyDBInstance) and C(ApplyImmediately), waits until the instance is C(available)
    with the new class and reads it back.
  - B(The change is disruptive, so scenarios gate it) (gate step kind RV(gate_kind), C(failover)) - a single-AZ
    instance reboots, a Multi-AZ instance fails over to its standby, an Aurora writer restarts (writes stop until
    it is back). RV(disruption) says which applies to this instance.
  - Aurora, Neptune and DocumentDB - give the identifier of the cluster's instance (scaling a cluster's writer
    means changing that instance). The module says whether it is the writer or a reader.
  - O(instance_class) is refused, naming it and the classes the API lists, when
    C(DescribeOrderableDBInstanceOptions) lists classes for the engine and version but not this one. When the
    API lists no class at all for the engine version (the sandbox's moto knows few engines), the module cannot
    tell and goes on; RV(class_check) says so.
  - The class before the change is recorded so that it can be put back, in the result (RV(scale)) and on the
    instance as the tags C(firebreak:scaled-from-class), C(firebreak:scaled-to-class) and C(firebreak:scaled-at)
    (plus the incident tags). Scaling again keeps the first recorded class.
  - With O(state=restored) it puts back the recorded class and removes the record. A class someone changed
    meanwhile is left alone and reported in RV(left_alone).
  - Idempotent. An instance already at the class is no change; a change already pending (an earlier run that
    did not wait) is waited for, not made again.
  - In check mode the module reads the instance and reports the change it would make (RV(after) is then a
    prediction, RV(predicted) true), with a diff, making no call that changes anything.
options:
  instance:
    description:
      - Identifier of the DB instance (for Aurora, Neptune or DocumentDB, the cluster's instance to change).
      - RDS identifiers are case-insensitive and stored in lower case, so the module folds it to lower case.
    type: str
    required: true
  state:
    description:
      - C(scaled) changes the class to O(instance_class); C(restored) puts back the class recorded by the scale.
    type: str
    choices: [scaled, restored]
    default: scaled
  instance_class:
    description:
      - The DB instance class to change to, such as C(db.r6g.2xlarge). Required with O(state=scaled); ignored with
        O(state=restored).
    type: str
  wait:
    description:
      - Wait until the instance is C(available) with the new class.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout the module fails and reports the instance's status and class.
    type: int
    default: 1800
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - moto (the sandbox) changes the class at once (no C(modifying) status, no reboot, no failover), accepts any
    class, and lists orderable classes only for some Aurora PostgreSQL and Neptune versions.
seealso:
  - module: firebreak.runbooks.rds_instance_failover
  - module: firebreak.runbooks.rds_cluster_failover
"""

EXAMPLES = r"""
- name: Scale the reports database up (it fails over to its standby)
  firebreak.runbooks.rds_instance_scale:
    instance: reports-db
    instance_class: db.m6g.2xlarge
    incident_id: INC-2026-0042
  register: scale

- name: Put the recorded class back once the incident is over
  firebreak.runbooks.rds_instance_scale:
    instance: reports-db
    state: restored
    incident_id: INC-2026-0042
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "scaled reports-db: class db.t3.medium -> db.t3.large (restore to db.t3.medium with state=restored)"
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation:
  description: The AWS API call that failed.
  returned: on its failure
  type: str
  sample: ModifyDBInstance
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
instance:
  description: The DB instance (C(id), C(arn), C(engine), C(engine_version), C(cluster), C(role) - C(writer),
    C(reader) or C(instance)).
  returned: always
  type: dict
  sample: {"id": "orders-db-1", "arn": "arn:aws:rds:us-east-1:123456789012:db:orders-db-1",
           "engine": "aurora-postgresql", "engine_version": "15.4", "cluster": "orders-db", "role": "writer"}
before:
  description: The instance before the step (C(instance_class), C(pending_instance_class), C(status), C(multi_az),
    C(availability_zone)).
  returned: always
  type: dict
  sample: {"instance_class": "db.t3.medium", "pending_instance_class": null, "status": "available", "multi_az": true,
           "availability_zone": "us-east-1a"}
after:
  description: The instance read back after the step (after waiting when O(wait=true)), the same keys as RV(before); in
    check mode, the prediction.
  returned: always
  type: dict
scale:
  description: The class change recorded on the instance (C(from), C(to), C(at), C(recorded)).
  returned: always
  type: dict
  sample: {"from": "db.t3.medium", "to": "db.t3.large", "at": "2026-11-24T13:20:00Z", "recorded": true}
left_alone:
  description: With O(state=restored), the class found changed by someone else since the scale, and so not touched.
  returned: always
  type: dict
  sample: {}
class_check:
  description:
    - Whether C(DescribeOrderableDBInstanceOptions) lists the class for the engine and version - C(verdict) C(valid),
      C(unknown) (the API lists no class for it) or C(not asked) (no class change) - and C(known_classes) when refused.
  returned: always
  type: dict
  sample: {"verdict": "valid", "known_classes": []}
disruption:
  description: What the immediate class change does to the database (a reboot, a failover, a writer restart).
  returned: always
  type: str
  sample: "reports-db is Multi-AZ: RDS changes the standby, fails over to it (connections drop, typically 60-120 s),
    then changes the old primary"
gate_kind:
  description: The gate policy's step kind for this step (C(failover) - it reboots or fails over); scenarios pass it to
    C(incident_gate).
  returned: always
  type: str
  sample: failover
incident_id:
  description: The incident this step acted for, when given.
  returned: when O(incident_id) is set
  type: str
  sample: INC-2026-0042
diff:
  description: The instance class before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"instance_class": "db.t3.medium"}, "after": {"instance_class": "db.t3.large"}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import rds as rdsu
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    incident_tags,
    iso_utc,
    run_aws_step,
    utc_now,
)

ARGUMENT_SPEC = dict(
    instance=dict(type="str", required=True),
    state=dict(type="str", choices=["scaled", "restored"], default="scaled"),
    instance_class=dict(type="str"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=1800),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)

STEP = "rds_instance_scale"
GATE_KIND = "failover"


def run(module, state: dict) -> dict:
    p = module.params
    ident = rdsu.validate_identifier(p["instance"], "instance")
    scaling = p["state"] == "scaled"
    requested = None
    if scaling:
        if not p["instance_class"]:
            raise rdsu.RDSInputError("instance_class is required with state=scaled (the class to change to)")
        requested = rdsu.validate_instance_class(p["instance_class"])
    if p["wait_timeout"] < 0:
        raise rdsu.RDSInputError(f"wait_timeout must be >= 0, got {p['wait_timeout']}")
    incident = p["incident_id"]

    caller = Caller(p["retry_budget"])
    rds = aws_client(module, "rds")
    instance = rdsu.describe_instance(caller, rds, ident)
    cluster = None
    if instance.get("DBClusterIdentifier"):
        cluster = rdsu.describe_cluster(caller, rds, instance["DBClusterIdentifier"], missing_ok=True)
    role = "instance"
    if cluster is not None:
        role = "writer" if rdsu.cluster_writer(cluster) == ident else "reader"
    before = rdsu.class_state(instance)
    record = rdsu.read_class_scale(rdsu.tag_dict(instance.get("TagList")))
    result = {
        "changed": False,
        "instance": {
            "id": ident,
            "arn": instance.get("DBInstanceArn"),
            "engine": instance.get("Engine"),
            "engine_version": instance.get("EngineVersion"),
            "cluster": instance.get("DBClusterIdentifier"),
            "role": role,
        },
        "before": before,
        "after": before,
        "scale": dict(record or {}, recorded=bool(record)),
        "left_alone": {},
        "class_check": {"verdict": "not asked", "known_classes": []},
        "disruption": rdsu.scale_disruption(instance, cluster),
        "gate_kind": GATE_KIND,
    }
    if incident:
        result["incident_id"] = incident
    state["result"] = result

    current, pending = before["instance_class"], before["pending_instance_class"]
    if scaling:
        decision = rdsu.decide_class_scale(current, requested, record, pending)
    else:
        decision = rdsu.decide_class_restore(current, record, pending)
        result["left_alone"] = decision["left_alone"]
    target = decision["to"]
    if decision["action"] == "modify":
        if before["status"] != "available":
            raise rdsu.RDSInputError(
                f"DB instance {ident!r} is {before['status']}, not available: not changing its class now"
            )
        check = rdsu.orderable_classes(caller, rds, instance, target)
        result["class_check"] = check
        if check["verdict"] == "invalid":
            shown = ", ".join(check["known_classes"][:40])
            raise rdsu.RDSInputError(
                f"instance_class {target!r} is not offered for {instance.get('Engine')} "
                f"{instance.get('EngineVersion')} (DescribeOrderableDBInstanceOptions lists: {shown})"
            )
    verb = "scaled" if scaling else "restored"
    if module._diff:
        result["diff"] = {"before": {"instance_class": current}, "after": {"instance_class": target}}

    if module.check_mode:
        result["changed"] = decision["changed"]
        result["after"] = dict(before, instance_class=target, pending_instance_class=None)
        if decision["action"] == "modify":
            result["after"]["status"] = "available"
        would = f"would have {verb}" if decision["changed"] else "no change to"
        result["msg"] = f"check mode: {would} {ident}: {decision['reason']}"
        if decision["action"] == "modify":
            result["msg"] += f" - disruptive: {result['disruption']}"
        return result

    if decision["action"] == "modify":
        caller(
            rds,
            "modify_db_instance",
            f"DB instance {ident!r} (class {current} -> {target})",
            DBInstanceIdentifier=ident,
            DBInstanceClass=target,
            ApplyImmediately=True,
        )
        state["acted"] = True
        result["changed"] = True
    try:
        if scaling and decision["action"] == "modify":
            scale = {"from": decision["from"], "to": target, "at": iso_utc(utc_now())}
            result["scale"] = dict(scale, recorded=False)
            tags = dict(rdsu.class_scale_tags(scale["from"], scale["to"], scale["at"]), **incident_tags(incident, STEP))
            rdsu.add_tags(caller, rds, instance["DBInstanceArn"], tags)
            result["scale"]["recorded"] = True
        elif not scaling and decision["action"] in ("modify", "forget"):
            caller(
                rds,
                "remove_tags_from_resource",
                instance["DBInstanceArn"],
                ResourceName=instance["DBInstanceArn"],
                TagKeys=list(rdsu.CLASS_SCALE_TAGS),
            )
            state["acted"] = True
            result["changed"] = True
            result["scale"] = dict(record, recorded=False)
    except StepAWSError as e:
        module.warn(f"the class is changing to {target} but the record on the instance could not be updated ({e})")

    outcome = decision["reason"]
    if p["wait"] and decision["action"] in ("modify", "wait"):

        def has_class(found):
            now = rdsu.class_state(found)
            if now["instance_class"] != target or now["pending_instance_class"]:
                return False, f"class {now['instance_class']} (pending {now['pending_instance_class']})"
            return True, "done"

        instance = rdsu.wait_instance_available(
            caller, rds, ident, p["wait_timeout"], f"DB instance {ident!r} to be available as {target}", has_class
        )
        outcome += "; available"
    else:
        instance = rdsu.describe_instance(caller, rds, ident)
        if decision["action"] in ("modify", "wait"):
            outcome += "; not waiting for it"
    result["after"] = rdsu.class_state(instance)
    done = verb if result["changed"] else "no change to"
    result["msg"] = f"{done} {ident}: {outcome}"
    return result


def main():
    run_aws_step(rdsu.with_state(run), "mitigation", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
