# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident frame's work before a step, done inside the step's own task (docs/frame.md, "No task before the
first mitigating call").

A scenario whose first mitigating call must come first (DESIGN.md "Speed") passes the step module a ``frame``: the
step's action plugin (plugins/action/ecs_service_rollback.py) takes it out of the module's arguments and, on the
controller, before the module runs:

1. ``validate``: ``{"argument_spec": {...}, "specs": [...]}`` -- the scenario's variables (taken from the task's
   variables, as ``ansible.builtin.validate_argument_spec`` takes them) checked against the spec, given or read
   from the scenario's meta file and its roles' ``meta/argument_specs.yml`` (``argument_spec``);
2. ``refuse_var``: the name of a variable whose value, templated now (after the validation), is either empty or the
   reason to refuse (bad names, a force without a reason, a non-local endpoint with a sandbox inventory);
3. ``before``: the controller-side tasks the frame would have run before the step, in order, each
   ``{"action", "task", "role", "args", "register"}`` with ``action`` ``firebreak.runbooks.incident_lifecycle`` (the
   declaration) or ``firebreak.runbooks.incident_note`` (the gate's decision);
4. ``facts``: variables set for the tasks after the step (the gate's policy result and decision).

Only then is the module run.  A refusal or a failed ``before`` entry fails the task before any AWS call.  The
result carries ``timeline_before``: one entry per ``before`` task that ran, ``{"action", "task", "role", "ts",
"result"}`` with ``ts`` the time it ran; the timeline callback writes each as the record that task would have
written, in order and with that time, before the step's own record.  ``register`` names are set as facts to the
entry's result (``incident_declare_result``, as the declaration task registers it).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

LIFECYCLE = "firebreak.runbooks.incident_lifecycle"
NOTE = "firebreak.runbooks.incident_note"
FRAME_KEYS = frozenset(("validate", "refuse_var", "before", "facts"))


def _timestamp():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import utc_timestamp

    return utc_timestamp()


def check_frame(frame):
    if not isinstance(frame, dict):
        raise AnsibleActionFail(f"frame must be a dictionary, not {type(frame).__name__}")
    unknown = sorted(str(k) for k in set(frame) - FRAME_KEYS)
    if unknown:
        raise AnsibleActionFail(f"frame: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(FRAME_KEYS))})")
    for index, entry in enumerate(frame.get("before") or []):
        if not isinstance(entry, dict) or entry.get("action") not in (LIFECYCLE, NOTE):
            raise AnsibleActionFail(
                f"frame.before[{index}]: each entry needs an action, {LIFECYCLE} or {NOTE}, not {entry!r}"[:400]
            )


ROLES = Path(__file__).resolve().parents[2] / "roles"  # this collection's roles


def _options(path, entry):
    """The options of ``argument_specs.<entry>`` in the YAML file ``path`` (libyaml when there is one)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=loader) or {}  # noqa: S506 (a safe loader: libyaml's or PyYAML's)
    try:
        return dict(data["argument_specs"][entry].get("options") or {})
    except (KeyError, TypeError, AttributeError):
        raise AnsibleActionFail(f"frame.validate: {path} has no argument_specs.{entry}") from None


def argument_spec(frame, find_file):
    """``frame.validate``'s spec: ``argument_spec`` as given, updated by each of ``specs`` in order (as Jinja's
    ``combine`` would): ``{"file": <a playbook's meta file, found as the file lookup finds it>}`` or ``{"role":
    <a role of this collection>}``, each with ``entry`` (default ``main``) and ``exclude`` (option names left out).
    The files are read here, not templated into the task's arguments: a whole spec templated costs a scenario's
    first mitigating call about 0.1 s (bench/results.md)."""
    conf = frame.get("validate") or {}
    spec = dict(conf.get("argument_spec") or {})
    for index, item in enumerate(conf.get("specs") or []):
        if not isinstance(item, dict) or bool(item.get("file")) == bool(item.get("role")):
            raise AnsibleActionFail(f"frame.validate.specs[{index}]: give either file or role, not {item!r}"[:400])
        if item.get("role"):
            name = str(item["role"])
            if not name.replace("_", "").isalnum():
                raise AnsibleActionFail(f"frame.validate.specs[{index}]: {name!r} is not a role name")
            path = ROLES / name / "meta" / "argument_specs.yml"
        else:
            path = find_file(str(item["file"]))
        exclude = set(item.get("exclude") or ())
        options = _options(path, str(item.get("entry") or "main"))
        spec.update({name: option for name, option in options.items() if name not in exclude})
    return spec


def validate(frame, task_vars, templar, find_file=None):
    """The scenario's variables against ``frame.validate`` (``argument_spec``): the first error message, or ''."""
    spec = argument_spec(frame, find_file)
    if not spec:
        return ""
    provided = {}
    for name in spec:
        if name in task_vars:
            provided[name] = templar.template(task_vars[name])
    result = ArgumentSpecValidator(spec).validate(provided)
    if result.error_messages:
        return "Validation of the scenario's variables failed: " + "; ".join(result.error_messages)
    return ""


def refusal(frame, task_vars, templar):
    name = frame.get("refuse_var")
    if not name:
        return ""
    if name not in task_vars:
        raise AnsibleActionFail(f"frame.refuse_var: no variable {name!r}")
    text = templar.template(task_vars[name])
    return " ".join(str(text or "").split())


def run_before(frame, check_mode):
    """Run the ``before`` entries in order; ``(entries, facts, failure)``: the timeline entries written so far,
    the registered results, and the failed entry's result (None when all passed)."""
    from ansible_collections.firebreak.runbooks.plugins.action import incident_lifecycle
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record.note import ARGUMENT_SPEC, build_note

    entries, facts = [], {}
    for item in frame.get("before") or []:
        ts = _timestamp()
        args = dict(item.get("args") or {})
        if item["action"] == LIFECYCLE:
            try:
                result = incident_lifecycle.lifecycle_result(incident_lifecycle.validated_args(args), check_mode)
            except AnsibleActionFail as exc:
                result = {"failed": True, "changed": False, "msg": str(exc.message)}
        else:
            checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(args)
            try:
                if checked.error_messages:
                    raise ValueError("; ".join(checked.error_messages))
                note = build_note(checked.validated_parameters)
                result = {"changed": False, "note": note, "msg": note["msg"]}
            except ValueError as exc:
                result = {"failed": True, "changed": False, "msg": str(exc)}
        entries.append(
            {"action": item["action"], "task": item.get("task"), "role": item.get("role"), "ts": ts, "result": result}
        )
        if item.get("register"):
            facts[item["register"]] = result
        if result.get("failed"):
            return entries, facts, result
    return entries, facts, None
