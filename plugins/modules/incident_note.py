#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This module is implemented as an action plugin (plugins/action/incident_note.py) and runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_note
short_description: Add a decision, communication, status or observation to the incident timeline
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Runs on the controller (an action plugin, no module process), so a note costs no more than the task.
  - Returns the note; the C(firebreak.runbooks.incident_timeline) callback records a task running this module
    as a C(note) event (not C(task_ok)) in the incident timeline, with O(msg) as the record's C(msg) and the
    note in C(details).
  - Use it in a runbook to record why a step was taken, or with C(playbooks/incident_note.yml) to let a person
    add a note from the command line.
  - The module changes nothing on the target, so it always reports C(changed=false) and runs in check mode too.
options:
  msg:
    description:
      - The note, in incident words (what was decided, said, seen).
      - At most 8000 characters; a longer note is refused, naming its length, and nothing is recorded.
    type: str
    required: true
  kind:
    description:
      - What the note is.
    type: str
    choices: [decision, communication, status, observation]
    default: observation
  severity:
    description:
      - Incident severity at the time of the note, for example C(P1).
    type: str
    choices: [P1, P2, P3, P4]
  audience:
    description:
      - Who a communication went to, for example C(#incident-response) or C(status page).
    type: str
extends_documentation_fragment:
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on
      the controller.
    support: full
notes:
  - Run it once per incident step (C(run_once=true)) when the play targets several hosts; each host's result
    is recorded.
seealso:
  - name: Incident timeline format
    description: Fields, hash chain, redaction and the report.
    link: https://github.com/firebreak/runbooks/blob/main/docs/timeline.md
"""

EXAMPLES = r"""
- name: Record the decision to roll back
  firebreak.runbooks.incident_note:
    msg: "Error rate 40% since deploy 142; rolling back the api service to revision 141"
    kind: decision
    severity: P1
  run_once: true

- name: Record the status page update
  firebreak.runbooks.incident_note:
    msg: "Status page: Investigating - API errors for some users"
    kind: communication
    audience: status page
  run_once: true
"""

RETURN = r"""
note:
  description: The note as recorded in the timeline's C(details).
  returned: always
  type: dict
  contains:
    msg:
      description: The note text.
      type: str
      returned: always
      sample: "Rolling back the api service to revision 141"
    kind:
      description: What the note is.
      type: str
      returned: always
      sample: decision
    severity:
      description: Incident severity given with the note.
      type: str
      returned: when given
      sample: P1
    audience:
      description: Who a communication went to.
      type: str
      returned: when given
      sample: "#incident-response"
msg:
  description: The note text.
  returned: always
  type: str
  sample: "Rolling back the api service to revision 141"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.note import ARGUMENT_SPEC, build_note


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        note = build_note(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, note=note, msg=note["msg"])


if __name__ == "__main__":
    main()
