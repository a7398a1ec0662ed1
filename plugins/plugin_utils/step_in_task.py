# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A step module's ``run`` done inside its own task's worker, without a module process (docs/frame.md, "No task
before the first mitigating call").

A module process costs a scenario's first mitigating call about 0.2 s before it (measured in bench/results.md,
``ecs.first_mutation``): Ansible builds the AnsiballZ payload (it walks and compiles every module_utils file the
module imports, amazon.aws's included), starts Python, which compiles them again from the zip, imports boto3 and
loads botocore's data. On the local connection the worker is a fork of the controller, already running its Python
(with boto3 loaded when the timeline's durable copy is on), so the same ``run`` can be done here, with the same
argument spec, the same client options (``step.aws_client``, amazon.aws's connection rules), the same step contract
(``step.run_step``) and the result a module would have returned.

Only where that is the same thing as the module process: ``usable`` says when (the local connection, the
controller's own Python as the interpreter with boto3 importable, no ``environment`` or ``async`` on the task);
anywhere else the action runs the module as Ansible does.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback

from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError


class ModuleExit(Exception):
    """``exit_json`` or ``fail_json`` of the stand-in: the module's result, as it would have printed it."""

    def __init__(self, result):
        super().__init__(result.get("msg", ""))
        self.result = result


class TaskModule:
    """What a step's ``run`` (and ``step.run_step``, ``step.aws_client``, amazon.aws's ``get_aws_connection_info``)
    use of ``AnsibleAWSModule``: ``params``, ``check_mode``, ``_diff``, ``_name``, ``warn``, ``fail_json``,
    ``fail_json_aws``, ``exit_json``. ``aws_connection`` tells ``step.aws_client`` to build its clients exactly as
    for ``AnsibleAWSModule`` (region, endpoint, profile and credentials from ``params``)."""

    aws_connection = True

    def __init__(self, name, params, check_mode, diff, no_log_values):
        self._name = name
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self._no_log_values = no_log_values
        self._warnings = []

    def warn(self, warning):
        self._warnings.append(str(warning))

    def _finish(self, result):
        result = dict(result)
        if self._warnings:
            result["warnings"] = [*result.get("warnings", []), *self._warnings]
        result["invocation"] = {"module_args": self.params}
        return remove_values(result, self._no_log_values)

    def exit_json(self, **result):
        result.setdefault("changed", False)
        raise ModuleExit(self._finish(result))

    def fail_json(self, msg, **result):
        raise ModuleExit(self._finish(dict(result, failed=True, msg=msg)))

    def fail_json_aws(self, exception, msg=None, **result):
        text = f"{msg}: {exception}" if msg else str(exception)
        self.fail_json(msg=text, exception=traceback.format_exc(), **result)


def usable(action, task_vars, templar):
    """``""`` when the step can run in this worker as it would in its module process; else why not."""
    if getattr(action._connection, "transport", None) != "local":
        return "not the local connection"
    if action._task.async_val:
        return "async"
    environments = action._task.environment
    if not isinstance(environments, list):
        environments = [environments]
    # as ActionBase._compute_environment_string reads it: each entry templated, an empty one sets nothing
    if any(environment and templar.template(environment) for environment in environments):
        return "the task sets an environment"
    interpreter = task_vars.get("ansible_python_interpreter")
    if interpreter is None:
        return "no ansible_python_interpreter (it would be discovered)"
    interpreter = str(templar.template(interpreter))
    if os.path.realpath(interpreter) != os.path.realpath(sys.executable):
        return f"the interpreter {interpreter} is not the controller's Python"
    if importlib.util.find_spec("boto3") is None:
        return "no boto3 in the controller's Python"
    return ""


def run(name, argument_spec, run_fn, step_kind, args, check_mode, diff):
    """The result ``run_aws_step(run_fn, step_kind, argument_spec)`` would return for ``args``, done here."""
    from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec
    from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step

    spec = aws_argument_spec()
    spec.update(argument_spec)
    problems = step.mapping_for_list_problems(argument_spec, args)
    if problems:
        return {"failed": True, "changed": False, "msg": "; ".join(problems)}
    validated = ModuleArgumentSpecValidator(spec).validate(dict(args))
    if validated.error_messages:  # as AnsibleModule words it
        msg = validated.errors.msg
        if isinstance(validated.errors[0], UnsupportedError):
            msg = f"Unsupported parameters for ({name}) module: {msg}"
        return remove_values(
            {"failed": True, "changed": False, "msg": msg, "invocation": {"module_args": args}},
            validated._no_log_values,
        )
    module = TaskModule(name, validated.validated_parameters, check_mode, diff, validated._no_log_values)
    for warning in validated._warnings:
        module.warn(f"Both option {warning['option']} and its alias {warning['alias']} are set.")
    try:
        step.run_step(module, run_fn, step_kind)
    except ModuleExit as done:
        return done.result
    except Exception as exc:  # a bug in the step: reported as a module crash would be, with its traceback
        return {
            "failed": True,
            "changed": False,
            "msg": f"MODULE FAILURE: {type(exc).__name__}: {exc}",
            "exception": traceback.format_exc(),
        }
    return {"failed": True, "changed": False, "msg": f"MODULE FAILURE: {name} ended without a result"}
