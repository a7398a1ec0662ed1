#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This module is implemented as an action plugin (plugins/action/incident_report.py) and runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_report
short_description: Verify an incident timeline and write the post-incident report
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Verifies the hash chain of an incident timeline written by the C(firebreak.runbooks.incident_timeline)
    callback and fails, naming the file, the line and the first bad C(seq), when any record was changed,
    removed, inserted or is not valid JSON.
  - Writes a Markdown post-incident report following the post-mortem template of the incident procedures
    (incident summary, timeline, actions with before/after, notes and communications, time to containment
    and recovery, follow-ups with root cause, contributing factors, what went well or did not, action items)
    and the chain verification result.
  - The summary's severity (with its changes), status, impact and roles come from the lifecycle records
    (M(firebreak.runbooks.incident_lifecycle)); the clocks (time to declare, to mitigation, to containment, to
    recovery and to resolution) are measured from the first event, by the C(step_kind) each step recorded.
  - The report carries a Mermaid gantt chart of the phases and key actions, groups the actions by target when
    several inventory hosts ran steps, lists the targets that failed, and gives the post-incident review's due
    date from the severity (O(review_policy)).
  - Writes the same facts as JSON (C(report.json) beside the report; keys sorted, so an unchanged timeline gives
    an identical file). The schema is in the collection's C(docs/report.md).
  - Runs on the controller (an action plugin); it reads and writes controller files only.
  - "The report is deterministic: rendering it again from an unchanged timeline reports C(changed=false)."
options:
  timeline:
    description:
      - Path of the timeline (JSON Lines) on the controller.
      - Defaults to C(FIREBREAK_TIMELINE), else C(<FIREBREAK_INCIDENTS_DIR or incidents>/<incident_id>/timeline.jsonl).
      - Give this or O(incident_id).
      - When the file does not exist (an AWX job in a new container) and O(seal_bucket) is set, the report is
        rendered from the timeline's durable copy in that bucket.
    type: path
  incident_id:
    description:
      - The incident. Finds the timeline's durable copy when the local file is absent; otherwise it is read
        from the timeline's first record.
    type: str
  durable:
    description:
      - Read the timeline's durable copy in O(seal_bucket) (C(<durable_prefix>/<incident_id>/<seq>.json), written
        by the C(firebreak.runbooks.incident_timeline) callback) and verify it as one chain from seq 1.
      - The local file and the durable copy must agree on every record both hold (else the report fails, naming
        the first seq where they differ); the report is rendered from the longer one and says whether the
        durable copy is complete.
    type: bool
    default: true
  durable_prefix:
    description: Key prefix of the timelines' durable copies.
    type: str
    default: firebreak/timelines
  dest:
    description:
      - Where to write the report.
      - Defaults to C(report.md) in the timeline's directory. A path that is the timeline itself (also through
        a symbolic link) is refused.
    type: path
  json_dest:
    description:
      - Where to write the facts as JSON.
      - Defaults to the report's path with C(.json) in place of C(.md) (C(report.json) beside C(report.md)).
    type: path
  review_policy:
    description:
      - "Business days after the resolution within which the post-incident review is due, per severity
        (C(null) means no review is required for it), merged over the defaults
        C({P1: 5, P2: 5, P3: 10, P4: null}). Saturdays, Sundays and O(review_holidays) are skipped."
      - A severity other than P1 to P4, or a value that is not a positive number, is refused, naming it.
    type: dict
    default: {}
  review_holidays:
    description: Dates (C(YYYY-MM-DD)) that are not business days for the review's due date.
    type: list
    elements: str
    default: []
  chart_max_actions:
    description:
      - The most key actions the chart shows (the milestones and failures first); the report says how many were
        left out.
    type: int
    default: 40
  seals:
    description:
      - Seals to check the timeline against, as returned by M(firebreak.runbooks.incident_seal) (a dict) or as
        its C(SEAL {...}) output line.
      - Seals the timeline recorded itself are always checked too.
      - A seal whose C(seq) is beyond the last record (records removed) or whose hash differs from the record
        at its C(seq) (chain rewritten) fails the report, naming the seal.
    type: list
    elements: raw
    default: []
  seal_bucket:
    description:
      - Also check every seal of the incident stored in this S3 bucket (see M(firebreak.runbooks.incident_seal)).
      - C(playbooks/incident_report.yml) passes the inventory's C(firebreak_evidence_bucket), where
        C(playbooks/incident_seal.yml) and the scenarios store the seals.
      - A name AWS would refuse is refused before any call, naming it.
    type: str
  seal_prefix:
    description: Key prefix of the stored seals.
    type: str
    default: firebreak/seals
  endpoint_url:
    description: S3 endpoint for O(seal_bucket). Defaults to C(FIREBREAK_AWS_ENDPOINT_URL), else AWS's.
    type: str
  region:
    description: AWS region of O(seal_bucket).
    type: str
  retry_budget:
    description: Seconds each S3 call may spend retrying throttling and transient errors.
    type: int
    default: 60
attributes:
  action:
    description:
      - Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
notes:
  - Use C(playbooks/incident_report.yml), which runs this module with the timeline callback switched off for
    its play, so reporting on a timeline never appends to it.
seealso:
  - module: firebreak.runbooks.incident_note
  - module: firebreak.runbooks.incident_seal
"""

EXAMPLES = r"""
- name: Verify the timeline and write report.md beside it
  firebreak.runbooks.incident_report:
    timeline: incidents/INC-2025-001/timeline.jsonl

- name: Write the report somewhere else (and INC-2025-001.json beside it), with the organisation's review policy
  firebreak.runbooks.incident_report:
    timeline: incidents/INC-2025-001/timeline.jsonl
    dest: /srv/postmortems/INC-2025-001.md
    review_policy: {P3: 5, P4: 20}
    review_holidays: ["2025-12-25", "2025-12-26"]
"""

RETURN = r"""
verified:
  description: Whether the hash chain verified.
  returned: always
  type: bool
  sample: true
timeline:
  description: Absolute path of the timeline.
  returned: always
  type: str
  sample: /work/incidents/INC-2025-001/timeline.jsonl
dest:
  description: Absolute path of the report.
  returned: success
  type: str
  sample: /work/incidents/INC-2025-001/report.md
json_dest:
  description: Absolute path of the facts as JSON (C(report.json)).
  returned: success
  type: str
  sample: /work/incidents/INC-2025-001/report.json
summary:
  description:
    - The main facts of C(report.json), for a job's artifacts.
    - C(clocks) holds the seconds from the first event to each milestone (C(null) when not reached).
  returned: success
  type: dict
  sample:
    incident_id: INC-2025-001
    title: API unavailable after deploy 142
    severity: P1
    status: resolved
    resolved: true
    clocks: {declaration: 120.5, mitigation: 180.2, containment: null, recovery: 300.0, resolution: 900.0}
    review_due: "2025-12-29"
    failed_targets: []
    open_containments: 0
    communications_not_delivered: 1
records:
  description: Number of records verified.
  returned: success
  type: int
  sample: 42
last_seq:
  description: C(seq) of the last record.
  returned: success
  type: int
  sample: 42
last_hash:
  description: C(hash) of the last record; anchors the verified chain.
  returned: success
  type: str
  sample: 5df5ce7ea562f26594d9b84dde73bef8afc85511c10baea6600ac7fa8ed7613d
incident_ids:
  description: Incident ids found in the timeline.
  returned: success
  type: list
  elements: str
  sample: [INC-2025-001]
bad_line:
  description: Line number of the first bad record.
  returned: when verification failed at a record
  type: int
  sample: 7
bad_seq:
  description: The C(seq) the first bad record should have had.
  returned: when the chain is broken
  type: int
  sample: 7
seals_checked:
  description: Number of seals the timeline was checked against.
  returned: when the chain verified
  type: int
  sample: 2
durable:
  description:
    - What the timeline's durable copy holds (null without an evidence bucket), C(location), C(records) (how many
      it holds), C(expected) (how many the report covers), C(complete), C(used) (the report was rendered from it),
      C(gap_from) (the first seq it lacks), C(gap_notes) (the seqs of the notes saying a write-through failed).
  returned: when the chain verified
  type: dict
  sample:
    location: s3://acme-incident-evidence/firebreak/timelines/INC-2026-042/
    records: 42
    expected: 42
    complete: true
    used: true
    gap_from: null
    gap_notes: []
"""
