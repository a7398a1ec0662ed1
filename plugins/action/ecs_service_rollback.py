# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``firebreak.runbooks.ecs_service_rollback`` with the incident frame's work before it done in the same task.

Without ``frame`` this is Ansible's ``normal`` action: the module runs as any module does.  With ``frame`` (the
option documented in the module), the frame's controller-side work -- validating the scenario's variables, its
refusals, the declaration and the gate's decision -- runs here first, on the controller, and the module only when
they pass: a scenario then spends no task (no worker process) before its first mitigating call.  See
plugins/plugin_utils/frame.py for the shape of ``frame`` and of the ``timeline_before`` the result carries.
"""

from __future__ import annotations

from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible_collections.firebreak.runbooks.plugins.plugin_utils import frame as frame_utils


class ActionModule(NormalAction):
    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        args = self._task.args
        frame = args.pop("frame", None) if isinstance(args, dict) else None
        if not frame:
            return super().run(tmp, task_vars)
        frame_utils.check_frame(frame)
        problem = frame_utils.validate(frame, task_vars, self._templar) or frame_utils.refusal(
            frame, task_vars, self._templar
        )
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
        result = super().run(tmp, task_vars)
        result["timeline_before"] = entries
        result["ansible_facts"] = dict(result.get("ansible_facts") or {}, **facts)
        return result
