#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_instance_failover
short_description: Fail a Multi-AZ RDS DB instance over to its standby (reboot with failover) and wait until available
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "initiate a manual failover" of a Multi-AZ DB instance in one call. It reads the instance,
    refuses what cannot fail over, calls C(RebootDBInstance) with C(ForceFailover), waits until the instance is
    C(available) again and reports the primary Availability Zone before and after.
  - A single-AZ instance (C(MultiAZ) false) is refused with a message naming it, as is an instance that is not
    C(available) or that belongs to a DB cluster (fail a cluster over with M(firebreak.runbooks.rds_cluster_failover)).
  - With O(incident_id), the failover is recorded on the instance (tags C(firebreak:failover-incident) and
    C(firebreak:failover-at)); a re-run for the same incident reports no change instead of failing over a second
    time, unless O(force=true). Without O(incident_id), every run fails over.
  - In check mode the module reads the instance and reports the failover it would make (with a diff) but makes no
    call that changes anything.
options:
  instance:
    description:
      - Identifier of the DB instance.
      - RDS identifiers are case-insensitive and stored in lower case, so the module folds it to lower case.
    type: str
    required: true
  force:
    description:
      - Fail over even when the instance records a failover for the same O(incident_id).
    type: bool
    default: false
  wait:
    description:
      - Wait until the instance is C(available) again after the reboot.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout the module fails and reports the instance's status.
    type: int
    default: 900
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - In AWS the primary and the standby swap Availability Zones (RV(az_swapped)); moto (the sandbox) accepts the
    reboot but never swaps them and never leaves C(available).
seealso:
  - module: firebreak.runbooks.rds_cluster_failover
"""

EXAMPLES = r"""
- name: Fail the reports database over to its standby, once per incident
  firebreak.runbooks.rds_instance_failover:
    instance: reports-db
    incident_id: INC-2026-0042
  register: failover

- name: Show where the primary runs now
  ansible.builtin.debug:
    msg: "{{ failover.before.availability_zone }} -> {{ failover.after.availability_zone }}"
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "failed reports-db over to its standby (RebootDBInstance ForceFailover); available in us-east-1b"
instance:
  description: The instance acted on.
  returned: always
  type: dict
  contains:
    id:
      description: Instance identifier.
      returned: always
      type: str
      sample: reports-db
    arn:
      description: Instance ARN.
      returned: always
      type: str
      sample: arn:aws:rds:us-east-1:123456789012:db:reports-db
    engine:
      description: Engine.
      returned: always
      type: str
      sample: postgres
before:
  description: The instance before the step.
  returned: always
  type: dict
  contains:
    status:
      description: C(DBInstanceStatus).
      returned: always
      type: str
      sample: available
    availability_zone:
      description: The primary's Availability Zone.
      returned: always
      type: str
      sample: us-east-1a
    secondary_availability_zone:
      description: The standby's Availability Zone (AWS reports it for Multi-AZ instances).
      returned: always
      type: str
      sample: us-east-1b
    multi_az:
      description: Whether the instance is Multi-AZ.
      returned: always
      type: bool
      sample: true
after:
  description: The instance after the step (after waiting when O(wait=true)); in check mode, the predicted state.
  returned: always
  type: dict
  contains:
    status:
      description: C(DBInstanceStatus).
      returned: always
      type: str
      sample: available
    availability_zone:
      description: The primary's Availability Zone.
      returned: always
      type: str
      sample: us-east-1b
    secondary_availability_zone:
      description: The standby's Availability Zone.
      returned: always
      type: str
      sample: us-east-1a
    multi_az:
      description: Whether the instance is Multi-AZ.
      returned: always
      type: bool
      sample: true
az_swapped:
  description:
    - Whether the primary's Availability Zone changed (AWS swaps primary and standby; moto never does).
    - In check mode, whether a swap is expected.
  returned: always
  type: bool
  sample: true
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
failover:
  description: The failover recorded on the instance (its tags), if any.
  returned: always
  type: dict
  contains:
    incident:
      description: The incident the failover was made for.
      returned: when a failover is recorded
      type: str
      sample: INC-2026-0042
    at:
      description: When the failover was started (UTC, ISO 8601).
      returned: when a failover is recorded
      type: str
      sample: "2026-11-24T13:20:00Z"
incident_id:
  description: The incident this step acted for, when given.
  returned: when O(incident_id) is set
  type: str
  sample: INC-2026-0042
diff:
  description: The primary Availability Zone before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"availability_zone": "us-east-1a"}, "after": {"availability_zone": "us-east-1b"}}
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
    force=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=900),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)


def state_of(instance: dict) -> dict:
    return {
        "status": instance.get("DBInstanceStatus"),
        "availability_zone": instance.get("AvailabilityZone"),
        "secondary_availability_zone": instance.get("SecondaryAvailabilityZone"),
        "multi_az": bool(instance.get("MultiAZ")),
    }


def refusal(instance: dict) -> str | None:
    """Why this instance cannot be failed over with a reboot (``None`` when it can)."""
    ident = instance.get("DBInstanceIdentifier")
    if instance.get("DBClusterIdentifier"):
        return (
            f"DB instance {ident!r} is a member of DB cluster {instance['DBClusterIdentifier']!r}: fail the cluster "
            "over instead (firebreak.runbooks.aurora_failover)"
        )
    if not instance.get("MultiAZ"):
        return (
            f"DB instance {ident!r} is single-AZ (MultiAZ false): it has no standby to fail over to; "
            "a reboot with failover needs a Multi-AZ instance"
        )
    if instance.get("DBInstanceStatus") != "available":
        return f"DB instance {ident!r} is {instance.get('DBInstanceStatus')}, not available: not failing it over now"
    return None


def run(module, state: dict) -> dict:
    params = module.params
    ident = rdsu.validate_identifier(params["instance"], "instance")  # RDS answers identifiers in lower case
    if params["wait_timeout"] < 0:
        raise rdsu.RDSInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    incident = params["incident_id"]

    caller = Caller(params["retry_budget"])
    rds = aws_client(module, "rds")
    instance = rdsu.describe_instance(caller, rds, ident)
    before = state_of(instance)
    tags = rdsu.tag_dict(instance.get("TagList"))
    recorded = {}
    if tags.get(rdsu.TAG_FAILOVER_INCIDENT):
        recorded = {"incident": tags[rdsu.TAG_FAILOVER_INCIDENT], "at": tags.get(rdsu.TAG_FAILOVER_AT)}

    result = {
        "changed": False,
        "instance": {"id": ident, "arn": instance.get("DBInstanceArn"), "engine": instance.get("Engine")},
        "before": before,
        "after": before,
        "az_swapped": False,
        "failover": recorded,
    }
    if incident:
        result["incident_id"] = incident
    state["result"] = result

    if incident and recorded.get("incident") == str(incident) and not params["force"]:
        result["msg"] = (
            f"no change to {ident}: already failed over for incident {incident} at {recorded.get('at')} "
            "(force=true fails it over again)"
        )
        return result
    why_not = refusal(instance)
    if why_not:
        raise rdsu.RDSInputError(why_not)

    predicted = dict(
        before,
        availability_zone=before["secondary_availability_zone"] or before["availability_zone"],
        secondary_availability_zone=before["availability_zone"] if before["secondary_availability_zone"] else None,
    )
    result["changed"] = True
    if module._diff:
        result["diff"] = {
            "before": {"availability_zone": before["availability_zone"]},
            "after": {"availability_zone": predicted["availability_zone"]},
        }
    if module.check_mode:
        result["after"] = predicted
        result["az_swapped"] = predicted["availability_zone"] != before["availability_zone"]
        result["msg"] = f"check mode: would fail {ident} over to its standby (RebootDBInstance ForceFailover)"
        return result

    at = iso_utc(utc_now())
    caller(rds, "reboot_db_instance", f"DB instance {ident!r}", DBInstanceIdentifier=ident, ForceFailover=True)
    state["acted"] = True
    if incident:
        marker = {rdsu.TAG_FAILOVER_INCIDENT: str(incident), rdsu.TAG_FAILOVER_AT: at}
        try:
            rdsu.add_tags(
                caller, rds, instance["DBInstanceArn"], {**incident_tags(incident, "rds_instance_failover"), **marker}
            )
            result["failover"] = {"incident": str(incident), "at": at}
        except StepAWSError as e:
            module.warn(f"could not record the failover on the instance ({e}); a re-run would fail over again")

    outcome = "RebootDBInstance ForceFailover"
    if params["wait"]:

        def done(current):
            status = current.get("DBInstanceStatus")
            return status == "available", f"status {status}"

        instance = rdsu.wait_for(
            lambda: rdsu.describe_instance(caller, rds, ident),
            done,
            params["wait_timeout"],
            f"DB instance {ident!r} to be available after the failover",
        )
        outcome += f"; available in {instance.get('AvailabilityZone')}"
    else:
        instance = rdsu.describe_instance(caller, rds, ident)
        outcome += "; not waiting for it to be available"
    result["after"] = state_of(instance)
    result["az_swapped"] = result["after"]["availability_zone"] != before["availability_zone"]
    result["msg"] = f"failed {ident} over to its standby ({outcome})"
    return result


def main():
    run_aws_step(rdsu.with_state(run), "mitigation", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
