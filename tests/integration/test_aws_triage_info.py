"""aws_triage_info against the sandbox: each section returns what the test put there, a refused section is
reported while the others return, check mode reads the same and changes nothing."""

from __future__ import annotations

import json

import pytest

from sandbox.seed import ecs as seed_ecs

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/triage/aws_triage_info.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
COMPROMISED_KEY = "AKIAIOSFODNN7EXAMPLE"  # the canned CloudTrail history's key (sandbox/fault_proxy.py)
READ_PREFIXES = ("List", "Describe", "Get", "Lookup")


def result_of(run, task="Gather evidence") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def triage(run_playbook, check=False, **options):
    run = run_playbook(
        PLAYBOOK, extra_vars={f"triage_{k}": v for k, v in options.items()}, check=check, env=JSON_OUTPUT
    )
    return run, result_of(run)


def sections(result) -> dict:
    return {s["section"]: s for s in result["sections"]}


def mark(aws) -> int:
    log = aws.proxy.log()
    return log[-1]["seq"] if log else 0


def calls_since(aws, seq):
    return [e for e in aws.proxy.log() if e["seq"] > seq]


def is_read(entry) -> bool:
    if entry["action"]:
        return entry["action"].startswith(READ_PREFIXES)
    # REST services (Lambda, GuardDuty): GETs, and GuardDuty's two POST reads
    return entry["method"] == "GET" or (entry["service"] == "guardduty" and "/findings" in entry["path"])


def create_pipeline(aws, name="shop-api-deploy") -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = aws.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))
    role = role["Role"]["Arn"]

    def action(name, provider, configuration, inputs=(), outputs=()):
        category = {"S3": "Source", "CodeBuild": "Build", "ECS": "Deploy"}[provider]
        return {
            "name": name,
            "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
            "configuration": configuration,
            "inputArtifacts": [{"name": n} for n in inputs],
            "outputArtifacts": [{"name": n} for n in outputs],
        }

    aws.client("codepipeline").create_pipeline(
        pipeline={
            "name": name,
            "roleArn": role,
            "artifactStore": {"type": "S3", "location": aws.manifest["aws"]["s3"]["uploads_bucket"]},
            "stages": [
                {
                    "name": "Source",
                    "actions": [action("Source", "S3", {"S3Bucket": "b", "S3ObjectKey": "k"}, (), ["s"])],
                },
                {"name": "Deploy", "actions": [action("Deploy", "ECS", {"ClusterName": "shop"}, ["s"])]},
            ],
        }
    )
    return name


def deploy_bad_revision(aws) -> str:
    ecs = aws.client("ecs")
    arn = seed_ecs.register_revision(ecs, f"{seed_ecs.IMAGE}:bad-build")["taskDefinitionArn"]
    ecs.update_service(cluster=seed_ecs.CLUSTER, service=seed_ecs.SERVICE, taskDefinition=arn)
    return arn


def test_each_section_returns_what_the_sandbox_holds(aws, run_playbook):
    manifest = aws.manifest["aws"]
    # what each section should find, made here
    aws.client("guardduty").create_detector(Enable=True)
    aws.client("rds").failover_db_cluster(DBClusterIdentifier=manifest["aurora"]["cluster_id"])
    writer = next(
        m["DBInstanceIdentifier"]
        for m in aws.client("rds").describe_db_clusters(DBClusterIdentifier=manifest["aurora"]["cluster_id"])[
            "DBClusters"
        ][0]["DBClusterMembers"]
        if m["IsClusterWriter"]
    )
    bad = deploy_bad_revision(aws)
    pipeline = create_pipeline(aws)
    started = [aws.client("codepipeline").start_pipeline_execution(name=pipeline)["pipelineExecutionId"] for _ in "ab"]
    alarm = manifest["cloudwatch"]["alarm_names"]["alb_5xx"]
    aws.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx above 5%")
    instance = manifest["ec2"]["compromised_instance_id"]

    since = mark(aws)
    run, result = triage(
        run_playbook,
        since="-2h",
        cloudtrail={"principal": "ci-deployer"},
        guardduty={"resource": instance},
        rds={"cluster": manifest["aurora"]["cluster_id"]},
        ecs={"cluster": seed_ecs.CLUSTER, "service": seed_ecs.SERVICE},
        codepipeline={"pipeline": pipeline},
        **{"lambda": {"function": manifest["lambda"]["function_name"], "alias": manifest["lambda"]["alias"]["name"]}},
        alarms={"names": [alarm, "no-such-alarm"]},
    )
    assert run.returncode == 0, run.output[-3000:]
    assert result["changed"] is False and result["step_kind"] == "evidence"
    found = sections(result)
    assert list(found) == ["cloudtrail", "guardduty", "rds", "ecs", "codepipeline", "lambda", "alarms"]
    assert all(s["status"] == "ok" and s["errors"] == [] for s in found.values()), result["summary"]

    trail = found["cloudtrail"]["items"]
    assert [e["event_name"] for e in trail] == ["PutBucketPolicy", "GetSecretValue", "CreateAccessKey", "ConsoleLogin"]
    assert {e["username"] for e in trail} == {"ci-deployer"} and trail[0]["source_ip"] == "203.0.113.66"
    assert trail[0]["event"]["requestParameters"]["bucketName"] == manifest["s3"]["uploads_bucket"]

    [finding] = found["guardduty"]["items"]
    assert finding["type"] == "Backdoor:EC2/C&CActivity.B!DNS"
    assert finding["resource"]["InstanceDetails"]["InstanceId"] == instance

    messages = [e["message"] for e in found["rds"]["items"]]
    assert messages[0] == f"Completed failover to DB instance: {writer}"
    assert any(m.startswith("Started") and m.endswith(writer) for m in messages)

    ecs = found["ecs"]
    [primary] = ecs["deployments"]["items"]
    assert primary["task_definition"] == bad and primary["failed_tasks"] >= 2
    stopped = ecs["stopped_tasks"]["items"]
    assert stopped and all(t["stop_code"] == "TaskFailedToStart" for t in stopped)
    assert "CannotPullContainerError" in stopped[0]["stopped_reason"]
    assert any("has started" in e["message"] for e in ecs["items"])

    assert [e["execution_id"] for e in found["codepipeline"]["items"]] == started[::-1]

    versions = found["lambda"]["items"]
    assert [v["version"] for v in versions] == ["2", "1"]
    assert found["lambda"]["alias"]["function_version"] == "2" and versions[0]["alias_routes_here"] is True

    alarms = found["alarms"]
    assert alarms["missing"] == ["no-such-alarm"]
    assert [(a["name"], a["state"]) for a in alarms["alarms"]] == [(alarm, "ALARM")]
    update = alarms["items"][0]
    assert (update["type"], update["summary"]) == ("StateUpdate", "Alarm updated from OK to ALARM")
    assert update["data"]["newState"]["stateReason"] == "5xx above 5%"
    assert any(i["type"] == "ConfigurationUpdate" for i in alarms["items"])

    made = calls_since(aws, since)
    assert made and all(is_read(e) for e in made), [e for e in made if not is_read(e)]


def test_items_are_capped_newest_first_and_say_how_many_were_left_out(aws, run_playbook):
    pipeline = create_pipeline(aws)
    started = [aws.client("codepipeline").start_pipeline_execution(name=pipeline)["pipelineExecutionId"] for _ in "abc"]
    run, result = triage(
        run_playbook, max_items=2, cloudtrail={"principal": COMPROMISED_KEY}, codepipeline={"pipeline": pipeline}
    )
    assert run.returncode == 0, run.output[-3000:]
    found = sections(result)
    assert [e["execution_id"] for e in found["codepipeline"]["items"]] == started[::-1][:2]
    assert (found["codepipeline"]["truncated"], found["codepipeline"]["left_out"]) == (True, 1)
    trail = found["cloudtrail"]
    # the key made the CreateAccessKey call; ConsoleLogin carries no key
    assert [e["event_name"] for e in trail["items"]] == ["CreateAccessKey"] and trail["truncated"] is False


def test_a_refused_section_is_reported_while_the_others_return(aws, run_playbook):
    aws.proxy.add_rule(
        {"service": "guardduty", "method": "GET", "path": "^/detector$", "fault": "error", "status": 403,
         "code": "AccessDeniedException", "message": "not authorized to perform guardduty:ListDetectors"}
    )  # fmt: skip
    run, result = triage(
        run_playbook,
        cloudtrail={"resource": aws.manifest["aws"]["s3"]["uploads_bucket"]},
        guardduty={"resource": COMPROMISED_KEY},
    )
    assert run.returncode == 0, run.output[-3000:]
    found = sections(result)
    assert [e["event_name"] for e in found["cloudtrail"]["items"]] == ["PutBucketPolicy"]
    guard = found["guardduty"]
    assert guard["status"] == "failed" and guard["items"] == []
    [error] = guard["errors"]
    assert (error["call"], error["code"]) == ("ListDetectors", "AccessDeniedException")
    assert "guardduty: 0 item(s); ListDetectors failed" in " ".join(result["summary"])


def test_guardduty_not_enabled_is_reported_and_findings_follow_the_criterion(aws, run_playbook):
    run, result = triage(run_playbook, guardduty={"resource": COMPROMISED_KEY}, cloudtrail={"principal": "alice"})
    assert run.returncode == 0, run.output[-3000:]
    found = sections(result)
    assert found["guardduty"]["status"] == "failed" and found["guardduty"]["errors"][0]["code"] == "NoDetector"
    assert [e["event_name"] for e in found["cloudtrail"]["items"]] == ["DescribeDBClusters"]

    aws.client("guardduty").create_detector(Enable=True)
    run, result = triage(
        run_playbook,
        guardduty={"resource": COMPROMISED_KEY},
        **{"lambda": {"function": "thumbnailer"}},
    )
    assert run.returncode == 0, run.output[-3000:]
    found = sections(result)
    # the key's own findings, and the bucket finding whose actor it was (GuardDuty S3 findings carry the key)
    assert sorted(f["type"] for f in found["guardduty"]["items"]) == [
        "CredentialAccess:IAMUser/AnomalousBehavior",
        "Persistence:IAMUser/AnomalousBehavior",
        "Policy:S3/BucketAnonymousAccessGranted",
    ]
    assert found["guardduty"]["detector_id"]
    run, result = triage(
        run_playbook, guardduty={"resource": aws.manifest["aws"]["s3"]["uploads_bucket"], "resource_type": "bucket"}
    )
    assert [f["type"] for f in sections(result)["guardduty"]["items"]] == ["Policy:S3/BucketAnonymousAccessGranted"]


def test_every_section_failing_fails_the_step_naming_the_call(aws, run_playbook):
    aws.proxy.add_rule({"service": "cloudtrail", "fault": "error", "status": 403, "code": "AccessDeniedException"})
    aws.proxy.add_rule({"service": "rds", "fault": "error", "status": 403, "code": "AccessDenied"})
    run, result = triage(run_playbook, cloudtrail={"principal": "ci-deployer"}, rds={"instance": "reports-db"})
    assert run.returncode != 0
    assert result["failed"] is True and result["aws_operation"] == "LookupEvents"
    assert result["aws_error_code"] == "AccessDeniedException"
    assert "every requested section failed" in result["msg"] and "DescribeEvents" in result["msg"]
    assert [s["status"] for s in result["sections"]] == ["failed", "failed"]


def test_secrets_in_event_payloads_are_masked(aws, run_playbook):
    token = "FQoGZXIvYXdzEXAMPLEsessionTOKENvalue0123456789"
    record = {
        "eventName": "AssumeRole",
        "sourceIPAddress": "203.0.113.66",
        "requestParameters": {"roleArn": "arn:aws:iam::123456789012:role/admin", "roleSessionName": "x"},
        "responseElements": {
            "credentials": {"accessKeyId": "ASIAEXAMPLE0000001", "sessionToken": token, "expiration": "soon"}
        },
    }
    event = {
        "EventId": "e1",
        "EventName": "AssumeRole",
        "EventTime": 1.0e9,
        "Username": "ci-deployer",
        "Resources": [],
        "CloudTrailEvent": json.dumps(record),
    }
    aws.proxy.add_rule(
        {"service": "cloudtrail", "action": "LookupEvents", "fault": "canned", "body": {"Events": [event]}}
    )
    run, result = triage(run_playbook, since="2001-01-01T00:00:00Z", until="2001-03-01T00:00:00Z",
                         cloudtrail={"principal": "ci-deployer"})  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    assert token not in run.stdout
    [item] = sections(result)["cloudtrail"]["items"]
    credentials = item["event"]["responseElements"]["credentials"]
    assert credentials["sessionToken"] == "********" and credentials["accessKeyId"] == "ASIAEXAMPLE0000001"


def test_check_mode_reads_the_same_and_changes_nothing(aws, run_playbook):
    since = mark(aws)
    run, result = triage(
        run_playbook,
        check=True,
        rds={"instance": aws.manifest["aws"]["rds"]["instance_id"]},
        ecs={"cluster": seed_ecs.CLUSTER, "service": seed_ecs.SERVICE},
    )
    assert run.returncode == 0, run.output[-3000:]
    assert result["changed"] is False and result["predicted"] is True
    found = sections(result)
    assert "DB instance created" in [e["message"] for e in found["rds"]["items"]]
    assert found["ecs"]["service"]["desired_count"] == 2
    made = calls_since(aws, since)
    assert made and all(is_read(e) for e in made)


def test_bad_input_names_the_value_and_calls_nothing(aws, run_playbook):
    since = mark(aws)
    run, result = triage(run_playbook, since="yesterday-ish", cloudtrail={"principal": "ci-deployer"})
    assert run.returncode != 0 and "yesterday-ish" in result["msg"] and "Traceback" not in run.output
    run, result = triage(run_playbook, guardduty={"resource": "my-thing"})
    assert run.returncode != 0 and "'my-thing'" in result["msg"] and "resource_type" in result["msg"]
    assert calls_since(aws, since) == []
