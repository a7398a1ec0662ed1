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


# --------------------------------------------------------------------------------------------------
# Waiting for what a step made, and the instances of a restored cluster (PITR and snapshot restore)
# --------------------------------------------------------------------------------------------------


def wait_cluster_available(caller, rds, cluster_id: str, timeout, what: str) -> dict:
    """Poll until DB cluster ``cluster_id`` exists and is ``available``; returns it."""

    def done(found):
        if found is None:
            return False, f"DB cluster {cluster_id!r} not found yet"
        return found.get("Status") == "available", f"status {found.get('Status')}"

    return wait_for(lambda: describe_cluster(caller, rds, cluster_id, missing_ok=True), done, timeout, what)


def wait_instance_available(caller, rds, instance_id: str, timeout, what: str, done_extra=None) -> dict:
    """Poll until DB instance ``instance_id`` exists and is ``available`` (and ``done_extra(instance)`` is
    ``(True, why)`` when given); returns it."""

    def done(found):
        if found is None:
            return False, f"DB instance {instance_id!r} not found yet"
        status = found.get("DBInstanceStatus")
        extra = done_extra(found) if done_extra else (True, "available")
        if status != "available":
            return False, f"status {status}" + ("" if extra[0] else f", {extra[1]}")
        return extra

    return wait_for(lambda: describe_instance(caller, rds, instance_id, missing_ok=True), done, timeout, what)


def instance_id_clashes(caller, rds, ids: list) -> list:
    """Which of ``ids`` already exist as DB instances (one filtered listing)."""
    if not ids:
        return []
    pages = caller.paginate(
        rds,
        "describe_db_instances",
        "instance identifiers of the restore",
        token_in="Marker",  # noqa: S106 - the pagination token, not a secret
        Filters=[{"Name": "db-instance-id", "Values": list(ids)}],
    )
    return sorted(i["DBInstanceIdentifier"] for page in pages for i in page.get("DBInstances") or [])


def create_cluster_instances(caller, rds, cluster_id: str, engine: str, missing: list, tags: dict, timeout, state):
    """Create the planned instances ``missing`` (``cluster_instance_plan`` items) in ``cluster_id``, the writer
    first: the first instance of a cluster becomes its writer, so the readers wait until it is in.  Each instance
    carries ``tags`` and ``firebreak:restored-from`` naming its source member (or the cluster's source).
    Sets ``state["acted"]``; returns the ids created."""
    created = []
    for index, item in enumerate(missing):
        if index > 0 and missing[0]["writer"]:
            wait_for(
                lambda: describe_cluster(caller, rds, cluster_id, missing_ok=True),
                lambda c: (cluster_writer(c or {}) is not None, "no writer yet"),
                timeout,
                f"the writer of the restored DB cluster {cluster_id!r}",
            )
        instance_tags = dict(tags)
        if item.get("source"):
            instance_tags[TAG_RESTORED_FROM] = item["source"]
        params = dict(
            DBInstanceIdentifier=item["id"],
            DBClusterIdentifier=cluster_id,
            Engine=engine,
            DBInstanceClass=item["instance_class"],
            Tags=tag_list(instance_tags),
        )
        if item.get("availability_zone"):
            params["AvailabilityZone"] = item["availability_zone"]
        if item.get("promotion_tier") is not None:
            params["PromotionTier"] = int(item["promotion_tier"])
        if not is_default_group(item.get("parameter_group")):
            params["DBParameterGroupName"] = item["parameter_group"]
        caller(rds, "create_db_instance", f"DB instance {item['id']!r} in {cluster_id!r}", **params)
        state["acted"] = True
        created.append(item["id"])
    return created


def wait_cluster_instances(caller, rds, cluster_id: str, ids: list, timeout) -> dict:
    """Poll until every one of ``ids`` is an ``available`` instance of ``cluster_id``; returns the instances."""

    def all_available(found):
        states = {i: (found.get(i) or {}).get("DBInstanceStatus", "missing") for i in ids}
        waiting = {i: s for i, s in states.items() if s != "available"}
        return not waiting, ", ".join(f"{i}={s}" for i, s in waiting.items())

    return wait_for(
        lambda: cluster_instances(caller, rds, {"DBClusterIdentifier": cluster_id}),
        all_available,
        timeout,
        f"the instances of the restored DB cluster {cluster_id!r}",
    )


# --------------------------------------------------------------------------------------------------
# Instance class change (rds_instance_scale): decisions
# --------------------------------------------------------------------------------------------------

TAG_SCALED_FROM_CLASS = "firebreak:scaled-from-class"
TAG_SCALED_TO_CLASS = "firebreak:scaled-to-class"
TAG_SCALED_AT = "firebreak:scaled-at"
CLASS_SCALE_TAGS = (TAG_SCALED_FROM_CLASS, TAG_SCALED_TO_CLASS, TAG_SCALED_AT)
INSTANCE_CLASS_RE = re.compile(r"^db\.[a-z0-9]+(\.[a-z0-9-]+)?$")


def validate_instance_class(value, option="instance_class") -> str:
    """A DB instance class (``db.r6g.xlarge``, ``db.serverless``), in lower case; ``RDSInputError`` naming it."""
    text = str(value or "").strip().lower()
    if not INSTANCE_CLASS_RE.match(text):
        raise RDSInputError(
            f"{option}: {value!r} is not a DB instance class (expected db.<family>.<size>, such as db.r6g.xlarge)"
        )
    return text


def read_class_scale(tags: dict) -> dict | None:
    """The class change recorded on an instance (``{from, to, at}``), or None."""
    if tags.get(TAG_SCALED_FROM_CLASS) and tags.get(TAG_SCALED_TO_CLASS):
        return {"from": tags[TAG_SCALED_FROM_CLASS], "to": tags[TAG_SCALED_TO_CLASS], "at": tags.get(TAG_SCALED_AT)}
    return None


def class_scale_tags(scaled_from: str, scaled_to: str, at: str) -> dict:
    return {TAG_SCALED_FROM_CLASS: scaled_from, TAG_SCALED_TO_CLASS: scaled_to, TAG_SCALED_AT: at}


def decide_class_scale(current: str, requested: str, record: dict | None, pending: str | None = None) -> dict:
    """Change the class to ``requested``: ``{"changed", "action", "from", "to", "reason"}``.

    ``action``: ``modify`` (call ModifyDBInstance), ``wait`` (the change to ``requested`` is already pending,
    e.g. an earlier run's: only wait for it) or ``none``.  ``from`` is the class to record for a restore: the one
    already recorded (an earlier change of this incident), else the current class."""
    original = record["from"] if record else current
    if pending == requested and current != requested:
        return {
            "changed": False,
            "action": "wait",
            "from": original,
            "to": requested,
            "reason": f"the change {current} -> {requested} is already pending: waiting for it",
        }
    if current == requested and not pending:
        return {
            "changed": False,
            "action": "none",
            "from": original,
            "to": requested,
            "reason": f"the instance already is {requested}",
        }
    return {
        "changed": True,
        "action": "modify",
        "from": original,
        "to": requested,
        "reason": f"class {current} -> {requested} (restore to {original} with state=restored)",
    }


def decide_class_restore(current: str, record: dict | None, pending: str | None = None) -> dict:
    """Put back the recorded class: ``{"changed", "action", "to", "reason", "left_alone"}``; ``action`` is
    ``modify`` (and remove the record), ``wait`` (the restore is pending), ``forget`` (the instance already has
    the recorded class: only remove the record) or ``none`` (nothing recorded, or someone changed the class
    meanwhile: left alone)."""
    if not record:
        return {
            "changed": False,
            "action": "none",
            "to": current,
            "reason": "no class change recorded on the instance: nothing to restore",
            "left_alone": {},
        }
    if pending == record["from"] and current != record["from"]:
        return {
            "changed": False,
            "action": "wait",
            "to": record["from"],
            "reason": f"the change back to {record['from']} is already pending: waiting for it",
            "left_alone": {},
        }
    if current == record["from"] and not pending:
        return {
            "changed": True,
            "action": "forget",
            "to": current,
            "reason": f"the instance already is the recorded {current}; removed the class change record",
            "left_alone": {},
        }
    if current != record["to"] or pending:
        return {
            "changed": False,
            "action": "none",
            "to": current,
            "reason": (
                f"the class is {current}{f' (pending {pending})' if pending else ''}, not the {record['to']} the "
                f"scale set: someone changed it meanwhile, so it is left alone (the recorded class to restore is "
                f"{record['from']})"
            ),
            "left_alone": {"instance_class": current, "pending": pending, "scaled_to": record["to"]},
        }
    return {
        "changed": True,
        "action": "modify",
        "to": record["from"],
        "reason": f"class {current} -> {record['from']} (the class before the scale)",
        "left_alone": {},
    }


def class_verdict(wanted: str, filtered: list, unfiltered: list | None) -> dict:
    """Whether DescribeOrderableDBInstanceOptions says ``wanted`` exists for the engine and version.

    ``filtered``: the options answered when asking for ``wanted`` (AWS filters by class; moto ignores the
    filter, so every class is checked); ``unfiltered``: a page of the engine version's options, or None when not
    asked.  ``{"verdict": valid|invalid|unknown, "known_classes": [...]}``: ``unknown`` when the API answers no
    option at all for the engine version (moto knows few engines and versions), so it cannot tell."""
    classes = sorted({o.get("DBInstanceClass") for o in filtered if o.get("DBInstanceClass")})
    if wanted in classes:
        return {"verdict": "valid", "known_classes": []}
    if not classes:
        classes = sorted({o.get("DBInstanceClass") for o in unfiltered or [] if o.get("DBInstanceClass")})
    if classes:
        return {"verdict": "invalid", "known_classes": classes}
    return {"verdict": "unknown", "known_classes": []}


def scale_disruption(instance: dict, cluster: dict | None) -> str:
    """What an immediate class change does to the database, in incident words (for the gate and the result)."""
    ident = instance.get("DBInstanceIdentifier")
    if cluster is not None:
        if cluster_writer(cluster) == ident:
            return (
                f"{ident} is the writer of DB cluster {cluster.get('DBClusterIdentifier')}: it restarts with the new "
                "class and writes are unavailable until it is back (or Aurora fails over to a reader); fail over to "
                "a reader of the new class first to shorten it"
            )
        name = cluster.get("DBClusterIdentifier")
        return f"{ident} is a reader of DB cluster {name}: it restarts and its connections drop"
    if instance.get("MultiAZ"):
        return (
            f"{ident} is Multi-AZ: RDS changes the standby, fails over to it (connections drop, typically 60-120 s), "
            "then changes the old primary"
        )
    return f"{ident} is single-AZ: it reboots and is unavailable while the class changes (minutes)"


def class_state(instance: dict) -> dict:
    pending = (instance.get("PendingModifiedValues") or {}).get("DBInstanceClass")
    return {
        "instance_class": instance.get("DBInstanceClass"),
        "pending_instance_class": pending,
        "status": instance.get("DBInstanceStatus"),
        "multi_az": bool(instance.get("MultiAZ")),
        "availability_zone": instance.get("AvailabilityZone"),
    }


def orderable_classes(caller, rds, instance: dict, wanted: str) -> dict:
    """``class_verdict`` for ``wanted`` on ``instance``'s engine and version (at most one listing and one page)."""
    engine, version = instance.get("Engine"), instance.get("EngineVersion")
    ask = {"Engine": engine}
    if version:
        ask["EngineVersion"] = version
    resource = f"orderable DB instance options of {engine} {version or ''}".strip()
    filtered = []
    for page in caller.paginate(
        rds,
        "describe_orderable_db_instance_options",
        resource,
        token_in="Marker",  # noqa: S106 - the pagination token, not a secret
        DBInstanceClass=wanted,
        **ask,
    ):
        filtered += page.get("OrderableDBInstanceOptions") or []
        if any(o.get("DBInstanceClass") == wanted for o in filtered):
            break
    unfiltered = None
    if not filtered:
        page = caller(rds, "describe_orderable_db_instance_options", resource, MaxRecords=100, **ask)
        unfiltered = page.get("OrderableDBInstanceOptions") or []
    return class_verdict(wanted, filtered, unfiltered)


# --------------------------------------------------------------------------------------------------
# Restore from a snapshot (rds_snapshot_restore): decisions
# --------------------------------------------------------------------------------------------------

TAG_RESTORED_FROM_SNAPSHOT = "firebreak:restored-from-snapshot"
SNAPSHOT_TYPES = ("automated", "manual")
CLUSTER_ENGINES = ("aurora", "neptune", "docdb")


def snapshot_fields(snapshot: dict, kind: str) -> dict:
    """The fields of a DB (cluster) snapshot the step decides on, the same for both kinds."""
    if kind == "cluster":
        ident, source, arn = (
            snapshot.get("DBClusterSnapshotIdentifier"),
            snapshot.get("DBClusterIdentifier"),
            snapshot.get("DBClusterSnapshotArn"),
        )
    else:
        ident, source, arn = (
            snapshot.get("DBSnapshotIdentifier"),
            snapshot.get("DBInstanceIdentifier"),
            snapshot.get("DBSnapshotArn"),
        )
    return {
        "id": ident,
        "arn": arn,
        "source": (source or "").lower() or None,
        "type": snapshot.get("SnapshotType"),
        "status": snapshot.get("Status"),
        "engine": snapshot.get("Engine"),
        "engine_version": snapshot.get("EngineVersion"),
        "created": as_utc(snapshot.get("SnapshotCreateTime")),
        "encrypted": bool(snapshot.get("StorageEncrypted", snapshot.get("Encrypted"))),
    }


def choose_snapshot(snapshots: list, source_id: str, snapshot_type: str = "any") -> dict:
    """The latest ``available`` snapshot of ``snapshot_type`` (``any``, ``automated``, ``manual``) among
    ``snapshots`` (``snapshot_fields``), newest ``created`` first, then identifier.  ``RDSInputError`` naming the
    source and what was found when there is none."""
    wanted = SNAPSHOT_TYPES if snapshot_type == "any" else (snapshot_type,)
    usable = [s for s in snapshots if s["status"] == "available" and s["type"] in wanted and s["created"]]
    if not usable:
        seen = ", ".join(f"{s['id']} ({s['type']}, {s['status']})" for s in snapshots) or "none"
        kinds = "automated or manual" if snapshot_type == "any" else snapshot_type
        raise RDSInputError(f"no available {kinds} snapshot of {source_id!r} to restore from (snapshots: {seen})")
    usable.sort(key=lambda s: (s["created"], s["id"]), reverse=True)
    return usable[0]


def data_loss_window(snapshot_time, now) -> dict:
    """What a restore from a snapshot taken at ``snapshot_time`` loses: everything written since."""
    seconds = max(0, int((now - snapshot_time).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h {minutes:02d}m {secs:02d}s"
    return {
        "snapshot_time": iso_utc(snapshot_time),
        "now": iso_utc(now),
        "seconds": seconds,
        "text": f"writes after {iso_utc(snapshot_time)} ({text} before now) are not in the restore",
    }


def check_snapshot_target(kind: str, target_id: str, tags: dict, source_id: str, incident_id, snapshot_id) -> str:
    """Refuse an existing ``target_id`` unless it is our own restore of ``source_id`` (for this incident) from
    the snapshot asked for (``snapshot_id``), or - when the step picks the latest snapshot (``snapshot_id``
    None) - from any snapshot of that source.  Returns the snapshot id it was restored from."""
    ours, why = restore_ownership(tags, source_id, incident_id)
    if not ours:
        raise RDSInputError(
            f"target {kind} identifier {target_id!r} already exists and {why}: a restore goes into a NEW identifier; "
            "choose another target identifier"
        )
    restored_from = tags.get(TAG_RESTORED_FROM_SNAPSHOT)
    if not restored_from:
        raise RDSInputError(
            f"target {kind} identifier {target_id!r} already exists as a restore of {source_id} but not from a "
            f"snapshot (no {TAG_RESTORED_FROM_SNAPSHOT} tag): choose another target identifier"
        )
    if snapshot_id and restored_from != snapshot_id:
        raise RDSInputError(
            f"target {kind} identifier {target_id!r} already exists as a restore of snapshot {restored_from!r}, not "
            f"{snapshot_id!r}: choose another target identifier"
        )
    return restored_from


def restored_settings(source: dict | None, kind: str, given: dict) -> dict:
    """The network and parameter settings of the restore: each given one, else the source's (when it still
    exists), else None (the snapshot's or AWS's default).  ``given``: ``subnet_group``, ``security_groups``,
    ``parameter_group``; ``how`` says where each came from."""
    copied = copied_settings(source, kind) if source is not None else {}
    out, how = {}, {}
    for key in ("subnet_group", "security_groups", "parameter_group"):
        if given.get(key):
            out[key], how[key] = given[key], "given"
        elif copied.get(key):
            out[key], how[key] = copied[key], "source"
        else:
            out[key], how[key] = None, "snapshot default"
    if kind == "instance":
        for key in ("option_group", "multi_az", "instance_class"):
            out[key] = copied.get(key)
        if given.get("instance_class"):
            out["instance_class"], how["instance_class"] = given["instance_class"], "given"
        elif out.get("instance_class"):
            how["instance_class"] = "source"
    out["how"] = how
    return out


def describe_snapshot(caller, rds, kind: str, snapshot_id: str) -> dict:
    """One DB cluster snapshot (``kind`` cluster) or DB snapshot (instance), by identifier or ARN, as
    ``snapshot_fields``; ``RDSInputError`` naming it when it does not exist."""
    if kind == "cluster":
        method, key, answer_key = "describe_db_cluster_snapshots", "DBClusterSnapshotIdentifier", "DBClusterSnapshots"
        missing = ("DBClusterSnapshotNotFoundFault", "DBClusterSnapshotNotFound")
    else:
        method, key, answer_key = "describe_db_snapshots", "DBSnapshotIdentifier", "DBSnapshots"
        missing = ("DBSnapshotNotFound", "DBSnapshotNotFoundFault")
    what = f"DB {'cluster ' if kind == 'cluster' else ''}snapshot {snapshot_id!r}"
    try:
        found = caller(rds, method, what, **{key: snapshot_id}).get(answer_key) or []
    except StepAWSError as e:
        if e.code in missing:
            raise RDSInputError(f"{what} not found") from None
        raise
    if not found:
        raise RDSInputError(f"{what} not found")
    return snapshot_fields(found[0], kind)


def list_snapshots(caller, rds, kind: str, source_id: str) -> list:
    """The automated and manual snapshots of DB cluster (or instance) ``source_id``, as ``snapshot_fields``;
    the listing works for a source that no longer exists (its manual and retained snapshots)."""
    if kind == "cluster":
        method, key, answer_key = "describe_db_cluster_snapshots", "DBClusterIdentifier", "DBClusterSnapshots"
    else:
        method, key, answer_key = "describe_db_snapshots", "DBInstanceIdentifier", "DBSnapshots"
    snapshots = []
    for page in caller.paginate(
        rds,
        method,
        f"snapshots of DB {kind} {source_id!r}",
        token_in="Marker",  # noqa: S106 - the pagination token, not a secret
        **{key: source_id},
    ):
        snapshots += [snapshot_fields(s, kind) for s in page.get(answer_key) or []]
    return snapshots
