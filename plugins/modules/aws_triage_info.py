#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_triage_info
short_description: An incident's AWS evidence in one call, bounded and redacted
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - The evidence step of the incident frame, run after the first mitigation. Reads what each named service recorded
    in a time window and returns it for the incident record.
  - A section is read when its option is given; the sections are read concurrently.
  - Every section is bounded by O(max_items) (newest first; C(truncated) and C(left_out) say what was left out) and by
    the window O(since)..O(until). Secrets in event payloads (CloudTrail request and response elements, alarm
    history data) are masked as the incident timeline masks them.
  - A section that fails (AccessDenied, GuardDuty not enabled, an unknown service) is reported in its own C(errors)
    entry, naming the call and the code, while the other sections still return. The module fails only when every
    requested section failed.
  - Reads only; runs in check mode (the same reads); C(changed) is always false.
options:
  since:
    description:
      - Start of the evidence window. ISO 8601 (C(2026-11-24T09:30:00Z); without an offset UTC), epoch seconds, or
        relative to now such as C(-2h), C(-30m), C(-1d12h) (units C(s), C(m), C(h), C(d), C(w)).
      - The window may not exceed 90 days (CloudTrail's LookupEvents history; RDS keeps 14 days of events).
    type: str
    default: "-1h"
  until:
    description:
      - End of the evidence window, in the forms of O(since) or C(now). Defaults to now.
    type: str
  max_items:
    description:
      - At most this many items per section (and per sub-list, such as the ECS stopped tasks), newest first.
      - A listing is read for at most 10 pages; beyond that C(more) is true and C(left_out) is a lower bound.
    type: int
    default: 50
  cloudtrail:
    description:
      - CloudTrail management events (LookupEvents) of a principal or a resource.
      - LookupEvents takes one attribute per call. With both O(cloudtrail.principal) and O(cloudtrail.resource), the
        principal's events are read and those naming the resource kept.
    type: dict
    suboptions:
      principal:
        description:
          - An access key id (C(AKIA...), C(ASIA...)), an IAM user name, a user or role ARN, or an assumed-role ARN.
          - For an assumed role CloudTrail records the role session name as the user name; an assumed-role ARN is
            looked up by its session name.
        type: str
      resource:
        description:
          - A resource name as CloudTrail records it (a bucket, a secret name, a key id, an ARN).
        type: str
  guardduty:
    description:
      - GuardDuty findings about a resource (ListDetectors, ListFindings with a criterion, GetFindings), updated in the
        window. Without a detector the section reports that GuardDuty is not enabled.
    type: dict
    suboptions:
      resource:
        description:
          - The resource the findings are about. An instance id (C(i-...)) and an access key id are recognised.
        type: str
        required: true
      resource_type:
        description:
          - What O(guardduty.resource) is; needed for a bucket, an EKS cluster or a user name.
        type: str
        choices: [instance, access_key, user, bucket, eks_cluster]
      include_archived:
        description:
          - Also return archived findings.
        type: bool
        default: false
  rds:
    description:
      - RDS events (DescribeEvents) of a DB cluster or a DB instance in the window.
    type: dict
    suboptions:
      cluster:
        description:
          - DB cluster identifier. Exactly one of O(rds.cluster) and O(rds.instance).
        type: str
      instance:
        description:
          - DB instance identifier.
        type: str
  ecs:
    description:
      - The ECS service's events and deployments (DescribeServices) and its recently stopped tasks with their stop
        codes and reasons (ListTasks with C(desiredStatus=STOPPED), DescribeTasks).
    type: dict
    suboptions:
      cluster:
        description:
          - Name or ARN of the cluster.
        type: str
        required: true
      service:
        description:
          - Name or ARN of the service.
        type: str
        required: true
  codepipeline:
    description:
      - The executions of a pipeline (ListPipelineExecutions) started or updated in the window.
    type: dict
    suboptions:
      pipeline:
        description:
          - Name of the pipeline.
        type: str
        required: true
  lambda:
    description:
      - The versions of a function published in the window (ListVersionsByFunction) and, with O(lambda.alias), the
        alias (GetAlias) with the versions it routes to (always listed, whenever published).
    type: dict
    suboptions:
      function:
        description:
          - Name or ARN of the function.
        type: str
        required: true
      alias:
        description:
          - Name of the alias.
        type: str
  alarms:
    description:
      - The current state (DescribeAlarms) and the history in the window (DescribeAlarmHistory) of CloudWatch alarms.
        Names that do not exist are listed in C(missing).
    type: dict
    suboptions:
      names:
        description:
          - The alarm names (at most 100).
        type: list
        elements: str
        required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
seealso:
  - module: firebreak.runbooks.ecs_service_status_info
  - module: firebreak.runbooks.k8s_triage_info
"""

EXAMPLES = r"""
- name: What the compromised key did, and what GuardDuty says about it, in the last two hours
  firebreak.runbooks.aws_triage_info:
    since: -2h
    cloudtrail:
      principal: AKIAIOSFODNN7EXAMPLE
    guardduty:
      resource: AKIAIOSFODNN7EXAMPLE
    max_items: 100
  register: evidence

- name: Evidence of a bad deploy after the rollback
  firebreak.runbooks.aws_triage_info:
    since: "{{ incident_started_at }}"
    ecs:
      cluster: shop
      service: shop-api
    codepipeline:
      pipeline: shop-api-deploy
    alarms:
      names: [shop-alb-5xx]
  register: evidence

- name: Say which sections could not be read
  ansible.builtin.debug:
    msg: "{{ evidence.sections | selectattr('errors') | map(attribute='section') | list }}"
"""

RETURN = r"""
sections:
  description:
    - One entry per requested section, in the order cloudtrail, guardduty, rds, ecs, codepipeline, lambda, alarms.
    - Each has C(section), C(status) (C(ok), C(partial) when some calls failed, C(failed) when nothing could be read),
      C(request) (the section's options), C(items) (newest first, at most O(max_items)), C(count), C(truncated),
      C(left_out) (how many were left out), C(more) (further pages were not read; C(left_out) is then a lower bound),
      C(errors) (each with C(call), C(code), C(message), C(resource), C(attempts)) and C(calls).
    - C(cloudtrail) items have C(event_id), C(event_time), C(event_name), C(event_source), C(username),
      C(access_key_id), C(read_only), C(source_ip), C(user_agent), C(error_code), C(resources) and C(event) (the
      parsed CloudTrail record, redacted).
    - C(guardduty) items have C(id), C(type), C(severity), C(title), C(description), C(created_at), C(updated_at),
      C(resource_type), C(resource), C(count), C(archived), C(first_seen), C(last_seen), C(action); the section adds
      C(detector_id).
    - C(rds) items have C(date), C(source_identifier), C(source_type), C(categories), C(message), C(source_arn).
    - C(ecs) items are the service events (C(id), C(created_at), C(message)); the section adds C(service) (counts and
      task definition), C(deployments) and C(stopped_tasks) (each capped as C(items) are, with C(items), C(count),
      C(truncated), C(left_out)); a stopped task has C(task_arn), C(task_definition), C(started_by), C(stop_code),
      C(stopped_reason), C(stopped_at) and C(containers).
    - C(codepipeline) items have C(execution_id), C(status), C(status_summary), C(start_time), C(last_update_time),
      C(trigger), C(stop_trigger), C(source_revisions).
    - C(lambda) items are versions (C(version), C(last_modified), C(code_sha256), C(description), C(runtime),
      C(state), C(last_update_status), C(alias_routes_here)); the section adds C(alias).
    - C(alarms) items have C(alarm_name), C(timestamp), C(type), C(summary), C(data); the section adds C(alarms) (each
      alarm's current C(state)) and C(missing).
  returned: always
  type: list
  elements: dict
  sample:
    - section: cloudtrail
      status: ok
      request: {principal: ci-deployer, resource: null}
      items: [{event_name: CreateAccessKey, event_time: "2026-11-24T09:12:00Z", source_ip: 203.0.113.66}]
      count: 1
      truncated: false
      left_out: 0
      more: false
      errors: []
      calls: 1
    - section: guardduty
      status: failed
      items: []
      count: 0
      truncated: false
      left_out: 0
      more: false
      errors: [{call: ListDetectors, code: AccessDeniedException, message: not authorized, resource: GuardDuty}]
window:
  description: The evidence window as read (UTC).
  returned: always
  type: dict
  sample: {since: "2026-11-24T07:30:00Z", until: "2026-11-24T09:30:00Z"}
summary:
  description: One line per section (items, what was left out, errors).
  returned: always
  type: list
  elements: str
  sample: ["cloudtrail: 4 item(s)", "guardduty: 0 item(s); ListDetectors failed for GuardDuty: AccessDeniedException"]
incident_id: {description: The incident the evidence is for., returned: always, type: str, sample: INC-1}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: evidence}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (the reads are the same)., returned: always, type: bool}
aws_operation:
  description: The first failed call when every section failed.
  returned: on failure
  type: str
  sample: LookupEvents
aws_error_code:
  description: Its error code (C(null) for a connection error).
  returned: on failure
  type: str
  sample: AccessDenied
msg: {description: What the step read (one line)., returned: always, type: str}
before: {description: C(null); this step changes nothing., returned: always, type: raw, sample: null}
after: {description: The summary as read (as RV(summary))., returned: always, type: raw}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import triage
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    aws_client,
    iso_utc,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    since=dict(type="str", default="-1h"),
    until=dict(type="str"),
    max_items=dict(type="int", default=triage.DEFAULT_MAX_ITEMS),
    cloudtrail=dict(type="dict", options=dict(principal=dict(type="str"), resource=dict(type="str"))),
    guardduty=dict(
        type="dict",
        options=dict(
            resource=dict(type="str", required=True),
            resource_type=dict(type="str", choices=list(triage.GUARDDUTY_FIELDS)),
            include_archived=dict(type="bool", default=False),
        ),
    ),
    rds=dict(type="dict", options=dict(cluster=dict(type="str"), instance=dict(type="str"))),
    ecs=dict(
        type="dict", options=dict(cluster=dict(type="str", required=True), service=dict(type="str", required=True))
    ),
    codepipeline=dict(type="dict", options=dict(pipeline=dict(type="str", required=True))),
    # "lambda" is a Python keyword but a fine option name
    **{"lambda": dict(type="dict", options=dict(function=dict(type="str", required=True), alias=dict(type="str")))},
    alarms=dict(type="dict", options=dict(names=dict(type="list", elements="str", required=True))),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)


def run(module, result):
    params = module.params
    result.update(changed=False, before=None, incident_id=params.get("incident_id"))
    max_items = triage.check_max_items(params["max_items"])
    start, end = triage.parse_window(params["since"], params["until"])
    requests = triage.validate_sections(params)
    result["window"] = {"since": iso_utc(start), "until": iso_utc(end)}

    def make_client(service):
        return aws_client(module, service, pool=len(requests))

    sections = triage.gather(requests, make_client, params["retry_budget"], max_items, start, end)
    summary = triage.summary_lines(sections)
    result.update(sections=sections, summary=summary, after=summary)
    failed = [s for s in sections if s["status"] == "failed"]
    if len(failed) == len(sections):
        raise triage.TriageFailed(sections)
    items = sum(s["count"] for s in sections)
    text = f"read {items} item(s) from {len(sections)} section(s) since {iso_utc(start)}"
    if failed:
        text += f"; failed: {', '.join(s['section'] for s in failed)}"
    result["msg"] = text
    return result


def main():
    run_aws_step(run, "evidence", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
