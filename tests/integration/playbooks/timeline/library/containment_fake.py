# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test double for a containment step: returns a containment entry, or a release of given entries."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: containment_fake
short_description: Test double for a containment step (tests only)
description: Contains a resource (returns a containment entry) or releases given entries.
author: firebreak.runbooks maintainers (@firebreak)
options:
  incident_id:
    description: The incident.
    type: str
    required: true
  resource:
    description: The resource.
    type: str
    required: true
  added:
    description: What the containment added.
    type: list
    elements: str
    default: []
  state:
    description: contained or released.
    type: str
    choices: [contained, released]
    default: contained
  containments:
    description: The entries to release.
    type: list
    elements: dict
    default: []
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (  # noqa: E402
    containment_entry,
    release_entry,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "incident_id": {"type": "str", "required": True},
            "resource": {"type": "str", "required": True},
            "added": {"type": "list", "elements": "str", "default": []},
            "state": {"type": "str", "choices": ["contained", "released"], "default": "contained"},
            "containments": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "contained":
        entry = containment_entry(p["incident_id"], "fake_block", p["resource"], {"added": p["added"]})
        module.exit_json(changed=True, containment=entry)
    ids = [c["id"] for c in p["containments"]]
    release = release_entry(p["incident_id"], "fake_block", p["resource"], ids, restored={"removed": ids})
    module.exit_json(changed=bool(ids), release=release)


if __name__ == "__main__":
    main()
