# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Load balancer target drain: deregister targets (given ones, or all in an Availability Zone), wait
for draining, and re-register exactly those on release.

Pure decisions (``normalize_targets``, ``select_targets``, ``decide_release``) are unit-tested
without AWS; the API functions take a boto3 ``elbv2`` client and a ``step.Caller``.
"""

from __future__ import annotations

import ipaddress
import re
import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError

STEP = "alb_drain"
_TG_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$"
)
_TG_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
_AZ_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
GONE_STATES = ("unused", "draining")


class DrainInputError(StepError, ValueError):
    """A bad value, found before anything was changed."""


def validate_target_group(value):
    text = str(value or "").strip()
    if _TG_ARN_RE.match(text) or _TG_NAME_RE.match(text):
        return text
    raise DrainInputError(f"target_groups: {value!r} is neither a target group ARN nor a target group name")


def validate_zone(value):
    text = str(value or "").strip()
    if not _AZ_RE.match(text):
        raise DrainInputError(f"availability_zone: {value!r} is not an Availability Zone name (like us-east-1a)")
    return text


def normalize_targets(targets):
    """``[{"id", "port"}]`` from the ``targets`` option; ``DrainInputError`` naming a bad entry."""
    out = []
    for item in targets or []:
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict) or not str(item.get("id") or "").strip():
            raise DrainInputError(f"targets: {item!r} has no id (an instance id, an IP address or a Lambda ARN)")
        port = item.get("port")
        if port not in (None, ""):
            try:
                port = int(port)
            except (TypeError, ValueError):
                raise DrainInputError(f"targets: port {item.get('port')!r} of {item['id']!r} is not a number") from None
            if not 1 <= port <= 65535:
                raise DrainInputError(f"targets: port {port} of {item['id']!r} is not between 1 and 65535")
        else:
            port = None
        out.append({"id": str(item["id"]).strip(), "port": port})
    return out


def registered(descriptions):
    """``[{"id", "port", "state", "availability_zone"?}]`` of the targets still registered (not draining)."""
    out = []
    for desc in descriptions or []:
        target = desc.get("Target") or {}
        state = (desc.get("TargetHealth") or {}).get("State")
        if state in GONE_STATES:
            continue
        entry = {"id": target.get("Id"), "port": target.get("Port"), "state": state}
        if target.get("AvailabilityZone"):
            entry["availability_zone"] = target["AvailabilityZone"]
        out.append(entry)
    return out


def select_targets(current, requested=None, zone=None, zone_of=None):
    """Which registered targets to deregister.

    ``current``: ``registered(...)`` of a target group; ``requested``: ``normalize_targets(...)`` (a
    request without a port matches every port of that id); ``zone`` with ``zone_of(target) -> az``:
    every target in that Availability Zone.  Returns ``(selected, not_registered)`` where
    ``not_registered`` are requested targets that are not (or no longer) registered."""
    selected, matched = [], set()
    for target in current:
        hit = False
        for index, want in enumerate(requested or []):
            if want["id"] == target["id"] and (want["port"] is None or want["port"] == target["port"]):
                hit = True
                matched.add(index)
        if zone and zone_of is not None and zone_of(target) == zone:
            hit = True
        if hit:
            entry = {"id": target["id"], "port": target["port"]}
            if target.get("availability_zone"):
                entry["availability_zone"] = target["availability_zone"]
            if zone:
                entry["zone"] = zone_of(target)
            selected.append(entry)
    not_registered = [want for index, want in enumerate(requested or []) if index not in matched]
    return selected, not_registered


def zone_of_ip(address, subnets):
    """The Availability Zone of the subnet (``[(cidr, az)]``) holding ``address``, or ``None``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for cidr, zone in subnets:
        try:
            if ip in ipaddress.ip_network(cidr):
                return zone
        except ValueError:
            continue
    return None


def decide_release(changed, current):
    """``(to_register, restored, left_alone)`` for one target group's entry, given its ``registered(...)``."""
    now = {(t["id"], t["port"]) for t in current}
    to_register, left = [], []
    for target in changed.get("deregistered") or []:
        if (target["id"], target.get("port")) in now:
            left.append(dict(target, reason="registered again since the drain"))
        else:
            to_register.append(target)
    return to_register, list(to_register), left


def plan_tags(current, wanted):
    return {
        key: {"previous": current.get(key), "value": value}
        for key, value in wanted.items()
        if current.get(key) != value
    }


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def describe_target_group(elbv2, caller, ref):
    params = {"TargetGroupArns": [ref]} if ref.startswith("arn:") else {"Names": [ref]}
    try:
        groups = caller(elbv2, "describe_target_groups", f"target group {ref}", **params).get("TargetGroups") or []
    except StepAWSError as err:
        if err.code in ("TargetGroupNotFound", "ValidationError"):
            raise DrainInputError(f"target_groups: target group {ref!r} does not exist") from None
        raise
    if not groups:
        raise DrainInputError(f"target_groups: target group {ref!r} does not exist")
    return groups[0]


def target_health(elbv2, caller, arn, targets=None):
    params = {"TargetGroupArn": arn}
    if targets:
        params["Targets"] = targets
    return (
        caller(elbv2, "describe_target_health", f"target group {arn}", **params).get("TargetHealthDescriptions") or []
    )


def _api_targets(targets):
    out = []
    for target in targets:
        item = {"Id": target["id"]}
        if target.get("port") is not None:
            item["Port"] = int(target["port"])
        if target.get("availability_zone"):
            item["AvailabilityZone"] = target["availability_zone"]
        out.append(item)
    return out


def deregister(elbv2, caller, arn, targets):
    caller(elbv2, "deregister_targets", f"target group {arn}", TargetGroupArn=arn, Targets=_api_targets(targets))


def register(elbv2, caller, arn, targets):
    caller(elbv2, "register_targets", f"target group {arn}", TargetGroupArn=arn, Targets=_api_targets(targets))


def tags_of(elbv2, caller, arn):
    answer = caller(elbv2, "describe_tags", f"target group {arn}", ResourceArns=[arn])
    for item in answer.get("TagDescriptions") or []:
        return {t["Key"]: t["Value"] for t in item.get("Tags") or []}
    return {}


def add_tags(elbv2, caller, arn, tags):
    if tags:
        caller(
            elbv2,
            "add_tags",
            f"target group {arn}",
            ResourceArns=[arn],
            Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        )


def remove_tags(elbv2, caller, arn, keys):
    if keys:
        caller(elbv2, "remove_tags", f"target group {arn}", ResourceArns=[arn], TagKeys=sorted(keys))


def instance_zones(ec2, caller, instance_ids):
    if not instance_ids:
        return {}
    zones = {}
    answer = caller(
        ec2,
        "describe_instances",
        "instances " + ", ".join(sorted(instance_ids)),
        Filters=[{"Name": "instance-id", "Values": sorted(instance_ids)}],
    )
    for reservation in answer.get("Reservations") or []:
        for instance in reservation.get("Instances") or []:
            zones[instance["InstanceId"]] = (instance.get("Placement") or {}).get("AvailabilityZone")
    return zones


def vpc_subnets(ec2, caller, vpc_id):
    answer = caller(ec2, "describe_subnets", f"subnets of {vpc_id}", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    return [(s["CidrBlock"], s["AvailabilityZone"]) for s in answer.get("Subnets") or []]


def wait_drained(elbv2, caller, arn, targets, timeout, delay=5.0, sleep=time.sleep, clock=time.monotonic):
    """Wait until none of ``targets`` is registered or draining; returns what is still pending."""
    deadline = clock() + max(float(timeout), 0.0)
    while True:
        descriptions = target_health(elbv2, caller, arn, _api_targets(targets))
        pending = []
        for desc in descriptions:
            target, state = desc.get("Target") or {}, (desc.get("TargetHealth") or {}).get("State")
            if state != "unused":
                pending.append({"id": target.get("Id"), "port": target.get("Port"), "state": state})
        if not pending or clock() >= deadline:
            return pending
        sleep(min(delay, max(deadline - clock(), 0.1)))
