#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: autoscaling_capacity
short_description: Set an Auto Scaling group's capacity (recording the old sizes) or restore the recorded sizes
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the "scale up worker capacity" response of a worker incident (GPU workers on EC2 in an Auto Scaling
    group) in one call. With O(state=scaled) it sets the group's desired capacity to O(desired_capacity) (and its
    minimum and maximum when given), reads the group back and, with O(wait=true), waits until as many instances are
    InService and Healthy as the group desires.
  - A desired capacity above the maximum is refused, naming both, unless O(raise_max=true) (the maximum is then
    raised to it) or O(max_size) is given. Below the minimum it is refused unless O(min_size) is given.
  - The sizes before the change are recorded in RV(containment) (one entry, step C(asg_capacity), with C(changed)
    C(capacity.from) and C(capacity.to)), which the incident timeline keeps. The step is a mitigation, not a
    containment; it records an entry so that the release finds it, like a containment's.
  - With O(state=restored) it puts back the sizes recorded before the incident's first scale of the group, from
    the entries given in O(containments) (the role reads them from the incident's verified timeline), or sets
    O(restore_to) when given. If the group no longer has the sizes the incident's last scale set (someone changed
    it meanwhile), it is left alone and reported in RV(left_alone), and the entries stay unreleased, unless
    O(force=true). A group deleted meanwhile is reported in RV(gone) and its entries released.
  - Idempotent. Scaling to the sizes the group has, or a second restore, reports no change and records nothing.
  - In check mode the module reads the group and reports the change (with a diff), making no call that changes
    anything.
options:
  name:
    description:
      - Name of the Auto Scaling group.
    type: str
    required: true
  state:
    description:
      - V(scaled) sets the sizes given; V(restored) puts back the recorded sizes (or O(restore_to)).
    type: str
    choices: [scaled, restored]
    default: scaled
  desired_capacity:
    description:
      - The desired capacity to set. Required with O(state=scaled).
    type: int
  min_size:
    description:
      - The minimum size to set (needed to scale in below the current minimum).
    type: int
  max_size:
    description:
      - The maximum size to set.
    type: int
  raise_max:
    description:
      - Raise the maximum to O(desired_capacity) when it is above it, instead of refusing.
    type: bool
    default: false
  containments:
    description:
      - With O(state=restored), the incident's unreleased C(asg_capacity) containment entries
        (C(lookup('firebreak.runbooks.containments', 'asg_capacity'))); entries of other groups are ignored.
    type: list
    elements: dict
    default: []
  restore_to:
    description:
      - With O(state=restored), the sizes to set instead of the recorded ones (C(min_size), C(desired_capacity),
        C(max_size); missing ones are kept). The entries of O(containments) for the group are released.
    type: dict
  force:
    description:
      - With O(state=restored), put back the recorded sizes even if someone changed the group meanwhile.
    type: bool
    default: false
  wait:
    description:
      - Wait until as many instances are InService and Healthy as the group desires.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout the module fails reporting the group as read last.
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
  - moto (the sandbox) launches or terminates instances at once and reports them InService; real Auto Scaling
    takes minutes, and may fail to launch GPU instances for lack of capacity (the wait then times out and says so).
  - Scaling policies and scheduled actions may change the desired capacity afterwards; raise O(min_size) too if
    the capacity must hold.
seealso:
  - module: amazon.aws.autoscaling_group
  - module: firebreak.runbooks.ec2_instance_reboot
"""

EXAMPLES = r"""
- name: Scale the GPU workers to 6, raising the maximum if needed, and wait until they are InService
  firebreak.runbooks.autoscaling_capacity:
    name: gpu-worker
    desired_capacity: 6
    raise_max: true
    incident_id: INC-042
  register: capacity

- name: After the incident, put back the sizes recorded in the timeline
  firebreak.runbooks.autoscaling_capacity:
    name: gpu-worker
    state: restored
    containments: "{{ lookup('firebreak.runbooks.containments', 'asg_capacity', wantlist=True) }}"
    incident_id: INC-042
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "scaled gpu-worker: min/desired/max 1/3/6 -> 1/8/8; 8 InService"
group:
  description: The group acted on (C(name), C(arn)).
  returned: always
  type: dict
  sample: {"name": "gpu-worker", "arn": "arn:aws:autoscaling:...:autoScalingGroupName/gpu-worker"}
before:
  description: The group before the step (C(min_size), C(desired_capacity), C(max_size), C(in_service), C(instances)).
  returned: always
  type: dict
  sample: {"min_size": 1, "desired_capacity": 3, "max_size": 6, "in_service": 3, "instances": []}
after:
  description: The group read back after the step (after waiting with O(wait=true)); in check mode the prediction.
  returned: always
  type: dict
  sample: {"min_size": 1, "desired_capacity": 8, "max_size": 8, "in_service": 8, "instances": []}
changes:
  description: Each size changed, with its C(old) and C(new) value.
  returned: always
  type: dict
  sample: {"desired_capacity": {"old": 3, "new": 8}, "max_size": {"old": 6, "new": 8}}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment:
  description:
    - With O(state=scaled) and a change, one entry recording the sizes before and after (C(changed.capacity.from),
      C(changed.capacity.to)) for the restore; else empty.
  returned: always
  type: list
  elements: dict
  sample: [{"step": "asg_capacity", "resource": "arn:aws:autoscaling:...", "changed": {"capacity": {}}}]
release:
  description: With O(state=restored), the entries released (C(releases) lists their ids); empty otherwise.
  returned: always
  type: list
  elements: dict
  sample: []
left_alone:
  description: With O(state=restored), the group's sizes when someone changed them since the scale (C(current),
    C(scaled_to), C(recorded)); empty otherwise.
  returned: always
  type: dict
  sample: {}
gone:
  description: With O(state=restored), the group when it no longer exists (its entries are released).
  returned: always
  type: list
  elements: str
  sample: []
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
incident_id: {description: The incident this step acted for., returned: always, type: str, sample: INC-042}
diff:
  description: The sizes before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"desired_capacity": 3}, "after": {"desired_capacity": 8}}
aws_operation:
  description: The AWS API call that failed.
  returned: on its failure
  type: str
  sample: UpdateAutoScalingGroup
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
resource: {description: What the failed call was about., returned: on an AWS error, type: str}
attempts: {description: How many attempts the failed call made., returned: on an AWS error, type: int}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import autoscaling as asg
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    containment_entry,
    release_entry,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["scaled", "restored"], default="scaled"),
    desired_capacity=dict(type="int"),
    min_size=dict(type="int"),
    max_size=dict(type="int"),
    raise_max=dict(type="bool", default=False),
    containments=dict(type="list", elements="dict", default=[]),
    restore_to=dict(type="dict"),
    force=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)


def _restore_to(params, current):
    given = params["restore_to"] or {}
    unknown = sorted(set(given) - set(asg.SIZES))
    if unknown:
        raise asg.AutoScalingInputError(f"restore_to: unknown keys {unknown}; use {', '.join(asg.SIZES)}")
    try:
        to = dict(current, **{k: int(v) for k, v in given.items() if v is not None})
    except (TypeError, ValueError):
        raise asg.AutoScalingInputError(f"restore_to: sizes must be integers, got {given!r}") from None
    asg.validate_sizes(**to)
    if not to["min_size"] <= to["desired_capacity"] <= to["max_size"]:
        raise asg.AutoScalingInputError(f"restore_to: {asg.describe_sizes(to)} is not min <= desired <= max")
    return to


def run(module, result):
    params = module.params
    name, incident_id = (params["name"] or "").strip(), params["incident_id"] or None
    scaling = params["state"] == "scaled"
    if not name:
        raise asg.AutoScalingInputError("name must name the Auto Scaling group")
    if params["wait_timeout"] < 0:
        raise asg.AutoScalingInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    if scaling:
        if params["desired_capacity"] is None:
            raise asg.AutoScalingInputError("desired_capacity is required with state=scaled")
        asg.validate_sizes(
            desired_capacity=params["desired_capacity"], min_size=params["min_size"], max_size=params["max_size"]
        )

    caller = Caller(params["retry_budget"])
    client = aws_client(module, "autoscaling")
    result.update(
        changed=False, incident_id=incident_id, changes={}, containment=[], release=[], left_alone={}, gone=[]
    )
    group = asg.find_group(caller, client, name) if not scaling else asg.describe_group(caller, client, name)
    if group is None:  # a restore of a group deleted meanwhile
        entries = asg.entries_for(params["containments"], name, None)
        result.update(group={"name": name, "arn": None}, before=None, after=None, gone=[name] if entries else [])
        if entries and not module.check_mode:
            result["release"] = [release_entry(incident_id, asg.STEP, name, [e["id"] for e in entries], {}, gone=True)]
            result["changed"] = True
        gone = f"{len(entries)} recorded scale(s) released" if entries else "nothing recorded to restore"
        result["msg"] = f"Auto Scaling group {name} no longer exists: {gone}"
        return result

    arn = group.get("AutoScalingGroupARN")
    current = asg.capacity_of(group)
    before = asg.state_of(group)
    result.update(group={"name": group["AutoScalingGroupName"], "arn": arn}, before=before)

    entries = []
    if scaling:
        decision = asg.decide_capacity(
            current, params["desired_capacity"], params["min_size"], params["max_size"], params["raise_max"]
        )
        decision.update(action="scale" if decision["changes"] else "none", left_alone={})
        decision["reason"] = (
            f"{asg.describe_sizes(current)} -> {asg.describe_sizes(decision['to'])}"
            if decision["changes"]
            else f"already at {asg.describe_sizes(current)}"
        )
    else:
        entries = asg.entries_for(params["containments"], name, arn)
        if params["restore_to"]:
            to = _restore_to(params, current)
            changes = {k: {"old": current[k], "new": to[k]} for k in asg.SIZES if current[k] != to[k]}
            decision = {
                "action": "restore" if changes else ("release" if entries else "none"),
                "to": to,
                "changes": changes,
                "left_alone": {},
                "reason": f"{asg.describe_sizes(current)} -> {asg.describe_sizes(to)} (restore_to)"
                if changes
                else f"already at {asg.describe_sizes(to)}",
            }
        else:
            decision = asg.decide_restore(current, entries, force=params["force"])
        result["left_alone"] = decision["left_alone"]
    to = decision["to"]
    result["changes"] = decision["changes"]
    if module._diff:
        result["diff"] = {
            "before": {k: current[k] for k in asg.SIZES},
            "after": {k: to[k] for k in asg.SIZES},
        }
    verb = "scaled" if scaling else "restored"
    acts = decision["action"] in ("scale", "restore")
    releases = decision["action"] in ("restore", "release")

    if module.check_mode or decision["action"] in ("none", "drift"):
        result["changed"] = acts or (releases and bool(entries))
        result["after"] = dict(before, **to)
        if module.check_mode and result["changed"]:
            result["msg"] = f"check mode: would have {verb} {name}: {decision['reason']}"
        else:
            result["msg"] = f"no change to {name}: {decision['reason']}"
        return result

    if acts:
        what = f"Auto Scaling group {name!r} ({asg.describe_sizes(current)} -> {asg.describe_sizes(to)})"
        try:
            asg.update_sizes(caller, client, name, {k: v["new"] for k, v in decision["changes"].items()}, what)
        except StepAWSError as err:
            err.note = (
                f"the group was at {asg.describe_sizes(current)} before this step and the update was not confirmed"
            )
            raise
        result["changed"] = True
        if scaling:
            result["containment"] = [
                containment_entry(
                    incident_id,
                    asg.STEP,
                    arn,
                    {"capacity": {"from": current, "to": to}},
                    group_name=name,
                )
            ]
    if releases and entries:
        result["changed"] = True
        restored = {"capacity": {"from": current, "to": to}} if acts else {}
        result["release"] = [release_entry(incident_id, asg.STEP, arn, [e["id"] for e in entries], restored)]

    outcome = decision["reason"]
    if params["wait"] and acts:
        try:
            group = asg.wait_in_service(caller, client, name, params["wait_timeout"])
        except asg.AutoScalingWaitTimeout as err:
            err.keys = dict(result, **err.keys)
            raise
    else:
        group = asg.describe_group(caller, client, name)
    after = asg.state_of(group)
    result["after"] = after
    wrong = {k: after[k] for k in asg.SIZES if after[k] != to[k]}
    if wrong:
        raise asg.AutoScalingStateError(
            f"{name} reads back {wrong} after the update, not { ({k: to[k] for k in wrong}) }", **result
        )
    outcome += f"; {after['in_service']} InService" if acts else ""
    result["msg"] = f"{verb} {name}: {outcome}" if acts else f"released the recorded scales of {name}: {outcome}"
    return result


def main():
    run_aws_step(run, "mitigation", ARGUMENT_SPEC, required_if=[("state", "scaled", ("desired_capacity",))])


if __name__ == "__main__":
    main()
