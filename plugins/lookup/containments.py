# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: containments
short_description: An incident's containments not yet released, read from its verified timeline
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Reads the incident timeline (verifying its hash chain first) and returns the C(containment) entries
    that containment steps recorded for this incident and that no later release has undone.
  - A containment module returns C(containment) (one entry, or a list) saying exactly what it changed;
    the timeline records it in the task's C(details). A release returns C(release) (one entry, or a list)
    whose C(releases) lists the ids of the entries it undid.
  - Check-mode records, and task records that report no change, are ignored (they changed nothing); a failed
    task that reports C(changed) counts (it contained something before it failed). Entries of another incident
    are ignored.
  - The role's C(<role>_state=released) mode passes the result to its module, which undoes exactly that.
options:
  _terms:
    description: Step (role) names whose containments to return, for example C(waf_block). None means every step.
    type: list
    elements: str
    required: false
  incident_id:
    description:
      - The incident. Defaults to the environment variable C(FIREBREAK_INCIDENT_ID).
    type: str
  timeline:
    description:
      - The timeline file.
      - Defaults to the environment variable C(FIREBREAK_TIMELINE), else C(<incidents>/<incident_id>/timeline.jsonl),
        where C(<incidents>) is C(FIREBREAK_INCIDENTS_DIR) (as the timeline callback writes), else C(incidents).
    type: path
  resource:
    description: Only entries for this resource (an ARN or id, as the module recorded it).
    type: str
  missing_ok:
    description: Return an empty list when the timeline does not exist (otherwise it is an error).
    type: bool
    default: false
notes:
  - A timeline whose chain does not verify is an error naming the first bad seq; nothing is returned.
"""

EXAMPLES = r"""
- name: Read what this incident blocked in WAF and has not released yet
  ansible.builtin.set_fact:
    open_blocks: "{{ lookup('firebreak.runbooks.containments', 'waf_block', incident_id=incident_id, wantlist=True) }}"
"""

RETURN = r"""
_raw:
  description:
    - The unreleased containment entries, oldest first, as the modules returned them.
    - Each has C(id), C(incident_id), C(step), C(resource), C(changed), C(at), plus C(seq) (the timeline
      record that holds it) and C(host).
  type: list
  elements: dict
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import (
    TimelineError,
    default_path,
    open_containments,
    verify_timeline,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        incident_id = self.get_option("incident_id") or os.environ.get("FIREBREAK_INCIDENT_ID") or ""
        incident_id = str(incident_id).strip()
        if not incident_id:
            raise AnsibleLookupError(
                "containments: no incident id: pass incident_id=... (or export FIREBREAK_INCIDENT_ID)"
            )
        path = self.get_option("timeline") or default_path(incident_id)
        path = os.path.abspath(os.path.expanduser(str(path)))
        if not os.path.exists(path) and self.get_option("missing_ok"):
            return []
        try:
            records = verify_timeline(path)
        except TimelineError as exc:
            raise AnsibleLookupError(f"containments: {exc}") from None
        steps = [str(t) for t in terms or [] if t]
        return open_containments(records, incident_id, steps=steps or None, resource=self.get_option("resource"))
