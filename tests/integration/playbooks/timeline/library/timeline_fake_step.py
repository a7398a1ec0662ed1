# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test double for an incident step: returns before/after like the collection's modules do."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: timeline_fake_step
short_description: Test double for an incident step (tests only)
description: Returns the given before/after state, reports a change when they differ.
author: firebreak.runbooks maintainers (@firebreak)
options:
  resource_id:
    description: Id of the resource acted on.
    type: str
    required: true
  before:
    description: State before the step.
    type: dict
    default: {}
  after:
    description: State after the step.
    type: dict
    default: {}
  api_token:
    description: A credential (must never reach the timeline).
    type: str
  step_kind:
    description: The result's C(step_kind) (omitted from the result when not given).
    type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 - after DOCUMENTATION, as in every module


def main():
    module = AnsibleModule(
        argument_spec={
            "resource_id": {"type": "str", "required": True},
            "before": {"type": "dict", "default": {}},
            "after": {"type": "dict", "default": {}},
            "api_token": {"type": "str", "no_log": True},
            "step_kind": {"type": "str"},
        },
        supports_check_mode=True,
    )
    before, after = module.params["before"], module.params["after"]
    kind = {"step_kind": module.params["step_kind"]} if module.params["step_kind"] else {}
    module.exit_json(
        **kind,
        changed=before != after,
        resource_id=module.params["resource_id"],
        before=before,
        after=after,
        # a module that carelessly echoes a credential under a secret-looking key
        session_token="SESSION-" + (module.params["api_token"] or "none"),
    )


if __name__ == "__main__":
    main()
