# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""RDS recovery steps (Aurora/Neptune/DocumentDB cluster failover, Multi-AZ instance failover,
point-in-time restore): the API layer and the pure decisions.

* Decisions (no AWS): ``choose_failover_target``, ``validate_restore_time``, ``instance_restore_window``,
  ``cluster_instance_plan``, ``restore_ownership``, ``replaced_identifier``.  Unit-tested without AWS.
* API layer: one call (or one listing) per function, every call made through ``step.Caller`` (bounded
  retries; a call that keeps failing raises ``StepAWSError`` naming the call, the AWS error code and
  the resource).  A missing cluster or instance becomes ``RDSInputError`` naming it.

Neptune and DocumentDB clusters are served by the same RDS API (``DescribeDBClusters``,
``FailoverDBCluster``, ``RestoreDBClusterToPointInTime``), so one code path handles every engine.
"""

from __future__ import annotations

import datetime
import re
import time

from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    StepAWSError,
    StepError,
    incident_tags,
    iso_utc,
    parse_time,
)

POLL_DELAY = 5.0
FIRST_POLL_DELAY = 1.0

# Tags our restore puts on what it creates: how a re-run recognises its own earlier restore.
TAG_RESTORED_FROM = "firebreak:restored-from"
TAG_RESTORED_TO_TIME = "firebreak:restored-to-time"
TAG_FAILOVER_INCIDENT = "firebreak:failover-incident"
TAG_FAILOVER_AT = "firebreak:failover-at"

IDENTIFIER_MAX = 63
IDENTIFIER_RULES = (
    "1-63 letters, digits or hyphens, starting with a letter, no two consecutive hyphens, not ending with a hyphen"
)


class RDSError(StepError):
    """A step failure with a message for the operator; ``details`` go into ``fail_json``."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def fail_result(self):
        return dict(self.details)


class RDSInputError(RDSError):
    """Bad input (unknown cluster, non-member target, time out of range...): nothing was changed."""


class RDSWaitTimeout(RDSError):
    """The resource did not reach the wanted state in ``wait_timeout`` seconds."""


def with_state(run):
    """``run(module, state)`` as ``step.run_step`` calls a step: on failure, what was read and decided
    (``state["result"]``) goes with the error, ``changed`` only if the call that acts was made
    (``state["acted"]``)."""

    def step(module, result):
        state = {}
        try:
            return run(module, state)
        except StepError:
            result.update(state.get("result", {}), changed=bool(state.get("acted")))
            raise

    return step


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def as_utc(value):
    """An aware UTC datetime for a botocore datetime, an ISO string or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)
    return parse_time(value)


def tag_dict(tag_list) -> dict:
    """``{key: value}`` from RDS's ``[{Key, Value}]`` (or a dict)."""
    return dict(tag_list) if isinstance(tag_list, dict) else boto3_tag_list_to_ansible_dict(tag_list)


def tag_list(tags: dict) -> list:
    return [{"Key": k, "Value": str(v)} for k, v in tags.items()]


def identifier_problem(text: str) -> str | None:
    """Why ``text`` is not a valid RDS identifier (DB clusters and instances alike), or None."""
    if not text:
        return "it is empty"
    if len(text) > IDENTIFIER_MAX:
        return f"it is {len(text)} characters long (at most {IDENTIFIER_MAX})"
    if not re.fullmatch(r"[A-Za-z0-9-]+", text):
        return "it has characters other than letters, digits and hyphens"
    if not text[0].isalpha():
        return "it does not start with a letter"
    if "--" in text:
        return "it has two consecutive hyphens"
    if text.endswith("-"):
        return "it ends with a hyphen"
    return None


def validate_identifier(value, option) -> str:
    """An RDS identifier given as ``option``, in lower case.

    RDS identifiers are case-insensitive and stored in lower case (``ORDERS-DB`` is created, and answered,
    as ``orders-db``): every identifier a step takes is folded here, so it compares equal to what the API
    returns.  Raises ``RDSInputError`` naming the value and the rule it breaks."""
    text = str(value or "").strip()
    problem = identifier_problem(text)
    if problem:
        raise RDSInputError(f"{option}: {value!r} is not a valid DB identifier: {problem} ({IDENTIFIER_RULES})")
    return text.lower()


def derived_identifier(name: str, option: str, given: str, suffix_room: int | None = None) -> str:
    """Check an identifier the step derives from ``option`` (``given``) before anything is changed.

    ``suffix_room``: how many characters the step appends to ``given``, so the message can say how long
    ``given`` may be.  Raises ``RDSInputError`` naming the value, the derived identifier and the rule."""
    problem = identifier_problem(name)
    if problem:
        hint = f"; choose a {option} of at most {IDENTIFIER_MAX - suffix_room} characters" if suffix_room else ""
        raise RDSInputError(
            f"{option} {given!r}: the identifier {name!r} the step derives from it is not a valid DB identifier: "
            f"{problem} ({IDENTIFIER_RULES}){hint}"
        )
    return name.lower()


def replaced_identifier(source_id: str, incident_id) -> str:
    """``<source>-replaced-<incident>``: the incident id in lower case with every run of other characters
    one hyphen, cut so that the name has at most 63 characters.  A source too long to leave room for the
    incident is refused, naming the name it would need."""
    incident = re.sub(r"[^a-z0-9]+", "-", str(incident_id or "").lower()).strip("-")
    if not incident:
        raise RDSInputError("cut-over needs an incident id (incident_id) to name the replaced source")
    stem = f"{source_id}-replaced-"
    name = (stem + incident)[:IDENTIFIER_MAX].rstrip("-")
    if len(name) <= len(stem):
        name = stem + incident  # no room for the incident: refused below, naming the full name
    problem = identifier_problem(name)
    if problem:
        raise RDSInputError(
            f"cut-over: the source's new identifier {name!r} (<source>-replaced-<incident>) is not a valid DB "
            f"identifier: {problem} ({IDENTIFIER_RULES}); a cut-over needs a source of at most "
            f"{IDENTIFIER_MAX - len('-replaced-x')} characters"
        )
    return name


# --------------------------------------------------------------------------------------------------
# Cluster failover: decisions
# --------------------------------------------------------------------------------------------------


def cluster_writer(cluster: dict) -> str | None:
    for member in cluster.get("DBClusterMembers") or []:
        if member.get("IsClusterWriter"):
            return member.get("DBInstanceIdentifier")
    return None


def cluster_members(cluster: dict) -> list[str]:
    return [m.get("DBInstanceIdentifier") for m in cluster.get("DBClusterMembers") or []]


def member_state(cluster: dict, instances: dict) -> dict:
    """The before/after record of a cluster: writer, readers (sorted), status, each member's class/AZ/status."""
    writer = cluster_writer(cluster)
    members = []
    for member in cluster.get("DBClusterMembers") or []:
        ident = member.get("DBInstanceIdentifier")
        inst = instances.get(ident) or {}
        members.append(
            {
                "id": ident,
                "writer": bool(member.get("IsClusterWriter")),
                "promotion_tier": member.get("PromotionTier", inst.get("PromotionTier")),
                "instance_class": inst.get("DBInstanceClass"),
                "availability_zone": inst.get("AvailabilityZone"),
                "status": inst.get("DBInstanceStatus"),
            }
        )
    members.sort(key=lambda m: (not m["writer"], m["id"]))
    return {
        "writer": writer,
        "readers": sorted(m["id"] for m in members if not m["writer"]),
        "status": cluster.get("Status"),
        "members": members,
    }


def _tier(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 15  # RDS's lowest priority


def rank_candidates(cluster: dict, instances: dict) -> list[dict]:
    """The readers, best failover target first, each with why it ranks where it does.

    Order: ``available`` first; then same instance class as the writer (a smaller writer after a failover
    is a second incident); then promotion tier (RDS: tier 0 is the highest priority, 15 the lowest); then
    an Availability Zone other than the writer's (survives an AZ problem); then the identifier, so the
    choice is deterministic.
    """
    writer = cluster_writer(cluster)
    writer_inst = instances.get(writer) or {}
    writer_class = writer_inst.get("DBInstanceClass")
    writer_az = writer_inst.get("AvailabilityZone")
    tiers = {m.get("DBInstanceIdentifier"): m.get("PromotionTier") for m in cluster.get("DBClusterMembers") or []}
    ranked = []
    for ident in cluster_members(cluster):
        if ident == writer:
            continue
        inst = instances.get(ident) or {}
        tier = _tier(tiers.get(ident, inst.get("PromotionTier")))
        entry = {
            "id": ident,
            "status": inst.get("DBInstanceStatus", "unknown"),
            "instance_class": inst.get("DBInstanceClass"),
            "availability_zone": inst.get("AvailabilityZone"),
            "promotion_tier": tier,
            "same_class": writer_class is not None and inst.get("DBInstanceClass") == writer_class,
            "other_az": bool(writer_az) and inst.get("AvailabilityZone") not in (None, writer_az),
        }
        entry["eligible"] = entry["status"] == "available"
        ranked.append(entry)
    ranked.sort(key=lambda c: (not c["eligible"], not c["same_class"], c["promotion_tier"], not c["other_az"], c["id"]))
    return ranked


def choose_failover_target(cluster: dict, instances: dict, target=None, failover_from=None) -> dict:
    """Decide the failover: ``{"changed", "target", "reason", "candidates"}``.

    Raises ``RDSInputError`` (naming the value) for a target that is not a member or not ``available``,
    a cluster without writer, or no eligible reader.  An asked target that already is the writer, or a
    ``failover_from`` instance that no longer is the writer, is no change (not an error).
    """
    cluster_id = cluster.get("DBClusterIdentifier")
    members = cluster_members(cluster)
    writer = cluster_writer(cluster)
    candidates = rank_candidates(cluster, instances)
    if target is not None:
        if target not in members:
            raise RDSInputError(
                f"target {target!r} is not a member of DB cluster {cluster_id!r} "
                f"(members: {', '.join(sorted(members)) or 'none'})"
            )
        if target == writer:
            return {
                "changed": False,
                "target": target,
                "reason": f"{target} already is the writer of {cluster_id}",
                "candidates": candidates,
            }
    if failover_from is not None and failover_from != writer:
        return {
            "changed": False,
            "target": writer,
            "reason": (
                f"the writer of {cluster_id} is {writer}, not {failover_from} (failover_from): "
                "it was already failed over"
            ),
            "candidates": candidates,
        }
    if writer is None:
        raise RDSInputError(f"DB cluster {cluster_id!r} has no writer instance to fail over from")
    status = cluster.get("Status", "available")
    if status != "available":
        raise RDSInputError(f"DB cluster {cluster_id!r} is {status}, not available: not failing it over now")
    if target is not None:
        status = (instances.get(target) or {}).get("DBInstanceStatus", "unknown")
        if status != "available":
            raise RDSInputError(f"target {target!r} of DB cluster {cluster_id!r} is {status}, not available")
        return {
            "changed": True,
            "target": target,
            "reason": f"from {writer} to {target} (requested)",
            "candidates": candidates,
        }
    eligible = [c for c in candidates if c["eligible"]]
    if not eligible:
        states = ", ".join(f"{c['id']}={c['status']}" for c in candidates) or "no readers"
        raise RDSInputError(f"DB cluster {cluster_id!r} has no available reader to fail over to ({states})")
    best = eligible[0]
    why = [f"promotion tier {best['promotion_tier']}"]
    if best["same_class"]:
        why.insert(0, f"same class {best['instance_class']}")
    if best["other_az"]:
        why.append(f"other AZ {best['availability_zone']}")
    return {
        "changed": True,
        "target": best["id"],
        "reason": f"from {writer} to {best['id']} (best reader: {', '.join(why)})",
        "candidates": candidates,
    }


# --------------------------------------------------------------------------------------------------
# Point-in-time restore: decisions
# --------------------------------------------------------------------------------------------------


def instance_restore_window(instance: dict, automated_backup: dict | None, now) -> tuple:
    """``(earliest, latest, how)`` restorable times of a DB instance.

    DescribeDBInstances gives only ``LatestRestorableTime``; the earliest comes from
    DescribeDBInstanceAutomatedBackups' ``RestoreWindow.EarliestTime``.  Where that is missing (moto
    answers without it), it is derived: the later of the instance's creation and now minus the backup
    retention period.  A retention period of 0 means automated backups are off: no window.
    """
    retention = int(instance.get("BackupRetentionPeriod") or 0)
    window = (automated_backup or {}).get("RestoreWindow") or {}
    latest = as_utc(window.get("LatestTime")) or as_utc(instance.get("LatestRestorableTime"))
    earliest = as_utc(window.get("EarliestTime"))
    how = "reported"
    if earliest is None:
        if retention <= 0:
            return None, None, "automated backups are off (BackupRetentionPeriod 0)"
        created = as_utc(instance.get("InstanceCreateTime"))
        floor = now - datetime.timedelta(days=retention)
        earliest = max(created, floor) if created else floor
        how = f"derived: later of InstanceCreateTime and now minus BackupRetentionPeriod ({retention} days)"
    return earliest, latest, how


def cluster_restore_window(cluster: dict) -> tuple:
    return as_utc(cluster.get("EarliestRestorableTime")), as_utc(cluster.get("LatestRestorableTime")), "reported"


def validate_restore_time(value, earliest, latest, now, source="the source") -> dict:
    """Check the restore time; ``{"use_latest": bool, "restore_time": datetime | None}``.

    Empty ``value`` (or ``latest``) means the latest restorable time.  Raises ``RDSInputError`` naming the
    value for an unparseable time, a time in the future, after the latest or before the earliest
    restorable time, or a source with no restore window.
    """
    text = "" if value is None else str(value).strip()
    if earliest is None and latest is None:
        raise RDSInputError(f"{source} has no restorable time window (automated backups off?): cannot restore it")
    if text == "" or text.lower() == "latest":
        return {"use_latest": True, "restore_time": None}
    try:
        when = parse_time(text)
    except ValueError as e:
        raise RDSInputError(f"restore time: {e}") from None
    if when > now:
        raise RDSInputError(f"restore time {text!r} ({iso_utc(when)}) is in the future (now {iso_utc(now)})")
    if latest is not None and when > latest:
        raise RDSInputError(
            f"restore time {text!r} ({iso_utc(when)}) is after the latest restorable time of {source} "
            f"({iso_utc(latest)}); leave the time empty to restore to the latest restorable time"
        )
    if earliest is not None and when < earliest:
        raise RDSInputError(
            f"restore time {text!r} ({iso_utc(when)}) is before the earliest restorable time of {source} "
            f"({iso_utc(earliest)})"
        )
    return {"use_latest": False, "restore_time": when}


def cluster_instance_plan(source_cluster: dict, source_instances: dict, target_id: str) -> list[dict]:
    """The instances a restored cluster needs: one per source member, writer first.

    Each ``{"id", "source", "instance_class", "availability_zone", "promotion_tier", "parameter_group",
    "writer"}``; ids are ``<target>-1`` (the writer) to ``<target>-N`` (readers in identifier order),
    so a re-run finds the ones it already created.  A target too long for them (62 characters and more;
    61 with ten members or more) raises ``RDSInputError`` naming the first one: never cut them, since a
    cut id can end in a hyphen or repeat another.
    """
    writer = cluster_writer(source_cluster)
    tiers = {
        m.get("DBInstanceIdentifier"): m.get("PromotionTier") for m in source_cluster.get("DBClusterMembers") or []
    }
    ordered = sorted(cluster_members(source_cluster), key=lambda ident: (ident != writer, ident))
    room = len(f"-{len(ordered)}")
    plan = []
    for index, ident in enumerate(ordered, start=1):
        inst = source_instances.get(ident) or {}
        groups = inst.get("DBParameterGroups") or []
        plan.append(
            {
                "id": derived_identifier(f"{target_id}-{index}", "target", target_id, room),
                "source": ident,
                "writer": ident == writer,
                "instance_class": inst.get("DBInstanceClass"),
                "availability_zone": inst.get("AvailabilityZone"),
                "promotion_tier": tiers.get(ident, inst.get("PromotionTier")),
                "parameter_group": groups[0].get("DBParameterGroupName") if groups else None,
            }
        )
    return plan


def restore_ownership(tags: dict, source_id: str, incident_id=None) -> tuple[bool, str]:
    """Whether an existing target is our own earlier restore of ``source_id`` (for this incident).

    Ours: it carries ``firebreak:restored-from = <source>`` and, when an incident id is given, the tag
    ``firebreak:incident = <incident>``.  Returns ``(ours, why)``.
    """
    restored_from = tags.get(TAG_RESTORED_FROM)
    if str(restored_from or "").lower() != source_id.lower():  # RDS identifiers are case-insensitive
        shown = f"{TAG_RESTORED_FROM}={restored_from}" if restored_from else f"no {TAG_RESTORED_FROM} tag"
        return False, f"it is not a restore of {source_id} ({shown})"
    if incident_id:
        tagged = tags.get("firebreak:incident")
        if tagged != str(incident_id):
            return False, f"it was restored for incident {tagged!r}, not {incident_id!r}"
    return True, f"it is our earlier restore of {source_id}"


def copied_settings(source: dict, kind: str) -> dict:
    """What the restore copies from the source: subnet group, security groups, parameter groups, KMS key."""
    subnet = source.get("DBSubnetGroup")
    if isinstance(subnet, dict):
        subnet = subnet.get("DBSubnetGroupName")
    settings = {
        "subnet_group": subnet,
        "security_groups": [g.get("VpcSecurityGroupId") for g in source.get("VpcSecurityGroups") or []],
        "kms_key_id": source.get("KmsKeyId") if source.get("StorageEncrypted") else None,
    }
    if kind == "cluster":
        settings["parameter_group"] = source.get("DBClusterParameterGroup")
    else:
        groups = source.get("DBParameterGroups") or []
        settings["parameter_group"] = groups[0].get("DBParameterGroupName") if groups else None
        options = source.get("OptionGroupMemberships") or []
        settings["option_group"] = options[0].get("OptionGroupName") if options else None
        settings["multi_az"] = bool(source.get("MultiAZ"))
        settings["instance_class"] = source.get("DBInstanceClass")
    return settings


def user_tags(tags: dict) -> dict:
    """The source's tags worth copying (not AWS-reserved ``aws:`` keys)."""
    return {k: v for k, v in tags.items() if not str(k).startswith("aws:")}


def endpoints_of(cluster: dict | None = None, instance: dict | None = None) -> dict:
    if cluster is not None:
        return {
            "writer": cluster.get("Endpoint"),
            "reader": cluster.get("ReaderEndpoint"),
            "port": cluster.get("Port"),
        }
    endpoint = (instance or {}).get("Endpoint") or {}
    return {"address": endpoint.get("Address"), "port": endpoint.get("Port")}


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def describe_cluster(caller, rds, cluster_id: str, missing_ok=False) -> dict | None:
    try:
        clusters = caller(rds, "describe_db_clusters", f"DB cluster {cluster_id!r}", DBClusterIdentifier=cluster_id)
    except StepAWSError as e:
        if e.code == "DBClusterNotFoundFault":
            if missing_ok:
                return None
            raise RDSInputError(f"DB cluster {cluster_id!r} not found") from None
        raise
    found = clusters.get("DBClusters") or []
    if not found:
        if missing_ok:
            return None
        raise RDSInputError(f"DB cluster {cluster_id!r} not found")
    return found[0]


def describe_instance(caller, rds, instance_id: str, missing_ok=False) -> dict | None:
    try:
        answer = caller(rds, "describe_db_instances", f"DB instance {instance_id!r}", DBInstanceIdentifier=instance_id)
    except StepAWSError as e:
        if e.code in ("DBInstanceNotFound", "DBInstanceNotFoundFault"):
            if missing_ok:
                return None
            raise RDSInputError(f"DB instance {instance_id!r} not found") from None
        raise
    found = answer.get("DBInstances") or []
    if not found:
        if missing_ok:
            return None
        raise RDSInputError(f"DB instance {instance_id!r} not found")
    return found[0]


def cluster_instances(caller, rds, cluster: dict) -> dict:
    """``{id: DescribeDBInstances entry}`` of the cluster's instances (one filtered listing)."""
    cluster_id = cluster.get("DBClusterIdentifier")
    instances = {}
    for page in caller.paginate(
        rds,
        "describe_db_instances",
        f"instances of DB cluster {cluster_id!r}",
        token_in="Marker",  # noqa: S106 - the pagination token, not a secret
        Filters=[{"Name": "db-cluster-id", "Values": [cluster_id]}],
    ):
        for inst in page.get("DBInstances") or []:
            instances[inst["DBInstanceIdentifier"]] = inst
    return instances


def list_tags(caller, rds, arn: str) -> dict:
    return tag_dict(caller(rds, "list_tags_for_resource", arn, ResourceName=arn).get("TagList"))


def add_tags(caller, rds, arn: str, tags: dict) -> None:
    if tags:
        caller(rds, "add_tags_to_resource", arn, ResourceName=arn, Tags=tag_list(tags))


def wait_for(fetch, done, timeout, what, sleep=time.sleep, clock=time.monotonic, delay=POLL_DELAY):
    """Poll ``fetch()`` until ``done(value)`` returns ``(True, why)``; returns the last value.

    Raises ``RDSWaitTimeout`` with the last ``why`` after ``timeout`` seconds."""
    deadline = clock() + max(float(timeout), 0.0)
    pause = FIRST_POLL_DELAY
    while True:
        value = fetch()
        ok, why = done(value)
        if ok:
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise RDSWaitTimeout(f"timed out after {timeout}s waiting for {what}: {why}")
        sleep(min(pause, remaining))
        pause = min(delay, pause * 2)


# --------------------------------------------------------------------------------------------------
# Point-in-time restore: shared by the cluster and the instance module
# --------------------------------------------------------------------------------------------------

OUR_TAG_KEYS = (TAG_RESTORED_FROM, TAG_RESTORED_TO_TIME, "firebreak:incident", "firebreak:step")


def is_default_group(name) -> bool:
    """AWS's default parameter/option groups (``default.aurora-postgresql15``, ``default:postgres-15``):
    a restore gets them anyway, so they are not passed (moto even reports default option groups it does
    not know)."""
    return not name or str(name).startswith(("default.", "default:"))


def restore_label(decision: dict) -> str:
    """The ``firebreak:restored-to-time`` tag value: ISO UTC, or ``latest``."""
    return "latest" if decision["use_latest"] else iso_utc(decision["restore_time"])


def restore_tags(source_tags: dict, source_id: str, label: str, incident_id, step: str, extra=None) -> dict:
    """Tags for the restored resource: the source's (minus our markers and ``aws:`` keys), the extra
    ones, the incident tags and the markers that let a re-run recognise its own restore."""
    tags = {k: v for k, v in user_tags(source_tags).items() if k not in OUR_TAG_KEYS}
    tags.update(extra or {})
    tags.update(incident_tags(incident_id, step))
    tags[TAG_RESTORED_FROM] = source_id
    tags[TAG_RESTORED_TO_TIME] = label
    return tags


def check_existing_target(kind: str, target_id: str, tags: dict, source_id: str, incident_id, label: str) -> None:
    """Refuse an existing ``target_id`` unless it is our own earlier restore of ``source_id`` to the same
    time (``latest`` matches any earlier latest restore of this incident)."""
    ours, why = restore_ownership(tags, source_id, incident_id)
    if not ours:
        raise RDSInputError(
            f"target {kind} identifier {target_id!r} already exists and {why}: choose another target identifier"
        )
    existing = tags.get(TAG_RESTORED_TO_TIME)
    if label != "latest" and existing and existing != label:
        raise RDSInputError(
            f"target {kind} identifier {target_id!r} already exists as a restore of {source_id} to {existing}, "
            f"not to {label}: choose another target identifier"
        )


def cutover_plan(source_id: str, target_id: str, incident_id, confirm) -> dict:
    """``{"replaced": <source>-replaced-<incident>}``; refuses without the typed confirmation."""
    if str(confirm or "").strip().lower() != source_id.lower():
        raise RDSInputError(
            f"cut-over renames {source_id!r} and puts the restore in its place: set cutover_confirm to "
            f"{source_id!r} to confirm (got {confirm!r})"
        )
    if not incident_id:
        raise RDSInputError("cut-over needs an incident id (incident_id) to name the replaced source")
    replaced = replaced_identifier(source_id, incident_id)
    if replaced == target_id.lower():
        raise RDSInputError(
            f"cut-over: the source's new identifier {replaced!r} (<source>-replaced-<incident>) is also the target: "
            "choose another target identifier"
        )
    return {"replaced": replaced, "source": source_id, "restored": target_id}
