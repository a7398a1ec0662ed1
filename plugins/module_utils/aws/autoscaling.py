# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Auto Scaling steps: worker capacity (``asg_capacity``) and the instance refresh of ``ec2_reboot``.

Pure (unit-tested without AWS)
    ``capacity_of`` (the three sizes and the InService count of a group), ``decide_capacity`` (what a
    scale changes, refusing a desired capacity above the maximum unless ``raise_max``), ``decide_restore``
    (what a restore puts back from the incident's recorded scales, and whether someone changed the group
    meanwhile), ``active_refresh`` (an instance refresh still running), ``refresh_record`` (the record of
    the incident's last refresh, kept as group tags).

API layer
    Every call goes through ``step.Caller`` (bounded retries naming the call); a group that does not exist
    becomes ``AutoScalingInputError`` naming it (DescribeAutoScalingGroups answers an empty list, not an
    error, for an unknown name).
"""

from __future__ import annotations

import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepError

STEP = "asg_capacity"
SIZES = ("min_size", "desired_capacity", "max_size")
API_SIZES = {"min_size": "MinSize", "desired_capacity": "DesiredCapacity", "max_size": "MaxSize"}
# Instance refresh statuses (DescribeInstanceRefreshes): a refresh in one of these blocks another.
ACTIVE_REFRESH = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
DONE_REFRESH = ("Successful", "Failed", "Cancelled", "RollbackFailed", "RollbackSuccessful")
REFRESH_TAGS = ("firebreak:refreshed-by", "firebreak:refresh-id", "firebreak:refreshed-at")


class AutoScalingInputError(StepError, ValueError):
    """Bad input, or a group that does not exist; nothing was changed."""

    def __init__(self, message, **keys):
        super().__init__(message)
        self.message = message
        self.keys = keys

    def fail_result(self):
        return dict(self.keys)


class AutoScalingStateError(StepError):
    """The group does not read back as the step left it, or a bounded wait ran out; ``keys`` carry the result so
    far and what was read last."""

    def __init__(self, message, **keys):
        super().__init__(message)
        self.message = message
        self.keys = keys

    def fail_result(self):
        return dict(self.keys)


class AutoScalingWaitTimeout(AutoScalingStateError):
    """A bounded wait ran out."""


# --------------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------------


def capacity_of(group):
    """``{min_size, desired_capacity, max_size}`` of a DescribeAutoScalingGroups entry."""
    return {name: int(group.get(api) or 0) for name, api in API_SIZES.items()}


def in_service(group):
    """How many of the group's instances are InService and Healthy."""
    return sum(
        1
        for i in group.get("Instances") or []
        if i.get("LifecycleState") == "InService" and i.get("HealthStatus", "Healthy") == "Healthy"
    )


def state_of(group):
    """The step's ``before``/``after``: the sizes, the InService count and each instance's state."""
    return dict(
        capacity_of(group),
        in_service=in_service(group),
        instances=[
            {
                "instance_id": i.get("InstanceId"),
                "lifecycle_state": i.get("LifecycleState"),
                "health_status": i.get("HealthStatus"),
                "availability_zone": i.get("AvailabilityZone"),
            }
            for i in group.get("Instances") or []
        ],
    )


def validate_sizes(**sizes):
    for name, value in sizes.items():
        if value is not None and value < 0:
            raise AutoScalingInputError(f"{name} must be >= 0, got {value}")


def decide_capacity(current, desired=None, min_size=None, max_size=None, raise_max=False):
    """The sizes a scale sets: ``{"to": {...}, "changes": {name: {"old", "new"}}}``.

    ``desired`` is required. A desired capacity above the (given, else current) maximum is refused naming both,
    unless ``raise_max`` (the maximum is then raised to it); below the (given, else current) minimum it is refused
    unless a ``min_size`` at most the desired capacity is given. A maximum below the minimum is refused."""
    if desired is None:
        raise AutoScalingInputError("desired_capacity is required to scale (state=scaled)")
    validate_sizes(desired_capacity=desired, min_size=min_size, max_size=max_size)
    to = dict(current)
    if min_size is not None:
        to["min_size"] = min_size
    if max_size is not None:
        to["max_size"] = max_size
    to["desired_capacity"] = desired
    if desired > to["max_size"]:
        if not raise_max:
            where = "the given max_size" if max_size is not None else "the group's maximum"
            raise AutoScalingInputError(
                f"desired_capacity {desired} is above {where} {to['max_size']}: set raise_max=true to raise the "
                f"maximum to {desired} (or give max_size)",
                desired_capacity=desired,
                max_size=to["max_size"],
            )
        to["max_size"] = desired
    if desired < to["min_size"]:
        raise AutoScalingInputError(
            f"desired_capacity {desired} is below the {'given min_size' if min_size is not None else 'group minimum'} "
            f"{to['min_size']}: give min_size {desired} or lower to scale in that far",
            desired_capacity=desired,
            min_size=to["min_size"],
        )
    if to["min_size"] > to["max_size"]:
        raise AutoScalingInputError(f"min_size {to['min_size']} is above max_size {to['max_size']}")
    changes = {name: {"old": current[name], "new": to[name]} for name in SIZES if current[name] != to[name]}
    return {"to": to, "changes": changes}


def entries_for(entries, group_name, group_arn):
    """The recorded scales (containment entries of ``asg_capacity``) of this group, oldest first."""
    mine = []
    for entry in entries or []:
        if not isinstance(entry, dict) or entry.get("step") not in (None, STEP):
            continue
        if entry.get("resource") not in (group_arn, group_name) and entry.get("group_name") != group_name:
            continue
        capacity = (entry.get("changed") or {}).get("capacity") or {}
        if not isinstance(capacity.get("from"), dict) or not isinstance(capacity.get("to"), dict):
            raise AutoScalingInputError(
                f"containment entry {entry.get('id')!r} of {group_name} has no capacity from/to: "
                f"{entry.get('changed')!r}"
            )
        mine.append(entry)
    return sorted(mine, key=lambda e: (e.get("seq") or 0, e.get("at") or ""))


def decide_restore(current, entries, force=False):
    """What a restore does for the recorded scales ``entries`` (oldest first) of one group.

    ``{"action": "restore" | "release" | "drift" | "none", "to", "changes", "left_alone", "reason"}``. The
    group goes back to the first scale's ``from`` when it still has the last scale's ``to`` (every size). When it
    already has the recorded values, the entries are only released. Otherwise someone changed the group meanwhile:
    it is left alone (``drift``, the entries stay open for a person to decide) unless ``force``."""
    if not entries:
        return {
            "action": "none",
            "to": dict(current),
            "changes": {},
            "left_alone": {},
            "reason": "no unreleased scale of this group recorded for the incident: nothing to restore",
        }
    recorded = {name: int(entries[0]["changed"]["capacity"]["from"][name]) for name in SIZES}
    expected = {name: int(entries[-1]["changed"]["capacity"]["to"][name]) for name in SIZES}
    changes = {name: {"old": current[name], "new": recorded[name]} for name in SIZES if current[name] != recorded[name]}
    if not changes:
        return {
            "action": "release",
            "to": recorded,
            "changes": {},
            "left_alone": {},
            "reason": "the group already has the recorded sizes; the recorded scales are released",
        }
    if current != expected and not force:
        return {
            "action": "drift",
            "to": dict(current),
            "changes": {},
            "left_alone": {"current": dict(current), "scaled_to": expected, "recorded": recorded},
            "reason": (
                f"the group is at {_sizes(current)}, not the {_sizes(expected)} this incident set: someone changed it "
                f"meanwhile, so it is left alone (the recorded sizes are {_sizes(recorded)}; force=true puts them back)"
            ),
        }
    return {
        "action": "restore",
        "to": recorded,
        "changes": changes,
        "left_alone": {},
        "reason": f"{_sizes(current)} -> {_sizes(recorded)} (the sizes recorded before the incident's first scale)",
    }


def _sizes(sizes):
    return f"min/desired/max {sizes['min_size']}/{sizes['desired_capacity']}/{sizes['max_size']}"


def describe_sizes(sizes):
    return _sizes(sizes)


def active_refresh(refreshes):
    """The first instance refresh in an active status (DescribeInstanceRefreshes lists newest first), or None."""
    for refresh in refreshes or []:
        if refresh.get("Status") in ACTIVE_REFRESH:
            return refresh
    return None


def refresh_record(tags):
    """``{"incident_id", "refresh_id", "at"}`` from a group's tags (``[{Key, Value}]``), or None."""
    values = {t.get("Key"): t.get("Value") for t in tags or []}
    if not values.get(REFRESH_TAGS[0]):
        return None
    return {
        "incident_id": values.get(REFRESH_TAGS[0]),
        "refresh_id": values.get(REFRESH_TAGS[1]),
        "at": values.get(REFRESH_TAGS[2]),
    }


def refresh_summary(refresh):
    if not refresh:
        return None
    out = {
        "instance_refresh_id": refresh.get("InstanceRefreshId"),
        "status": refresh.get("Status"),
        "status_reason": refresh.get("StatusReason"),
        "percentage_complete": refresh.get("PercentageComplete"),
        "instances_to_update": refresh.get("InstancesToUpdate"),
        "min_healthy_percentage": (refresh.get("Preferences") or {}).get("MinHealthyPercentage"),
    }
    for key, api in (("start_time", "StartTime"), ("end_time", "EndTime")):
        value = refresh.get(api)
        out[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def describe_group(caller, client, name):
    groups = (
        caller(
            client, "describe_auto_scaling_groups", f"Auto Scaling group {name!r}", AutoScalingGroupNames=[name]
        ).get("AutoScalingGroups")
        or []
    )
    if not groups:
        raise AutoScalingInputError(f"no Auto Scaling group named {name!r}", resource=name)
    return groups[0]


def find_group(caller, client, name):
    """The group, or None when it does not exist (a restore reports it gone)."""
    try:
        return describe_group(caller, client, name)
    except AutoScalingInputError:
        return None


def update_sizes(caller, client, name, sizes, resource=None):
    params = {API_SIZES[key]: value for key, value in sizes.items()}
    caller(
        client,
        "update_auto_scaling_group",
        resource or f"Auto Scaling group {name!r}",
        AutoScalingGroupName=name,
        **params,
    )


def wait_in_service(caller, client, name, timeout, sleep=time.sleep, clock=time.monotonic, interval=5.0):
    """Read the group until as many instances are InService and Healthy as it desires (and no more instances than
    that are left, for a scale-in), or ``timeout`` seconds pass (``AutoScalingWaitTimeout`` with the last state)."""
    deadline = clock() + max(0, timeout)
    while True:
        group = describe_group(caller, client, name)
        desired = int(group.get("DesiredCapacity") or 0)
        if in_service(group) == desired and len(group.get("Instances") or []) == desired:
            return group
        if clock() >= deadline:
            raise AutoScalingWaitTimeout(
                f"{name}: {in_service(group)} of {desired} instances InService and Healthy after {timeout}s",
                after=state_of(group),
            )
        sleep(min(interval, max(0.5, deadline - clock())))


def describe_refreshes(caller, client, name):
    return (
        caller(client, "describe_instance_refreshes", f"Auto Scaling group {name!r}", AutoScalingGroupName=name).get(
            "InstanceRefreshes"
        )
        or []
    )


def wait_refresh(caller, client, name, refresh_id, timeout, sleep=time.sleep, clock=time.monotonic, interval=10.0):
    """Read the refresh until it is done (any final status) or ``timeout`` seconds pass; returns the last read."""
    deadline = clock() + max(0, timeout)
    while True:
        refreshes = describe_refreshes(caller, client, name)
        refresh = next((r for r in refreshes if r.get("InstanceRefreshId") == refresh_id), None)
        if refresh is None or refresh.get("Status") in DONE_REFRESH or clock() >= deadline:
            return refresh
        sleep(min(interval, max(0.5, deadline - clock())))
