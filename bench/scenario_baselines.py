"""The baselines of bench/scenarios.py: for every scenario, the seeds' commands for its steps, as one list of steps.

``BASELINES[<scenario>]`` names the seed section the commands come from and builds the steps from the sandbox and the
drill's context (``steps(box, context)``). An AWS step (``Call``) is rendered as ``aws <service> <operation>
--cli-input-json`` for the shell script and as a boto3 call for the Python script; a ``Raw`` step carries its shell
line (``kubectl``, ``aws s3 sync``) and its Python lines (the kubernetes client, boto3) itself. Values read before
the clock starts (``box``) are the per-item values a responder's script would parse out of a listing it makes anyway
(the listing call stays in the script); everything else comes from the answers, through ``save``.
tests/unit/test_bench_scenarios.py checks that every scenario has an entry here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Callable

from bench.scenario_steps import ENDPOINT, Call, Raw, V


@dataclass
class Baseline:
    seed: str
    steps: Callable


def _ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- Kubernetes steps: kubectl in the shell, the kubernetes client in Python ------------------------------------


def k8s_get(ns: str, name: str) -> Raw:
    return Raw(
        sh=f"kubectl get deployment {name} -n {ns} -o json >/dev/null",
        py=f"apps().read_namespaced_deployment({name!r}, {ns!r})",
    )


def k8s_undo(ns: str, name: str) -> Raw:
    return Raw(sh=f"kubectl rollout undo deployment/{name} -n {ns} >/dev/null", py=f"k8s_undo({ns!r}, {name!r})")


def k8s_wait(ns: str, name: str, timeout: int = 60) -> Raw:
    return Raw(
        sh=f"kubectl rollout status deployment/{name} -n {ns} --timeout={timeout}s >/dev/null",
        py=f"k8s_wait({ns!r}, {name!r}, {timeout})",
    )


def k8s_restart(ns: str, name: str) -> Raw:
    return Raw(sh=f"kubectl rollout restart deployment/{name} -n {ns} >/dev/null", py=f"k8s_restart({ns!r}, {name!r})")


def k8s_config_restore(ns: str, name: str) -> Raw:
    """The ConfigMap back to what ``kubectl apply`` last applied (its last-applied-configuration annotation)."""
    jsonpath = "{.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}"
    return Raw(
        sh=f"kubectl get configmap {name} -n {ns} -o jsonpath='{jsonpath}' "
        "| kubectl replace --validate=false -f - >/dev/null",
        py=f"k8s_config_restore({ns!r}, {name!r})",
    )


# -- steps shared by scenarios ----------------------------------------------------------------------------------


def ecs_rollback(cluster: str, service: str, family: str) -> list:
    """The ECS Fargate plan's rollback (bench/cli/ecs_rollback.sh): check the service and its targets, find the
    previous revision, update the service to it, wait until stable, check the targets again."""
    return [
        Call(
            "ecs",
            "describe_services",
            {"cluster": cluster, "services": [service]},
            save={"tg": "services[0].loadBalancers[0].targetGroupArn"},
        ),
        Call("elbv2", "describe_target_health", {"TargetGroupArn": V("tg")}),
        Call(
            "ecs",
            "list_task_definitions",
            {"familyPrefix": family, "status": "ACTIVE", "sort": "ASC"},
            save={"previous": "taskDefinitionArns[-2]"},
        ),
        Call("ecs", "update_service", {"cluster": cluster, "service": service, "taskDefinition": V("previous")}),
        Call("ecs", "services_stable", {"cluster": cluster, "services": [service]}, wait=True),
        Call("elbv2", "describe_target_health", {"TargetGroupArn": V("tg")}),
    ]


def s3_sync(source_bucket: str, prefix: str, target_bucket: str, keys: list[str]) -> Raw:
    """The logs into the evidence bucket: the seeds' ``aws s3 cp --recursive`` down, then ``aws s3 sync`` up (a
    bucket-to-bucket sync is a CopyObject without a checksum, which the evidence bucket's Object Lock refuses); in
    Python a listing, and a get and a put with a checksum per object."""
    copies = "\n".join(
        f"client('s3').put_object(Bucket={target_bucket!r}, Key={key!r}, ChecksumAlgorithm='SHA256', "
        f"Body=client('s3').get_object(Bucket={source_bucket!r}, Key={key!r})['Body'].read())"
        for key in keys
    )
    return Raw(
        sh=(
            f'logs=$(mktemp -d)\naws s3 cp s3://{source_bucket}/{prefix} "$logs" --recursive >/dev/null\n'
            f'aws s3 sync "$logs" s3://{target_bucket}/{prefix} --checksum-algorithm SHA256 >/dev/null\nrm -rf "$logs"'
        ),
        py=f"client('s3').list_objects_v2(Bucket={source_bucket!r}, Prefix={prefix!r})\n{copies}",
    )


def disable_keys(box, user: str) -> list:
    keys = [k["AccessKeyId"] for k in box.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]]
    return [Call("iam", "list_access_keys", {"UserName": user})] + [
        Call("iam", "update_access_key", {"UserName": user, "AccessKeyId": key, "Status": "Inactive"}) for key in keys
    ]


def block_addresses(ip_set: dict, scope: str, addresses: list[str]) -> list:
    ids = {"Name": ip_set["name"], "Scope": scope, "Id": ip_set["id"]}
    merged = f"[IPSet.Addresses, `{json.dumps(addresses)}`] | []"
    return [
        Call("wafv2", "get_ip_set", ids, save={"lock": "LockToken", "addresses": merged}),
        Call("wafv2", "update_ip_set", {**ids, "Addresses": V("addresses"), "LockToken": V("lock")}),
    ]


# -- one entry per scenario -------------------------------------------------------------------------------------


def auth_attack(box, ctx) -> list:
    d, acl = ctx["_drill"], ctx["_drill"]["web_acl"]
    ids = {"Name": acl["name"], "Scope": d["scope"], "Id": acl["id"]}
    taken = [r["Priority"] for r in box.client("wafv2").get_web_acl(**ids)["WebACL"]["Rules"]]
    rule = {
        "Name": "rate-limit-login",
        "Priority": max(taken, default=0) + 1,
        "Action": {"Block": {}},
        "Statement": {
            "RateBasedStatement": {
                "Limit": 100,
                "EvaluationWindowSec": 300,
                "AggregateKeyType": "IP",
                "ScopeDownStatement": {
                    "ByteMatchStatement": {
                        "SearchString": "/login",
                        "FieldToMatch": {"UriPath": {}},
                        "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}],
                        "PositionalConstraint": "STARTS_WITH",
                    }
                },
            }
        },
        "VisibilityConfig": {
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": "rate-limit-login",
        },
    }
    return [
        Call("cloudwatch", "describe_alarms", {"AlarmNames": [ctx["auth_attack_alarm"]]}),
        *block_addresses(d["ip_set"], d["scope"], d["sources"]),
        Call(
            "wafv2",
            "get_web_acl",
            ids,
            save={
                "acl_lock": "LockToken",
                "default_action": "WebACL.DefaultAction",
                "visibility": "WebACL.VisibilityConfig",
                "rules": f"[WebACL.Rules, `[{json.dumps(rule)}]`] | []",
            },
        ),
        Call(
            "wafv2",
            "update_web_acl",
            {
                **ids,
                "DefaultAction": V("default_action"),
                "Rules": V("rules"),
                "VisibilityConfig": V("visibility"),
                "LockToken": V("acl_lock"),
            },
        ),
    ]


def bad_deploy(box, ctx) -> list:
    d = ctx["_drill"]
    ns, name = d["namespace"], d["name"]
    freeze = json.dumps({"frozen": True, "reason": "bad deploy", "incident_id": "BENCH"})
    return [
        k8s_get(ns, name),
        Call("ssm", "put_parameter", {"Name": d["parameter"], "Type": "String", "Value": freeze, "Overwrite": True}),
        k8s_undo(ns, name),
        k8s_config_restore(ns, d["configmap"]),
        k8s_wait(ns, name, ctx.get("bad_deploy_wait_timeout", 60)),
    ]


def credential_compromise(box, ctx) -> list:
    d = ctx["_drill"]
    user, cluster = d["principal"], ctx["credential_compromise_ecs_clusters"][0]
    ns, _kind, name = d["k8s_reader"]
    source = ctx["credential_compromise_evidence_sources"][0]
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": _now()}},
            }
        ],
    }
    return [
        Call(
            "cloudtrail",
            "lookup_events",
            {"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": user}], "MaxResults": 50},
        ),
        *disable_keys(box, user),
        Call(
            "iam",
            "put_user_policy",
            {"UserName": user, "PolicyName": "firebreak-revoke-issued-bench", "PolicyDocument": json.dumps(deny)},
        ),
        Call(
            "secretsmanager",
            "put_secret_value",
            {
                "SecretId": d["secret"],
                "SecretString": json.dumps({"ADMIN_USER": "admin", "ADMIN_PASS": "rotated-by-bench"}),
            },
        ),
        Call("ecs", "update_service", {"cluster": cluster, "service": d["reader"], "forceNewDeployment": True}),
        k8s_restart(ns, name),
        s3_sync(source["bucket"], source["prefix"], d["evidence_bucket"], d["log_objects"]),
    ]


def data_loss(box, ctx) -> list:
    d = ctx["_drill"]
    bucket, prefix, since = d["bucket"], ctx["data_loss_prefix"], ctx["data_loss_since"]
    versions = box.client("s3").list_object_versions(Bucket=bucket, Prefix=prefix)
    cutoff = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    steps = [Call("s3", "list_object_versions", {"Bucket": bucket, "Prefix": prefix})]
    for key in sorted(d["good"]):  # the newest version of each damaged key from before the bad job
        before = [v for v in versions.get("Versions", []) if v["Key"] == key and v["LastModified"] < cutoff]
        good = max(before, key=lambda v: v["LastModified"])
        steps.append(
            Call(
                "s3",
                "copy_object",
                {"Bucket": bucket, "Key": key, "CopySource": f"{bucket}/{key}?versionId={good['VersionId']}"},
            )
        )
    steps.append(Call("s3", "delete_object", {"Bucket": bucket, "Key": d["created"]}))
    return steps


def database_unavailable(box, ctx) -> list:
    d = ctx["_drill"]
    cluster = d["cluster"]
    return [
        Call("rds", "describe_db_clusters", {"DBClusterIdentifier": cluster}),
        Call("rds", "describe_events", {"SourceIdentifier": cluster, "SourceType": "db-cluster", "Duration": 60}),
        Call("rds", "failover_db_cluster", {"DBClusterIdentifier": cluster, "TargetDBInstanceIdentifier": d["reader"]}),
        Call("rds", "db_cluster_available", {"DBClusterIdentifier": cluster}, wait=True),
        Call("rds", "describe_db_clusters", {"DBClusterIdentifier": cluster}),
    ]


def high_error_rate(box, ctx) -> list:
    d = ctx["_drill"]
    lb = ctx["high_error_rate_load_balancer"].split(":loadbalancer/", 1)[1]
    metric = {
        "Namespace": "AWS/ApplicationELB",
        "MetricName": "HTTPCode_Target_5XX_Count",
        "Dimensions": [{"Name": "LoadBalancer", "Value": lb}],
        "StartTime": _ago(30),
        "EndTime": _now(),
        "Period": 60,
        "Statistics": ["Sum"],
    }
    family = d["good"].split(":")[0]
    return [
        Call("cloudwatch", "get_metric_statistics", metric),
        *ecs_rollback(d["cluster"], d["service"], family),
        Call("cloudwatch", "get_metric_statistics", metric),
    ]


def k8s_service_down(box, ctx) -> list:
    d = ctx["_drill"]
    ns, name = d["namespace"], d["name"]
    return [k8s_get(ns, name), k8s_undo(ns, name), k8s_wait(ns, name, ctx.get("k8s_service_down_wait_timeout", 60))]


def lambda_failure(box, ctx) -> list:
    d = ctx["_drill"]
    fn, alias = d["function"], d["alias"]
    return [
        Call("lambda", "get_function", {"FunctionName": fn}),
        Call("lambda", "get_alias", {"FunctionName": fn, "Name": alias}),
        Call("lambda", "list_versions_by_function", {"FunctionName": fn}),
        Call(
            "lambda",
            "update_alias",
            {
                "FunctionName": fn,
                "Name": alias,
                "FunctionVersion": d["good"],
                "RoutingConfig": {"AdditionalVersionWeights": {}},
            },
        ),
        Call("lambda", "get_alias", {"FunctionName": fn, "Name": alias}),
    ]


def performance_degradation(box, ctx) -> list:
    d = ctx["_drill"]
    cluster, service = d["cluster"], d["service"]
    lb = ctx["performance_degradation_load_balancer"]
    lb = lb.split(":loadbalancer/", 1)[1] if ":loadbalancer/" in lb else lb
    db = ctx["performance_degradation_db_instance"]
    return [
        Call(
            "cloudwatch",
            "get_metric_statistics",
            {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "TargetResponseTime",
                "Dimensions": [{"Name": "LoadBalancer", "Value": lb}],
                "StartTime": _ago(30),
                "EndTime": _now(),
                "Period": 60,
                "ExtendedStatistics": ["p95"],
            },
        ),
        Call(
            "ecs",
            "describe_services",
            {"cluster": cluster, "services": [service]},
            save={"arn": "services[0].serviceArn", "before": "to_string(services[0].desiredCount)"},
        ),
        Call(
            "ecs",
            "tag_resource",
            {"resourceArn": V("arn"), "tags": [{"key": "firebreak:scaled-from", "value": V("before")}]},
        ),
        Call(
            "ecs",
            "update_service",
            {"cluster": cluster, "service": service, "desiredCount": ctx["performance_degradation_ecs_desired_count"]},
        ),
        Call("rds", "describe_db_instances", {"DBInstanceIdentifier": db}),
        Call(
            "rds",
            "modify_db_instance",
            {
                "DBInstanceIdentifier": db,
                "ApplyImmediately": True,
                "DBInstanceClass": ctx["performance_degradation_db_instance_class"],
            },
        ),
        Call("ecs", "services_stable", {"cluster": cluster, "services": [service]}, wait=True),
        Call("rds", "describe_db_instances", {"DBInstanceIdentifier": db}),
    ]


def pipeline_incident(box, ctx) -> list:
    machine = box.manifest["aws"]["stepfunctions"]["state_machine_arn"]
    running = [
        e["executionArn"]
        for e in box.client("stepfunctions").list_executions(stateMachineArn=machine, statusFilter="RUNNING")[
            "executions"
        ]
    ]
    return [
        Call("batch", "describe_job_queues", {"jobQueues": [ctx["pipeline_incident_job_queue"]]}),
        Call("batch", "update_job_queue", {"jobQueue": ctx["pipeline_incident_job_queue"], "state": "DISABLED"}),
        Call("stepfunctions", "list_executions", {"stateMachineArn": machine, "statusFilter": "RUNNING"}),
        *[
            Call(
                "stepfunctions",
                "stop_execution",
                {"executionArn": arn, "error": "Paused", "cause": "pipeline paused by the incident responder"},
            )
            for arn in running
        ],
        Call("stepfunctions", "list_executions", {"stateMachineArn": machine, "statusFilter": "FAILED"}),
    ]


def queue_workers_down(box, ctx) -> list:
    d = ctx["_drill"]
    queues = box.manifest["aws"]["queues"]
    jobs, holding = queues["jobs_url"], queues["holding_url"]
    # The seeds: check the workers and the queue, reboot the stuck one, move the stuck jobs to the holding queue
    # (receive, send, delete: a shell loop over the answer, as the seeds' responder would write it).
    move_sh = (
        f"while :; do\n"
        f"  batch=$(aws sqs receive-message{ENDPOINT} --queue-url {jobs} --max-number-of-messages 10 "
        f"--visibility-timeout 60 --output json)\n"
        f'  [ -n "$batch" ] || break\n'
        f"  printf '%s' \"$batch\" | python3 -c 'import json, sys\n"
        f'for m in json.load(sys.stdin).get("Messages", []): print(m["ReceiptHandle"] + "\\t" + m["Body"])\' |\n'
        f"  while IFS=$'\\t' read -r handle body; do\n"
        f'    aws sqs send-message{ENDPOINT} --queue-url {holding} --message-body "$body" >/dev/null\n'
        f'    aws sqs delete-message{ENDPOINT} --queue-url {jobs} --receipt-handle "$handle"\n'
        f"  done\n"
        f"done"
    )
    move_py = (
        "while True:\n"
        f"    batch = client('sqs').receive_message(QueueUrl={jobs!r}, MaxNumberOfMessages=10, VisibilityTimeout=60)\n"
        "    if not batch.get('Messages'):\n"
        "        break\n"
        "    for m in batch['Messages']:\n"
        f"        client('sqs').send_message(QueueUrl={holding!r}, MessageBody=m['Body'])\n"
        f"        client('sqs').delete_message(QueueUrl={jobs!r}, ReceiptHandle=m['ReceiptHandle'])"
    )
    return [
        Call(
            "ec2",
            "describe_instances",
            {"Filters": [{"Name": "tag:aws:autoscaling:groupName", "Values": [ctx["queue_workers_down_asg"]]}]},
        ),
        Call("ec2", "describe_instance_status", {"InstanceIds": [d["stuck"], *d["healthy"]]}),
        Call("sqs", "get_queue_attributes", {"QueueUrl": jobs, "AttributeNames": ["All"]}),
        Call("ec2", "reboot_instances", {"InstanceIds": [d["stuck"]]}),
        Call(
            "ec2",
            "create_tags",
            {"Resources": [d["stuck"]], "Tags": [{"Key": "firebreak:rebooted-by", "Value": "bench"}]},
        ),
        Raw(sh=move_sh, py=move_py),
        Call("sqs", "get_queue_attributes", {"QueueUrl": jobs, "AttributeNames": ["All"]}),
    ]


def security_breach(box, ctx) -> list:
    d = ctx["_drill"]
    quarantine = box.manifest["aws"]["network"]["security_groups"]["quarantine"]
    pipeline = box.client("codepipeline").get_pipeline(name=d["pipeline"])["pipeline"]
    stages = [stage["name"] for stage in pipeline["stages"][1:]]  # transitions into every stage after the source
    detector = box.client("guardduty").list_detectors()["DetectorIds"]
    steps = [Call("guardduty", "list_findings", {"DetectorId": detector[0]})] if detector else []
    steps += [
        *disable_keys(box, d["user"]),
        *block_addresses(d["ip_set"], d["scope"], [d["address"]]),
        *[
            Call("ec2", "modify_network_interface_attribute", {"NetworkInterfaceId": eni, "Groups": [quarantine]})
            for eni in d["eni_ids"]
        ],
        Call(
            "s3",
            "put_public_access_block",
            {
                "Bucket": d["bucket"],
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            },
        ),
        *[
            Call(
                "codepipeline",
                "disable_stage_transition",
                {
                    "pipelineName": d["pipeline"],
                    "stageName": stage,
                    "transitionType": "Inbound",
                    "reason": "security incident",
                },
            )
            for stage in stages
        ],
    ]
    for source in ctx["security_breach_evidence_sources"]:
        keys = [k for k in d["log_objects"] if k.startswith(source["prefix"])]
        steps.append(s3_sync(source["bucket"], source["prefix"], d["evidence_bucket"], keys))
    return steps


def service_down(box, ctx) -> list:
    d = ctx["_drill"]
    return ecs_rollback(d["cluster"], d["service"], d["good"].split(":")[0])


BASELINES = {
    "auth_attack": Baseline(
        "incident-procedures.md, Security Breach: 'Block suspicious IP at WAF level' (wafv2; "
        "the /login rate rule as update-web-acl)",
        auth_attack,
    ),
    "bad_deploy": Baseline(
        "k8s-playbooks.md, Deployment Failure (kubectl rollout undo, config back, rollout "
        "status) and the deploy freeze as ssm put-parameter",
        bad_deploy,
    ),
    "credential_compromise": Baseline(
        "incident-procedures.md, Security Breach: update-access-key, 'Rotate ALL "
        "credentials and secrets', CloudTrail lookup-events, s3 sync of the logs",
        credential_compromise,
    ),
    "data_loss": Baseline(
        "incident-procedures.md, Data Loss: 'Restore from versioning' (list-object-versions, copy-object)", data_loss
    ),
    "database_unavailable": Baseline(
        "incident-procedures.md, Database Unavailable: describe, describe-events, manual failover (the cluster form)",
        database_unavailable,
    ),
    "high_error_rate": Baseline(
        "ecs-fargate-plan.md, rollback (as bench/cli/ecs_rollback.sh) with the ALB 5xx metric read before and after",
        high_error_rate,
    ),
    "k8s_service_down": Baseline("k8s-playbooks.md: kubectl get, rollout undo, rollout status", k8s_service_down),
    "lambda_failure": Baseline(
        "serverless-neptune-runbook.md: get-function, the alias back to the previous version", lambda_failure
    ),
    "performance_degradation": Baseline(
        "incident-procedures.md, Service Down: 'Scale up if resource exhaustion' "
        "(update-service --desired-count) and modify-db-instance",
        performance_degradation,
    ),
    "pipeline_incident": Baseline(
        "eks-batch-stepfunctions-plan.md (no CLI in the seed): batch update-job-queue, "
        "stepfunctions stop-execution per running execution",
        pipeline_incident,
    ),
    "queue_workers_down": Baseline(
        "incident-procedures.md, GPU Workers: describe-instances, get-queue-attributes, reboot, move the stuck jobs",
        queue_workers_down,
    ),
    "security_breach": Baseline(
        "incident-procedures.md, Security Breach: update-access-key, WAF block, isolate the "
        "instance, s3 sync of the logs; public access block and the pipeline stop",
        security_breach,
    ),
    "service_down": Baseline(
        "ecs-fargate-plan.md / incident-procedures.md, Service Completely Down (as bench/cli/ecs_rollback.sh)",
        service_down,
    ),
}
