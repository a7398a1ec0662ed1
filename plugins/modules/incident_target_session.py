#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This module is implemented as an action plugin (plugins/action/incident_target_session.py) and runs on the
# controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_target_session
short_description: Assume a fan-out target's IAM role, the session named after the incident and the operator
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - The frame's per-target credentials for a fan-out (one inventory host per account and region). Runs on the
    controller (an action plugin) and starts no module process.
  - Calls STS C(AssumeRole) on O(role_arn) with the controller's own credentials (environment, O(profile), instance
    role or AWX credential). The C(RoleSessionName) is C(firebreak-<incident id>-<operator>), reduced to what AWS
    accepts (C([\w+=,.@-]{2,64})), so the target account's CloudTrail shows which incident and who acted.
  - Returns the credentials as the host fact C(firebreak_aws_session) (C(access_key), C(secret_key),
    C(session_token), C(expiration), C(role_arn), C(session_name)); a play passes them to every AWS module with
    C(module_defaults) (see C(docs/frame.md), Fan-out). Use it with C(no_log=true), as role
    C(firebreak.runbooks.aws_target_session) does, so that no output, AWX's job events included, shows them.
  - A session already in C(firebreak_aws_session) for the same role and session name, with at least O(renew_minutes)
    left, is kept (no call); otherwise the role is assumed again. Include it again before a step that may start
    late in a long run.
  - Without O(role_arn) nothing is assumed and the controller's own credentials stay in use (a single-account
    inventory such as C(inventories/sandbox)); RV(target) still names the target.
  - Changes nothing (C(changed=false)); runs in check mode too, since a plan needs the target's credentials.
options:
  role_arn:
    description:
      - The target's role (C(firebreak_assume_role_arn) in its host vars). Empty means assume nothing.
    type: str
  incident_id:
    description:
      - The incident, for the session name. Defaults to the variable C(incident_id), else C(FIREBREAK_INCIDENT_ID).
    type: str
  operator:
    description: Who runs the incident, for the session name. Defaults to AWX's job user, else the controller's user.
    type: str
  session_name:
    description: A session name instead of C(firebreak-<incident>-<operator>); reduced to what AWS accepts likewise.
    type: str
  duration_seconds:
    description: Session length, 900 to 43200 (no longer than the role's maximum session duration).
    type: int
    default: 3600
  renew_minutes:
    description: Assume again when fewer than this many minutes of the current session are left.
    type: int
    default: 15
  external_id:
    description: The C(ExternalId) the role's trust policy requires, if any. Never logged.
    type: str
  account_id:
    description:
      - The account the target is (C(firebreak_aws_account_id)). When set, a O(role_arn) in another account is
        refused before any call, and the assumed role is checked to be in it.
    type: str
  cluster:
    description: The target's EKS cluster, to name the target (C(firebreak_eks_cluster)).
    type: str
  region:
    description: The target's region (C(firebreak_aws_region)); STS is called there.
    type: str
  endpoint_url:
    description: STS endpoint (the sandbox's). Defaults to AWS's.
    type: str
  profile:
    description: The controller's AWS profile to assume the role from. Defaults to the default credential chain.
    type: str
  hub_role_arn:
    description:
      - A hub role to assume first (with the controller's credentials), whose session then assumes O(role_arn);
        the AWX hub role credential type (C(awx/credentials.yml)) sets C(firebreak_aws_hub_role_arn) for this.
      - AWS caps a session assumed through another (role chaining) at one hour, so O(duration_seconds) is cut
        to 3600.
    type: str
  hub_external_id:
    description: The C(ExternalId) the hub role's trust policy requires, if any. Never logged.
    type: str
  retry_budget:
    description: Seconds the C(AssumeRole) call may spend retrying throttling and transient errors.
    type: int
    default: 60
extends_documentation_fragment:
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
attributes:
  action:
    description:
      - Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
notes:
  - The secret parts of RV(ansible_facts.firebreak_aws_session) are masked by the incident timeline anyway (keys
    C(secret_key), C(session_token)); C(no_log) keeps them out of the stdout callback and AWX's job events too.
seealso:
  - module: amazon.aws.sts_assume_role
"""

EXAMPLES = r"""
- name: Assume the target's role for this incident
  firebreak.runbooks.incident_target_session:
    role_arn: "{{ firebreak_assume_role_arn }}"
    incident_id: "{{ incident_id }}"
    region: "{{ firebreak_aws_region }}"
    account_id: "{{ firebreak_aws_account_id }}"
  no_log: true
  register: session
"""

RETURN = r"""
target:
  description:
    - The target, without secrets - C(host), C(account_id), C(region), C(cluster), C(role_arn), C(session_name),
      C(assumed_role_arn), C(hub_role_arn), C(expiration), C(renewed) (this run called AssumeRole) and C(reason)
      (why it did, or why not).
  returned: always
  type: dict
  sample:
    host: prod-111111111111-us-east-1
    account_id: "111111111111"
    region: us-east-1
    cluster: null
    role_arn: arn:aws:iam::111111111111:role/firebreak-responder
    session_name: firebreak-INC-2026-042-alice
    assumed_role_arn: arn:aws:sts::111111111111:assumed-role/firebreak-responder/firebreak-INC-2026-042-alice
    expiration: "2026-11-24T10:30:00Z"
    hub_role_arn: null
    renewed: true
    reason: no session yet
ansible_facts:
  description: The session, as host facts.
  returned: success
  type: dict
  contains:
    firebreak_aws_session:
      description:
        - C(access_key), C(secret_key), C(session_token), C(expiration), C(role_arn), C(session_name),
          C(assumed_role_arn). Empty without O(role_arn).
      type: dict
      returned: success
"""
