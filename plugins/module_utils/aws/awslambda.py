# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Lambda recovery steps: alias rollback and limit raises. Pure decisions plus a small API layer.

Pure (unit-tested without AWS)
    ``published_versions``, ``previous_version``, ``decide_alias_rollback`` (the target version, the
    routing to set, and whether anything changes, honouring the rollback record), ``read_record`` /
    ``record_value`` (the rollback record kept as a function tag, because aliases take no tags and their
    description belongs to their owners), ``decide_limits`` (what a raise or a restore changes).

API layer
    Every call goes through ``step.Caller`` (bounded retries naming the call); a missing function,
    alias or version becomes ``LambdaInputError`` naming the value.
"""

from __future__ import annotations

import re
import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError

RECORD_TAG = "firebreak:alias-rollback:{alias}"
_RECORD_RE = re.compile(r"^from=(?P<from>[^,]*),to=(?P<to>[^,]*),at=(?P<at>[^,]*)$")
VERSION_RE = re.compile(r"^[1-9][0-9]*$")
MEMORY_RANGE = (128, 10240)
TIMEOUT_RANGE = (1, 900)


class LambdaInputError(StepError):
    """Bad input, or a function/alias/version that does not exist; nothing was changed."""


# --------------------------------------------------------------------------------------------------
# Alias rollback: decisions
# --------------------------------------------------------------------------------------------------


def published_versions(versions):
    """Sorted published version numbers (``$LATEST`` dropped) from ListVersionsByFunction entries."""
    found = {int(v["Version"]) for v in versions if VERSION_RE.match(str(v.get("Version", "")))}
    return sorted(found)


def previous_version(current, published):
    """The highest published version lower than ``current`` (``$LATEST``: the highest published)."""
    if current == "$LATEST":
        return str(published[-1]) if published else None
    lower = [v for v in published if v < int(current)]
    return str(lower[-1]) if lower else None


def read_record(tags, alias):
    """The rollback record ``{"from", "to", "at"}`` of ``alias`` from the function's tags, or None."""
    value = (tags or {}).get(RECORD_TAG.format(alias=alias))
    match = _RECORD_RE.match(value or "")
    return match.groupdict() if match else None


def record_value(rolled_from, rolled_to, at):
    return f"from={rolled_from},to={rolled_to},at={at}"


def routing_of(alias):
    return dict(((alias or {}).get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def decide_alias_rollback(alias, *, target=None, rollback_from=None, record=None, routing="clear", published=()):
    """What the rollback does, from GetAlias's answer.

    Returns ``{"changed", "target", "routing", "reason"}`` (``routing``: the AdditionalVersionWeights to
    set); raises ``LambdaInputError`` when there is no version to roll back to.
    """
    current = alias["FunctionVersion"]
    weights = routing_of(alias)
    if rollback_from is not None and rollback_from != current:
        return {
            "changed": False,
            "target": current,
            "routing": weights,
            "reason": f"the alias points at {current}, not {rollback_from} (rollback_from): nothing to roll back",
        }
    if target is None and rollback_from is None and record and record.get("to") == current:
        return {
            "changed": False,
            "target": current,
            "routing": weights,
            "reason": (
                f"already rolled back from {record.get('from')} to {current} at {record.get('at')}; not rolling "
                "back again (give version or rollback_from to go further back)"
            ),
        }
    why = "requested"
    if target is None:
        target = previous_version(current, list(published))
        why = "previous published version"
        if target is None:
            raise LambdaInputError(f"no published version lower than {current} to roll back alias to")
    new_weights = {} if routing == "clear" else {v: w for v, w in weights.items() if v != target}
    if target == current and new_weights == weights:
        return {
            "changed": False,
            "target": current,
            "routing": weights,
            "reason": f"the alias already points at {current}",
        }
    reason = f"from {current} to {target} ({why})"
    if new_weights != weights:
        reason += "; weighted routing " + ("cleared" if routing == "clear" else f"kept as {new_weights}")
    return {"changed": True, "target": target, "routing": new_weights, "reason": reason}


def alias_state(alias):
    return {"function_version": alias.get("FunctionVersion"), "routing": routing_of(alias)}


# --------------------------------------------------------------------------------------------------
# Limits: decisions
# --------------------------------------------------------------------------------------------------

LIMITS = ("memory_size", "timeout", "reserved_concurrency")


def validate_limits(wanted):
    """Range checks for requested values (None: not asked); raises ``LambdaInputError`` naming the value."""
    for name, (low, high) in (("memory_size", MEMORY_RANGE), ("timeout", TIMEOUT_RANGE)):
        value = wanted.get(name)
        if value is not None and not low <= value <= high:
            raise LambdaInputError(f"{name} {value} is out of range ({low}-{high})")
    value = wanted.get("reserved_concurrency")
    if value is not None and value < 0:
        raise LambdaInputError(f"reserved_concurrency {value} must be >= 0")


def decide_limits(current, wanted, *, force=False, restore=False):
    """``{"changes": {name: (old, new)}, "refused": {name: (old, new)}}`` for ``wanted`` values.

    A raise refuses a lower value than the current one unless ``force``; ``restore`` puts values back
    (lower or higher). ``reserved_concurrency`` of ``None`` in ``current`` means unreserved; in a
    restore, ``-1`` means "remove the reservation".
    """
    changes, refused = {}, {}
    for name in LIMITS:
        if name not in wanted or wanted[name] is None:
            continue
        old, new = current.get(name), wanted[name]
        if restore and name == "reserved_concurrency" and new == -1:
            new = None
        if old == new:
            continue
        lower = old is not None and new is not None and new < old
        if name == "reserved_concurrency" and old is None and new is not None and not restore:
            # unreserved -> reserved caps the function at that value: a limit, not a raise
            lower = True
        if lower and not (force or restore):
            refused[name] = (old, new)
        else:
            changes[name] = (old, new)
    return {"changes": changes, "refused": refused}


def limits_of(configuration, concurrency):
    return {
        "memory_size": configuration.get("MemorySize"),
        "timeout": configuration.get("Timeout"),
        "reserved_concurrency": (concurrency or {}).get("ReservedConcurrentExecutions"),
    }


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def _not_found(err):
    return err.code in ("ResourceNotFoundException", "404")


def get_function(caller, client, name):
    try:
        return caller(client, "get_function_configuration", f"function {name!r}", FunctionName=name)
    except StepAWSError as err:
        if _not_found(err):
            raise LambdaInputError(f"function {name!r} not found") from None
        raise


def get_alias(caller, client, function, alias):
    try:
        return caller(
            client, "get_alias", f"alias {alias!r} of function {function!r}", FunctionName=function, Name=alias
        )
    except StepAWSError as err:
        if _not_found(err):
            raise LambdaInputError(f"alias {alias!r} of function {function!r} not found") from None
        raise


def get_version(caller, client, function, version):
    try:
        return caller(
            client,
            "get_function_configuration",
            f"version {version!r} of function {function!r}",
            FunctionName=function,
            Qualifier=version,
        )
    except StepAWSError as err:
        if _not_found(err):
            raise LambdaInputError(f"version {version!r} of function {function!r} does not exist") from None
        raise


def list_versions(caller, client, function):
    versions = []
    markers = {"token_in": "Marker", "token_out": "NextMarker"}
    for page in caller.paginate(
        client, "list_versions_by_function", f"function {function!r}", **markers, FunctionName=function
    ):
        versions.extend(page.get("Versions") or [])
    return versions


def list_tags(caller, client, arn):
    return caller(client, "list_tags", f"function {arn!r}", Resource=arn).get("Tags") or {}


def tag_function(caller, client, arn, tags):
    caller(client, "tag_resource", f"function {arn!r}", Resource=arn, Tags=tags)


def get_concurrency(caller, client, function):
    return caller(client, "get_function_concurrency", f"function {function!r}", FunctionName=function)


def wait_updated(caller, client, function, timeout, poll=1.0):
    """Wait until the function's LastUpdateStatus is no longer InProgress; returns its configuration."""
    deadline = time.monotonic() + timeout
    while True:
        configuration = get_function(caller, client, function)
        status = configuration.get("LastUpdateStatus")
        if status == "Failed":
            raise LambdaInputError(
                f"the update of function {function!r} failed: {configuration.get('LastUpdateStatusReason')}"
            )
        if status != "InProgress" or time.monotonic() >= deadline:
            return configuration
        time.sleep(poll)
