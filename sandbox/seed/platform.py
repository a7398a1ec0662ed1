"""Everything around the ECS service: data, identity, edge, compute, pipelines, alarms.

``seed(make_client, network)`` returns top-level areas that ``seed_aws`` merges into the manifest:
``aurora``, ``rds``, ``s3``, ``iam``, ``sns``, ``waf``, ``ec2``, ``stepfunctions``, ``batch``,
``secretsmanager``, ``lambda``, ``cloudwatch``.  Only names, ids and ARNs go into the manifest:
never a secret access key or a secret value.  See docs/sandbox.md for the full shape.

It runs before every AWS test (after ``POST /moto-api/reset``), so it sticks to calls moto answers
quickly and never to ones that need Docker (Lambda invoke, Batch jobs, secret rotation).
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile

REGION_AZS = ("us-east-1a", "us-east-1b")
SANDBOX_TAG = {"Key": "firebreak:sandbox", "Value": "true"}
COMPROMISED_TAG = {"Key": "firebreak:compromised", "Value": "true"}
# Documentation ranges (RFC 5737): what the blocklist already holds.
BLOCKED_ADDRESSES = ["192.0.2.10/32"]
AMI_ID = "ami-0abcdef1234567890"  # moto accepts any AMI id; this is AWS's documented example


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# -- identity ---------------------------------------------------------------------------------
def _roles(iam) -> dict:
    roles = {}
    for key, name, service in (
        ("lambda", "thumbnailer-role", "lambda.amazonaws.com"),
        ("stepfunctions", "results-pipeline-role", "states.amazonaws.com"),
        ("batch", "batch-service-role", "batch.amazonaws.com"),
    ):
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust(service), Tags=[SANDBOX_TAG])["Role"]
        roles[key] = {"name": name, "arn": role["Arn"]}
    return roles


def _users(iam) -> dict:
    users = {}
    for name, team in (("ci-deployer", "platform"), ("alice", "backend")):
        iam.create_user(UserName=name, Tags=[SANDBOX_TAG, {"Key": "team", "Value": team}])
        key = iam.create_access_key(UserName=name)["AccessKey"]
        # Only the id: the secret access key never leaves this function.
        users[name] = {"user_name": name, "access_key_ids": [key["AccessKeyId"]]}
    iam.put_user_policy(
        UserName="ci-deployer",
        PolicyName="deploy",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["ecs:UpdateService", "ecs:RegisterTaskDefinition", "s3:PutObject"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    return users


def _deny_all_policy(iam) -> str:
    """A customer-managed deny-all policy: containment without AWSDenyAll (an AWS-managed policy that
    moto only has when started with MOTO_IAM_LOAD_MANAGED_POLICIES, which costs seconds per reset)."""
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    policy = iam.create_policy(
        PolicyName="firebreak-deny-all",
        Path="/firebreak/",
        PolicyDocument=json.dumps(document),
        Description="attach to a compromised principal to stop it",
    )["Policy"]
    return policy["Arn"]


# -- data -------------------------------------------------------------------------------------
def _aurora(rds, network) -> dict:
    subnet_group = "orders-db-subnets"
    rds.create_db_subnet_group(
        DBSubnetGroupName=subnet_group,
        DBSubnetGroupDescription="orders-db across both AZs",
        SubnetIds=network["subnet_ids"],
    )
    cluster = rds.create_db_cluster(
        DBClusterIdentifier="orders-db",
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        MasterUsername="orders_admin",
        MasterUserPassword=secrets.token_urlsafe(18),
        DBSubnetGroupName=subnet_group,
        VpcSecurityGroupIds=[network["security_groups"]["db"]],
        AvailabilityZones=list(REGION_AZS),
        BackupRetentionPeriod=7,
        DatabaseName="orders",
        Tags=[SANDBOX_TAG],
    )["DBCluster"]
    writer, reader = "orders-db-1", "orders-db-2"
    for instance_id, zone in ((writer, REGION_AZS[0]), (reader, REGION_AZS[1])):
        rds.create_db_instance(
            DBInstanceIdentifier=instance_id,
            DBClusterIdentifier="orders-db",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
            AvailabilityZone=zone,
            DBSubnetGroupName=subnet_group,
            Tags=[SANDBOX_TAG],
        )
    members = rds.describe_db_clusters(DBClusterIdentifier="orders-db")["DBClusters"][0]["DBClusterMembers"]
    writers = [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]]
    readers = [m["DBInstanceIdentifier"] for m in members if not m["IsClusterWriter"]]
    return {
        "cluster_id": "orders-db",
        "cluster_arn": cluster["DBClusterArn"],
        "engine": "aurora-postgresql",
        "subnet_group": subnet_group,
        "writer_id": writers[0] if writers else writer,
        "reader_ids": readers or [reader],
        "instance_ids": [writer, reader],
        "endpoint": cluster.get("Endpoint"),
        "reader_endpoint": cluster.get("ReaderEndpoint"),
    }


def _rds(rds, network, subnet_group: str) -> dict:
    instance = rds.create_db_instance(
        DBInstanceIdentifier="reports-db",
        Engine="postgres",
        DBInstanceClass="db.t3.medium",
        AllocatedStorage=20,
        MasterUsername="reports_admin",
        MasterUserPassword=secrets.token_urlsafe(18),
        MultiAZ=True,
        DBSubnetGroupName=subnet_group,
        VpcSecurityGroupIds=[network["security_groups"]["db"]],
        BackupRetentionPeriod=7,
        Tags=[SANDBOX_TAG],
    )["DBInstance"]
    return {"instance_id": "reports-db", "instance_arn": instance["DBInstanceArn"], "multi_az": True}


def _s3(s3) -> dict:
    uploads, evidence = "firebreak-sandbox-uploads", "firebreak-sandbox-evidence"
    s3.create_bucket(Bucket=uploads)
    s3.put_bucket_versioning(Bucket=uploads, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(Bucket=uploads, Tagging={"TagSet": [SANDBOX_TAG]})
    writes = [
        ("uploads/report.csv", b"id,total\n1,10\n"),
        ("uploads/report.csv", b"id,total\n1,10\n2,20\n"),
        ("uploads/report.csv", b"id,total\n1,0\n2,0\n"),  # the latest version is the corrupted one
        ("uploads/avatar.png", b"\x89PNG\r\n\x1a\n-v1"),
        ("uploads/avatar.png", b"\x89PNG\r\n\x1a\n-v2"),
        ("uploads/contract.pdf", b"%PDF-1.7 signed contract"),
        ("results/summary.json", b'{"jobs": 12, "failed": 0}'),
    ]
    for key, body in writes:
        s3.put_object(Bucket=uploads, Key=key, Body=body)
    s3.delete_object(Bucket=uploads, Key="uploads/contract.pdf")  # latest version becomes a delete marker

    listing = s3.list_object_versions(Bucket=uploads)
    objects: dict[str, dict] = {}
    for version in listing.get("Versions", []):
        entry = objects.setdefault(version["Key"], {"versions": [], "delete_marker": None})
        entry["versions"].append(
            {
                "version_id": version["VersionId"],
                "last_modified": _iso(version["LastModified"]),
                "etag": version["ETag"].strip('"'),
                "size": version["Size"],
                "is_latest": version["IsLatest"],
            }
        )
    for marker in listing.get("DeleteMarkers", []):
        entry = objects.setdefault(marker["Key"], {"versions": [], "delete_marker": None})
        entry["delete_marker"] = {
            "version_id": marker["VersionId"],
            "last_modified": _iso(marker["LastModified"]),
            "is_latest": marker["IsLatest"],
        }
    for entry in objects.values():
        # S3 lists newest first; keep that order for equal (same-second) timestamps, then flip it.
        entry["versions"].reverse()
        entry["versions"].sort(key=lambda item: item["last_modified"])

    s3.create_bucket(Bucket=evidence, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=evidence,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    return {
        "uploads_bucket": uploads,
        "evidence_bucket": evidence,
        "buckets": {
            uploads: {"versioning": "Enabled", "objects": objects},
            evidence: {"versioning": "Enabled", "object_lock": {"mode": "GOVERNANCE", "days": 1}},
        },
        "deleted_key": "uploads/contract.pdf",
        "corrupted_key": "uploads/report.csv",
    }


# -- edge -------------------------------------------------------------------------------------
def _waf(wafv2, load_balancer_arn: str | None) -> dict:
    ip_set = wafv2.create_ip_set(
        Name="firebreak-blocklist",
        Scope="REGIONAL",
        IPAddressVersion="IPV4",
        Addresses=list(BLOCKED_ADDRESSES),
        Description="addresses blocked during incidents",
        Tags=[SANDBOX_TAG],
    )["Summary"]
    visibility = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True}
    acl = wafv2.create_web_acl(
        Name="edge-acl",
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        Rules=[
            {
                "Name": "block-firebreak-blocklist",
                "Priority": 0,
                "Statement": {"IPSetReferenceStatement": {"ARN": ip_set["ARN"]}},
                "Action": {"Block": {}},
                "VisibilityConfig": {**visibility, "MetricName": "block-firebreak-blocklist"},
            }
        ],
        VisibilityConfig={**visibility, "MetricName": "edge-acl"},
        Tags=[SANDBOX_TAG],
    )["Summary"]
    if load_balancer_arn:
        wafv2.associate_web_acl(WebACLArn=acl["ARN"], ResourceArn=load_balancer_arn)
    return {
        "scope": "REGIONAL",
        "web_acl": {"name": "edge-acl", "id": acl["Id"], "arn": acl["ARN"], "rule": "block-firebreak-blocklist"},
        "ip_set": {
            "name": "firebreak-blocklist",
            "id": ip_set["Id"],
            "arn": ip_set["ARN"],
            "addresses": list(BLOCKED_ADDRESSES),
        },
        "associated_resource_arn": load_balancer_arn,
    }


# -- compute ----------------------------------------------------------------------------------
def _ec2(ec2, network) -> dict:
    instances = []
    for index, subnet_id in enumerate(network["subnet_ids"][:2], start=1):
        tags = [{"Key": "Name", "Value": f"app-{index}"}, {"Key": "Role", "Value": "app"}, SANDBOX_TAG]
        if index == 1:
            tags.append(COMPROMISED_TAG)
        instance = ec2.run_instances(
            ImageId=AMI_ID,
            InstanceType="t3.small",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet_id,
            SecurityGroupIds=[network["security_groups"]["app"]],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )["Instances"][0]
        instances.append(
            {
                "instance_id": instance["InstanceId"],
                "name": f"app-{index}",
                "subnet_id": subnet_id,
                "eni_ids": [eni["NetworkInterfaceId"] for eni in instance.get("NetworkInterfaces", [])],
                "private_ip": instance.get("PrivateIpAddress"),
                "compromised": index == 1,
            }
        )
    compromised = instances[0]
    return {
        "instances": instances,
        "instance_ids": [item["instance_id"] for item in instances],
        "eni_ids": [eni for item in instances for eni in item["eni_ids"]],
        "compromised_instance_id": compromised["instance_id"],
        "compromised_eni_ids": compromised["eni_ids"],
        "app_security_group": network["security_groups"]["app"],
        "quarantine_security_group": network["security_groups"].get("quarantine"),
    }


def _stepfunctions(sfn, role_arn: str, batch: dict) -> dict:
    definition = {
        "Comment": "process uploads into results",
        "StartAt": "SubmitResultsJob",
        "States": {
            "SubmitResultsJob": {
                "Type": "Task",
                "Resource": "arn:aws:states:::batch:submitJob.sync",
                "Parameters": {
                    "JobName": "results",
                    "JobQueue": batch["job_queue_arn"],
                    "JobDefinition": batch["job_definition_arn"],
                },
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="results-pipeline",
        definition=json.dumps(definition),
        roleArn=role_arn,
        tags=[{"key": "firebreak:sandbox", "value": "true"}],
    )
    executions = []
    for name in ("upload-20240601-0001", "upload-20240601-0002"):
        executions.append(
            sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name, input='{"batch": 1}')[
                "executionArn"
            ]
        )
    return {
        "state_machine_name": "results-pipeline",
        "state_machine_arn": machine["stateMachineArn"],
        "execution_arns": executions,
    }


def _batch(batch, role_arn: str) -> dict:
    environment = batch.create_compute_environment(
        computeEnvironmentName="results-ce", type="UNMANAGED", state="ENABLED", serviceRole=role_arn
    )
    queue = batch.create_job_queue(
        jobQueueName="results-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    definition = batch.register_job_definition(
        jobDefinitionName="results-worker",
        type="container",
        containerProperties={"image": "results-worker:1.4.2", "vcpus": 1, "memory": 512, "command": ["run"]},
    )
    return {
        "compute_environment_name": "results-ce",
        "compute_environment_arn": environment["computeEnvironmentArn"],
        "job_queue_name": "results-queue",
        "job_queue_arn": queue["jobQueueArn"],
        "job_definition_name": "results-worker",
        "job_definition_arn": definition["jobDefinitionArn"],
    }


def _secret(secretsmanager) -> dict:
    value = {"ADMIN_USER": "admin", "ADMIN_PASS": secrets.token_urlsafe(24)}
    secret = secretsmanager.create_secret(
        Name="app/admin",
        Description="FastAPI admin credentials (ADMIN_USER/ADMIN_PASS)",
        SecretString=json.dumps(value),
        Tags=[SANDBOX_TAG],
    )
    return {"name": "app/admin", "arn": secret["ARN"], "keys": sorted(value)}


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def _lambda(awslambda, role_arn: str) -> dict:
    code = "def handler(event, context):\n    return {{'thumbnail': True, 'version': {}}}\n"
    function = awslambda.create_function(
        FunctionName="thumbnailer",
        Runtime="python3.12",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": _zip(code.format(1))},
        Publish=True,
        Tags={"firebreak:sandbox": "true"},
    )
    awslambda.update_function_code(FunctionName="thumbnailer", ZipFile=_zip(code.format(2)))
    second = awslambda.publish_version(FunctionName="thumbnailer", Description="v2")
    alias = awslambda.create_alias(FunctionName="thumbnailer", Name="live", FunctionVersion=second["Version"])
    return {
        "function_name": "thumbnailer",
        "function_arn": ":".join(function["FunctionArn"].split(":")[:7]),  # unqualified
        "versions": [function["Version"], second["Version"]],
        "alias": {"name": "live", "arn": alias["AliasArn"], "version": alias["FunctionVersion"]},
        "role_arn": role_arn,
    }


# -- alarms -----------------------------------------------------------------------------------
def _cloudwatch(cloudwatch, topic_arn: str, load_balancer_arn: str | None, ecs_target: tuple[str, str] | None) -> dict:
    lb_dimension = load_balancer_arn.split(":loadbalancer/", 1)[1] if load_balancer_arn else "app/firebreak-alb/0"
    cluster, service = ecs_target or ("firebreak", "web")
    alarms = {
        "alb_5xx": (
            "firebreak-alb-5xx",
            "ALB 5xx responses high",
            "AWS/ApplicationELB",
            "HTTPCode_ELB_5XX_Count",
            [{"Name": "LoadBalancer", "Value": lb_dimension}],
            "Sum",
            10.0,
            "GreaterThanOrEqualToThreshold",
        ),
        "ecs_running_below_desired": (
            "firebreak-ecs-running-below-desired",
            "ECS service running tasks below desired",
            "ECS/ContainerInsights",
            "RunningTaskCount",
            [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service}],
            "Minimum",
            2.0,
            "LessThanThreshold",
        ),
        "aurora_connections": (
            "firebreak-aurora-connections",
            "Aurora orders-db connections high",
            "AWS/RDS",
            "DatabaseConnections",
            [{"Name": "DBClusterIdentifier", "Value": "orders-db"}],
            "Maximum",
            400.0,
            "GreaterThanThreshold",
        ),
        "stepfunctions_failures": (
            "firebreak-results-pipeline-failures",
            "results-pipeline executions failing",
            "AWS/States",
            "ExecutionsFailed",
            [{"Name": "StateMachineArn", "Value": "results-pipeline"}],
            "Sum",
            1.0,
            "GreaterThanOrEqualToThreshold",
        ),
    }
    names = {}
    for key, (name, description, namespace, metric, dimensions, statistic, threshold, operator) in alarms.items():
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription=description,
            Namespace=namespace,
            MetricName=metric,
            Dimensions=dimensions,
            Statistic=statistic,
            Period=60,
            EvaluationPeriods=3,
            Threshold=threshold,
            ComparisonOperator=operator,
            TreatMissingData="notBreaching",
            AlarmActions=[topic_arn],
            OKActions=[topic_arn],
        )
        names[key] = name
    return {"alarm_names": names, "alarms": sorted(names.values()), "topic_arn": topic_arn}


def _existing_ecs_targets(make_client) -> tuple[str | None, tuple[str, str] | None]:
    """The load balancer and ECS service ``ecs.seed`` created before us, if any (for dimensions)."""
    load_balancers = make_client("elbv2").describe_load_balancers().get("LoadBalancers", [])
    lb_arn = next((lb["LoadBalancerArn"] for lb in load_balancers if lb.get("Type") == "application"), None)
    ecs = make_client("ecs")
    target = None
    for cluster_arn in ecs.list_clusters().get("clusterArns", [])[:1]:
        services = ecs.list_services(cluster=cluster_arn).get("serviceArns", [])
        if services:
            target = (cluster_arn.rsplit("/", 1)[1], services[0].rsplit("/", 1)[1])
    return lb_arn, target


def seed(make_client, network: dict) -> dict:
    """Create the platform resources on ``network``; returns areas to merge into the manifest."""
    iam = make_client("iam")
    roles = _roles(iam)
    users = _users(iam)
    deny_all_arn = _deny_all_policy(iam)
    aurora = _aurora(make_client("rds"), network)
    rds = _rds(make_client("rds"), network, aurora["subnet_group"])
    s3 = _s3(make_client("s3"))
    lb_arn, ecs_target = _existing_ecs_targets(make_client)
    waf = _waf(make_client("wafv2"), lb_arn)
    ec2 = _ec2(make_client("ec2"), network)
    batch = _batch(make_client("batch"), roles["batch"]["arn"])
    stepfunctions = _stepfunctions(make_client("stepfunctions"), roles["stepfunctions"]["arn"], batch)
    secret = _secret(make_client("secretsmanager"))
    function = _lambda(make_client("lambda"), roles["lambda"]["arn"])
    topic_arn = make_client("sns").create_topic(Name="firebreak-incidents")["TopicArn"]
    cloudwatch = _cloudwatch(make_client("cloudwatch"), topic_arn, lb_arn, ecs_target)
    return {
        "aurora": aurora,
        "rds": rds,
        "s3": s3,
        "iam": {
            "users": users,
            "user_names": sorted(users),
            "compromised_user": "ci-deployer",
            "roles": roles,
            "deny_all_policy_arn": deny_all_arn,
        },
        "sns": {"topic_arn": topic_arn},
        "waf": waf,
        "ec2": ec2,
        "stepfunctions": stepfunctions,
        "batch": batch,
        "secretsmanager": secret,
        "lambda": function,
        "cloudwatch": cloudwatch,
    }
