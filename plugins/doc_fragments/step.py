# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options every incident step module shares (plugins/module_utils/runtime/step.py).
    DOCUMENTATION = r"""
options:
  retry_budget:
    description:
      - Seconds each AWS call may spend retrying throttling and transient errors (5xx, connection
        errors) before the step fails.
      - An error that does not clear fails the step within this budget, naming the API call, the AWS
        error code and the resource. Errors that retrying cannot fix (access denied, not found,
        validation) fail at once.
      - Raise it for an API you know to be slow to recover; C(0) makes one attempt only.
    type: int
    default: 60
"""

    INCIDENT = r"""
options:
  incident_id:
    description:
      - The incident this step acts for. Recorded in the result (and so in the incident timeline) and
        put on the resources the step changes as the tag C(firebreak:incident) where AWS allows tags.
      - When not given, the environment variable C(FIREBREAK_INCIDENT_ID) (the one the incident timeline reads), so a
        task or role need not pass it.
    type: str
"""

    # Containment steps: where the claims of the containment ledger live (plugins/module_utils/containment/ledger.py).
    CLAIMS = r"""
options:
  claims_bucket:
    description:
      - The S3 bucket that holds the containment ledger's claims, under C(firebreak/claims/). Every responder's run
        must use the same store, so the roles pass the evidence bucket, C(firebreak_evidence_bucket), when it is set.
      - A containment records one claim per contained item (address, key, stage...) and incident before it acts. A
        release removes only what no other unreleased incident still claims, and says which it kept and for whom.
    type: str
  claims_dir:
    description:
      - Without O(claims_bucket), the local directory that holds the claims.
      - Defaults to the environment variable C(FIREBREAK_CLAIMS_DIR), else C(.claims) beside the incident
        directories (the parent of the directory of C(FIREBREAK_TIMELINE)), else C(incidents/.claims).
    type: path
"""

    # Containment steps (plugins/module_utils/containment/ledger.py CONTAINMENT_OPTIONS). A step whose states have
    # other names documents its own O(state); the fragment's is then not used.
    CONTAINMENT = r"""
options:
  state:
    description:
      - V(contained) applies the step's containment and records it in the result's RV(containment) list, one entry
        per contained item, with what it changed, so that it can be undone exactly.
      - V(released) undoes the entries given in O(containments), and only what those entries changed. What another
        unreleased incident still claims is kept and reported; a resource deleted meanwhile is reported as gone, and
        the release goes on with the other entries.
    type: str
    choices: [contained, released]
    default: contained
  containments:
    description:
      - For a release, the containment entries to undo, as the lookup
        C(lookup('firebreak.runbooks.containments', <role>, incident_id=...)) returns them from the incident's
        verified timeline.
      - Entries of another step, another incident or another resource are skipped with a warning.
    type: list
    elements: dict
    default: []
"""

    # Verification modules: how they poll (plugins/module_utils/aws/health.py VERIFY_OPTIONS).
    VERIFY = r"""
options:
  interval:
    description: Seconds between rounds of checks.
    type: int
    default: 10
  wait_timeout:
    description:
      - Seconds to keep polling until every check passes. C(0) runs one round. A round is not started when it would
        begin after the timeout.
    type: int
    default: 300
  fail_on_unhealthy:
    description:
      - Fail the task, naming each failing check and its value, when the checks have not all passed by the timeout.
      - With V(false) the task returns RV(passed=false) and the checks, for a role or playbook to decide.
    type: bool
    default: true
"""

    # The ECS service a step acts on (plugins/module_utils/aws/ecs.py SERVICE_OPTIONS).
    ECS_SERVICE = r"""
options:
  cluster:
    description:
      - Name or ARN of the ECS cluster.
    type: str
    required: true
  service:
    description:
      - Name or ARN of the ECS service.
    type: str
    required: true
"""

    # How an ECS step that changes the service waits, and what it captures first (ecs.py WAIT_OPTIONS).
    ECS_WAIT = r"""
options:
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout the module fails and reports the service's current state.
    type: int
    default: 600
  capture:
    description:
      - Capture the service summary and the health of its target groups before changing anything, in the same module
        call, returned as RV(captured).
    type: bool
    default: false
"""

    # Kubernetes step modules (plugins/module_utils/k8s/common.py).
    K8S = r"""
options:
  retry_budget:
    description:
      - Seconds each Kubernetes API call may spend retrying before the step fails. Throttling (429), 5xx
        answers, refused connections and reads that got no answer are retried.
      - Each attempt waits for an answer at most half the budget (between 10 and 60 seconds), so a hung API server
        (an overloaded control plane, an address that drops packets) fails the step instead of holding it. This
        includes the reads kubernetes.core makes while it creates the client.
      - An error that does not clear fails the step within this budget, naming the verb, the object, the status
        and the API server. Errors that retrying cannot fix (forbidden, not found, invalid, conflict, a TLS
        failure) fail at once.
      - A write that was sent but not answered is not sent again, since it may have been carried out. The step
        fails and says so; running it again reads the state again.
      - C(0) makes one attempt only.
    type: int
    default: 60
"""

    # The check and diff mode of a step module (every step supports both; plugins/module_utils/runtime/step.py).
    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
"""

    # Check and diff mode of a module that changes nothing it reports a diff for (info, verification and
    # record modules): check mode runs, diff mode has nothing to show.
    ATTRIBUTES_NO_DIFF = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
"""

    # The Kubernetes object a step acts on, by name (k8s_common.K8S_OBJECT_OPTIONS); O(kind) is the module's own.
    K8S_OBJECT = r"""
options:
  name:
    description:
      - Name of the object of kind O(kind) the step acts on.
    type: str
    required: true
  namespace:
    description:
      - Namespace of that object.
    type: str
    required: true
"""

    # A step whose mitigating call must be made, or fail, within a time from the step's start.
    DEADLINE = r"""
options:
  mitigation_deadline:
    description:
      - Seconds from the step's start within which the calls up to and including the mitigating call (the reads that
        decide, the records, the update) are made or fail, and the failure is reported (2 s are kept to report it).
      - The calls after the mitigating call (waiting, verifying) each get O(retry_budget) again.
      - C(0) makes one attempt of each of those calls.
    type: int
    default: 60
"""
