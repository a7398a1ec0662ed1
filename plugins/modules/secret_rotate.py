#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: secret_rotate
short_description: Rotate a Secrets Manager secret during an incident and redeploy the ECS services that read it
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Containment step "rotate secrets (ADMIN_USER/PASS)" of the seed plan "Challenge 01" (ECS Fargate, section 3) and
    "revoke/rotate secrets" of "Challenge 04" (section 3).
  - Rotates the secret through its rotation Lambda when one is configured (C(RotateSecret), then waits until the new
    version is C(AWSCURRENT)), or else puts a newly generated value (C(PutSecretValue)); for a JSON secret only the
    keys that hold a credential (or O(generate_keys)) get new values, the others are kept.
  - Never leaves the secret without a current value. C(RotateSecret) is not called without a rotation Lambda (AWS
    refuses it, and moto would leave an empty AWSCURRENT); after rotating, the module checks that AWSCURRENT is the
    new version and has a value, and fails loudly otherwise.
  - Then finds the ECS services whose task definitions reference the secret (C(containerDefinitions[].secrets[]
    .valueFrom) naming its ARN, partial ARN or name, with or without a JSON key or version suffix) and forces a new
    deployment of each (ECS reads secrets only when a task starts), waiting until the new deployment completes.
  - Records version ids, never a value. The result holds no secret value; no key of it names one.
  - A rotation is not undone; there is no release mode (the old value may be compromised, and going back to it would
    re-open the incident). RV(containment) records the version ids and the services redeployed.
  - A re-run for the same incident changes nothing while the version it rotated to is still AWSCURRENT (the secret
    is tagged C(firebreak:rotated-version)). Check mode changes nothing. Bad input fails naming the value.
options:
  secret:
    description:
      - Name or ARN of the secret.
    type: str
    required: true
  method:
    description:
      - V(auto) uses the rotation Lambda when one is configured, else generates a value.
      - V(lambda) requires a rotation Lambda. V(generate) puts a generated value even when a Lambda is configured
        (for a secret whose value is itself the credential, such as an application's admin password).
    type: str
    choices: [auto, lambda, generate]
    default: auto
  generate_keys:
    description:
      - For a JSON secret and the V(generate) method, the keys to give new values. Default is every key whose name
        looks like a credential (C(pass), C(pwd), C(secret), C(token), C(api_key), C(private_key)...).
    type: list
    elements: str
    default: []
  password_length:
    description:
      - Length of each generated value.
    type: int
    default: 32
  include_punctuation:
    description:
      - Include punctuation in generated values (never quotes, backslash, slash or backtick).
    type: bool
    default: false
  clusters:
    description:
      - ECS clusters (names or ARNs) to search for services that read the secret. Empty means every cluster.
    type: list
    elements: str
    default: []
  redeploy:
    description:
      - Force a new deployment of the ECS services that read the secret.
    type: bool
    default: true
  wait:
    description:
      - Wait until a Lambda rotation has promoted the new version and the new deployments have completed.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds.
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
  - O(incident_id) is required (except in check mode).
  - A generated value only changes the stored secret. Use it for a secret that is itself the credential (an
    application's admin password, an API signing key). A database password must be changed in the database too;
    configure a rotation Lambda for it.
  - A task definition that pins the secret to a version id or to a stage other than AWSCURRENT keeps the old value
    after the redeploy; such services are listed with RV(services[].pinned) and a warning.
seealso:
  - module: firebreak.runbooks.ecs_service_rollback
"""

EXAMPLES = r"""
- name: Rotate the admin credentials and restart the services that read them
  firebreak.runbooks.secret_rotate:
    secret: app/admin
    incident_id: INC-2041
  register: rotation

- name: Regenerate only ADMIN_PASS, searching one cluster
  firebreak.runbooks.secret_rotate:
    secret: app/admin
    method: generate
    generate_keys: [ADMIN_PASS]
    clusters: [shop]
    incident_id: INC-2041
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "rotated app/admin (generate: ADMIN_PASS) to version 0d1e...; redeployed 1 service"
secret_arn:
  description: ARN of the secret.
  returned: always
  type: str
  sample: arn:aws:secretsmanager:us-east-1:123456789012:secret:app/admin-AbCdEf
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
secret_name:
  description: Name of the secret.
  returned: always
  type: str
  sample: app/admin
method:
  description: How the secret was (or would be) rotated, C(lambda) or C(generate).
  returned: always
  type: str
  sample: generate
generated_keys:
  description: With C(generate), the names of the JSON keys that got new values (empty for a plain string secret).
  returned: always
  type: list
  elements: str
  sample: [ADMIN_PASS]
before:
  description: Version ids and rotation set-up before the step.
  returned: always
  type: dict
  contains:
    current_version_id:
      description: Version holding AWSCURRENT.
      returned: always
      type: str
      sample: 3f6c0b0e-7d0a-4bd4-9f0e-0d8f0c2b6a10
    pending_version_id:
      description: Version holding AWSPENDING, if any.
      returned: always
      type: str
      sample: null
    rotation_enabled:
      description: Whether rotation is configured.
      returned: always
      type: bool
      sample: false
    rotation_lambda_arn:
      description: The rotation Lambda, if any.
      returned: always
      type: str
      sample: null
after:
  description: Version ids after the step (read back), or in check mode the state before.
  returned: always
  type: dict
  contains:
    current_version_id:
      description: Version holding AWSCURRENT.
      returned: always
      type: str
      sample: 0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6
    pending_version_id:
      description: Version holding AWSPENDING, if any.
      returned: always
      type: str
      sample: null
    rotation_enabled:
      description: Whether rotation is configured.
      returned: always
      type: bool
      sample: false
    rotation_lambda_arn:
      description: The rotation Lambda, if any.
      returned: always
      type: str
      sample: null
services:
  description: The ECS services whose task definitions reference the secret.
  returned: always
  type: list
  elements: dict
  contains:
    cluster_arn:
      description: Cluster ARN.
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:cluster/shop
    service_arn:
      description: Service ARN.
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:service/shop/admin-api
    service_name:
      description: Service name.
      returned: always
      type: str
      sample: admin-api
    task_definition_arn:
      description: The task definition that references the secret.
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:task-definition/admin-api:1
    pinned:
      description: Containers and variables (C(container/VAR)) pinned to another version (not refreshed by a redeploy).
      returned: always
      type: list
      elements: str
      sample: []
    deployment_id_before:
      description: The PRIMARY deployment before the redeploy.
      returned: always
      type: str
      sample: ecs-svc/1569251820413067020
    deployment_id_after:
      description: The PRIMARY deployment after the redeploy (the same when not redeployed).
      returned: always
      type: str
      sample: ecs-svc/9428734988111410400
    redeployed:
      description: Whether a new deployment was forced (or would be, in check mode).
      returned: always
      type: bool
      sample: true
containment:
  description:
    - When something changed, the entry the timeline records. C(changed) has C(method), C(previous_version_id),
      C(new_version_id), C(generated_keys), C(services_redeployed) (service ARNs) and C(tags_added). Never a value.
    - It is not released (a rotation is not undone).
  returned: always
  type: list
  elements: dict
  sample:
    incident_id: INC-2041
    step: secret_rotate
    resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:app/admin-AbCdEf
    changed:
      method: generate
      previous_version_id: 3f6c0b0e-7d0a-4bd4-9f0e-0d8f0c2b6a10
      new_version_id: 0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6
      generated_keys: [ADMIN_PASS]
      services_redeployed: [arn:aws:ecs:us-east-1:123456789012:service/shop/admin-api]
      tags_added: {"firebreak:incident": "INC-2041"}
    releasable: false
    at: "2026-11-24T13:30:00Z"
    id: 0123456789abcdef
diff:
  description: Version ids and services before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"current_version_id": "3f6c..."}, "after": {"current_version_id": "0d1e..."}}
"""

import time
import uuid

from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import secret_rotation as sr
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step

ARGUMENT_SPEC = dict(
    secret=dict(type="str", required=True, no_log=False),
    method=dict(type="str", choices=["auto", "lambda", "generate"], default="auto"),
    generate_keys=dict(type="list", elements="str", default=[], no_log=False),
    password_length=dict(type="int", default=32, no_log=False),
    include_punctuation=dict(type="bool", default=False),
    clusters=dict(type="list", elements="str", default=[]),
    redeploy=dict(type="bool", default=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    **step.INCIDENT_OPTION,
    **step.RETRY_BUDGET_OPTION,
)

POLL_DELAY = 2.0


def find_services(caller, ecs, clusters, secret_arn, secret_name):
    """The services (with their task definition) that read the secret."""
    if not clusters:
        clusters = []
        for page in caller.paginate(ecs, "list_clusters", "ECS clusters", token_in=PAGE_TOKEN):
            clusters.extend(page.get("clusterArns") or [])
    else:
        answer = caller(ecs, "describe_clusters", f"ECS clusters {clusters}", clusters=list(clusters))
        found = {
            c["clusterName"]: c["clusterArn"] for c in answer.get("clusters") or [] if c.get("status") != "INACTIVE"
        }
        found.update({arn: arn for arn in found.values()})
        missing = [c for c in clusters if c not in found]
        if missing:
            raise sr.SecretRotateError(f"ECS cluster {missing[0]!r} not found")
        clusters = [found[c] for c in clusters]
    definitions = {}
    out = []
    for cluster in clusters:
        arns = []
        for page in caller.paginate(
            ecs, "list_services", f"services of {cluster}", token_in=PAGE_TOKEN, cluster=cluster
        ):
            arns.extend(page.get("serviceArns") or [])
        for start in range(0, len(arns), 10):
            answer = caller(
                ecs, "describe_services", f"services of {cluster}", cluster=cluster, services=arns[start : start + 10]
            )
            for service in answer.get("services") or []:
                if service.get("status") != "ACTIVE":
                    continue
                td_ref = service.get("taskDefinition")
                if td_ref not in definitions:
                    td = caller(ecs, "describe_task_definition", f"task definition {td_ref!r}", taskDefinition=td_ref)
                    definitions[td_ref] = td.get("taskDefinition") or {}
                reads, pinned = sr.task_definition_reads(definitions[td_ref], secret_arn, secret_name)
                if reads:
                    out.append(
                        {
                            "cluster_arn": service.get("clusterArn") or cluster,
                            "service_arn": service["serviceArn"],
                            "service_name": service["serviceName"],
                            "task_definition_arn": definitions[td_ref].get("taskDefinitionArn") or td_ref,
                            "pinned": pinned,
                            "deployment_id_before": sr.primary_deployment_id(service),
                            "deployment_id_after": sr.primary_deployment_id(service),
                            "redeployed": False,
                            "_tags": _service_tags(caller, ecs, service),
                        }
                    )
    return out


PAGE_TOKEN = "nextToken"  # noqa: S105 - the name of ECS's pagination parameter, not a credential


def _service_tags(caller, ecs, service):
    tags = service.get("tags")
    if tags is None:
        tags = (
            caller(
                ecs, "list_tags_for_resource", f"service {service['serviceName']!r}", resourceArn=service["serviceArn"]
            ).get("tags")
            or []
        )
    return boto3_tag_list_to_ansible_dict(tags)


def wait_for_promotion(module, caller, sm, secret_id, new_version_id, timeout):
    deadline = time.monotonic() + timeout
    while True:
        described = sr.describe(caller, sm, secret_id)
        if sr.stage_holder(described, sr.CURRENT) == new_version_id:
            return described
        if time.monotonic() >= deadline:
            return described
        time.sleep(POLL_DELAY)


def wait_for_deployments(caller, ecs, services, timeout):
    deadline = time.monotonic() + timeout
    pending = [s for s in services if s["redeployed"]]
    while pending:
        still = []
        for item in pending:
            answer = caller(
                ecs,
                "describe_services",
                f"service {item['service_name']!r}",
                cluster=item["cluster_arn"],
                services=[item["service_arn"]],
            )
            service = (answer.get("services") or [{}])[0]
            item["deployment_id_after"] = sr.primary_deployment_id(service)
            if not sr.service_stable(service, item["deployment_id_before"]):
                still.append(item)
        if not still:
            return
        if time.monotonic() >= deadline:
            names = ", ".join(s["service_name"] for s in still)
            raise sr.SecretRotateError(f"the new deployments of {names} did not complete within {timeout}s")
        pending = still
        time.sleep(POLL_DELAY)


def rotate(module, result):
    params = module.params
    secret_id = sr.validate_secret_id(params["secret"])
    incident_id = params["incident_id"]
    if not incident_id and not module.check_mode:
        raise sr.SecretRotateError("incident_id is required to rotate (it tags the secret and the services redeployed)")
    if params["wait_timeout"] < 0:
        raise sr.SecretRotateError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    sr.generate_password(params["password_length"])  # validates the length before any call
    caller = step.Caller(params["retry_budget"])
    sm = step.aws_client(module, "secretsmanager")

    described = sr.describe(caller, sm, secret_id)
    secret_arn, secret_name = described["ARN"], described["Name"]
    before = sr.secret_view(described)
    result.update(
        secret_arn=secret_arn, secret_name=secret_name, before=before, after=before, generated_keys=[], services=[]
    )
    method = sr.decide_method(params["method"], described)
    result["method"] = method
    tags = {t["Key"]: t["Value"] for t in described.get("Tags") or []}
    if before["pending_version_id"] and before["pending_version_id"] != before["current_version_id"]:
        raise sr.SecretRotateError(
            f"secret {secret_name!r} has a rotation in progress "
            f"(version {before['pending_version_id']} is AWSPENDING); "
            "finish or cancel it first (aws secretsmanager cancel-rotate-secret)"
        )
    readable, _ = sr.has_readable_current(caller, sm, secret_arn)
    if not readable:
        raise sr.SecretRotateError(
            f"secret {secret_name!r} has no readable AWSCURRENT value before rotating: not touching it"
        )
    done = sr.already_rotated(tags, incident_id, before["current_version_id"])

    new_string = None
    if method == "generate" and not done:
        _version, current = sr.read_current_string(caller, sm, secret_arn)
        new_string, result["generated_keys"] = sr.new_secret_string(
            current, params["generate_keys"], params["password_length"], params["include_punctuation"]
        )
        del current
    elif method == "generate":
        result["generated_keys"] = []

    ecs = step.aws_client(module, "ecs") if params["redeploy"] else None
    services = find_services(caller, ecs, params["clusters"], secret_arn, secret_name) if ecs else []
    wanted = step.incident_tags(incident_id or "check-mode", sr.STEP)
    tags_added = {k: v for k, v in wanted.items() if tags.get(k) != v}

    new_version_id = before["current_version_id"] if done else None
    to_redeploy = []
    for item in services:
        if done and item["_tags"].get(sr.REDEPLOYED_TAG) == new_version_id:
            continue
        to_redeploy.append(item)
    changed = (not done) or bool(to_redeploy)
    result["changed"] = changed
    for item in to_redeploy:
        item["redeployed"] = True
    for item in services:
        if item["pinned"]:
            module.warn(
                f"service {item['service_name']} pins the secret ({', '.join(item['pinned'])}): "
                "a redeploy keeps the old value"
            )

    def public(items):
        return [{k: v for k, v in s.items() if not k.startswith("_")} for s in items]

    if module.check_mode or not changed:
        result["services"] = public(services)
        if module.check_mode and changed:
            action = "rotate" if not done else "not rotate again (already rotated for this incident)"
            result["msg"] = (
                f"check mode: would {action} {secret_name} ({method}) and redeploy {len(to_redeploy)} service(s)"
            )
        else:
            result["msg"] = (
                f"no change: {secret_name} was already rotated for this incident to version {new_version_id}, "
                "services redeployed"
            )
        return result

    # Act 1: rotate.
    result["changed"] = True
    previous_version_id = before["current_version_id"]
    if not done:
        if method == "generate":
            token = str(uuid.uuid4())
            answer = caller(
                sm,
                "put_secret_value",
                f"secret {secret_name!r}",
                SecretId=secret_arn,
                SecretString=new_string,
                ClientRequestToken=token,
            )
            new_string = None
            new_version_id = answer.get("VersionId")
        else:
            answer = caller(sm, "rotate_secret", f"secret {secret_name!r}", SecretId=secret_arn, RotateImmediately=True)
            new_version_id = answer.get("VersionId")
            if params["wait"]:
                wait_for_promotion(module, caller, sm, secret_arn, new_version_id, params["wait_timeout"])
        described = sr.describe(caller, sm, secret_arn)
        result["after"] = sr.secret_view(described)
        readable, current_id = sr.has_readable_current(caller, sm, secret_arn)
        if result["after"]["current_version_id"] != new_version_id or not readable or current_id != new_version_id:
            raise sr.SecretRotateError(
                f"after rotating {secret_name!r} ({method}), "
                f"AWSCURRENT is version {result['after']['current_version_id']} "
                f"(readable: {readable}), not the new version {new_version_id}; the rotation did not complete "
                "(rotation Lambda failing?): no service was redeployed; check the Lambda's logs"
            )
        caller(
            sm,
            "tag_resource",
            f"secret {secret_name!r}",
            SecretId=secret_arn,
            Tags=[{"Key": k, "Value": v} for k, v in dict(tags_added, **{sr.ROTATED_TAG: new_version_id}).items()],
        )
    # Act 2: restart what reads it.
    for item in to_redeploy:
        caller(
            ecs,
            "update_service",
            f"service {item['service_name']!r}",
            cluster=item["cluster_arn"],
            service=item["service_arn"],
            forceNewDeployment=True,
        )
        caller(
            ecs,
            "tag_resource",
            f"service {item['service_name']!r}",
            resourceArn=item["service_arn"],
            tags=[{"key": sr.REDEPLOYED_TAG, "value": new_version_id}],
        )
    result["containment"] = [
        step.containment_entry(
            incident_id,
            sr.STEP,
            secret_arn,
            {
                "method": method,
                "previous_version_id": None if done else previous_version_id,
                "new_version_id": new_version_id,
                "generated_keys": result["generated_keys"],
                "services_redeployed": [s["service_arn"] for s in to_redeploy],
                "tags_added": {} if done else dict(tags_added, **{sr.ROTATED_TAG: new_version_id}),
            },
            releasable=False,
        )
    ]
    if params["wait"] and to_redeploy:
        wait_for_deployments(caller, ecs, to_redeploy, params["wait_timeout"])
    result["services"] = public(services)
    rotated = (
        f"rotated {secret_name} ({method}) to version {new_version_id}"
        if not done
        else f"{secret_name} already rotated to {new_version_id}"
    )
    result["msg"] = f"{rotated}; redeployed {len(to_redeploy)} service(s)"
    return result


def run(module, result):
    try:
        rotate(module, result)
    except step.StepError:
        result.update(_clean(result))
        raise
    if module._diff:
        result["diff"] = {
            "before": {"current_version_id": result["before"]["current_version_id"]},
            "after": {
                "current_version_id": result["after"]["current_version_id"]
                if not module.check_mode
                else "(new version)",
                "services_redeployed": [s["service_arn"] for s in result["services"] if s["redeployed"]],
            },
        }
    return result


def main():
    step.run_aws_step(run, "containment", ARGUMENT_SPEC)


def _clean(result):
    out = dict(result)
    if "services" in out:
        out["services"] = [{k: v for k, v in s.items() if not k.startswith("_")} for s in out["services"]]
    return out


if __name__ == "__main__":
    main()
