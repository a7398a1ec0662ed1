#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This module is implemented as an action plugin (plugins/action/incident_seal.py) and runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_seal
short_description: Seal an incident timeline's chain head outside the file
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Verifies the incident timeline's hash chain and records its head (C(seq), C(hash), time, operator) outside
    the file, so that removing the last records or rewriting the whole chain is found later by
    M(firebreak.runbooks.incident_report).
  - The seal is always returned and printed as one line starting with C(SEAL ); keep it (AWX keeps job output).
  - With O(bucket), it is also stored as an object under S3 Object Lock retention, so nobody, the responder
    included, can change or delete it before the retention ends. The bucket must have Object Lock enabled.
  - Every scenario playbook runs it at its end; C(playbooks/incident_seal.yml) runs it on its own.
  - A seal is a record of the incident, not a change to the systems it is about, so the module always reports
    C(changed=false) (a scenario re-run stays idempotent); C(stored.written) says whether an object was written.
  - In check mode nothing is stored; the seal is still returned and printed.
  - Runs on the controller (an action plugin); S3 is reached with the controller's AWS credentials
    (environment, profile or instance role).
options:
  timeline:
    description:
      - The timeline. Defaults to C(FIREBREAK_TIMELINE), else C(incidents/<incident_id>/timeline.jsonl).
    type: path
  incident_id:
    description:
      - The incident. Defaults to the variable C(incident_id), else C(FIREBREAK_INCIDENT_ID).
      - A timeline whose records belong to another incident is refused.
    type: str
  bucket:
    description:
      - S3 bucket (with Object Lock enabled) to store the seal in. Without it the seal is only returned.
      - C(playbooks/incident_seal.yml) and the scenarios pass the inventory's C(firebreak_evidence_bucket), where
        C(playbooks/incident_report.yml) reads the seals back.
      - A name AWS would refuse is refused before any call, naming it.
    type: str
  prefix:
    description: Key prefix; seals are stored as C(<prefix>/<incident_id>/seal-<seq>-<hash12>.json).
    type: str
    default: firebreak/seals
  retention_days:
    description: Object Lock retention of the stored seal, in days.
    type: int
    default: 365
  retention_mode:
    description:
      - C(COMPLIANCE) (nobody can shorten the retention or delete the object) or C(GOVERNANCE) (users with
        C(s3:BypassGovernanceRetention) can).
    type: str
    default: COMPLIANCE
    choices: [COMPLIANCE, GOVERNANCE]
  endpoint_url:
    description: S3 endpoint (the sandbox's). Defaults to C(FIREBREAK_AWS_ENDPOINT_URL), else AWS's.
    type: str
  region:
    description: AWS region of the bucket.
    type: str
  retry_budget:
    description: Seconds each S3 call may spend retrying throttling and transient errors before the seal fails.
    type: int
    default: 60
extends_documentation_fragment:
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
attributes:
  action:
    description:
      - Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
seealso:
  - module: firebreak.runbooks.incident_report
"""

EXAMPLES = r"""
- name: Seal the chain head in the run's output
  firebreak.runbooks.incident_seal:
    incident_id: INC-2026-042

- name: Seal it in the evidence bucket under Object Lock
  firebreak.runbooks.incident_seal:
    incident_id: INC-2026-042
    bucket: acme-incident-evidence
    retention_days: 400
"""

RETURN = r"""
seal:
  description: The seal.
  returned: success
  type: dict
  sample:
    incident_id: INC-2026-042
    seq: 41
    hash: 5df5ce7ea562f26594d9b84dde73bef8afc85511c10baea6600ac7fa8ed7613d
    records: 41
    first_hash: a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90
    sealed_at: "2026-11-24T09:30:00Z"
    operator: {user: alice, source: local}
    version: 1
seal_line:
  description: The seal as one line (C(SEAL {...})), to give to the report later.
  returned: success
  type: str
timeline:
  description: Absolute path of the sealed timeline.
  returned: success
  type: str
stored:
  description:
    - Where the seal was stored (C(uri), C(version_id), C(retention_mode), C(retention_days)) and whether this
      run C(written) it (a head already sealed is not written again).
    - Null without O(bucket).
  returned: success
  type: dict
"""
