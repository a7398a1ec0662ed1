# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Deploy freeze: CodePipeline stage transitions and an SSM freeze flag; pure decisions and small API helpers.

The freeze disables the inbound transitions of the named pipelines' stages (by default every stage but
the first, so a source change is still recorded but nothing moves on) with a reason naming the incident,
and writes a JSON flag to an SSM parameter that any pipeline (GitHub Actions, GitLab, Jenkins) can check
before deploying.  Release re-enables only transitions that are still disabled *with this incident's
reason* and restores the parameter only while it still holds the version this incident wrote.
"""

from __future__ import annotations

import json
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError

STEP = "deploy_freeze"
DEFAULT_PARAMETER = "/firebreak/deploy-freeze"

_REASON_BAD = re.compile(r"[^a-zA-Z0-9!@ ().*?\-]")
_PIPELINE_RE = re.compile(r"^[A-Za-z0-9.@_-]{1,100}$")
_STAGE_RE = re.compile(r"^[A-Za-z0-9.@_-]{1,100}$")
_PARAMETER_CHARS = re.compile(r"[^A-Za-z0-9_.\-/]")
# AWS reports 2048 characters for a name, 1037 of them reserved: the longest name one can create is 1011.
PARAMETER_MAX_LENGTH = 1011
PARAMETER_MAX_LEVELS = 15


class DeployFreezeError(StepError):
    """Bad input or a state the step refuses to act on; nothing was changed."""


def validate(pipelines, stages, parameter):
    for name in pipelines:
        if not _PIPELINE_RE.match(str(name)):
            raise DeployFreezeError(f"invalid pipeline name {name!r}")
    for name in stages:
        if not _STAGE_RE.match(str(name)):
            raise DeployFreezeError(f"invalid stage name {name!r}")
    if parameter:
        problem = parameter_name_problem(parameter)
        if problem:
            raise DeployFreezeError(f"invalid SSM parameter name {parameter!r}: {problem}")


def parameter_name_problem(name):
    """Why ``name`` is not an SSM parameter name AWS would create, or None.

    The rules of PutParameter's ``Name``: only ``a-zA-Z0-9_.-`` and ``/``; a name in a hierarchy (with a
    ``/``) fully qualified, with a leading ``/``; at most 15 levels; not prefixed with ``aws`` or ``ssm``
    (case-insensitive); at most 1011 characters.  ``.``, ``..`` and empty path segments are refused too:
    AWS would store ``/a/../b`` literally, which a pipeline reading ``/b`` never sees."""
    if not isinstance(name, str):
        return f"not a string but a {type(name).__name__}"
    if len(name) > PARAMETER_MAX_LENGTH:
        return f"{len(name)} characters, AWS allows at most {PARAMETER_MAX_LENGTH}"
    bad = sorted(set(_PARAMETER_CHARS.findall(name)))
    if bad:
        return f"characters {''.join(bad)!r} are not allowed (only a-z A-Z 0-9 _ . - and / between levels)"
    if "/" in name and not name.startswith("/"):
        return f"a name in a hierarchy must be fully qualified, with a leading '/' (/{name})"
    segments = name[1:].split("/") if name.startswith("/") else [name]
    if any(seg in ("", ".", "..") for seg in segments):
        which = next(seg for seg in segments if seg in ("", ".", ".."))
        return f"the path segment {which!r} is not allowed (no '.', '..' or '//', and no trailing '/')"
    if len(segments) > PARAMETER_MAX_LEVELS:
        return f"{len(segments)} levels, AWS allows at most {PARAMETER_MAX_LEVELS}"
    if segments[0].lower().startswith(("aws", "ssm")):
        return "names cannot begin with 'aws' or 'ssm' (case-insensitive): those are reserved by AWS"
    return None


def freeze_reason(incident_id):
    """CodePipeline's ``reason`` (1-300 characters of [a-zA-Z0-9!@ ()._*?-]) naming the incident."""
    text = f"Deploy freeze for incident {incident_id} (firebreak deploy_freeze)"
    return _REASON_BAD.sub("-", text)[:300]


def flag_value(incident_id, reason, at):
    """The SSM parameter's value while frozen: JSON a pipeline can test with ``jq -e '.frozen'``."""
    return json.dumps(
        {"frozen": True, "incident_id": incident_id, "reason": reason, "since": at, "by": "firebreak.runbooks"},
        sort_keys=True,
    )


def is_frozen_by(value, incident_id):
    try:
        document = json.loads(value or "")
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("frozen") is True and document.get("incident_id") == incident_id


def stages_to_freeze(declared, requested):
    """The stages whose inbound transition is frozen: ``requested`` (checked against ``declared``), else every
    stage but the first (the first stage has no inbound transition)."""
    if requested:
        missing = [s for s in requested if s not in declared]
        if missing:
            raise DeployFreezeError(f"stage {missing[0]!r} not found (stages: {declared})")
        if declared and declared[0] in requested:
            raise DeployFreezeError(f"stage {declared[0]!r} is the first stage: it has no inbound transition")
        return list(requested)
    return list(declared[1:])


def inbound_states(state):
    """``{stage: {"enabled", "reason"}}`` from GetPipelineState."""
    out = {}
    for stage in state.get("stageStates") or []:
        inbound = stage.get("inboundTransitionState")
        if inbound is not None:
            out[stage["stageName"]] = {
                "enabled": bool(inbound.get("enabled", True)),
                "reason": inbound.get("disabledReason"),
            }
    return out


def read_parameter(caller, ssm, name):
    """``{"value", "version", "type"}`` of the parameter, or None when it does not exist."""
    try:
        answer = caller(ssm, "get_parameter", f"SSM parameter {name!r}", Name=name)
    except StepAWSError as err:
        if err.code == "ParameterNotFound":
            return None
        raise
    parameter = answer.get("Parameter") or {}
    return {"value": parameter.get("Value"), "version": parameter.get("Version"), "type": parameter.get("Type")}


def entries_by_kind(containments):
    pipelines, parameters = [], []
    for entry in containments or []:
        if not isinstance(entry, dict):
            raise DeployFreezeError(f"containments must be a list of containment entries, got {entry!r}")
        if entry.get("step", STEP) != STEP:
            continue
        if entry.get("kind") not in ("pipeline", "parameter") or not isinstance(entry.get("changed"), dict):
            raise DeployFreezeError(f"containment entry {entry.get('id')!r} is not a deploy_freeze entry")
        (pipelines if entry["kind"] == "pipeline" else parameters).append(entry)
    return sorted(pipelines, key=_entry_time), sorted(parameters, key=_entry_time)


def is_firebreak_reason(reason):
    """Whether a transition's ``reason`` is a deploy_freeze reason (of any incident)."""
    return bool(_FIREBREAK_REASON_RE.match(str(reason or "")))


_FIREBREAK_REASON_RE = re.compile(r"^Deploy freeze for incident .* \(firebreak deploy.freeze\)$")


FLAG_ITEM = "flag"  # the ledger's item for the SSM freeze flag (its resource is the parameter name)


def stage_items(stages):
    """The containment ledger's items for frozen stages."""
    return [f"stage:{stage}" for stage in stages]


def decide_pipeline_release(entry, inbound, stages=None, inherited=()):
    """``(enable, left_alone)`` for a pipeline entry given its current ``inbound_states``.

    ``stages``: the stages this release may lift (default: those the entry disabled); ``inherited``: those of
    them another, released, incident disabled (their reason is that incident's freeze reason)."""
    enable, left = [], {}
    reason = entry["changed"].get("reason")
    for stage in entry["changed"].get("disabled_transitions") or [] if stages is None else stages:
        now = inbound.get(stage)
        if now is None:
            left[stage] = "the stage no longer exists"
        elif now["enabled"]:
            left[stage] = "re-enabled by someone else meanwhile: left as is"
        elif stage in inherited and is_firebreak_reason(now["reason"]):
            enable.append(stage)
        elif now["reason"] != reason:
            left[stage] = f"disabled again by someone else ({now['reason']!r}): left disabled"
        else:
            enable.append(stage)
    return enable, left


def flag_incident(value):
    """The incident id of a deploy_freeze flag value, else None."""
    try:
        document = json.loads(value or "")
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("frozen") is True and document.get("by") == "firebreak.runbooks":
        return document.get("incident_id")
    return None


def decide_parameter_release(entries, current, claimants=None):
    """``("restore", previous) | ("delete", None) | ("leave", why) | ("none", None)`` for parameter entries.

    ``claimants``: the incidents that claim the flag in the containment ledger now (None: no ledger).  A flag
    written by an incident that no longer claims it (released) is not someone else's change: the release goes
    on as if the flag were its own; and a previous value that is such a flag is not restored but deleted."""
    if not entries:
        return "none", None
    first, last = entries[0], entries[-1]
    written = last["changed"].get("written_version")
    if current is None:
        return "leave", "deleted by someone else meanwhile: left deleted"
    released_flag = claimants is not None and flag_incident(current.get("value")) not in (None, *claimants)
    if current.get("version") != written and not released_flag:
        return (
            "leave",
            f"changed by someone else meanwhile (version {current.get('version')}, this incident wrote {written})",
        )
    previous = first["changed"].get("previous")
    if previous is None:
        return "delete", None
    if claimants is not None and flag_incident(previous.get("value")) not in (None, *claimants):
        return "delete", None  # the flag of an incident released since: not a state to go back to
    return "restore", previous


def _entry_time(entry):
    return str(entry.get("at") or "")
