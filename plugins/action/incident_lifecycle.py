# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side work of ``firebreak.runbooks.incident_lifecycle``: no module process is started.

Reads the incident's earlier lifecycle records from its verified timeline, checks the request against them
(severity, status order, role names), and returns the new lifecycle record in ``lifecycle``; the timeline
callback records the task result, so ``details.lifecycle`` is the record.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import lifecycle as lc
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import (
    TimelineError,
    default_path,
    verify_timeline,
)

ARGUMENT_SPEC = {
    "event": {"type": "str", "required": True, "choices": list(lc.EVENTS)},
    "incident_id": {"type": "str"},
    "timeline": {"type": "path"},
    "title": {"type": "str"},
    "type": {"type": "str", "default": "service"},
    "severity": {"type": "str", "choices": list(lc.SEVERITIES)},
    "status": {"type": "str", "choices": list(lc.STATUSES)},
    "environment": {"type": "str", "default": ""},
    "services": {"type": "list", "elements": "str", "default": []},
    "accounts": {"type": "list", "elements": "str", "default": []},
    "impact": {"type": "str", "default": ""},
    "first_event_at": {"type": "str"},
    "roles": {"type": "dict", "default": {}},
    "update": {"type": "str", "default": ""},
    "message": {"type": "str", "default": ""},
    "policy_preset": {"type": "str", "default": "incident-procedures", "choices": list(lc.PRESETS)},
    "policy": {"type": "dict", "default": {}},
    "channel": {"type": "str", "choices": list(lc.CHANNELS)},
    "for_event": {"type": "str", "choices": ["declared", "update", "resolved"]},
    "delivered": {"type": "bool", "default": False},
    "attempts": {"type": "int"},
    "status_code": {"type": "int"},
    "error": {"type": "str"},
    "post_timeout": {"type": "int", "default": 5},
    "post_retries": {"type": "int", "default": 2},
    "retry_budget": {"type": "int", "default": 60},
}


def timeline_path(args, task_vars):
    incident_id = args.get("incident_id") or os.environ.get("FIREBREAK_INCIDENT_ID") or ""
    path = args.get("timeline") or os.environ.get("FIREBREAK_TIMELINE")
    if not path:
        if not incident_id:
            raise AnsibleActionFail("incident_lifecycle: no incident id: pass incident_id (or FIREBREAK_INCIDENT_ID)")
        path = default_path(incident_id)
    return os.path.abspath(os.path.expanduser(str(path))), incident_id


def current_state(path, incident_id, check_mode=False):
    """The incident's state folded from the lifecycle records of its verified timeline (None: undeclared);
    in check mode the check-mode records count too, so that a dry run's update follows its own declaration."""
    if not os.path.exists(path):
        return None
    try:
        records = verify_timeline(path)
    except TimelineError as exc:
        raise AnsibleActionFail(f"incident_lifecycle: cannot read the incident's state: {exc}") from None
    return lc.fold(lc.lifecycle_records(records, incident_id or None, check_mode=check_mode))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result.update(lifecycle_result(args, bool(self._task.check_mode or self._play_context.check_mode)))
        return result


def validated_args(raw):
    """``raw`` checked against ``ARGUMENT_SPEC`` (defaults filled in), as the action's own validation does; raises
    ``AnsibleActionFail`` naming the bad value.  For a caller that records a lifecycle event from inside another
    task (an action plugin's ``frame``, plugins/plugin_utils/frame.py)."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(raw or {}))
    if validation.error_messages:
        raise AnsibleActionFail(
            "incident_lifecycle: " + "; ".join(validation.error_messages),
            result={"argument_errors": validation.error_messages},
        )
    return validation.validated_parameters


def lifecycle_result(args, check_mode):
    """The result of ``incident_lifecycle`` for validated ``args``: the new lifecycle record in ``lifecycle``."""
    result = {}
    path, incident_id = timeline_path(args, {})
    args["incident_id"] = incident_id or None
    state = current_state(path, incident_id, check_mode=check_mode)
    now = lc.utc_now()
    event = args["event"]
    try:
        if event == "declared":
            if not args.get("severity"):
                raise lc.LifecycleError("severity is required to declare (P1, P2, P3 or P4)")
            entry = lc.declare(args, state, now)
        elif event == "update":
            entry = lc.update(args, state, now)
        elif event == "resolved":
            entry = lc.resolve(args, state, now)
        else:
            entry = lc.delivery(args, state, now)
    except lc.LifecycleError as exc:
        result.update(failed=True, msg=f"incident_lifecycle {event}: {exc}", changed=False)
        return result

    if entry is None:  # already declared and open, or already resolved: nothing new to record
        result.update(
            changed=False,
            msg=f"incident {incident_id} is already {state['status']} (declared at {state['declared_at']}); "
            "nothing recorded"
            + ("; change severity, status or roles with incident_update" if event == "declared" else ""),
            state=state,
            post={"chat": False, "status_page": False},
        )
        return result

    new_state = lc.fold([entry], state)
    policy = (new_state or {}).get("policy") or lc.resolve_policy()
    if event == "delivery":
        result.update(
            changed=False,
            lifecycle=entry,
            msg="{} post of the {} record {}".format(
                entry["channel"].replace("_", " "),
                entry["for_event"],
                "delivered" if entry["delivered"] else f"NOT delivered: {entry['error']}",
            ),
        )
        return result

    entry["messages"] = lc.render(entry, new_state, policy)
    severity_policy = policy.get(entry["severity"]) or {}
    plan = lc.post_plan(args["retry_budget"], args["post_timeout"], args["post_retries"])
    result.update(
        changed=False,
        lifecycle=entry,
        state=_public_state(new_state),
        post=dict(plan, chat=True, status_page=bool(severity_policy.get("status_page"))),
        payloads={
            "chat": {"text": entry["messages"]["chat"]},
            "status_page": {
                "incident_id": entry.get("incident_id"),
                "title": entry.get("title"),
                "event": event,
                "severity": entry["severity"],
                "status": entry["status"],
                "message": entry["messages"]["status_page"],
                "at": entry["at"],
            },
        },
        msg=_summary(entry),
    )
    return result


def _public_state(state):
    return {k: v for k, v in (state or {}).items() if k != "policy"}


def _summary(entry):
    event = entry["event"]
    if event == "declared":
        text = f"declared {entry['severity']} {entry['status']}: {entry['title']}"
    elif event == "update":
        text = f"update: {entry['severity']} {entry['status']}"
        if entry.get("previous_severity"):
            text += f" (severity {entry['previous_severity']} → {entry['severity']})"
        if entry.get("previous_status"):
            text += f" (status {entry['previous_status']} → {entry['status']})"
    else:
        text = f"resolved ({entry['severity']})"
    if entry.get("next_update_due"):
        text += f"; next update due {entry['next_update_due']}"
    return text
