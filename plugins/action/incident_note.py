# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side run of ``firebreak.runbooks.incident_note``: no module process is started.

A note only returns its text (the timeline callback records the task as a ``note`` event), so it needs nothing
from the target: running it here saves a module process (about 0.4 s) wherever a runbook notes a decision, for
instance the gate's decision before a scenario's first mitigating call.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.note import ARGUMENT_SPEC, build_note


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            note = build_note(args)
        except ValueError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        result.update(changed=False, note=note, msg=note["msg"])
        return result
