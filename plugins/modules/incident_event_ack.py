#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_event_ack
short_description: Confirm to the durable SQS event source that this run recorded its event
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - The event source C(firebreak.runbooks.aws_sqs_durable) deletes an SQS message only after the run it
    started confirms it. This module is that confirmation, run by the playbook after it recorded the event
    in the incident timeline and before it acts.
  - Writes C(<spool>/acks/<message_id>.json) exclusively (written whole, then linked into place, so the source
    never reads half of it). When the file is already there, an earlier run confirmed the same message (a
    redelivery after a crash) and RV(acked_before) is true; the playbook then stops instead of acting twice.
  - Runs on the controller, where the event source runs (C(connection=local)).
  - A record module like C(firebreak.runbooks.incident_note). It changes nothing in the incident's systems, so it
    returns no step contract (C(step_kind), C(containment)).
options:
  spool:
    description:
      - The event source's spool directory, as the event gives it (C(ansible_eda.event.firebreak.spool)).
    type: path
    required: true
  message_id:
    description:
      - The SQS message id (C(ansible_eda.event.firebreak.message_id)).
    type: str
    required: true
  incident_id:
    description:
      - The incident the run records the event in.
    type: str
  run:
    description:
      - What confirms, for the source's journal (for example the playbook name).
    type: str
extends_documentation_fragment:
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
seealso:
  - name: Event-driven response
    description: The source's guarantees and the acknowledgement protocol.
    link: https://github.com/firebreak/runbooks/blob/main/docs/event-driven.md
"""

EXAMPLES = r"""
- name: Confirm the alert to the event source (after it was recorded, before acting)
  firebreak.runbooks.incident_event_ack:
    spool: "{{ ansible_eda.event.firebreak.spool }}"
    message_id: "{{ ansible_eda.event.firebreak.message_id }}"
    incident_id: "{{ incident_id }}"
    run: service_down
  register: ack

- name: Stop when an earlier run already confirmed (and acted on) this message
  ansible.builtin.assert:
    that: not ack.acked_before
"""

RETURN = r"""
acked_before:
  description: An earlier run had already confirmed this message; this run wrote nothing.
  returned: always
  type: bool
  sample: false
ack:
  description: The confirmation (this run's, or the earlier run's when RV(acked_before)).
  returned: always
  type: dict
  sample: {"message_id": "0f1c...", "incident_id": "ALARM-web-20261206T160434Z-1a2b3c4d",
           "acked_at": "2026-12-06T16:04:36.120Z", "run": "service_down", "pid": 4242}
ack_path:
  description: The confirmation file.
  returned: always
  type: str
  sample: /srv/firebreak/incidents/.eda/firebreak-alarms/acks/0f1c....json
"""

import datetime
import errno
import json
import os
import re

from ansible.module_utils.basic import AnsibleModule

MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

ARGUMENT_SPEC = {
    "spool": {"type": "path", "required": True},
    "message_id": {"type": "str", "required": True},
    "incident_id": {"type": "str"},
    "run": {"type": "str"},
}


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def acknowledge(spool, message_id, incident_id=None, run=None, check_mode=False):
    """Write the confirmation exclusively. Returns (acked_before, ack, path)."""
    if not MESSAGE_ID.match(message_id or ""):
        raise ValueError("message_id %r is not an SQS message id" % (message_id,))
    acks = os.path.join(spool, "acks")
    if not os.path.isdir(acks) or os.path.islink(acks):
        raise ValueError("%s is not the event source's acknowledgement directory" % acks)
    path = os.path.join(acks, message_id + ".json")
    if os.path.lexists(path):
        return True, _read(path), path
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    ack = {"message_id": message_id, "incident_id": incident_id, "run": run, "acked_at": now, "pid": os.getpid()}
    if check_mode:
        return False, ack, path
    tmp = os.path.join(acks, ".%s.%d.tmp" % (message_id, os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, (json.dumps(ack, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # exclusive: fails when another run confirmed first
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
        return True, _read(path), path
    finally:
        os.unlink(tmp)
    dir_fd = os.open(acks, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return False, ack, path


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        before, ack, path = acknowledge(
            params["spool"], params["message_id"], params["incident_id"], params["run"], module.check_mode
        )
    except (ValueError, OSError) as exc:
        module.fail_json(msg="cannot confirm message %s: %s" % (params["message_id"], exc))
    if before:
        msg = "message %s was already confirmed by an earlier run (%s at %s)" % (
            params["message_id"],
            ack.get("run"),
            ack.get("acked_at"),
        )
    else:
        msg = "confirmed message %s to the event source" % params["message_id"]
    module.exit_json(changed=not before, acked_before=before, ack=ack, ack_path=path, msg=msg)


if __name__ == "__main__":
    main()
