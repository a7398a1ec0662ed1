# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test double for a careless module: returns whatever it is given, echoes arguments in stdout."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: secret_echo
short_description: Test double for a module that leaks (tests only)
description: Returns O(result) as its result, O(stdout) as stdout, and fails with O(fail_msg) when given.
author: firebreak.runbooks maintainers (@firebreak)
options:
  result:
    description: Keys to return.
    type: dict
    default: {}
  stdout:
    description: Text returned as stdout.
    type: str
    default: ""
  password:
    description: A credential this careless module does not mark no_log.
    type: str
  api_token:
    description: Another credential, not marked no_log.
    type: str
  conn:
    description: A connection string.
    type: str
  fail_msg:
    description: Fail with this message.
    type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec={
            "result": {"type": "dict", "default": {}},
            "stdout": {"type": "str", "default": ""},
            "password": {"type": "str", "no_log": False},
            "api_token": {"type": "str", "no_log": False},
            "conn": {"type": "str"},
            "fail_msg": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["fail_msg"]:
        module.fail_json(msg=p["fail_msg"])
    module.exit_json(changed=False, stdout=p["stdout"], **p["result"])


if __name__ == "__main__":
    main()
