#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_instance_isolate
short_description: Capture evidence of an EC2 instance, then isolate every network interface in a quarantine group
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "isolate affected EC2 instances" of a security incident in one call, evidence first.
  - "With O(state=contained), before changing anything it captures the instance's description and tags, the
    security groups of every network interface, the console output and a console screenshot (recorded as
    unavailable where the API gives none), and snapshots every attached EBS volume with the incident's tags
    (one multi-volume C(CreateSnapshots) call, crash-consistent). With O(evidence_bucket), the description and
    the console output and screenshot are also written to the evidence bucket with their SHA-256."
  - Then it enables termination and stop protection, tags the instance with the incident, optionally detaches it
    from its Auto Scaling group and deregisters it from load balancer target groups, and moves EVERY network
    interface (C(ModifyNetworkInterfaceAttribute), not only the instance attribute) into a quarantine security
    group with no rules, created in the instance's VPC when absent.
  - Connection tracking, per AWS's guidance for isolation, when O(untrack_first=true) the interfaces first go
    into a group allowing all traffic from and to 0.0.0.0/0 (flows matching it become untracked), then into the
    quarantine group, which drops those flows. A direct move would leave tracked connections (an attacker's
    shell) open.
  - The result's RV(containment) records each interface's own previous groups, the protection flags before, the
    tags added and the Auto Scaling group and target groups left. Each interface is also tagged
    C(firebreak:previous-groups).
  - With O(state=released), it undoes the given O(containments) exactly, restoring each interface's recorded
    groups, the protection flags and tags as they were, and registering the targets again; anything someone
    changed meanwhile (an interface whose groups are no longer the quarantine group, a flag changed by hand) is
    left alone and reported under C(left_alone). Evidence (snapshots, objects) is never deleted.
  - Each isolation claims C(isolation) and C(protection:<flag>) on the instance in the containment ledger, also when
    another incident already isolated it. A release keeps what another unreleased incident still claims (the
    interfaces stay in quarantine, the flags on, the instance out of its Auto Scaling group and target groups;
    RV(kept) says for whom); the last claimant's release restores the interfaces' groups from their
    C(firebreak:previous-groups) tags and turns off the flags a containment turned on.
  - Re-runs change nothing. In check mode nothing is changed; the result says what would be.
  - Bad input (an instance, group, target group or bucket that does not exist, a quarantine group with rules, a
    missing incident id) fails with a message naming the value, before anything is changed.
options:
  instance_id:
    description: The EC2 instance to isolate or release.
    type: str
    required: true
  quarantine_group_id:
    description:
      - The quarantine security group (no inbound and no outbound rules). It must be in the instance's VPC.
      - When omitted, the group named O(quarantine_group_name) in the instance's VPC, created when absent.
    type: str
  quarantine_group_name:
    description: Name of the quarantine group to find or create when O(quarantine_group_id) is not given.
    type: str
    default: firebreak-quarantine
  untrack_first:
    description:
      - First move the interfaces to a group allowing all traffic (O(untrack_group_name), created when absent), so
        that tracked flows become untracked and the quarantine group then cuts them (AWS's isolation guidance).
    type: bool
    default: true
  untrack_group_name:
    description: Name of the allow-all group used by O(untrack_first) in the instance's VPC.
    type: str
    default: firebreak-untrack
  snapshots:
    description: Snapshot every attached EBS volume before isolating (tagged with the incident and the instance).
    type: bool
    default: true
  console_output:
    description: Capture the instance's console output before isolating.
    type: bool
    default: true
  screenshot:
    description: Capture a console screenshot before isolating (recorded as unavailable when the API gives none).
    type: bool
    default: true
  evidence_bucket:
    description:
      - An S3 bucket to write the captured evidence to (instance description JSON, console output, screenshot),
        each object with its SHA-256. Without it the console output is returned in the result instead.
    type: str
  evidence_prefix:
    description: Key prefix in O(evidence_bucket); objects go under C(<prefix>/<incident_id>/ec2/<instance_id>/).
    type: str
    default: incidents
  protect:
    description: Enable termination and stop protection (C(DisableApiTermination), C(DisableApiStop)).
    type: bool
    default: true
  detach_from_asg:
    description:
      - Detach the instance from its Auto Scaling group (so the group does not terminate it when its health check
        fails). The desired capacity is kept, so the group launches a replacement, unless
        O(decrement_desired_capacity=true).
    type: bool
    default: false
  decrement_desired_capacity:
    description: With O(detach_from_asg), lower the group's desired capacity by one instead of replacing the instance.
    type: bool
    default: false
  deregister_targets:
    description: Deregister the instance (by id, or by one of its private addresses) from load balancer target groups.
    type: bool
    default: false
  target_group_arns:
    description:
      - The target groups to deregister from with O(deregister_targets). Empty means every instance and IP target
        group of the region (one C(DescribeTargetHealth) call per group).
    type: list
    elements: str
    default: []
  wait:
    description:
      - After isolating, wait until the snapshots are completed and the targets have finished draining.
      - The isolation is done before waiting; a timeout is reported as a warning with what is still pending, it
        does not fail the step (a failed step would hide the containment from the release).
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds.
    type: int
    default: 300
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.CONTAINMENT
  - firebreak.runbooks.step.CLAIMS
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - O(incident_id) is required with O(state=contained) outside check mode.
  - moto (the sandbox) changes nothing on the interface for C(ModifyInstanceAttribute Groups), has no console
    screenshot (HTTP 500, recorded as unavailable), completes snapshots at once, does not verify S3 checksums and
    deregisters targets at once (no draining). It cannot show connection tracking at all.
seealso:
  - module: amazon.aws.ec2_security_group
  - module: amazon.aws.ec2_snapshot
"""

EXAMPLES = r"""
- name: Isolate the compromised instance, evidence first
  firebreak.runbooks.ec2_instance_isolate:
    instance_id: i-0123456789abcdef0
    incident_id: INC-2026-042
    evidence_bucket: acme-incident-evidence
    detach_from_asg: true
    deregister_targets: true
  register: isolation

- name: Release it (restore each interface's groups, protection flags, targets)
  firebreak.runbooks.ec2_instance_isolate:
    instance_id: i-0123456789abcdef0
    incident_id: INC-2026-042
    state: released
    containments: "{{ lookup('firebreak.runbooks.containments', 'ec2_isolate', incident_id='INC-2026-042',
      resource='i-0123456789abcdef0', wantlist=True) }}"
"""

RETURN = r"""
msg:
  description: What was done, or why nothing was done.
  returned: always
  type: str
  sample: "isolated i-0123456789abcdef0: 2 network interfaces moved to sg-0a1b2c3d4e5f60718"
instance:
  description: The instance's description at the start (id, state, type, VPC, subnet, addresses, tags...).
  returned: when the instance exists
  type: dict
  sample: {"instance_id": "i-0123456789abcdef0", "state": "running", "vpc_id": "vpc-0a1b2c3d"}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
quarantine_group_id:
  description: The quarantine group (null in check mode when it would be created).
  returned: when O(state=contained)
  type: str
  sample: sg-0a1b2c3d4e5f60718
before:
  description: The isolation-relevant state before the step.
  returned: always
  type: dict
  contains:
    network_interfaces:
      description: Security group ids of each network interface.
      returned: always
      type: dict
      sample: {"eni-0a1b2c3d4e5f60718": ["sg-0123456789abcdef0"]}
    protection:
      description: C(disableApiTermination) and C(disableApiStop).
      returned: always
      type: dict
      sample: {"disableApiTermination": false, "disableApiStop": false}
    auto_scaling_group:
      description: The instance's Auto Scaling group (null when none or not looked up).
      returned: always
      type: str
    target_groups:
      description: The instance's target registrations found (when O(deregister_targets)).
      returned: always
      type: list
      elements: dict
after:
  description: The same as RV(before) after the step (predicted in check mode).
  returned: always
  type: dict
evidence:
  description:
    - What was captured before the isolation (O(state=contained)).
    - C(network_interfaces) and C(volumes) describe them; C(snapshots) lists each volume's snapshot
      (C(volume_id), C(snapshot_id), C(state), C(created)); C(console_output) and C(screenshot) have
      C(available), C(reason) when not, C(size), C(sha256) and C(object) when stored (the console text itself is in
      C(console_output.output) when no evidence bucket is given); C(objects) lists the evidence objects written.
  returned: when O(state=contained)
  type: dict
containment:
  description:
    - What the isolation changed (O(state=contained)), for the release. Empty when nothing changed.
    - C(changed.groups) maps each moved interface to its previous groups; C(changed.protection) the protection
      flags turned on with their previous values; C(changed.tags) the instance tags set with their previous values;
      C(changed.auto_scaling_group) and C(changed.target_groups) what the instance was taken out of.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "3f2a9c0d1e2b4a5c", "step": "ec2_isolate", "resource": "i-0123456789abcdef0",
            "changed": {"groups": {"eni-0a1b2c3d4e5f60718": ["sg-0123456789abcdef0"]}}}]
release:
  description:
    - What the release undid (O(state=released)), one entry per released containment, with C(releases) (the entry
      ids), C(restored), C(left_alone) (changed by someone else meanwhile, not touched; C(kept_for_others) what
      another unreleased incident still claims) and C(not_restored); C(gone=true) when the instance no longer
      exists.
  returned: when O(state=released)
  type: list
  elements: dict
kept:
  description:
    - With O(state=released), the containment ledger's items (C(isolation), C(protection:<flag>)) left in place
      because another unreleased incident still claims them, with who. The last claimant's release undoes them.
  returned: when O(state=released) and there was something to release
  type: dict
  sample: {"isolation": ["INC-2042"]}
gone:
  description: With O(state=released), the instance when it no longer exists (its entries are recorded as released).
  returned: when O(state=released) and there was something to release
  type: list
  elements: str
diff:
  description: Interface groups and protection flags before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
"""

import base64
import hashlib

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import ec2_isolation as iso
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import evidence as ev
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    containment_entry,
    incident_tags,
    isoformat,
    release_entry,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    instance_id=dict(type="str", required=True),
    **ledger.CONTAINMENT_OPTIONS,
    quarantine_group_id=dict(type="str"),
    quarantine_group_name=dict(type="str", default="firebreak-quarantine"),
    untrack_first=dict(type="bool", default=True),
    untrack_group_name=dict(type="str", default="firebreak-untrack"),
    snapshots=dict(type="bool", default=True),
    console_output=dict(type="bool", default=True),
    screenshot=dict(type="bool", default=True),
    evidence_bucket=dict(type="str"),
    evidence_prefix=dict(type="str", default="incidents"),
    protect=dict(type="bool", default=True),
    detach_from_asg=dict(type="bool", default=False),
    decrement_desired_capacity=dict(type="bool", default=False),
    deregister_targets=dict(type="bool", default=False),
    target_group_arns=dict(type="list", elements="str", default=[]),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
    **ledger.CLAIMS_OPTIONS,
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)

CONSOLE_OUTPUT_MAX = 32 * 1024  # in the result (the timeline caps details at 64 KiB)
ISOLATION = "isolation"  # the ledger's item for "the interfaces are in the quarantine group"


def claims_ledger(step):
    return ledger.for_module(step.module, step.caller, step.client)


def bookkeeping(module, record):
    ledger.bookkeeping(module, "the instance was changed", record)


class Step:
    """One run of the module: clients made on first use, one Caller for every call."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.caller = Caller(self.params["retry_budget"])
        self._clients = {}

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = aws_client(self.module, service)
        return self._clients[service]

    @property
    def ec2(self):
        return self.client("ec2")


# --------------------------------------------------------------------------------------------------
# contained
# --------------------------------------------------------------------------------------------------


def capture_console(step, instance_id):
    """Console output: ``(record, text)``; never fails the step (evidence is best effort here)."""
    try:
        answer = step.caller(
            step.ec2, "get_console_output", f"instance {instance_id}", InstanceId=instance_id, Latest=True
        )
    except StepAWSError as err:
        return {"available": False, "reason": str(err)}, None
    raw = answer.get("Output") or ""
    try:
        text = base64.b64decode(raw).decode("utf-8", errors="replace")
    except ValueError:
        text = raw
    data = text.encode("utf-8")
    record = {
        "available": bool(raw),
        "timestamp": isoformat(answer.get("Timestamp")),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if not raw:
        record["reason"] = "the instance has no console output yet"
    return record, text


def capture_screenshot(step, instance_id):
    """Console screenshot: ``(record, jpeg bytes)``; unavailable (with the reason) when the API gives none."""
    caller = Caller(min(step.params["retry_budget"], 10))
    try:
        answer = caller(
            step.ec2, "get_console_screenshot", f"instance {instance_id}", InstanceId=instance_id, WakeUp=True
        )
    except StepAWSError as err:
        return {"available": False, "reason": str(err)}, None
    except Exception as err:  # moto answers an HTML 500 botocore cannot parse
        return {"available": False, "reason": f"GetConsoleScreenshot failed: {type(err).__name__}: {err}"[:500]}, None
    data = base64.b64decode(answer.get("ImageData") or "")
    if not data:
        return {"available": False, "reason": "GetConsoleScreenshot returned no image"}, None
    return {"available": True, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, data


def find_group(step, vpc_id, group_id, name, option, allow_all):
    """``(group id or None, description or None)``; fails on a group of another VPC or with the wrong rules."""
    if group_id:
        group = iso.security_group(step.ec2, step.caller, iso.validate_group_id(group_id, option), option)
    else:
        group = iso.security_group_by_name(step.ec2, step.caller, name, vpc_id)
        if group is None:
            return None, None
    gid = group["GroupId"]
    if group.get("VpcId") != vpc_id:
        raise iso.IsolationInputError(
            f"{option}: security group {gid!r} is in {group.get('VpcId')}, not in the instance's VPC {vpc_id}"
        )
    if allow_all:
        if not iso.is_allow_all(group):
            raise iso.IsolationInputError(
                f"untrack_group_name: security group {name!r} ({gid}) exists but does not allow all traffic from and "
                "to 0.0.0.0/0; it cannot untrack flows (fix or delete it, or set untrack_first=false)"
            )
    elif iso.rules_of(group):
        label = gid if group_id else f"{name!r} ({gid})"
        raise iso.IsolationInputError(
            f"{option}: security group {label} has rules; a quarantine group must have no inbound and no outbound rules"
        )
    return gid, group


def state_view(enis, protection, asg, targets):
    return {
        "network_interfaces": {e["NetworkInterfaceId"]: iso.group_ids(e.get("Groups")) for e in enis},
        "protection": dict(protection),
        "auto_scaling_group": asg,
        "target_groups": list(targets),
    }


def contain(step):
    module, params = step.module, step.params
    instance_id = iso.validate_instance_id(params["instance_id"])
    incident_id = params.get("incident_id")
    if not incident_id and not module.check_mode:
        raise iso.IsolationInputError("incident_id is required to isolate an instance (state=contained)")
    if params["wait_timeout"] < 0:
        raise iso.IsolationInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    tg_arns = [iso.validate_target_group_arn(a) for a in params["target_group_arns"]]
    bucket = (
        ev.validate_bucket_name(params["evidence_bucket"], "evidence_bucket") if params["evidence_bucket"] else None
    )
    if params["quarantine_group_id"]:
        iso.validate_group_id(params["quarantine_group_id"], "quarantine_group_id")

    # -- read and validate everything before the first change ----------------------------------------
    instance = iso.describe_instance(step.ec2, step.caller, instance_id)
    vpc_id = instance.get("VpcId")
    if not vpc_id:
        raise iso.IsolationInputError(f"instance_id: EC2 instance {instance_id!r} is not in a VPC; nothing to isolate")
    enis = iso.network_interfaces(step.ec2, step.caller, instance_id)
    quarantine_id, _ = find_group(
        step, vpc_id, params["quarantine_group_id"], params["quarantine_group_name"], "quarantine_group_id", False
    )
    plan = iso.plan_isolation(enis, quarantine_id or "(new quarantine group)")
    untrack_id = None
    if params["untrack_first"] and plan["move"]:
        untrack_id, _ = find_group(step, vpc_id, None, params["untrack_group_name"], "untrack_group_name", True)
    protection = iso.protection_flags(step.ec2, step.caller, instance_id) if params["protect"] else {}
    protection_plan = iso.plan_protection(protection) if params["protect"] else {}
    asg = None
    if params["detach_from_asg"]:
        asg = iso.auto_scaling_group_of(step.client("autoscaling"), step.caller, instance_id)
    targets = []
    if params["deregister_targets"]:
        elbv2 = step.client("elbv2")
        arns = tg_arns or iso.all_target_groups(elbv2, step.caller)
        health = {arn: iso.describe_target_health(elbv2, step.caller, arn) for arn in arns}
        private_ips = [ip for e in enis for ip in iso.eni_summary(e)["private_ips"]]
        targets = iso.instance_targets(health, instance_id, private_ips)
    if bucket:
        ev.check_bucket(step.client("s3"), step.caller, bucket, "evidence_bucket")
    wanted_tags = dict(incident_tags(incident_id, iso.STEP), **{iso.ISOLATED_TAG: "true"}) if incident_id else {}
    tags_plan = iso.plan_tags(iso.tag_dict(instance.get("Tags")), wanted_tags)

    volumes = iso.attached_volumes(step.ec2, step.caller, instance_id)
    volume_ids = [v["VolumeId"] for v in volumes]
    existing = iso.incident_snapshots(step.ec2, step.caller, instance_id, incident_id) if params["snapshots"] else []
    missing, done = iso.plan_snapshots(volume_ids, existing)
    if not params["snapshots"]:
        missing = []

    before = state_view(enis, protection, asg, targets)
    evidence = {
        "instance": iso.instance_summary(instance),
        "network_interfaces": [iso.eni_summary(e) for e in enis],
        "volumes": [iso.volume_summary(v, instance_id) for v in volumes],
        "snapshots": [{"volume_id": v, "snapshot_id": s, "created": False} for v, s in sorted(done.items())],
        "objects": [],
    }
    console_text = screenshot = None
    if params["console_output"]:
        evidence["console_output"], console_text = capture_console(step, instance_id)
    if params["screenshot"] and not module.check_mode:
        evidence["screenshot"], screenshot = capture_screenshot(step, instance_id)

    will_change = bool(plan["move"] or protection_plan or tags_plan or asg or targets or missing)
    after_enis = {e: [quarantine_id or "(new quarantine group)"] for e in before["network_interfaces"]}
    predicted = {
        "network_interfaces": after_enis,
        "protection": {k: True for k in protection} if params["protect"] else {},
        "auto_scaling_group": None,
        "target_groups": [],
    }
    result = {
        "changed": will_change,
        "instance": evidence["instance"],
        "before": before,
        "quarantine_group_id": quarantine_id,
    }
    if module._diff:
        result["diff"] = {
            "before": {k: before[k] for k in ("network_interfaces", "protection")},
            "after": {k: predicted[k] for k in ("network_interfaces", "protection")},
        }

    if module.check_mode:
        result.update(after=predicted, evidence=evidence, containment=[])
        if console_text is not None:
            evidence["console_output"]["output"] = console_text[-CONSOLE_OUTPUT_MAX:]
        would = []
        if missing:
            would.append(f"snapshot {len(missing)} volume(s)")
        if plan["move"]:
            would.append(
                f"move {len(plan['move'])} network interface(s) to {quarantine_id or 'a new quarantine group'}"
            )
        if protection_plan:
            would.append("enable " + ", ".join(sorted(protection_plan)))
        if asg:
            would.append(f"detach it from Auto Scaling group {asg}")
        if targets:
            would.append(f"deregister it from {len(targets)} target registration(s)")
        result["msg"] = (
            f"check mode: would {'; '.join(would)} for {instance_id}"
            if would
            else f"check mode: {instance_id} is already isolated"
        )
        return result

    # -- the claims first: another incident's release must see them before the instance is isolated ---------
    claimed = [ISOLATION] + [f"protection:{attr}" for attr in sorted(protection)]
    try:
        new_claims = claims_ledger(step).claim(incident_id, iso.STEP, instance_id, claimed)
    except (ledger.LedgerError, StepAWSError) as err:
        raise iso.IsolationInputError(f"nothing changed: {err}") from None

    # -- act: evidence first, then containment -------------------------------------------------------------
    changed = {}
    extra = {"quarantine_group_id": quarantine_id, "created_groups": [], "claimed": claimed}
    try:
        if missing:
            snap_tags = dict(incident_tags(incident_id, iso.STEP), **{"firebreak:instance-id": instance_id})
            description = f"firebreak incident {incident_id}: {instance_id} before isolation"
            if len(missing) == len(volume_ids):
                created = iso.create_instance_snapshots(step.ec2, step.caller, instance_id, description, snap_tags)
            else:
                created = [
                    iso.create_volume_snapshot(step.ec2, step.caller, v, description, snap_tags) for v in missing
                ]
            for snap in created:
                evidence["snapshots"].append(
                    {"volume_id": snap.get("VolumeId"), "snapshot_id": snap["SnapshotId"], "created": True}
                )
        evidence["snapshots"].sort(key=lambda s: s["volume_id"] or "")
        if bucket:
            store_evidence(step, bucket, incident_id, instance_id, evidence, console_text, screenshot, will_change)
        elif console_text is not None:
            evidence["console_output"]["output"] = console_text[-CONSOLE_OUTPUT_MAX:]
            if len(console_text) > CONSOLE_OUTPUT_MAX:
                evidence["console_output"]["truncated"] = True

        if tags_plan:
            iso.create_tags(step.ec2, step.caller, [instance_id], {k: v["value"] for k, v in tags_plan.items()})
            changed["tags"] = tags_plan
        for attr in sorted(protection_plan):
            try:
                iso.set_protection(step.ec2, step.caller, instance_id, attr, True)
            except StepAWSError as err:
                if attr == "disableApiStop" and err.code in ("UnsupportedOperation", "InvalidParameterCombination"):
                    module.warn(f"stop protection not enabled on {instance_id}: {err}")
                    continue
                raise
            changed.setdefault("protection", {})[attr] = protection_plan[attr]
        if asg:
            iso.detach_from_asg(
                step.client("autoscaling"), step.caller, instance_id, asg, params["decrement_desired_capacity"]
            )
            changed["auto_scaling_group"] = {"name": asg, "decremented": params["decrement_desired_capacity"]}
        if targets:
            iso.deregister(step.client("elbv2"), step.caller, targets)
            changed["target_groups"] = targets

        if plan["move"]:
            if quarantine_id is None:
                quarantine_id = iso.create_group(
                    step.ec2,
                    step.caller,
                    params["quarantine_group_name"],
                    "firebreak quarantine: no inbound and no outbound rules",
                    vpc_id,
                    incident_tags(incident_id, iso.STEP),
                    allow_all=False,
                )
                extra["created_groups"].append(quarantine_id)
                extra["quarantine_group_id"] = quarantine_id
                plan = iso.plan_isolation(enis, quarantine_id)
            if params["untrack_first"] and untrack_id is None:
                untrack_id = iso.create_group(
                    step.ec2,
                    step.caller,
                    params["untrack_group_name"],
                    "firebreak untrack: all traffic, so tracked flows become untracked before isolation",
                    vpc_id,
                    incident_tags(incident_id, iso.STEP),
                    allow_all=True,
                )
                extra["created_groups"].append(untrack_id)
            for eni_id, previous in sorted(plan["move"].items()):
                eni_tags = dict(
                    incident_tags(incident_id, iso.STEP), **{iso.PREVIOUS_GROUPS_TAG: ",".join(previous)[:256]}
                )
                iso.create_tags(step.ec2, step.caller, [eni_id], eni_tags)
            moved = changed.setdefault("groups", {})
            changed["quarantine_group_id"] = quarantine_id
            if untrack_id:
                changed["untrack_group_id"] = untrack_id
                for eni_id, previous in sorted(plan["move"].items()):
                    iso.set_eni_groups(step.ec2, step.caller, eni_id, [untrack_id])
                    moved[eni_id] = previous
            for eni_id, previous in sorted(plan["move"].items()):
                iso.set_eni_groups(step.ec2, step.caller, eni_id, [quarantine_id])
                moved[eni_id] = previous
    except (StepAWSError, iso.IsolationInputError) as err:
        entry = (
            [containment_entry(incident_id, iso.STEP, instance_id, changed, **extra, evidence=compact(evidence))]
            if changed
            else []
        )
        extra_result = err.result() if isinstance(err, StepAWSError) else {}
        module.fail_json(
            msg=f"isolating {instance_id} failed after changing {sorted(changed) or 'nothing'}: {err}",
            changed=bool(changed or any(s["created"] for s in evidence["snapshots"])),
            containment=entry,
            evidence=evidence,
            before=before,
            **extra_result,
        )

    added = ([ISOLATION] if changed.get("groups") else []) + [
        f"protection:{a}" for a in changed.get("protection") or {}
    ]
    if added:
        bookkeeping(module, lambda: claims_ledger(step).mark_added(incident_id, iso.STEP, instance_id, added))

    # -- verify and wait -------------------------------------------------------------------------------------
    enis_after = iso.network_interfaces(step.ec2, step.caller, instance_id)
    wrong = {
        e["NetworkInterfaceId"]: iso.group_ids(e.get("Groups"))
        for e in enis_after
        if iso.group_ids(e.get("Groups")) != [quarantine_id]
    }
    if wrong:
        module.fail_json(
            msg=f"after isolating {instance_id}, network interfaces are not (only) in {quarantine_id}: {wrong}",
            changed=True,
            containment=[
                containment_entry(incident_id, iso.STEP, instance_id, changed, **extra, evidence=compact(evidence))
            ],
            evidence=evidence,
            before=before,
        )
    protection_after = iso.protection_flags(step.ec2, step.caller, instance_id) if params["protect"] else {}
    pending = {}
    if params["wait"] and (evidence["snapshots"] or changed.get("target_groups")):
        pending = iso.wait_settled(
            step.ec2,
            step.client("elbv2") if changed.get("target_groups") else None,
            step.caller,
            [s["snapshot_id"] for s in evidence["snapshots"]],
            changed.get("target_groups") or [],
            params["wait_timeout"],
        )
        if pending:
            module.warn(
                f"{instance_id} is isolated, but after {params['wait_timeout']}s these are still pending: {pending}"
            )
    states = iso.snapshot_states(step.ec2, step.caller, [s["snapshot_id"] for s in evidence["snapshots"]])
    for snap in evidence["snapshots"]:
        snap["state"] = states.get(snap["snapshot_id"])
    result["quarantine_group_id"] = quarantine_id
    result["after"] = state_view(enis_after, protection_after, None if changed.get("auto_scaling_group") else asg, [])
    result["evidence"] = evidence
    result["pending"] = pending
    result["changed"] = (
        bool(changed or new_claims)
        or any(s["created"] for s in evidence["snapshots"])
        or any(o.get("changed") for o in evidence["objects"])
    )
    result["containment"] = (
        [containment_entry(incident_id, iso.STEP, instance_id, changed, **extra, evidence=compact(evidence))]
        if changed or new_claims
        else []
    )
    if module._diff:
        result["diff"]["after"] = {k: result["after"][k] for k in ("network_interfaces", "protection")}
    if changed.get("groups"):
        result["msg"] = (
            f"isolated {instance_id}: {len(changed['groups'])} network interface(s) moved to {quarantine_id}"
        )
    elif result["changed"]:
        result["msg"] = (
            f"{instance_id} was already in {quarantine_id}; completed: {', '.join(sorted(changed)) or 'evidence'}"
        )
    else:
        result["msg"] = f"no change: {instance_id} is already isolated in {quarantine_id}"
    return result


def compact(evidence):
    """What the containment entry keeps of the evidence: snapshot ids and object keys with their SHA-256."""
    return {
        "snapshots": {s["volume_id"]: s["snapshot_id"] for s in evidence["snapshots"]},
        "objects": [{k: o.get(k) for k in ("bucket", "key", "sha256", "size")} for o in evidence["objects"]],
        "console_output_sha256": (evidence.get("console_output") or {}).get("sha256"),
    }


def store_evidence(step, bucket, incident_id, instance_id, evidence, console_text, screenshot, replace):
    """Write the captured evidence as objects. ``replace=False`` (a re-run on an isolated instance) keeps
    the objects already there: the evidence is what was captured before the isolation."""
    s3 = step.client("s3")
    base = f"{ev.normalize_prefix(step.params['evidence_prefix'])}{incident_id}/ec2/{instance_id}/"
    source = f"ec2:{instance_id}"
    description = {k: evidence[k] for k in ("instance", "network_interfaces", "volumes")}
    description["snapshots"] = {s["volume_id"]: s["snapshot_id"] for s in evidence["snapshots"]}
    stored = [
        ev.put_evidence(
            s3,
            step.caller,
            bucket,
            base + "instance.json",
            iso.to_json_bytes(description),
            incident_id,
            source,
            "application/json",
            replace,
        )
    ]
    if console_text is not None and evidence["console_output"].get("available"):
        obj = ev.put_evidence(
            s3,
            step.caller,
            bucket,
            base + "console-output.txt",
            console_text.encode("utf-8"),
            incident_id,
            source,
            "text/plain",
            replace,
        )
        evidence["console_output"]["object"] = f"s3://{bucket}/{obj['key']}"
        stored.append(obj)
    if screenshot:
        obj = ev.put_evidence(
            s3,
            step.caller,
            bucket,
            base + "console-screenshot.jpg",
            screenshot,
            incident_id,
            source,
            "image/jpeg",
            replace,
        )
        evidence["screenshot"]["object"] = f"s3://{bucket}/{obj['key']}"
        stored.append(obj)
    evidence["objects"] = stored


# --------------------------------------------------------------------------------------------------
# released
# --------------------------------------------------------------------------------------------------


def release(step):
    module, params = step.module, step.params
    instance_id = iso.validate_instance_id(params["instance_id"])
    incident_id = params.get("incident_id")
    entries = []
    for entry in params["containments"]:
        if not isinstance(entry, dict) or not entry.get("id") or not isinstance(entry.get("changed"), dict):
            raise iso.IsolationInputError(f"containments: not a containment entry: {str(entry)[:200]!r}")
        if entry.get("step") != iso.STEP or entry.get("resource") != instance_id:
            module.warn(
                f"ignoring containment {entry['id']}: step {entry.get('step')!r}, resource {entry.get('resource')!r}"
            )
            continue
        entries.append(entry)
    if not entries:
        return {
            "changed": False,
            "msg": f"nothing to release for {instance_id}",
            "release": [],
            "before": {},
            "after": {},
        }

    exists = iso.instance_exists(step.ec2, step.caller, instance_id)
    releases, total, kept_all = [], 0, {}
    result = {"before": {}, "after": {}}
    claims = claims_ledger(step)
    for entry in entries:
        owner = entry.get("incident_id") or incident_id
        changed, ledger_notes = ledger_view(step, claims, owner, instance_id, entry, exists)
        kept_all.update(ledger_notes["kept"])
        now = {"instance_exists": exists}
        now["enis"] = iso.interfaces_by_id(step.ec2, step.caller, list(changed.get("groups") or {}))
        if exists:
            if changed.get("protection"):
                now["protection"] = iso.protection_flags(step.ec2, step.caller, instance_id)
            if changed.get("tags"):
                instance = iso.describe_instance(step.ec2, step.caller, instance_id)
                now["tags"] = iso.tag_dict(instance.get("Tags"))
            if changed.get("target_groups"):
                now["registered"] = iso.registrations(step.client("elbv2"), step.caller, changed["target_groups"])
            if changed.get("auto_scaling_group"):
                now["in_asg"] = iso.auto_scaling_group_of(step.client("autoscaling"), step.caller, instance_id)
        actions = iso.decide_release(changed, now)
        if ledger_notes["kept"]:
            actions["left_alone"]["kept_for_others"] = ledger_notes["kept"]
        actions["not_restored"].update(ledger_notes["not_restored"])
        result["before"].setdefault("network_interfaces", {}).update({k: v for k, v in now["enis"].items()})
        count = (
            len(actions["groups"]) + len(actions["protection"]) + len(actions["tags_set"]) + len(actions["tags_delete"])
        )
        count += len(actions["register"]) + bool(actions["attach_asg"])
        total += count
        if not module.check_mode and count:
            try:
                apply_release(step, instance_id, actions)
            except StepAWSError as err:
                # No release entry: the containment stays open, and a re-run finishes what is left.
                module.fail_json(
                    msg=f"releasing {entry['id']} on {instance_id} failed part way: {err}",
                    changed=True,
                    planned=actions,
                    **err.result(),
                )
        releases.append(
            release_entry(
                entry.get("incident_id") or incident_id,
                iso.STEP,
                instance_id,
                [entry["id"]],
                restored=actions["restored"],
                left_alone=actions["left_alone"],
                not_restored=actions["not_restored"],
                **({} if exists else {"gone": True}),
            )
        )
        if owner and not module.check_mode:
            bookkeeping(module, ledger_notes["settle"])
    result["after"]["network_interfaces"] = iso.interfaces_by_id(
        step.ec2, step.caller, [e for entry in entries for e in entry["changed"].get("groups") or {}]
    )
    result.update(changed=bool(total), release=releases, kept=kept_all, gone=[] if exists else [instance_id])
    left = sum(len(r["left_alone"]) for r in releases)
    verb = "would restore" if module.check_mode else "restored"
    result["msg"] = f"{verb} {total} change(s) of {len(entries)} containment(s) on {instance_id}" + (
        f"; left alone {left} kind(s) of change made meanwhile (see release.left_alone)" if left else ""
    )
    for value, who in kept_all.items():
        result["msg"] += f"; kept {value} for {', '.join(who)} (still claimed)"
    if not exists:
        result["msg"] += f"; gone (recorded as released): {instance_id}"
    return result


def ledger_view(step, claims, owner, instance_id, entry, exists):
    """The entry's ``changed`` as the containment ledger lets this release undo it, and what to report.

    ``isolation`` (the interfaces' groups) and ``protection:<attr>`` stay while another unreleased incident
    still claims them; while the isolation stays, the Auto Scaling group and target registrations stay out too.
    The last claimant's release undoes what an earlier (released) incident's step changed: the interfaces' groups
    from their ``firebreak:previous-groups`` tags, and the protection flags it turned on."""
    changed = {k: (dict(v) if isinstance(v, dict) else v) for k, v in entry["changed"].items()}
    ours = ([ISOLATION] if changed.get("groups") else []) + [f"protection:{a}" for a in changed.get("protection") or {}]
    claimed = list(dict.fromkeys(list(entry.get("claimed") or []) + ours))
    notes = {"kept": {}, "not_restored": {}, "settle": lambda: None}
    if not owner or not claimed:
        return changed, notes
    if not exists:
        notes["settle"] = lambda: claims.drop(owner, instance_id, claimed)
        return changed, notes
    selection = claims.select(owner, instance_id, claimed, ours)
    notes["kept"] = selection["kept"]
    notes["settle"] = lambda: claims.settle(owner, instance_id, claimed, removed=selection["remove"])
    if ISOLATION in selection["kept"]:
        for key in ("groups", "auto_scaling_group", "target_groups"):
            if changed.pop(key, None):
                notes["not_restored"][key] = (
                    f"the instance stays isolated for {', '.join(selection['kept'][ISOLATION])} (still claimed)"
                )
    for item in selection["kept"]:
        if item.startswith("protection:"):
            (changed.get("protection") or {}).pop(item.split(":", 1)[1], None)
    if ISOLATION in selection["remove"] and not changed.get("groups"):
        # isolated by another (released) incident's step: restore the groups it recorded on each interface
        for eni in iso.network_interfaces(step.ec2, step.caller, instance_id):
            groups = iso.group_ids(eni.get("Groups"))
            previous = iso.tag_dict(eni.get("TagSet")).get(iso.PREVIOUS_GROUPS_TAG)
            if previous and len(groups) == 1:
                changed.setdefault("groups", {})[eni["NetworkInterfaceId"]] = previous.split(",")
                changed["quarantine_group_id"] = groups[0]
    for item in selection["remove"]:
        if item.startswith("protection:") and item not in ours:
            changed.setdefault("protection", {})[item.split(":", 1)[1]] = False  # a containment turned it on
    return changed, notes


def apply_release(step, instance_id, actions):
    for eni_id, groups in sorted(actions["groups"].items()):
        iso.set_eni_groups(step.ec2, step.caller, eni_id, groups)
        iso.delete_tags(step.ec2, step.caller, eni_id, [iso.PREVIOUS_GROUPS_TAG])
    for attr, value in sorted(actions["protection"].items()):
        iso.set_protection(step.ec2, step.caller, instance_id, attr, value)
    if actions["tags_set"]:
        iso.create_tags(step.ec2, step.caller, [instance_id], actions["tags_set"])
    iso.delete_tags(step.ec2, step.caller, instance_id, actions["tags_delete"])
    if actions["register"]:
        iso.register(step.client("elbv2"), step.caller, actions["register"])
    if actions["attach_asg"]:
        iso.attach_to_asg(step.client("autoscaling"), step.caller, instance_id, actions["attach_asg"])


def run(module, result):
    step = Step(module)
    return contain(step) if module.params["state"] == "contained" else release(step)


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
