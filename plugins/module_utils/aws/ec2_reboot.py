# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Restart stuck workers (``ec2_reboot``): reboot EC2 instances, or an Auto Scaling instance refresh.

Pure (unit-tested without AWS)
    ``instance_evidence`` (state, status checks, Auto Scaling health and the reboot record of each instance),
    ``is_impaired``, ``reboot_record`` / ``recently`` (the incident's reboot kept as instance tags, so a re-run
    does not reboot again within a window), ``select_targets`` (what to reboot, what to skip and why),
    ``console_tail``.

API layer
    Every call goes through ``step.Caller``; an instance id that does not exist becomes ``RebootInputError``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    StepAWSError,
    StepError,
    iso_utc,
    parse_time,
)

STEP = "ec2_reboot"
REBOOTED_BY = "firebreak:rebooted-by"
REBOOTED_AT = "firebreak:rebooted-at"
CONSOLE_TAIL = 4096
RUNNING = "running"


class RebootInputError(StepError, ValueError):
    """Bad input (an unknown instance, too many instances); nothing was changed."""

    def __init__(self, message, **keys):
        super().__init__(message)
        self.message = message
        self.keys = keys

    def fail_result(self):
        return dict(self.keys)


# --------------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------------


def tags_of(instance):
    return {t.get("Key"): t.get("Value") for t in instance.get("Tags") or []}


def reboot_record(tags):
    """``{"incident_id", "at"}`` of the last reboot a firebreak run recorded on the instance, or None."""
    if not tags.get(REBOOTED_BY):
        return None
    return {"incident_id": tags.get(REBOOTED_BY), "at": tags.get(REBOOTED_AT)}


def recently(record, incident_id, window, now):
    """Whether ``incident_id`` rebooted the instance less than ``window`` seconds before ``now``."""
    if not record or record.get("incident_id") != incident_id or window <= 0:
        return False
    try:
        at = parse_time(record.get("at"))
    except ValueError:
        return False
    return (now - at).total_seconds() < window


def is_impaired(evidence):
    """A stuck worker: a status check (instance or system) reads ``impaired``, or Auto Scaling calls it Unhealthy."""
    return (
        evidence.get("instance_status") == "impaired"
        or evidence.get("system_status") == "impaired"
        or evidence.get("asg_health") == "Unhealthy"
    )


def instance_evidence(instance, status=None, asg_instance=None):
    """What a responder wants to see of one worker before it is rebooted."""
    status = status or {}
    evidence = {
        "instance_id": instance.get("InstanceId"),
        "state": (instance.get("State") or {}).get("Name"),
        "instance_type": instance.get("InstanceType"),
        "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "launch_time": iso_utc(instance["LaunchTime"]) if hasattr(instance.get("LaunchTime"), "astimezone") else None,
        "instance_status": (status.get("InstanceStatus") or {}).get("Status"),
        "system_status": (status.get("SystemStatus") or {}).get("Status"),
        "asg_health": (asg_instance or {}).get("HealthStatus"),
        "asg_lifecycle": (asg_instance or {}).get("LifecycleState"),
        "rebooted": reboot_record(tags_of(instance)),
    }
    return evidence


def select_targets(evidence, explicit, health_filter, incident_id, window, force, now):
    """``(reboot, skipped)``: instance ids to reboot, and ``{id: reason}`` for the others.

    ``explicit``: the ids were named by the caller (every running one is a target); else they are the group's and
    ``health_filter`` ``impaired`` keeps only stuck ones. An instance this incident rebooted within ``window``
    seconds is skipped unless ``force``; an instance that is not running cannot be rebooted."""
    reboot, skipped = [], {}
    for item in evidence:
        iid = item["instance_id"]
        if item["state"] != RUNNING:
            skipped[iid] = f"not running (state {item['state']})"
        elif not explicit and health_filter == "impaired" and not is_impaired(item):
            skipped[iid] = "healthy (status checks ok, Auto Scaling Healthy)"
        elif not force and recently(item["rebooted"], incident_id, window, now):
            skipped[iid] = (
                f"already rebooted by {incident_id} at {item['rebooted']['at']} (within {window}s; force=true)"
            )
        else:
            reboot.append(iid)
    return reboot, skipped


def console_tail(output, limit=CONSOLE_TAIL):
    """The last ``limit`` characters of GetConsoleOutput's ``Output`` (base64 on AWS; moto answers plain text)."""
    if not output:
        return ""
    text = output
    try:
        decoded = base64.b64decode(output, validate=True)
        text = decoded.decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        pass
    return text[-limit:]


def statuses_ok(evidence, ids):
    wanted = [e for e in evidence if e["instance_id"] in ids]
    return bool(wanted) and all(
        e["state"] == RUNNING and e["instance_status"] == "ok" and e["system_status"] == "ok" for e in wanted
    )


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def describe_instances(caller, client, ids):
    """The instances (DescribeInstances), in the order asked; an unknown id is ``RebootInputError``."""
    try:
        pages = caller(client, "describe_instances", f"instances {', '.join(ids)}", InstanceIds=list(ids))
    except StepAWSError as err:
        if err.code in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            raise RebootInputError(f"instance ids {', '.join(ids)}: {err.code}: {err.aws_message}") from None
        raise
    found = {i["InstanceId"]: i for r in pages.get("Reservations") or [] for i in r.get("Instances") or []}
    missing = [i for i in ids if i not in found]
    if missing:
        raise RebootInputError(f"no such instance: {', '.join(missing)}")
    return [found[i] for i in ids]


def describe_statuses(caller, client, ids):
    answer = caller(
        client,
        "describe_instance_status",
        f"instances {', '.join(ids)}",
        InstanceIds=list(ids),
        IncludeAllInstances=True,
    )
    return {s["InstanceId"]: s for s in answer.get("InstanceStatuses") or []}


def read_evidence(caller, client, ids, asg_instances=None):
    instances = describe_instances(caller, client, ids)
    statuses = describe_statuses(caller, client, ids)
    asg_instances = asg_instances or {}
    return [instance_evidence(i, statuses.get(i["InstanceId"]), asg_instances.get(i["InstanceId"])) for i in instances]


def console_outputs(caller, client, ids, warn):
    """``{id: tail}``; a call that fails (unsupported, not yet available) is a warning, not a failure."""
    out = {}
    for iid in ids:
        try:
            answer = caller(client, "get_console_output", f"instance {iid}", InstanceId=iid)
            out[iid] = console_tail(answer.get("Output"))
        except StepAWSError as err:
            warn(f"console output of {iid} not captured: {err}")
            out[iid] = None
    return out


def wait_statuses_ok(caller, client, ids, timeout, asg_instances=None, sleep=time.sleep, clock=time.monotonic):
    """Read the instances until all are running with both status checks ``ok`` or ``timeout`` passes;
    ``(ok, evidence)``."""
    deadline = clock() + max(0, timeout)
    while True:
        evidence = read_evidence(caller, client, ids, asg_instances)
        if statuses_ok(evidence, ids) or clock() >= deadline:
            return statuses_ok(evidence, ids), evidence
        sleep(min(10.0, max(0.5, deadline - clock())))


def now_utc():
    return datetime.datetime.now(datetime.UTC)
