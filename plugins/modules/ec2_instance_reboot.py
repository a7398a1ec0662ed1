#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_instance_reboot
short_description: Restart stuck workers, by rebooting EC2 instances or by an Auto Scaling instance refresh
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the "restart stuck workers" response of a worker incident (GPU workers on EC2 in an Auto Scaling group
    behind SQS) in one call.
  - With O(method=reboot) it reboots the instances given in O(instance_ids), or those of the Auto Scaling group
    O(auto_scaling_group) that O(health_filter) selects (by default the stuck ones, with a status check C(impaired) or
    Auto Scaling health C(Unhealthy)). Before acting it captures each instance's state, status checks, Auto Scaling
    health and, with O(console_output=true), the tail of its console output (RV(before)). It refuses to reboot more
    than O(max_instances) instances, naming them, and changes nothing then. With O(wait=true) it waits until the
    rebooted instances are running with both status checks C(ok).
  - A reboot is not idempotent, so each rebooted instance is tagged C(firebreak:rebooted-by=<incident>) and
    C(firebreak:rebooted-at=<UTC time>); an instance the same incident rebooted less than O(reboot_window) seconds
    ago is not rebooted (RV(not_rebooted) says so) unless O(force=true). A re-run therefore reboots nothing again.
  - With O(method=instance_refresh) it starts an instance refresh of O(auto_scaling_group) (C(StartInstanceRefresh)
    with O(min_healthy_percentage)), which replaces every instance with a new one. If a refresh is already in
    progress it reports that refresh and starts none. The refresh is recorded on the group as the tags
    C(firebreak:refreshed-by), C(firebreak:refresh-id) and C(firebreak:refreshed-at); the same incident does not start
    another within O(reboot_window) unless O(force=true). With O(wait=true) it waits until the refresh ends and
    fails unless it is C(Successful).
  - In check mode the module reads everything and reports what it would do, making no call that changes anything.
options:
  instance_ids:
    description:
      - The instances to reboot (every one of them that is running). With O(method=reboot), this or
        O(auto_scaling_group) is required.
    type: list
    elements: str
    default: []
  auto_scaling_group:
    description:
      - The Auto Scaling group whose instances to reboot (filtered by O(health_filter)), or to refresh. Required with
        O(method=instance_refresh).
    type: str
  method:
    description:
      - V(reboot) reboots instances (C(RebootInstances)); V(instance_refresh) replaces the group's instances.
    type: str
    choices: [reboot, instance_refresh]
    default: reboot
  health_filter:
    description:
      - Which instances of O(auto_scaling_group) to reboot. V(impaired) only stuck ones (a status check C(impaired),
        or Auto Scaling health C(Unhealthy)); V(all) every running one. Not applied to O(instance_ids).
    type: str
    choices: [impaired, all]
    default: impaired
  max_instances:
    description:
      - Refuse to reboot more instances than this (the bound of a blast radius); raise it to reboot more.
    type: int
    default: 2
  reboot_window:
    description:
      - Seconds during which an instance (or group) this incident rebooted (or refreshed) is not rebooted again.
    type: int
    default: 1800
  force:
    description:
      - Reboot (or refresh) again even within O(reboot_window).
    type: bool
    default: false
  console_output:
    description:
      - Capture the last 4096 characters of each target's console output before rebooting it (C(GetConsoleOutput)).
    type: bool
    default: false
  min_healthy_percentage:
    description:
      - With O(method=instance_refresh), the share of the group that must stay InService and healthy (0-100).
    type: int
    default: 90
  instance_warmup:
    description:
      - With O(method=instance_refresh), seconds a new instance needs before it counts as healthy.
    type: int
  wait:
    description:
      - Wait until the rebooted instances pass their status checks, or until the refresh ends.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout the module fails, reporting what it read last.
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - moto (the sandbox) reboots at once and always reports status checks C(ok); it lacks instance refresh, which the
    sandbox's fault proxy answers as the API reference documents (the refresh replaces the group's instances).
  - A reboot keeps the instance, its volumes and addresses; an instance refresh replaces the instances (local
    scratch data and in-flight jobs on them are lost; SQS redelivers the jobs after their visibility timeout).
seealso:
  - module: amazon.aws.ec2_instance
  - module: firebreak.runbooks.autoscaling_capacity
"""

EXAMPLES = r"""
- name: Reboot the stuck GPU workers (at most two), capturing their console output first
  firebreak.runbooks.ec2_instance_reboot:
    auto_scaling_group: gpu-worker
    console_output: true
    incident_id: INC-042

- name: Replace every worker instead, keeping 90% of them in service
  firebreak.runbooks.ec2_instance_reboot:
    auto_scaling_group: gpu-worker
    method: instance_refresh
    min_healthy_percentage: 90
    incident_id: INC-042
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "rebooted 1 instance(s) of gpu-worker: i-0abc; not rebooted 2 (healthy); status checks ok"
method: {description: The method used., returned: always, type: str, sample: reboot}
before:
  description:
    - C(instances), the evidence read before acting (C(instance_id), C(state), C(instance_status), C(system_status),
      C(asg_health), C(asg_lifecycle), C(rebooted), and C(console_output) when captured); with
      O(method=instance_refresh) also C(group) (sizes) and C(refresh) (the latest refresh).
  returned: always
  type: dict
  sample: {"instances": [{"instance_id": "i-0abc", "state": "running", "instance_status": "impaired"}]}
after:
  description: The same, read back after acting (and waiting); in check mode the prediction.
  returned: always
  type: dict
  sample: {"instances": [{"instance_id": "i-0abc", "state": "running", "instance_status": "ok"}]}
rebooted:
  description: The instances rebooted (or in check mode to be rebooted).
  returned: always
  type: list
  elements: str
not_rebooted:
  description:
    - Instances not rebooted, each with the reason (not running, healthy, already rebooted within the window). It is
      not called C(skipped) because Ansible would take the task as skipped.
  returned: always
  type: dict
  sample: {"i-0def": "healthy (status checks ok, Auto Scaling Healthy)"}
refresh:
  description: With O(method=instance_refresh), the refresh started, or the one found in progress
    (C(instance_refresh_id), C(status), C(percentage_complete), C(min_healthy_percentage), C(start_time), C(end_time)).
  returned: always
  type: dict
  sample: {"instance_refresh_id": "08b91cf7-8fa6-48af-b6a6-d227f40f1b9b", "status": "Successful"}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment:
  description: Always empty here (a reboot cannot be released).
  returned: always
  type: list
  elements: dict
  sample: []
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
incident_id: {description: The incident this step acted for., returned: always, type: str, sample: INC-042}
diff:
  description: The instances to reboot, or the refresh to start, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"rebooted": []}, "after": {"rebooted": ["i-0abc"]}}
aws_operation:
  description: The AWS API call that failed.
  returned: on its failure
  type: str
  sample: RebootInstances
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
resource: {description: What the failed call was about., returned: on an AWS error, type: str}
attempts: {description: How many attempts the failed call made., returned: on an AWS error, type: int}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import autoscaling as asg
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import ec2_reboot as rb
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    incident_tags,
    iso_utc,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    instance_ids=dict(type="list", elements="str", default=[]),
    auto_scaling_group=dict(type="str"),
    method=dict(type="str", choices=["reboot", "instance_refresh"], default="reboot"),
    health_filter=dict(type="str", choices=["impaired", "all"], default="impaired"),
    max_instances=dict(type="int", default=2),
    reboot_window=dict(type="int", default=1800),
    force=dict(type="bool", default=False),
    console_output=dict(type="bool", default=False),
    min_healthy_percentage=dict(type="int", default=90),
    instance_warmup=dict(type="int"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)


def validate(params):
    ids = [str(i).strip() for i in params["instance_ids"] or []]
    group = (params["auto_scaling_group"] or "").strip() or None
    bad = [i for i in ids if not i.startswith("i-")]
    if bad:
        raise rb.RebootInputError(f"instance_ids: {bad} are not EC2 instance ids (i-...)")
    if params["method"] == "reboot" and not ids and not group:
        raise rb.RebootInputError("give instance_ids or auto_scaling_group to say which instances to reboot")
    if params["method"] == "reboot" and ids and group:
        raise rb.RebootInputError("give instance_ids or auto_scaling_group, not both")
    if params["method"] == "instance_refresh" and not group:
        raise rb.RebootInputError("method=instance_refresh needs auto_scaling_group")
    for option, low, high in (
        ("max_instances", 1, None),
        ("reboot_window", 0, None),
        ("wait_timeout", 0, None),
        ("min_healthy_percentage", 0, 100),
        ("instance_warmup", 0, None),
    ):
        value = params[option]
        if value is not None and (value < low or (high is not None and value > high)):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise rb.RebootInputError(f"{option} must be {bounds}, got {value}")
    return list(dict.fromkeys(ids)), group


def run_reboot(module, result, caller, ec2, autoscaling, ids, group_name):
    params = module.params
    incident_id = params["incident_id"] or None
    asg_instances = {}
    explicit = bool(ids)
    if group_name:
        group = asg.describe_group(caller, autoscaling, group_name)
        asg_instances = {i["InstanceId"]: i for i in group.get("Instances") or []}
        ids = [
            i for i, item in asg_instances.items() if item.get("LifecycleState") not in ("Terminating", "Terminated")
        ]
    evidence = rb.read_evidence(caller, ec2, ids, asg_instances) if ids else []
    result["before"] = {"instances": evidence}
    now = rb.now_utc()
    targets, skipped = rb.select_targets(
        evidence, explicit, params["health_filter"], incident_id, params["reboot_window"], params["force"], now
    )
    result.update(rebooted=[], not_rebooted=skipped)
    where = f" of {group_name}" if group_name else ""
    if len(targets) > params["max_instances"]:
        raise rb.RebootInputError(
            f"refusing to reboot {len(targets)} instances{where} ({', '.join(targets)}): more than max_instances "
            f"{params['max_instances']}; raise max_instances to reboot them all",
            **dict(result, changed=False),
        )
    if module._diff:
        result["diff"] = {"before": {"rebooted": []}, "after": {"rebooted": list(targets)}}
    skipped_text = f"; not rebooted {len(skipped)} ({'; '.join(sorted(set(skipped.values())))})" if skipped else ""
    if not targets:
        result.update(changed=False, after=result["before"])
        result["msg"] = f"no instance{where} to reboot{skipped_text or ' (none found)'}"
        return result
    if params["console_output"]:
        tails = rb.console_outputs(caller, ec2, targets, module.warn)
        for item in evidence:
            if item["instance_id"] in tails:
                item["console_output"] = tails[item["instance_id"]]
    if module.check_mode:
        result.update(changed=True, rebooted=targets, after=result["before"])
        result["msg"] = (
            f"check mode: would have rebooted {len(targets)} instance(s){where}: {', '.join(targets)}{skipped_text}"
        )
        return result

    caller(ec2, "reboot_instances", f"instances {', '.join(targets)}", InstanceIds=targets)
    result.update(changed=True, rebooted=targets)
    tags = {
        rb.REBOOTED_BY: incident_id or "unknown",
        rb.REBOOTED_AT: iso_utc(now),
        **incident_tags(incident_id, rb.STEP),
    }
    try:
        caller(
            ec2,
            "create_tags",
            f"instances {', '.join(targets)}",
            Resources=targets,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
    except StepAWSError as err:
        module.warn(
            f"rebooted {', '.join(targets)} but the reboot record could not be tagged ({err}): "
            "a re-run may reboot them again"
        )
    outcome = "not waiting for status checks"
    if params["wait"]:
        ok, after = rb.wait_statuses_ok(caller, ec2, targets, params["wait_timeout"], asg_instances)
        result["after"] = {"instances": after + [e for e in evidence if e["instance_id"] not in targets]}
        if not ok:
            states = [(e["instance_id"], e["state"], e["instance_status"], e["system_status"]) for e in after]
            raise asg.AutoScalingStateError(
                f"rebooted {', '.join(targets)}{where} but they do not pass their status checks after "
                f"{params['wait_timeout']}s: {states}",
                **result,
            )
        outcome = "status checks ok"
    else:
        result["after"] = {"instances": rb.read_evidence(caller, ec2, ids, asg_instances)}
    result["msg"] = f"rebooted {len(targets)} instance(s){where}: {', '.join(targets)}{skipped_text}; {outcome}"
    return result


def run_refresh(module, result, caller, autoscaling, group_name):
    params = module.params
    incident_id = params["incident_id"] or None
    group = asg.describe_group(caller, autoscaling, group_name)
    refreshes = asg.describe_refreshes(caller, autoscaling, group_name)
    latest = refreshes[0] if refreshes else None
    result["before"] = {"group": asg.state_of(group), "refresh": asg.refresh_summary(latest)}
    result.update(rebooted=[], not_rebooted={})
    active = asg.active_refresh(refreshes)
    if active:
        result.update(changed=False, refresh=asg.refresh_summary(active), after=result["before"])
        result["msg"] = (
            f"an instance refresh of {group_name} is already in progress ({active.get('InstanceRefreshId')}, "
            f"{active.get('Status')}, {active.get('PercentageComplete') or 0}% complete): not starting another"
        )
        return result
    record = asg.refresh_record(group.get("Tags"))
    now = rb.now_utc()
    if not params["force"] and rb.recently(record, incident_id, params["reboot_window"], now):
        mine = next((r for r in refreshes if r.get("InstanceRefreshId") == record.get("refresh_id")), None)
        known = asg.refresh_summary(mine) or {"instance_refresh_id": record.get("refresh_id"), "status": None}
        result.update(changed=False, refresh=known, after=result["before"])
        result["msg"] = (
            f"{incident_id} already refreshed {group_name} at {record['at']} ({record.get('refresh_id')}, "
            f"{(mine or {}).get('Status', 'status unknown')}): not starting another within {params['reboot_window']}s "
            "(force=true to refresh again)"
        )
        return result
    preferences = {"MinHealthyPercentage": params["min_healthy_percentage"]}
    if params["instance_warmup"] is not None:
        preferences["InstanceWarmup"] = params["instance_warmup"]
    if module._diff:
        result["diff"] = {"before": {"refresh": None}, "after": {"refresh": {"preferences": preferences}}}
    if module.check_mode:
        result.update(
            changed=True, refresh={"status": "Pending", "min_healthy_percentage": preferences["MinHealthyPercentage"]}
        )
        result["after"] = result["before"]
        result["msg"] = (
            f"check mode: would have started an instance refresh of {group_name} "
            f"({len(group.get('Instances') or [])} instances, "
            f"MinHealthyPercentage {preferences['MinHealthyPercentage']})"
        )
        return result
    started = caller(
        autoscaling,
        "start_instance_refresh",
        f"Auto Scaling group {group_name!r}",
        AutoScalingGroupName=group_name,
        Preferences=preferences,
    )
    refresh_id = started["InstanceRefreshId"]
    result.update(changed=True, refresh={"instance_refresh_id": refresh_id, "status": "Pending"})
    tags = {
        asg.REFRESH_TAGS[0]: incident_id or "unknown",
        asg.REFRESH_TAGS[1]: refresh_id,
        asg.REFRESH_TAGS[2]: iso_utc(now),
    }
    try:
        caller(
            autoscaling,
            "create_or_update_tags",
            f"Auto Scaling group {group_name!r}",
            Tags=[
                {
                    "ResourceId": group_name,
                    "ResourceType": "auto-scaling-group",
                    "Key": key,
                    "Value": value,
                    "PropagateAtLaunch": False,
                }
                for key, value in tags.items()
            ],
        )
    except StepAWSError as err:
        module.warn(f"started refresh {refresh_id} but could not record it on the group ({err})")
    if params["wait"]:
        refresh = asg.wait_refresh(caller, autoscaling, group_name, refresh_id, params["wait_timeout"])
    else:
        refresh = next(
            (
                r
                for r in asg.describe_refreshes(caller, autoscaling, group_name)
                if r.get("InstanceRefreshId") == refresh_id
            ),
            None,
        )
    result["refresh"] = asg.refresh_summary(refresh) or result["refresh"]
    group = asg.describe_group(caller, autoscaling, group_name)
    result["after"] = {"group": asg.state_of(group), "refresh": result["refresh"]}
    status = result["refresh"].get("status")
    if params["wait"] and status != "Successful":
        raise asg.AutoScalingStateError(
            f"instance refresh {refresh_id} of {group_name} is {status} after waiting up to {params['wait_timeout']}s"
            f"{': ' + result['refresh']['status_reason'] if result['refresh'].get('status_reason') else ''}",
            **result,
        )
    result["msg"] = (
        f"started instance refresh {refresh_id} of {group_name} (MinHealthyPercentage "
        f"{preferences['MinHealthyPercentage']}): {status}, {result['after']['group']['in_service']} InService"
    )
    return result


def run(module, result):
    params = module.params
    ids, group_name = validate(params)
    caller = Caller(params["retry_budget"])
    result.update(changed=False, method=params["method"], incident_id=params["incident_id"] or None, refresh={})
    autoscaling = aws_client(module, "autoscaling") if group_name else None
    if params["method"] == "instance_refresh":
        return run_refresh(module, result, caller, autoscaling, group_name)
    ec2 = aws_client(module, "ec2")
    return run_reboot(module, result, caller, ec2, autoscaling, ids, group_name)


def main():
    run_aws_step(run, "mitigation", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
