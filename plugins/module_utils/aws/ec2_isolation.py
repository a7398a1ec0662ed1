# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""EC2 instance isolation with evidence: the decisions (pure) and the API layer.

Isolation moves EVERY network interface of the instance into a quarantine security group with no
rules.  ``ModifyInstanceAttribute(Groups)`` only changes the primary interface on AWS (and not even
that on moto): the interfaces are changed one by one with ``ModifyNetworkInterfaceAttribute``.

Connection tracking: a security group change does not cut flows that are already tracked.  AWS's
guidance for isolating an instance is to move it first into a group allowing all traffic from and to
0.0.0.0/0 (flows matching such rules are untracked), then into the group with no rules, which then
drops every untracked flow at the next packet.  ``untrack_group_rules`` is that first group's rule set.

Pure functions (``plan_*``, ``decide_release``, ``validate_*``) are unit-tested without AWS; the API
functions take a boto3 client and a ``step.Caller`` (bounded retries, errors naming call and code).
"""

from __future__ import annotations

import json
import re
import time

from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict as tag_dict
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError, isoformat

STEP = "ec2_isolate"
PROTECTION_ATTRIBUTES = ("disableApiTermination", "disableApiStop")
# The request parameter of ModifyInstanceAttribute for each described attribute.
PROTECTION_PARAMETERS = {"disableApiTermination": "DisableApiTermination", "disableApiStop": "DisableApiStop"}
PREVIOUS_GROUPS_TAG = "firebreak:previous-groups"
ISOLATED_TAG = "firebreak:isolated"

_INSTANCE_RE = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_GROUP_RE = re.compile(r"^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_TG_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$"
)

ALL_TRAFFIC_V4 = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
ALL_TRAFFIC_V6 = {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}


class IsolationInputError(StepError, ValueError):
    """A bad value, found before anything was changed."""


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def validate_instance_id(value):
    text = str(value or "").strip()
    if not _INSTANCE_RE.match(text):
        raise IsolationInputError(f"instance_id: {value!r} is not an EC2 instance id (i- and 8 or 17 hex digits)")
    return text


def validate_group_id(value, option):
    text = str(value or "").strip()
    if not _GROUP_RE.match(text):
        raise IsolationInputError(f"{option}: {value!r} is not a security group id (sg- and 8 or 17 hex digits)")
    return text


def validate_target_group_arn(value, option="target_group_arns"):
    text = str(value or "").strip()
    if not _TG_ARN_RE.match(text):
        raise IsolationInputError(f"{option}: {value!r} is not a target group ARN")
    return text


# --------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------


def group_ids(groups):
    """Sorted group ids of ``[{"GroupId": ...}]`` (or of a list of ids)."""
    return sorted(g["GroupId"] if isinstance(g, dict) else str(g) for g in groups or [])


def rules_of(group):
    """The ingress and egress rules of a described security group (``[]`` when it has none)."""
    return list(group.get("IpPermissions") or []) + list(group.get("IpPermissionsEgress") or [])


def is_allow_all(group):
    """Whether a described group allows all traffic from and to 0.0.0.0/0 (the untracking group)."""

    def allows_all(permissions):
        for rule in permissions or []:
            if rule.get("IpProtocol") == "-1" and any(
                r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges") or []
            ):
                return True
        return False

    return allows_all(group.get("IpPermissions")) and allows_all(group.get("IpPermissionsEgress"))


def plan_isolation(enis, quarantine_group_id):
    """``{"move": {eni_id: [previous group ids]}, "already": [eni ids]}`` for the instance's interfaces.

    An interface whose only group is the quarantine group is already isolated; every other one moves."""
    move, already = {}, []
    for eni in enis:
        current = group_ids(eni.get("Groups"))
        if current == [quarantine_group_id]:
            already.append(eni["NetworkInterfaceId"])
        else:
            move[eni["NetworkInterfaceId"]] = current
    return {"move": move, "already": sorted(already)}


def plan_protection(current):
    """``{attribute: previous value}`` of the protection flags that are off (and will be turned on)."""
    return {attr: bool(current.get(attr)) for attr in PROTECTION_ATTRIBUTES if not current.get(attr)}


def plan_tags(current, wanted):
    """``{key: {"previous": value or None, "value": new value}}`` of the ``wanted`` tags not already set."""
    return {
        key: {"previous": current.get(key), "value": value}
        for key, value in wanted.items()
        if current.get(key) != value
    }


def plan_snapshots(volume_ids, existing):
    """``(missing volume ids, {volume id: snapshot id})`` given this incident's snapshots of the instance."""
    done = {}
    for snap in existing:
        if snap.get("State") != "error" and snap.get("VolumeId") in volume_ids:
            done.setdefault(snap["VolumeId"], snap["SnapshotId"])
    return sorted(v for v in volume_ids if v not in done), done


def instance_targets(descriptions_by_group, instance_id, private_ips):
    """``[{"target_group_arn", "id", "port"}]`` registrations of the instance (by id, or by one of its IPs)."""
    found = []
    ips = set(private_ips or [])
    for arn, descriptions in descriptions_by_group.items():
        for desc in descriptions:
            target = desc.get("Target") or {}
            state = (desc.get("TargetHealth") or {}).get("State")
            if state in ("unused", "draining"):
                continue
            if target.get("Id") == instance_id or target.get("Id") in ips:
                entry = {"target_group_arn": arn, "id": target["Id"], "port": target.get("Port")}
                if target.get("AvailabilityZone"):
                    entry["availability_zone"] = target["AvailabilityZone"]
                found.append(entry)
    return found


def decide_release(changed, now):
    """What releasing one containment entry does, given the resource's current state.

    ``changed`` is the entry's ``changed``; ``now`` is
    ``{"enis": {eni: [groups] or None if gone}, "protection": {attr: bool}, "tags": {k: v},
    "registered": {(arn, id, port): bool}, "instance_exists": bool, "in_asg": str or None}``.

    Returns ``{"groups": {eni: [groups to restore]}, "protection": {attr: value}, "tags_set": {k: v},
    "tags_delete": [k], "register": [target], "attach_asg": name or None, "restored": {...},
    "left_alone": {...}, "not_restored": {...}}``.  Only what is still as the containment left it is
    undone; anything changed since is left alone and reported.
    """
    actions = {
        "groups": {},
        "protection": {},
        "tags_set": {},
        "tags_delete": [],
        "register": [],
        "attach_asg": None,
        "restored": {},
        "left_alone": {},
        "not_restored": {},
    }
    restored, left = actions["restored"], actions["left_alone"]
    quarantine = changed.get("quarantine_group_id")
    for eni, previous in sorted((changed.get("groups") or {}).items()):
        current = (now.get("enis") or {}).get(eni)
        previous = sorted(previous)
        if current is None:
            left.setdefault("groups", {})[eni] = {"reason": "network interface no longer exists"}
        elif sorted(current) == [quarantine]:
            actions["groups"][eni] = previous
            restored.setdefault("groups", {})[eni] = previous
        elif sorted(current) == previous:
            restored.setdefault("already", {}).setdefault("groups", {})[eni] = previous
        else:
            left.setdefault("groups", {})[eni] = {
                "groups_now": sorted(current),
                "reason": "security groups changed since the isolation",
            }
    if not now.get("instance_exists", True):
        for key in ("protection", "tags", "target_groups", "auto_scaling_group"):
            if changed.get(key):
                left[key] = {"reason": "instance no longer exists"}
        return actions
    for attr, previous in sorted((changed.get("protection") or {}).items()):
        current = (now.get("protection") or {}).get(attr)
        if current is True and previous is False:
            actions["protection"][attr] = False
            restored.setdefault("protection", {})[attr] = False
        elif current == previous:
            restored.setdefault("already", {}).setdefault("protection", {})[attr] = previous
        else:
            left.setdefault("protection", {})[attr] = {"now": current, "reason": "changed since the isolation"}
    for key, record in sorted((changed.get("tags") or {}).items()):
        current = (now.get("tags") or {}).get(key)
        previous = record.get("previous")
        if current != record.get("value"):
            left.setdefault("tags", {})[key] = {"now": current, "reason": "changed since the isolation"}
        elif previous is None:
            actions["tags_delete"].append(key)
            restored.setdefault("tags", {})[key] = None
        else:
            actions["tags_set"][key] = previous
            restored.setdefault("tags", {})[key] = previous
    for target in changed.get("target_groups") or []:
        key = (target["target_group_arn"], target["id"], target.get("port"))
        if (now.get("registered") or {}).get(key):
            left.setdefault("target_groups", []).append(dict(target, reason="registered again since the isolation"))
        else:
            actions["register"].append(target)
            restored.setdefault("target_groups", []).append(target)
    asg = changed.get("auto_scaling_group")
    if asg:
        if now.get("in_asg"):
            left["auto_scaling_group"] = {"now": now["in_asg"], "reason": "attached to a group since the isolation"}
        elif asg.get("decremented"):
            actions["attach_asg"] = asg["name"]
            restored["auto_scaling_group"] = asg["name"]
        else:
            actions["not_restored"]["auto_scaling_group"] = {
                "name": asg["name"],
                "reason": (
                    "the group's desired capacity was kept, so it launched a replacement; attaching the instance "
                    "again would raise the desired capacity: attach it by hand if wanted"
                ),
            }
    return actions


# --------------------------------------------------------------------------------------------------
# Summaries (what the result and the evidence record)
# --------------------------------------------------------------------------------------------------


def instance_summary(instance):
    return {
        "instance_id": instance.get("InstanceId"),
        "state": (instance.get("State") or {}).get("Name"),
        "instance_type": instance.get("InstanceType"),
        "image_id": instance.get("ImageId"),
        "vpc_id": instance.get("VpcId"),
        "subnet_id": instance.get("SubnetId"),
        "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "private_ip": instance.get("PrivateIpAddress"),
        "public_ip": instance.get("PublicIpAddress"),
        "key_name": instance.get("KeyName"),
        "iam_instance_profile": (instance.get("IamInstanceProfile") or {}).get("Arn"),
        "launch_time": isoformat(instance.get("LaunchTime")),
        "instance_security_groups": group_ids(instance.get("SecurityGroups")),
        "tags": tag_dict(instance.get("Tags")),
    }


def eni_summary(eni):
    return {
        "network_interface_id": eni["NetworkInterfaceId"],
        "groups": group_ids(eni.get("Groups")),
        "device_index": (eni.get("Attachment") or {}).get("DeviceIndex"),
        "subnet_id": eni.get("SubnetId"),
        "private_ips": sorted(
            p.get("PrivateIpAddress") for p in eni.get("PrivateIpAddresses") or [] if p.get("PrivateIpAddress")
        )
        or ([eni["PrivateIpAddress"]] if eni.get("PrivateIpAddress") else []),
        "public_ip": (eni.get("Association") or {}).get("PublicIp"),
        "mac_address": eni.get("MacAddress"),
    }


def volume_summary(volume, instance_id):
    attachment = next((a for a in volume.get("Attachments") or [] if a.get("InstanceId") == instance_id), {})
    return {
        "volume_id": volume["VolumeId"],
        "device": attachment.get("Device"),
        "size": volume.get("Size"),
        "encrypted": volume.get("Encrypted"),
        "availability_zone": volume.get("AvailabilityZone"),
    }


def to_json_bytes(value):
    return json.dumps(value, indent=2, sort_keys=True, default=isoformat).encode("utf-8")


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def describe_instance(ec2, caller, instance_id):
    """The instance; ``IsolationInputError`` naming it when it does not exist or is terminated."""
    try:
        answer = caller(ec2, "describe_instances", f"instance {instance_id}", InstanceIds=[instance_id])
    except StepAWSError as err:
        if err.code in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            raise IsolationInputError(f"instance_id: EC2 instance {instance_id!r} does not exist") from None
        raise
    instances = [i for r in answer.get("Reservations") or [] for i in r.get("Instances") or []]
    if not instances:
        raise IsolationInputError(f"instance_id: EC2 instance {instance_id!r} does not exist")
    instance = instances[0]
    state = (instance.get("State") or {}).get("Name")
    if state in ("terminated", "shutting-down"):
        raise IsolationInputError(f"instance_id: EC2 instance {instance_id!r} is {state}: nothing to isolate")
    return instance


def instance_exists(ec2, caller, instance_id):
    try:
        describe_instance(ec2, caller, instance_id)
        return True
    except IsolationInputError:
        return False


def network_interfaces(ec2, caller, instance_id):
    enis = []
    for page in caller.paginate(
        ec2,
        "describe_network_interfaces",
        f"network interfaces of {instance_id}",
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}],
    ):
        enis.extend(page.get("NetworkInterfaces") or [])
    return sorted(enis, key=lambda e: ((e.get("Attachment") or {}).get("DeviceIndex", 0), e["NetworkInterfaceId"]))


def interfaces_by_id(ec2, caller, eni_ids):
    """``{eni_id: [group ids]}`` for the interfaces that still exist."""
    if not eni_ids:
        return {}
    found = {}
    for page in caller.paginate(
        ec2,
        "describe_network_interfaces",
        "network interfaces " + ", ".join(sorted(eni_ids)),
        Filters=[{"Name": "network-interface-id", "Values": sorted(eni_ids)}],
    ):
        for eni in page.get("NetworkInterfaces") or []:
            found[eni["NetworkInterfaceId"]] = group_ids(eni.get("Groups"))
    return found


def attached_volumes(ec2, caller, instance_id):
    volumes = []
    for page in caller.paginate(
        ec2,
        "describe_volumes",
        f"volumes of {instance_id}",
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}],
    ):
        volumes.extend(page.get("Volumes") or [])
    return sorted(volumes, key=lambda v: v["VolumeId"])


def incident_snapshots(ec2, caller, instance_id, incident_id):
    if not incident_id:
        return []
    snaps = []
    for page in caller.paginate(
        ec2,
        "describe_snapshots",
        f"snapshots of {instance_id} for incident {incident_id}",
        OwnerIds=["self"],
        Filters=[
            {"Name": "tag:firebreak:incident", "Values": [str(incident_id)]},
            {"Name": "tag:firebreak:instance-id", "Values": [instance_id]},
        ],
    ):
        snaps.extend(page.get("Snapshots") or [])
    return snaps


def security_group(ec2, caller, group_id, option):
    try:
        answer = caller(ec2, "describe_security_groups", f"security group {group_id}", GroupIds=[group_id])
    except StepAWSError as err:
        if err.code in ("InvalidGroup.NotFound", "InvalidGroupId.Malformed", "InvalidGroupId.NotFound"):
            raise IsolationInputError(f"{option}: security group {group_id!r} does not exist") from None
        raise
    groups = answer.get("SecurityGroups") or []
    if not groups:
        raise IsolationInputError(f"{option}: security group {group_id!r} does not exist")
    return groups[0]


def security_group_by_name(ec2, caller, name, vpc_id):
    answer = caller(
        ec2,
        "describe_security_groups",
        f"security group {name!r} in {vpc_id}",
        Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc_id]}],
    )
    groups = answer.get("SecurityGroups") or []
    return groups[0] if groups else None


def create_group(ec2, caller, name, description, vpc_id, tags, allow_all):
    """Create a security group in ``vpc_id``: no rules at all, or (``allow_all``) all traffic in and out."""
    tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())] + [{"Key": "Name", "Value": name}]
    group_id = caller(
        ec2,
        "create_security_group",
        f"security group {name!r} in {vpc_id}",
        GroupName=name,
        Description=description,
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list}],
    )["GroupId"]
    if allow_all:
        caller(
            ec2,
            "authorize_security_group_ingress",
            f"security group {group_id}",
            GroupId=group_id,
            IpPermissions=[ALL_TRAFFIC_V4, ALL_TRAFFIC_V6],
        )
        # A new group already allows all IPv4 egress; add IPv6.
        caller(
            ec2,
            "authorize_security_group_egress",
            f"security group {group_id}",
            GroupId=group_id,
            IpPermissions=[ALL_TRAFFIC_V6],
        )
    else:
        caller(
            ec2,
            "revoke_security_group_egress",
            f"security group {group_id}",
            GroupId=group_id,
            IpPermissions=[ALL_TRAFFIC_V4],
        )
    return group_id


def protection_flags(ec2, caller, instance_id):
    flags = {}
    for attr in PROTECTION_ATTRIBUTES:
        answer = caller(
            ec2, "describe_instance_attribute", f"{attr} of {instance_id}", InstanceId=instance_id, Attribute=attr
        )
        flags[attr] = bool((answer.get(attr[0].upper() + attr[1:]) or {}).get("Value"))
    return flags


def set_protection(ec2, caller, instance_id, attr, value):
    param = PROTECTION_PARAMETERS[attr]
    caller(
        ec2,
        "modify_instance_attribute",
        f"{attr} of {instance_id}",
        InstanceId=instance_id,
        **{param: {"Value": value}},
    )


def set_eni_groups(ec2, caller, eni_id, groups):
    caller(
        ec2,
        "modify_network_interface_attribute",
        f"network interface {eni_id}",
        NetworkInterfaceId=eni_id,
        Groups=list(groups),
    )


def create_tags(ec2, caller, resource_ids, tags):
    if tags:
        caller(
            ec2,
            "create_tags",
            ", ".join(resource_ids),
            Resources=list(resource_ids),
            Tags=[{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())],
        )


def delete_tags(ec2, caller, resource_id, keys):
    if keys:
        caller(ec2, "delete_tags", resource_id, Resources=[resource_id], Tags=[{"Key": k} for k in sorted(keys)])


def describe_target_health(elbv2, caller, arn, targets=None):
    params = {"TargetGroupArn": arn}
    if targets:
        params["Targets"] = targets
    try:
        return (
            caller(elbv2, "describe_target_health", f"target group {arn}", **params).get("TargetHealthDescriptions")
            or []
        )
    except StepAWSError as err:
        if err.code == "TargetGroupNotFound":
            raise IsolationInputError(f"target_group_arns: target group {arn!r} does not exist") from None
        raise


def all_target_groups(elbv2, caller):
    arns = []
    for page in caller.paginate(
        elbv2,
        "describe_target_groups",
        "target groups",
        token_in="Marker",  # noqa: S106 - a pagination token's name
        token_out="NextMarker",  # noqa: S106
    ):
        arns.extend(
            g["TargetGroupArn"] for g in page.get("TargetGroups") or [] if g.get("TargetType") in ("instance", "ip")
        )
    return arns


def auto_scaling_group_of(autoscaling, caller, instance_id):
    answer = caller(
        autoscaling, "describe_auto_scaling_instances", f"instance {instance_id}", InstanceIds=[instance_id]
    )
    for item in answer.get("AutoScalingInstances") or []:
        return item.get("AutoScalingGroupName")
    return None


def create_instance_snapshots(ec2, caller, instance_id, description, tags):
    """One crash-consistent ``CreateSnapshots`` of every attached volume (boot volume included)."""
    answer = caller(
        ec2,
        "create_snapshots",
        f"volumes of {instance_id}",
        InstanceSpecification={"InstanceId": instance_id, "ExcludeBootVolume": False},
        Description=description,
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
        ],
        CopyTagsFromSource="volume",
    )
    return answer.get("Snapshots") or []


def create_volume_snapshot(ec2, caller, volume_id, description, tags):
    return caller(
        ec2,
        "create_snapshot",
        f"volume {volume_id}",
        VolumeId=volume_id,
        Description=description,
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
        ],
    )


def snapshot_states(ec2, caller, snapshot_ids):
    if not snapshot_ids:
        return {}
    answer = caller(ec2, "describe_snapshots", "snapshots " + ", ".join(snapshot_ids), SnapshotIds=list(snapshot_ids))
    return {s["SnapshotId"]: s.get("State") for s in answer.get("Snapshots") or []}


def detach_from_asg(autoscaling, caller, instance_id, group, decrement):
    caller(
        autoscaling,
        "detach_instances",
        f"instance {instance_id} in Auto Scaling group {group}",
        InstanceIds=[instance_id],
        AutoScalingGroupName=group,
        ShouldDecrementDesiredCapacity=bool(decrement),
    )


def attach_to_asg(autoscaling, caller, instance_id, group):
    caller(
        autoscaling,
        "attach_instances",
        f"instance {instance_id} to Auto Scaling group {group}",
        InstanceIds=[instance_id],
        AutoScalingGroupName=group,
    )


def _by_group(targets):
    grouped = {}
    for target in targets:
        item = {"Id": target["id"]}
        if target.get("port") is not None:
            item["Port"] = int(target["port"])
        if target.get("availability_zone"):
            item["AvailabilityZone"] = target["availability_zone"]
        grouped.setdefault(target["target_group_arn"], []).append(item)
    return grouped


def deregister(elbv2, caller, targets):
    for arn, items in sorted(_by_group(targets).items()):
        caller(elbv2, "deregister_targets", f"target group {arn}", TargetGroupArn=arn, Targets=items)


def register(elbv2, caller, targets):
    for arn, items in sorted(_by_group(targets).items()):
        caller(elbv2, "register_targets", f"target group {arn}", TargetGroupArn=arn, Targets=items)


def target_states(elbv2, caller, targets):
    """``{(arn, id, port): state}`` of the given targets (``unused`` when not registered)."""
    found = {}
    for arn, items in sorted(_by_group(targets).items()):
        try:
            descriptions = (
                caller(elbv2, "describe_target_health", f"target group {arn}", TargetGroupArn=arn, Targets=items).get(
                    "TargetHealthDescriptions"
                )
                or []
            )
        except StepAWSError as err:
            if err.code == "TargetGroupNotFound":
                continue
            raise
        for desc in descriptions:
            target = desc.get("Target") or {}
            found[(arn, target.get("Id"), target.get("Port"))] = (desc.get("TargetHealth") or {}).get("State")
    return found


def registrations(elbv2, caller, targets):
    """``{(arn, id, port): registered?}`` (a draining target counts as not registered)."""
    return {key: state not in ("unused", "draining") for key, state in target_states(elbv2, caller, targets).items()}


def wait_settled(ec2, elbv2, caller, snapshot_ids, targets, timeout, delay=5.0, sleep=None, clock=None):
    """Wait until the snapshots are completed and the targets no longer registered nor draining.

    Returns ``{}`` when settled, else what is still pending (never raises on timeout)."""
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = clock() + max(float(timeout), 0.0)
    while True:
        pending = {}
        states = snapshot_states(ec2, caller, snapshot_ids)
        waiting = sorted(s for s, state in states.items() if state not in ("completed", "error"))
        if waiting:
            pending["snapshots"] = waiting
        if targets and elbv2 is not None:
            still = [list(k) for k, state in target_states(elbv2, caller, targets).items() if state != "unused"]
            if still:
                pending["targets"] = still
        if not pending or clock() >= deadline:
            return pending
        sleep(min(delay, max(deadline - clock(), 0.1)))
