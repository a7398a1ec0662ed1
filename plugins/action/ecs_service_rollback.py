# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``firebreak.runbooks.ecs_service_rollback`` with the incident frame's work before it done in the same task.

Without ``frame`` this is Ansible's ``normal`` action: the module runs as any module does.  With ``frame`` (the
option documented in the module), the frame's controller-side work -- validating the scenario's variables, its
refusals, the declaration and the gate's decision -- runs here first, on the controller, and the rollback only when
they pass: a scenario then spends no task (no worker process) before its first mitigating call.  See
plugins/plugin_utils/frame.py for the shape of ``frame`` and of the ``timeline_before`` the result carries.

With ``frame``, the rollback itself runs in this worker too (plugins/plugin_utils/step_in_task.py: the module's own
``run``, argument spec and step contract, no module process) wherever that is the same as the module process: the
local connection with the controller's Python, no ``environment``, no ``async``. Anywhere else the module runs.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible_collections.firebreak.runbooks.plugins.plugin_utils import frame as frame_utils
from ansible_collections.firebreak.runbooks.plugins.plugin_utils import step_in_task

display = Display()


class ActionModule(NormalAction):
    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        args = self._task.args
        frame = args.pop("frame", None) if isinstance(args, dict) else None
        if not frame:
            return super().run(tmp, task_vars)
        frame_utils.check_frame(frame)
        problem = frame_utils.validate(
            frame, task_vars, self._templar, lambda name: self._find_file(name, task_vars)
        ) or frame_utils.refusal(frame, task_vars, self._templar)
        if problem:
            return {"failed": True, "changed": False, "msg": problem}
        check_mode = bool(self._task.check_mode or self._play_context.check_mode)
        entries, registered, failure = frame_utils.run_before(frame, check_mode)
        facts = dict(frame.get("facts") or {}, **registered)
        if failure is not None:
            return {
                "failed": True,
                "changed": False,
                "msg": failure.get("msg") or "the incident frame failed before the step",
                "timeline_before": entries,
                "ansible_facts": facts,
            }
        result = self._rollback(tmp, task_vars, check_mode)
        result["timeline_before"] = entries
        result["ansible_facts"] = dict(result.get("ansible_facts") or {}, **facts)
        return result

    def _find_file(self, name, task_vars):
        """``name`` found as the file lookup finds it (the task's search path, ``files/`` first)."""
        paths = task_vars.get("ansible_search_path") or [self._loader.get_basedir()]
        found = self._loader.path_dwim_relative_stack(paths, "files", name)
        if not found:
            raise AnsibleActionFail(f"frame.validate: {name} not found (searched {', '.join(map(str, paths))})")
        return found

    def _rollback(self, tmp, task_vars, check_mode):
        why_not = step_in_task.usable(self, task_vars, self._templar)
        if why_not:
            display.vvv(f"{self._task.action}: in a module process ({why_not})")
            return super().run(tmp, task_vars)
        from ansible_collections.firebreak.runbooks.plugins.modules import ecs_service_rollback as module

        display.vvv(f"{self._task.action}: run in this task's worker (local connection, the controller's Python)")
        result = ActionBase.run(self, tmp, task_vars)
        done = step_in_task.run(
            self._task.action,
            module.ARGUMENT_SPEC,
            module.run,
            module.STEP_KIND,
            dict(self._task.args),
            check_mode,
            bool(self._task.diff),
        )
        return merge_hash(result, done)
