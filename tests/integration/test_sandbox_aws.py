"""The AWS half of the sandbox: moto behind the fault proxy, seeded with the seeds' architectures.

The manifest is checked against what moto holds (describe calls, not the manifest's own word), reset
must undo changes, and faults injected in the proxy must reach real clients: boto3 and Ansible modules.
"""

from __future__ import annotations

import datetime
import json
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

# Botocore retries bounded for the failure cases (standard mode: attempts include the first call).
BOUNDED_RETRIES = {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "2"}

VPC_INFO_PLAYBOOK = """
- name: Read the seeded VPC through the fault proxy
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Describe the VPC
      amazon.aws.ec2_vpc_net_info:
        vpc_ids: ["{{ vpc_id }}"]
        region: "{{ firebreak_aws_region }}"
        endpoint_url: "{{ firebreak_aws_endpoint_url }}"
      register: vpc_info

    - name: The VPC is the seeded one
      ansible.builtin.assert:
        that:
          - vpc_info.vpcs | length == 1
          - vpc_info.vpcs[0].id == vpc_id
          - vpc_info.vpcs[0].cidr_block == "10.20.0.0/16"
"""


def client(aws, service, attempts=4, endpoint=None):
    return boto3.client(
        service,
        endpoint_url=endpoint or aws.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def log_since(aws, seq: int, service: str, action: str) -> list[dict]:
    return [e for e in aws.proxy.log() if e["seq"] > seq and e["service"] == service and e["action"] == action]


def last_seq(aws) -> int:
    entries = aws.proxy.log()
    return entries[-1]["seq"] if entries else 0


def inject(aws, rule: dict) -> str:
    """Add a rule the way another process would: through the proxy's HTTP control API."""
    request = urllib.request.Request(
        f"{aws.aws_url}/_fault/rules",
        data=json.dumps(rule).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["id"]


@pytest.fixture
def vpc_playbook(tmp_path):
    path = tmp_path / "vpc_info.yml"
    path.write_text(VPC_INFO_PLAYBOOK)
    return path


# -- the seed manifest is what moto holds -------------------------------------------------------
def test_network_matches_moto(aws):
    network = aws.manifest["aws"]["network"]
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs(VpcIds=[network["vpc_id"]])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.20.0.0/16"
    subnets = ec2.describe_subnets(SubnetIds=network["subnet_ids"])["Subnets"]
    assert len(subnets) == 2
    assert {s["VpcId"] for s in subnets} == {network["vpc_id"]}
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    groups = network["security_groups"]
    assert set(groups) >= {"alb", "app", "db", "quarantine"}
    described = {
        g["GroupId"]: g for g in ec2.describe_security_groups(GroupIds=list(groups.values()))["SecurityGroups"]
    }
    assert {g["VpcId"] for g in described.values()} == {network["vpc_id"]}
    db_sources = [p["GroupId"] for rule in described[groups["db"]]["IpPermissions"] for p in rule["UserIdGroupPairs"]]
    assert db_sources == [groups["app"]]
    assert described[groups["quarantine"]]["IpPermissions"] == []
    assert described[groups["quarantine"]]["IpPermissionsEgress"] == []


def test_aurora_and_rds_match_moto(aws):
    aurora, rds_area = aws.manifest["aws"]["aurora"], aws.manifest["aws"]["rds"]
    rds = aws.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier="orders-db")["DBClusters"][0]
    assert cluster["Engine"] == "aurora-postgresql"
    assert cluster["DBSubnetGroup"] == aurora["subnet_group"]
    members = {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in cluster["DBClusterMembers"]}
    assert members == {aurora["writer_id"]: True, **{reader: False for reader in aurora["reader_ids"]}}
    group = rds.describe_db_subnet_groups(DBSubnetGroupName=aurora["subnet_group"])["DBSubnetGroups"][0]
    assert {s["SubnetIdentifier"] for s in group["Subnets"]} == set(aws.manifest["aws"]["network"]["subnet_ids"])
    instance = rds.describe_db_instances(DBInstanceIdentifier=rds_area["instance_id"])["DBInstances"][0]
    assert instance["MultiAZ"] is True
    assert instance["DBSubnetGroup"]["DBSubnetGroupName"] == aurora["subnet_group"]


def test_s3_versions_and_delete_marker_match_moto(aws):
    area = aws.manifest["aws"]["s3"]
    s3 = aws.client("s3")
    uploads = area["uploads_bucket"]
    assert s3.get_bucket_versioning(Bucket=uploads)["Status"] == "Enabled"
    listing = s3.list_object_versions(Bucket=uploads)
    objects = area["buckets"][uploads]["objects"]
    for key, entry in objects.items():
        held = {v["VersionId"] for v in listing["Versions"] if v["Key"] == key}
        assert held == {v["version_id"] for v in entry["versions"]}, key
    assert len(objects["uploads/report.csv"]["versions"]) == 3
    oldest = objects["uploads/report.csv"]["versions"][0]["version_id"]
    body = s3.get_object(Bucket=uploads, Key="uploads/report.csv", VersionId=oldest)["Body"].read()
    assert body == b"id,total\n1,10\n"

    marker = objects[area["deleted_key"]]["delete_marker"]
    latest_markers = [m for m in listing["DeleteMarkers"] if m["IsLatest"]]
    assert [(m["Key"], m["VersionId"]) for m in latest_markers] == [(area["deleted_key"], marker["version_id"])]
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=uploads, Key=area["deleted_key"])
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    evidence = area["evidence_bucket"]
    assert s3.get_bucket_versioning(Bucket=evidence)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=evidence)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"


def test_version_listing_pages_through_a_history_without_touching_it(aws):
    """sandbox/moto_main.py lists versions from shallow copies (moto deep-copies the bucket per page):
    the answer must stay AWS's, page after page, and the stored versions and bodies must not change."""
    s3 = aws.client("s3")
    bucket = "firebreak-test-listing"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    written = {}
    for key in ("a.txt", "a.txt.bak", "b.txt"):
        for n in range(3):
            answer = s3.put_object(Bucket=bucket, Key=key, Body=f"{key}-{n}".encode())
            written.setdefault(key, []).append(answer["VersionId"])
    marker = s3.delete_object(Bucket=bucket, Key="b.txt")["VersionId"]

    def listing(max_keys):
        seen, params = [], {"Bucket": bucket, "MaxKeys": max_keys}
        while True:
            page = s3.list_object_versions(**params)
            seen += [(v["Key"], v["VersionId"], v["IsLatest"], "data") for v in page.get("Versions", [])]
            seen += [(m["Key"], m["VersionId"], m["IsLatest"], "marker") for m in page.get("DeleteMarkers", [])]
            if not page["IsTruncated"]:
                return sorted(seen)
            params.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])

    whole = listing(1000)
    assert listing(2) == whole == listing(1000)
    latest = {(key, version) for key, version, is_latest, _ in whole if is_latest}
    assert latest == {("a.txt", written["a.txt"][-1]), ("a.txt.bak", written["a.txt.bak"][-1]), ("b.txt", marker)}
    assert len(whole) == 10
    for key, versions in written.items():
        for n, version in enumerate(versions):
            body = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
            assert body == f"{key}-{n}".encode()
    assert s3.get_object(Bucket=bucket, Key="a.txt")["VersionId"] == written["a.txt"][-1]


def test_iam_users_and_keys_match_moto_and_no_secret_is_recorded(aws):
    area = aws.manifest["aws"]["iam"]
    iam = aws.client("iam")
    assert set(area["user_names"]) == {"ci-deployer", "alice"}
    assert area["compromised_user"] in area["user_names"]
    for name, user in area["users"].items():
        keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        assert [k["AccessKeyId"] for k in keys] == user["access_key_ids"]
        assert {k["Status"] for k in keys} == {"Active"}
    policy = iam.get_policy(PolicyArn=area["deny_all_policy_arn"])["Policy"]
    assert policy["PolicyName"] == "firebreak-deny-all"
    text = json.dumps(aws.manifest)
    assert "secret_access_key" not in text.lower() and "secretaccesskey" not in text.lower()
    secret_value = aws.client("secretsmanager").get_secret_value(SecretId="app/admin")["SecretString"]
    assert json.loads(secret_value)["ADMIN_PASS"] not in text


def test_waf_ec2_and_secret_match_moto(aws):
    manifest = aws.manifest["aws"]
    waf = manifest["waf"]
    wafv2 = aws.client("wafv2")
    acl = wafv2.get_web_acl(Name="edge-acl", Scope="REGIONAL", Id=waf["web_acl"]["id"])["WebACL"]
    assert acl["ARN"] == waf["web_acl"]["arn"]
    [rule] = acl["Rules"]
    assert rule["Statement"]["IPSetReferenceStatement"]["ARN"] == waf["ip_set"]["arn"]
    assert "Block" in rule["Action"]
    ip_set = wafv2.get_ip_set(Name="firebreak-blocklist", Scope="REGIONAL", Id=waf["ip_set"]["id"])["IPSet"]
    assert ip_set["Addresses"] == waf["ip_set"]["addresses"]

    area = manifest["ec2"]
    reservations = aws.client("ec2").describe_instances(InstanceIds=area["instance_ids"])["Reservations"]
    instances = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
    assert set(instances) == set(area["instance_ids"]) and len(instances) == 2
    compromised = [
        iid
        for iid, inst in instances.items()
        if {"Key": "firebreak:compromised", "Value": "true"} in inst.get("Tags", [])
    ]
    assert compromised == [area["compromised_instance_id"]]
    for item in area["instances"]:
        enis = instances[item["instance_id"]]["NetworkInterfaces"]
        assert [e["NetworkInterfaceId"] for e in enis] == item["eni_ids"]
        assert {g["GroupId"] for e in enis for g in e["Groups"]} == {manifest["network"]["security_groups"]["app"]}

    secret = aws.client("secretsmanager").describe_secret(SecretId="app/admin")
    assert secret["ARN"] == manifest["secretsmanager"]["arn"]


def test_pipelines_lambda_and_alarms_match_moto(aws):
    manifest = aws.manifest["aws"]
    sfn = manifest["stepfunctions"]
    executions = aws.client("stepfunctions").list_executions(stateMachineArn=sfn["state_machine_arn"])["executions"]
    assert {e["executionArn"] for e in executions if e["status"] == "RUNNING"} == set(sfn["execution_arns"])
    assert len(sfn["execution_arns"]) == 2

    batch = aws.client("batch")
    [queue] = batch.describe_job_queues(jobQueues=["results-queue"])["jobQueues"]
    assert queue["jobQueueArn"] == manifest["batch"]["job_queue_arn"]
    assert queue["state"] == "ENABLED"
    [environment] = batch.describe_compute_environments(computeEnvironments=["results-ce"])["computeEnvironments"]
    assert environment["type"] == "UNMANAGED"

    function = manifest["lambda"]
    awslambda = aws.client("lambda")
    versions = {v["Version"] for v in awslambda.list_versions_by_function(FunctionName="thumbnailer")["Versions"]}
    assert versions >= {"1", "2"} and function["versions"] == ["1", "2"]
    assert awslambda.get_alias(FunctionName="thumbnailer", Name="live")["FunctionVersion"] == "2"

    alarms = aws.client("cloudwatch").describe_alarms(AlarmNames=manifest["cloudwatch"]["alarms"])["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == manifest["cloudwatch"]["alarms"]
    assert set(manifest["cloudwatch"]["alarm_names"]) >= {"alb_5xx", "ecs_running_below_desired", "aurora_connections"}


# -- reset ----------------------------------------------------------------------------------------
def test_reset_brings_the_seeded_state_back(aws):
    before = aws.manifest["aws"]
    iam, batch, awslambda = aws.client("iam"), aws.client("batch"), aws.client("lambda")
    old_key = before["iam"]["users"]["ci-deployer"]["access_key_ids"][0]
    iam.delete_access_key(UserName="ci-deployer", AccessKeyId=old_key)
    batch.update_job_queue(jobQueue="results-queue", state="DISABLED")
    awslambda.update_alias(FunctionName="thumbnailer", Name="live", FunctionVersion="1")
    aws.client("s3").delete_object(Bucket="firebreak-sandbox-uploads", Key="results/summary.json")
    aws.proxy.add_rule({"service": "ecs", "fault": "error"})
    assert iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"] == []

    after = aws.reset_aws()

    keys = iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == after["iam"]["users"]["ci-deployer"]["access_key_ids"]
    assert old_key not in [k["AccessKeyId"] for k in keys]
    assert batch.describe_job_queues(jobQueues=["results-queue"])["jobQueues"][0]["state"] == "ENABLED"
    assert awslambda.get_alias(FunctionName="thumbnailer", Name="live")["FunctionVersion"] == "2"
    aws.client("s3").head_object(Bucket="firebreak-sandbox-uploads", Key="results/summary.json")
    assert all(rule["default"] for rule in aws.proxy.rules())
    assert len(aws.client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.20.0.0/16"]}])["Vpcs"]) == 1


def test_seed_is_quick_enough_to_run_before_every_test(aws):
    started = time.perf_counter()
    aws.reset_aws()
    elapsed = time.perf_counter() - started
    # Generous: shared CI cores. The measured figure is in docs/sandbox.md.
    assert elapsed < 20, f"reset + seed took {elapsed:.1f}s"


# -- faults reach real clients -----------------------------------------------------------------
def test_throttled_boto3_call_succeeds_after_retries(aws):
    mark = last_seq(aws)
    aws.proxy.add_rule({"service": "rds", "action": "DescribeDBClusters", "fault": "throttle", "count": 2})
    clusters = aws.client("rds").describe_db_clusters(DBClusterIdentifier="orders-db")
    assert clusters["DBClusters"][0]["DBClusterIdentifier"] == "orders-db"
    assert clusters["ResponseMetadata"]["RetryAttempts"] == 2
    entries = log_since(aws, mark, "rds", "DescribeDBClusters")
    assert [(e["status"], e["fault"]) for e in entries] == [(400, "throttle"), (400, "throttle"), (200, None)]


def test_throttled_ecs_call_succeeds_after_retries(aws):
    mark = last_seq(aws)
    aws.proxy.add_rule({"service": "ecs", "action": "DescribeServices", "fault": "throttle", "count": 2})
    ecs = aws.manifest["aws"]["ecs"]
    services = aws.client("ecs").describe_services(cluster=ecs["cluster"], services=[ecs["service"]])["services"]
    assert services[0]["serviceName"] == ecs["service"]
    entries = log_since(aws, mark, "ecs", "DescribeServices")
    assert [(e["status"], e["fault"]) for e in entries] == [(400, "throttle"), (400, "throttle"), (200, None)]


def test_throttled_ansible_module_succeeds_after_retries(aws, run_playbook, vpc_playbook):
    mark = last_seq(aws)
    inject(aws, {"service": "ec2", "action": "DescribeVpcs", "fault": "throttle", "count": 2})
    run = run_playbook(vpc_playbook, extra_vars={"vpc_id": aws.manifest["aws"]["network"]["vpc_id"]})
    assert run.returncode == 0, run.output[-3000:]
    entries = log_since(aws, mark, "ec2", "DescribeVpcs")
    assert [(e["status"], e["fault"]) for e in entries] == [(503, "throttle"), (503, "throttle"), (200, None)]


def test_permanent_5xx_fails_a_boto3_call(aws):
    mark = last_seq(aws)
    aws.proxy.add_rule({"service": "ecs", "action": "DescribeServices", "fault": "error"})
    started = time.monotonic()
    with pytest.raises(ClientError) as caught:
        client(aws, "ecs", attempts=2).describe_services(cluster="shop", services=["shop-api"])
    assert time.monotonic() - started < 10
    assert caught.value.response["Error"]["Code"] == "InternalFailure"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert [e["status"] for e in log_since(aws, mark, "ecs", "DescribeServices")] == [500, 500]


def test_permanent_5xx_fails_an_ansible_task(aws, run_playbook, vpc_playbook):
    # amazon.aws wraps describe_vpcs in AWSRetry.jittered_backoff(), which retries InternalError/
    # InternalFailure/ServiceUnavailable about ten times with up to 60 s sleeps: a gateway timeout is
    # retried by botocore only (bounded by AWS_MAX_ATTEMPTS), so the task fails in seconds.
    mark = last_seq(aws)
    inject(aws, {"service": "ec2", "action": "DescribeVpcs", "fault": "error", "status": 504, "code": "GatewayTimeout"})
    started = time.monotonic()
    run = run_playbook(
        vpc_playbook, extra_vars={"vpc_id": aws.manifest["aws"]["network"]["vpc_id"]}, env=BOUNDED_RETRIES
    )
    assert run.returncode != 0
    assert "Unable to describe VPCs" in run.output, run.output[-3000:]
    assert "failed=1" in run.output
    assert time.monotonic() - started < 60
    statuses = [e["status"] for e in log_since(aws, mark, "ec2", "DescribeVpcs")]
    assert statuses == [504, 504]


def test_cloudtrail_lookup_events_returns_canned_events_where_moto_has_none(aws):
    with pytest.raises(ClientError) as caught:  # moto itself: not implemented
        client(aws, "cloudtrail", attempts=1, endpoint=aws.moto_url).lookup_events()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500

    user = aws.manifest["aws"]["iam"]["compromised_user"]
    mark = last_seq(aws)
    events = aws.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": user}]
    )["Events"]
    names = {e["EventName"] for e in events}
    assert {"ConsoleLogin", "CreateAccessKey", "PutBucketPolicy"} <= names
    assert {e["Username"] for e in events} == {user}
    policy = next(e for e in events if e["EventName"] == "PutBucketPolicy")
    assert policy["Resources"] == [
        {"ResourceType": "AWS::S3::Bucket", "ResourceName": aws.manifest["aws"]["s3"]["uploads_bucket"]}
    ]
    assert json.loads(policy["CloudTrailEvent"])["userIdentity"]["userName"] == user
    [entry] = log_since(aws, mark, "cloudtrail", "LookupEvents")
    assert (entry["status"], entry["fault"]) == (200, "canned")


def test_alarm_history_records_creation_and_state_changes_as_cloudwatch_does(aws):
    """DescribeAlarmHistory (CloudWatch API reference): a ConfigurationUpdate when the alarm is created, a
    StateUpdate with old and new state for each change of state, newest first (sandbox/moto_main.py)."""
    alarm = aws.manifest["aws"]["cloudwatch"]["alarm_names"]["alb_5xx"]
    cloudwatch = aws.client("cloudwatch")
    [created] = cloudwatch.describe_alarm_history(AlarmName=alarm)["AlarmHistoryItems"]
    assert (created["HistoryItemType"], created["HistorySummary"]) == (
        "ConfigurationUpdate",
        f'Alarm "{alarm}" created',
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="threshold crossed")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="still crossed")  # no change
    items = cloudwatch.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    [update] = items
    assert update["HistorySummary"] == "Alarm updated from OK to ALARM"
    data = json.loads(update["HistoryData"])
    assert (data["oldState"]["stateValue"], data["newState"]["stateReason"]) == ("OK", "threshold crossed")
    later = update["Timestamp"] + datetime.timedelta(seconds=1)
    assert cloudwatch.describe_alarm_history(AlarmName=alarm, StartDate=later)["AlarmHistoryItems"] == []


def test_rds_events_show_a_failover_within_the_asked_window(aws):
    """DescribeEvents (RDS API reference; RDS-EVENT-0073/0072 and -0071): a cluster failover's start and
    completion naming the new writer; StartTime/EndTime bound the answer, the default is the past hour."""
    rds = aws.client("rds")
    cluster = aws.manifest["aws"]["aurora"]["cluster_id"]
    rds.failover_db_cluster(DBClusterIdentifier=cluster)
    [writer] = [
        m["DBInstanceIdentifier"]
        for m in rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterMembers"]
        if m["IsClusterWriter"]
    ]
    events = rds.describe_events(SourceIdentifier=cluster, SourceType="db-cluster")["Events"]
    messages = [e["Message"] for e in events]
    assert messages[-1] == f"Completed failover to DB instance: {writer}"
    assert messages[-2].endswith(f"AZ failover to DB instance: {writer}")
    assert {tuple(e["EventCategories"]) for e in events[-2:]} == {("failover",)}
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    assert rds.describe_events(SourceType="db-cluster", StartTime=old, EndTime=old)["Events"] == []
    only = rds.describe_events(SourceType="db-cluster", EventCategories=["creation"])["Events"]
    assert only and {e["Message"] for e in only} == {"DB cluster created"}


def test_guardduty_findings_follow_the_criteria_as_guardduty_does(aws):
    """ListFindings/GetFindings (GuardDuty API reference), answered by the fault proxy: an unknown detector is a
    BadRequestException; criteria on a resource field, severity and type select findings; GetFindings skips
    unknown ids."""
    guardduty = aws.client("guardduty")
    with pytest.raises(ClientError) as caught:
        guardduty.list_findings(DetectorId="0" * 32)
    assert caught.value.response["Error"]["Code"] == "BadRequestException"
    detector = guardduty.create_detector(Enable=True)["DetectorId"]
    instance = aws.manifest["aws"]["ec2"]["compromised_instance_id"]
    criterion = {"resource.instanceDetails.instanceId": {"Equals": [instance]}}
    [found] = guardduty.list_findings(DetectorId=detector, FindingCriteria={"Criterion": criterion})["FindingIds"]
    [finding] = guardduty.get_findings(DetectorId=detector, FindingIds=[found, "f" * 32])["Findings"]
    assert finding["Resource"]["InstanceDetails"]["InstanceId"] == instance and finding["Severity"] == 8.0
    every = guardduty.list_findings(DetectorId=detector)["FindingIds"]
    high = guardduty.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {"severity": {"Gte": 7}}})
    severities = [f["Severity"] for f in guardduty.get_findings(DetectorId=detector, FindingIds=every)["Findings"]]
    assert len(high["FindingIds"]) == len([s for s in severities if s >= 7]) < len(every)
    page = guardduty.list_findings(DetectorId=detector, MaxResults=1)
    assert len(page["FindingIds"]) == 1 and page["NextToken"]
