#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_cluster_failover
short_description: Fail an Aurora, Neptune or DocumentDB cluster over to a reader and wait until it is the writer
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "fail the database cluster over" of an incident in one call. It reads the cluster and its
    instances, decides the target, calls C(FailoverDBCluster), waits until the target really is the writer
    (C(IsClusterWriter) in C(DescribeDBClusters), not just the API's answer) and the cluster is C(available), and
    returns the old and the new writer.
  - Works for every engine served by the RDS cluster API with C(FailoverDBCluster) (aurora-mysql,
    aurora-postgresql, neptune, docdb).
  - Without O(target), the best reader is chosen - C(available), then the same instance class as the writer,
    then the highest promotion tier (tier 0 is the highest priority, 15 the lowest), then an Availability Zone
    other than the writer's, then the identifier. Every candidate is returned with its rank in RV(candidates).
  - An asked O(target) that already is the writer is no change (not an error). With O(failover_from), nothing is
    done once that instance is no longer the writer, so a re-run after a failover (by this step or by RDS itself)
    changes nothing.
  - A target that is not a member of the cluster, or not C(available), fails with a message naming it before
    anything is changed. So does an unknown cluster, or a cluster that is not C(available) (already failing over,
    for example).
  - In check mode the module reads the cluster and reports the failover it would make (with a diff) but makes no
    call that changes anything.
options:
  cluster:
    description:
      - Identifier of the DB cluster.
      - RDS identifiers are case-insensitive and stored in lower case, so the module folds O(cluster), O(target)
        and O(failover_from) to lower case and reports them so.
    type: str
    required: true
  target:
    description:
      - Identifier of the reader instance to promote. It must be a member of the cluster and C(available).
      - When omitted, the best reader (see the description).
    type: str
  failover_from:
    description:
      - The instance believed to be the (failing) writer. When set and it is no longer the writer, nothing is done.
    type: str
  wait:
    description:
      - Wait until O(target) is the writer (C(IsClusterWriter)) and the cluster is C(available). Also waits when
        nothing needed to change.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout the module fails and reports the cluster's current writer.
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - After a failover the cluster is tagged C(firebreak:incident) and C(firebreak:step) when O(incident_id) is given.
  - moto (the sandbox) moves the writer at once and never shows a failing-over state; in AWS the writer changes
    after about 30 to 60 seconds, during which connections drop.
seealso:
  - module: firebreak.runbooks.rds_instance_failover
"""

EXAMPLES = r"""
- name: Fail the orders cluster over to its best reader, once (safe to re-run)
  firebreak.runbooks.rds_cluster_failover:
    cluster: orders-db
    failover_from: orders-db-1
  register: failover

- name: Fail the Neptune cluster over to a given reader
  firebreak.runbooks.rds_cluster_failover:
    cluster: graph-db
    target: graph-db-2

- name: Show the new writer
  ansible.builtin.debug:
    msg: "{{ failover.old_writer }} -> {{ failover.new_writer }}"
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "failed orders-db over from orders-db-1 to orders-db-2 (requested); orders-db-2 is the writer"
cluster:
  description: The cluster acted on.
  returned: always
  type: dict
  contains:
    id:
      description: Cluster identifier.
      returned: always
      type: str
      sample: orders-db
    arn:
      description: Cluster ARN.
      returned: always
      type: str
      sample: arn:aws:rds:us-east-1:123456789012:cluster:orders-db
    engine:
      description: Engine (aurora-mysql, aurora-postgresql, neptune, docdb).
      returned: always
      type: str
      sample: aurora-postgresql
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
old_writer:
  description: The writer before the step.
  returned: always
  type: str
  sample: orders-db-1
new_writer:
  description: The writer after the step (in check mode, the predicted writer).
  returned: always
  type: str
  sample: orders-db-2
target:
  description: The instance chosen (or asked) to be the writer.
  returned: always
  type: str
  sample: orders-db-2
candidates:
  description:
    - The readers ranked best first, with C(id), C(status), C(instance_class), C(availability_zone),
      C(promotion_tier), C(same_class), C(other_az) and C(eligible).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "orders-db-2", "status": "available", "instance_class": "db.r6g.large",
            "availability_zone": "us-east-1b", "promotion_tier": 1, "same_class": true, "other_az": true,
            "eligible": true}]
before:
  description: The cluster before the step.
  returned: always
  type: dict
  contains:
    writer:
      description: The writer instance.
      returned: always
      type: str
      sample: orders-db-1
    readers:
      description: The reader instances, sorted.
      returned: always
      type: list
      elements: str
      sample: ["orders-db-2"]
    status:
      description: Cluster status.
      returned: always
      type: str
      sample: available
    members:
      description:
        - Each member with C(id), C(writer), C(promotion_tier), C(instance_class), C(availability_zone) and
          C(status).
      returned: always
      type: list
      elements: dict
after:
  description: The cluster after the step (after waiting when O(wait=true)); in check mode, the predicted state.
  returned: always
  type: dict
  contains:
    writer:
      description: The writer instance.
      returned: always
      type: str
      sample: orders-db-2
    readers:
      description: The reader instances, sorted.
      returned: always
      type: list
      elements: str
      sample: ["orders-db-1"]
    status:
      description: Cluster status.
      returned: always
      type: str
      sample: available
    members:
      description:
        - Each member with C(id), C(writer), C(promotion_tier), C(instance_class), C(availability_zone) and
          C(status).
      returned: always
      type: list
      elements: dict
incident_id:
  description: The incident this step acted for, when given.
  returned: when O(incident_id) is set
  type: str
  sample: INC-2026-0042
diff:
  description: The writer before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"writer": "orders-db-1"}, "after": {"writer": "orders-db-2"}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import rds as rdsu
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    aws_client,
    incident_tags,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    cluster=dict(type="str", required=True),
    target=dict(type="str"),
    failover_from=dict(type="str"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)


def run(module, state: dict) -> dict:
    params = module.params
    # RDS identifiers are case-insensitive and answered in lower case: compare them folded.
    cluster_id = rdsu.validate_identifier(params["cluster"], "cluster")
    if params["wait_timeout"] < 0:
        raise rdsu.RDSInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    for option in ("target", "failover_from"):
        if params[option] is not None and not params[option].strip():
            raise rdsu.RDSInputError(f"{option} must not be empty")
    target = rdsu.validate_identifier(params["target"], "target") if params["target"] else None
    failover_from = (
        rdsu.validate_identifier(params["failover_from"], "failover_from") if params["failover_from"] else None
    )

    caller = Caller(params["retry_budget"])
    rds = aws_client(module, "rds")
    cluster = rdsu.describe_cluster(caller, rds, cluster_id)
    instances = rdsu.cluster_instances(caller, rds, cluster)
    before = rdsu.member_state(cluster, instances)
    decision = rdsu.choose_failover_target(cluster, instances, target=target, failover_from=failover_from)
    chosen = decision["target"]

    result = {
        "changed": decision["changed"],
        "cluster": {"id": cluster_id, "arn": cluster.get("DBClusterArn"), "engine": cluster.get("Engine")},
        "old_writer": before["writer"],
        "new_writer": before["writer"],
        "target": chosen,
        "candidates": decision["candidates"],
        "before": before,
    }
    if params["incident_id"]:
        result["incident_id"] = params["incident_id"]
    state["result"] = result
    if module._diff:
        result["diff"] = {"before": {"writer": before["writer"]}, "after": {"writer": chosen}}

    if module.check_mode:
        predicted = dict(before)
        if decision["changed"]:
            predicted = {
                **before,
                "writer": chosen,
                "readers": sorted({*before["readers"], before["writer"]} - {chosen}),
                "members": [dict(m, writer=m["id"] == chosen) for m in before["members"]],
            }
        result["after"] = predicted
        result["new_writer"] = predicted["writer"]
        verb = "would fail over" if decision["changed"] else "no change to"
        result["msg"] = f"check mode: {verb} {cluster_id}: {decision['reason']}"
        return result

    if decision["changed"]:
        caller(
            rds,
            "failover_db_cluster",
            f"DB cluster {cluster_id!r} (target {chosen!r})",
            DBClusterIdentifier=cluster_id,
            TargetDBInstanceIdentifier=chosen,
        )
        state["acted"] = True

    outcome = decision["reason"]
    if params["wait"]:

        def done(current):
            writer = rdsu.cluster_writer(current)
            if writer != chosen:
                return False, f"the writer is {writer}, not yet {chosen} (cluster {current.get('Status')})"
            if current.get("Status") != "available":
                return False, f"{chosen} is the writer but the cluster is {current.get('Status')}"
            return True, "done"

        cluster = rdsu.wait_for(
            lambda: rdsu.describe_cluster(caller, rds, cluster_id),
            done,
            params["wait_timeout"],
            f"{chosen} to be the writer of DB cluster {cluster_id!r}",
        )
        outcome += f"; {chosen} is the writer"
    else:
        cluster = rdsu.describe_cluster(caller, rds, cluster_id)
        outcome += "; not waiting for the writer to change"
    instances = rdsu.cluster_instances(caller, rds, cluster)
    after = rdsu.member_state(cluster, instances)
    result["after"] = after
    result["new_writer"] = after["writer"]

    if decision["changed"] and params["incident_id"]:
        rdsu.add_tags(caller, rds, cluster["DBClusterArn"], incident_tags(params["incident_id"], "aurora_failover"))
    if decision["changed"]:
        result["msg"] = f"failed {cluster_id} over {outcome}"
    else:
        result["msg"] = f"no change to {cluster_id}: {outcome}"
    return result


def main():
    run_aws_step(rdsu.with_state(run), "mitigation", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
