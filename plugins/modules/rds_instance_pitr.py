#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_instance_pitr
short_description: Restore an RDS DB instance to a point in time into a new instance
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "restore from point-in-time backup" of a data loss or corruption incident for an RDS DB
    instance in one call. It reads the source instance and its restorable window, validates the restore time,
    restores into a NEW instance O(target) with C(RestoreDBInstanceToPointInTime), waits until it is C(available)
    and returns its endpoint.
  - The source is never modified, except by the optional cut-over (O(cutover=true) and O(cutover_confirm) set to
    the source identifier).
  - The restore time is checked against the restorable window and now. The window's end is the source's
    C(LatestRestorableTime); its start is C(RestoreWindow.EarliestTime) of C(DescribeDBInstanceAutomatedBackups),
    or, where that is not reported (moto), the later of the instance's creation and now minus its backup
    retention period (see RV(restore_window.how)). An empty O(restore_time) (or C(latest)) restores to the latest
    restorable time.
  - Copied from the source - the instance class, Multi-AZ (or the Availability Zone of a single-AZ source), the DB
    subnet group, the VPC security groups, the parameter and option groups (unless they are AWS default groups)
    and the tags, plus O(tags), the incident tags and the markers C(firebreak:restored-from) and
    C(firebreak:restored-to-time). The KMS key of an encrypted source is kept by AWS (the restore cannot change it).
  - An existing O(target) is refused, naming it, unless it is our own earlier restore (the same tags as
    M(firebreak.runbooks.rds_cluster_pitr) checks); then the run waits for it and reports no change.
  - With O(cutover=true) the source is renamed C(<source>-replaced-<incident>) and the restored instance takes the
    source's identifier (and so its endpoint name). A re-run after it reports no change; after a half-done
    cut-over it finishes it.
  - In check mode the module reads and validates everything and reports the plan but makes no call that changes
    anything.
options:
  source:
    description:
      - Identifier of the DB instance to restore from. Never modified (except by the cut-over).
      - RDS identifiers are case-insensitive and stored in lower case, so the module folds O(source), O(target) and
        O(cutover_confirm) to lower case and reports them so.
      - An Aurora, Neptune or DocumentDB cluster member is refused; restore its cluster with
        M(firebreak.runbooks.rds_cluster_pitr).
    type: str
    required: true
  target:
    description:
      - Identifier of the NEW instance.
    type: str
    required: true
  restore_time:
    description:
      - The time to restore to, ISO 8601 (C(2026-11-24T09:30:00Z), C(2026-11-24T10:30:00+01:00); without an
        offset it is UTC) or epoch seconds.
      - Empty or C(latest) means the latest restorable time.
    type: str
    default: ""
  tags:
    description:
      - Tags to add to the restored instance, beside the source's tags.
    type: dict
    default: {}
  cutover:
    description:
      - After the restore, rename the source to C(<source>-replaced-<incident>) and the restored instance to the
        source's identifier. Needs O(cutover_confirm) and O(incident_id).
    type: bool
    default: false
  cutover_confirm:
    description:
      - The source identifier, typed again to confirm the cut-over.
    type: str
  wait:
    description:
      - Wait until the restored instance is C(available). The module always waits for the renames of a cut-over.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait for the instance and for each rename, in seconds.
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
  - moto (the sandbox) accepts any restore time and makes the instance available at once; its automated backups
    carry no restore window, so the earliest restorable time is derived there.
seealso:
  - module: firebreak.runbooks.rds_cluster_pitr
"""

EXAMPLES = r"""
- name: Restore the reports database to 14:00 UTC into reports-db-restored
  firebreak.runbooks.rds_instance_pitr:
    source: reports-db
    target: reports-db-restored
    restore_time: "2026-11-24T14:00:00Z"
    incident_id: INC-2026-0042
  register: restore

- name: Show the endpoint to check the data on
  ansible.builtin.debug:
    msg: "{{ restore.endpoints.address }}:{{ restore.endpoints.port }}"
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "restored reports-db to 2026-11-24T14:00:00Z into reports-db-restored"
actions:
  description: What the run did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: ["restore instance reports-db-restored from reports-db to 2026-11-24T14:00:00Z"]
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: recovery}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
source:
  description: The source instance (C(id), C(arn), C(engine)).
  returned: when the source was read
  type: dict
  sample: {"id": "reports-db", "arn": "arn:aws:rds:us-east-1:123456789012:db:reports-db", "engine": "postgres"}
target:
  description: The restored instance (C(id), C(arn), C(status)); after a cut-over C(id) is the source's identifier.
  returned: always
  type: dict
  sample: {"id": "reports-db-restored", "arn": "arn:aws:rds:us-east-1:123456789012:db:reports-db-restored",
           "status": "available"}
restore_time:
  description: The time restored to (ISO 8601 UTC), or null for the latest restorable time.
  returned: always
  type: str
  sample: "2026-11-24T14:00:00Z"
use_latest:
  description: Whether the restore was to the latest restorable time.
  returned: always
  type: bool
  sample: false
restore_window:
  description: The source's restorable window (C(earliest), C(latest), ISO 8601 UTC) and C(how) the start was known.
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
  description:
    - What was copied from the source (C(subnet_group), C(security_groups), C(parameter_group), C(option_group),
      C(multi_az), C(instance_class), C(kms_key_id)).
  returned: when the source was read
  type: dict
tags:
  description: The tags the restored instance carries (or would carry).
  returned: when the source was read
  type: dict
  sample: {"firebreak:restored-from": "reports-db", "firebreak:restored-to-time": "2026-11-24T14:00:00Z"}
endpoints:
  description: The restored instance's C(address) and C(port).
  returned: always
  type: dict
  sample: {"address": "reports-db-restored.abc.us-east-1.rds.amazonaws.com", "port": 5432}
cutover:
  description: The cut-over (C(source), C(replaced), C(restored), C(done)), when asked or found done.
  returned: when O(cutover=true) or a cut-over was found done
  type: dict
  sample: {"source": "reports-db", "replaced": "reports-db-replaced-inc-42", "restored": "reports-db-restored",
           "done": true}
before:
  description: What existed before the step (C(target_exists)).
  returned: always
  type: dict
after:
  description: The restored instance after the step (C(id), C(status)); in check mode, the plan.
  returned: always
  type: dict
incident_id:
  description: The incident this step acted for, when given.
  returned: when O(incident_id) is set
  type: str
  sample: INC-2026-0042
diff:
  description: The target instance before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import rds as rdsu
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    iso_utc,
    run_aws_step,
    utc_now,
)

ARGUMENT_SPEC = dict(
    source=dict(type="str", required=True),
    target=dict(type="str", required=True),
    restore_time=dict(type="str", default=""),
    tags=dict(type="dict", default={}),
    cutover=dict(type="bool", default=False),
    cutover_confirm=dict(type="str"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=3600),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)

STEP = "pitr_restore"


def automated_backup(caller, rds, instance: dict) -> dict | None:
    """The active automated backup of the instance (its ``RestoreWindow``), or None."""
    ident = instance["DBInstanceIdentifier"]
    try:
        answer = caller(
            rds, "describe_db_instance_automated_backups", f"DB instance {ident!r}", DBInstanceIdentifier=ident
        )
    except StepAWSError as e:
        if e.code in ("DBInstanceAutomatedBackupNotFound", "DBInstanceAutomatedBackupNotFoundFault"):
            return None
        raise
    for backup in answer.get("DBInstanceAutomatedBackups") or []:
        if backup.get("DbiResourceId") in (None, instance.get("DbiResourceId")) and backup.get("Status") != "retained":
            return backup
    return None


def run(module, state: dict) -> dict:
    p = module.params
    source_id = rdsu.validate_identifier(p["source"], "source")
    target_id = rdsu.validate_identifier(p["target"], "target")
    if target_id == source_id:
        raise rdsu.RDSInputError(
            f"target {target_id!r} must differ from the source: the restore goes into a NEW instance"
        )
    if p["wait_timeout"] < 0:
        raise rdsu.RDSInputError(f"wait_timeout must be >= 0, got {p['wait_timeout']}")
    incident = p["incident_id"]
    cut = rdsu.cutover_plan(source_id, target_id, incident, p["cutover_confirm"]) if p["cutover"] else None
    now = utc_now()
    caller = Caller(p["retry_budget"])
    rds = aws_client(module, "rds")
    actions: list = []
    result = {"changed": False, "actions": actions, "endpoints": {}, "use_latest": False, "restore_time": None}
    if incident:
        result["incident_id"] = incident
    state["result"] = result

    def describe(ident):
        return rdsu.describe_instance(caller, rds, ident, missing_ok=True)

    def wait_available(ident, what):
        def done(found):
            if found is None:
                return False, f"DB instance {ident!r} not found yet"
            return found.get("DBInstanceStatus") == "available", f"status {found.get('DBInstanceStatus')}"

        return rdsu.wait_for(lambda: describe(ident), done, p["wait_timeout"], what)

    def rename(old, new):
        caller(
            rds,
            "modify_db_instance",
            f"DB instance {old!r} (rename to {new!r})",
            DBInstanceIdentifier=old,
            NewDBInstanceIdentifier=new,
            ApplyImmediately=True,
        )
        state["acted"] = True
        return wait_available(new, f"DB instance {old!r} to be renamed {new!r}")

    def identity(found):
        return {
            "id": found["DBInstanceIdentifier"],
            "arn": found.get("DBInstanceArn"),
            "status": found.get("DBInstanceStatus"),
        }

    source = describe(source_id)
    if source is not None:
        ours, _why = rdsu.restore_ownership(rdsu.tag_dict(source.get("TagList")), source_id, incident)
        if ours:  # a cut-over already made: the source identifier is our restore
            replaced = rdsu.replaced_identifier(source_id, incident) if incident else None
            result.update(
                source={"id": source_id, "arn": source.get("DBInstanceArn"), "engine": source.get("Engine")},
                target=identity(source),
                before={"target_exists": True},
                after={"id": source_id, "status": source.get("DBInstanceStatus")},
                endpoints=rdsu.endpoints_of(instance=source),
                cutover={"source": source_id, "replaced": replaced, "restored": target_id, "done": True},
                tags=rdsu.tag_dict(source.get("TagList")),
                msg=f"no change: {source_id} already is our restore of {source_id} (cut over)",
            )
            return result
    elif cut is not None and describe(cut["replaced"]) is not None:
        restored = describe(target_id)
        if restored is None:
            raise rdsu.RDSInputError(
                f"DB instance {source_id!r} not found: it was renamed {cut['replaced']!r} but the restore "
                f"{target_id!r} does not exist; rename {cut['replaced']!r} back to {source_id!r} by hand and re-run"
            )
        rdsu.check_existing_target(
            "instance", target_id, rdsu.tag_dict(restored.get("TagList")), source_id, incident, "latest"
        )
        actions.append(f"rename instance {target_id} to {source_id}")
        result.update(changed=True, before={"target_exists": True}, cutover=dict(cut, done=False))
        if module.check_mode:
            result.update(target=identity(restored), after={"id": source_id, "status": "planned"})
            result["msg"] = f"check mode: would rename {target_id} to {source_id} (finish the cut-over)"
            return result
        final = rename(target_id, source_id)
        result.update(
            target=identity(final),
            after={"id": source_id, "status": final.get("DBInstanceStatus")},
            endpoints=rdsu.endpoints_of(instance=final),
            cutover=dict(cut, done=True),
            msg=f"finished the cut-over: {cut['replaced']} is the old {source_id}, {source_id} is the restore",
        )
        return result
    if source is None:
        raise rdsu.RDSInputError(f"DB instance {source_id!r} not found")
    if source.get("DBClusterIdentifier"):
        raise rdsu.RDSInputError(
            f"DB instance {source_id!r} is a member of DB cluster {source['DBClusterIdentifier']!r}: restore the "
            "cluster (firebreak.runbooks.rds_cluster_pitr)"
        )

    earliest, latest, how = rdsu.instance_restore_window(source, automated_backup(caller, rds, source), now)
    result["restore_window"] = {"earliest": iso_utc(earliest), "latest": iso_utc(latest), "how": how}
    decision = rdsu.validate_restore_time(p["restore_time"], earliest, latest, now, f"DB instance {source_id!r}")
    label = rdsu.restore_label(decision)
    result.update(use_latest=decision["use_latest"], restore_time=iso_utc(decision["restore_time"]))
    result["source"] = {"id": source_id, "arn": source.get("DBInstanceArn"), "engine": source.get("Engine")}

    target = describe(target_id)
    if target is not None:
        rdsu.check_existing_target(
            "instance", target_id, rdsu.tag_dict(target.get("TagList")), source_id, incident, label
        )
    if cut is not None and describe(cut["replaced"]) is not None:
        raise rdsu.RDSInputError(
            f"cut-over: DB instance {cut['replaced']!r} already exists; choose another incident id"
        )
    settings = rdsu.copied_settings(source, "instance")
    settings["kms_key_id"] = source.get("KmsKeyId") if source.get("StorageEncrypted") else None
    tags = rdsu.restore_tags(rdsu.tag_dict(source.get("TagList")), source_id, label, incident, STEP, p["tags"])
    result.update(copied=settings, tags=tags, before={"target_exists": target is not None})
    if target is None:
        actions.append(f"restore instance {target_id} from {source_id} to {label}")
    if cut is not None:
        actions += [f"rename instance {source_id} to {cut['replaced']}", f"rename instance {target_id} to {source_id}"]
        result["cutover"] = dict(cut, done=False)
    result["changed"] = bool(actions)
    if module._diff:
        result["diff"] = {"before": {"instance": target_id if target else None}, "after": {"instance": target_id}}

    if module.check_mode:
        result["target"] = identity(target) if target else {"id": target_id, "arn": None, "status": None}
        result["after"] = {"id": target_id, "status": target.get("DBInstanceStatus") if target else "planned"}
        result["endpoints"] = rdsu.endpoints_of(instance=target) if target else {}
        verb = "would" if result["changed"] else "no change:"
        result["msg"] = f"check mode: {verb} {'; '.join(actions) or 'the restore is complete'}"
        return result

    if target is None:
        params = dict(
            SourceDBInstanceIdentifier=source_id,
            TargetDBInstanceIdentifier=target_id,
            DBInstanceClass=settings["instance_class"],
            MultiAZ=settings["multi_az"],
            Tags=rdsu.tag_list(tags),
        )
        if decision["use_latest"]:
            params["UseLatestRestorableTime"] = True
        else:
            params["RestoreTime"] = decision["restore_time"]
        if not settings["multi_az"] and source.get("AvailabilityZone"):
            params["AvailabilityZone"] = source["AvailabilityZone"]
        if settings["subnet_group"]:
            params["DBSubnetGroupName"] = settings["subnet_group"]
        if settings["security_groups"]:
            params["VpcSecurityGroupIds"] = settings["security_groups"]
        if not rdsu.is_default_group(settings["parameter_group"]):
            params["DBParameterGroupName"] = settings["parameter_group"]
        if not rdsu.is_default_group(settings["option_group"]):
            params["OptionGroupName"] = settings["option_group"]
        caller(rds, "restore_db_instance_to_point_in_time", f"DB instance {target_id!r} from {source_id!r}", **params)
        state["acted"] = True
    if p["wait"] or cut is not None:
        final = wait_available(target_id, f"the restored DB instance {target_id!r} to be available")
    else:
        final = rdsu.describe_instance(caller, rds, target_id)
    have = rdsu.tag_dict(final.get("TagList"))
    lacking = {k: v for k, v in tags.items() if have.get(k) != v}
    if lacking and target is None:
        rdsu.add_tags(caller, rds, final["DBInstanceArn"], lacking)
    if cut is not None:
        rename(source_id, cut["replaced"])
        final = rename(target_id, source_id)
        result["cutover"] = dict(cut, done=True)
    result.update(
        target=identity(final),
        after={"id": final["DBInstanceIdentifier"], "status": final.get("DBInstanceStatus")},
        endpoints=rdsu.endpoints_of(instance=final),
    )
    if target is None:
        result["msg"] = f"restored {source_id} to {label} into {target_id}"
    else:
        result["msg"] = f"no change: {target_id} is our restore of {source_id}"
    if cut is not None:
        result["msg"] += f"; cut over ({source_id} is now the restore, the old one is {cut['replaced']})"
    return result


def main():
    run_aws_step(rdsu.with_state(run), "recovery", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
