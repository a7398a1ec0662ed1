"""s3_public_access_lock against the sandbox: the bucket's Block Public Access and tags read back with boto3."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.integration.containment_helpers import last_seq, step
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

MODULE = "s3_public_access_lock"
ALL_ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
ALL_OFF = dict.fromkeys(ALL_ON, False)
INCIDENT = "INC-S3-1"


def bucket(aws) -> str:
    return aws.manifest["aws"]["s3"]["uploads_bucket"]


def configuration(aws, name):
    try:
        return aws.client("s3").get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except ClientError as err:
        assert err.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
        return None


def tags(aws, name) -> dict:
    try:
        tag_set = aws.client("s3").get_bucket_tagging(Bucket=name)["TagSet"]
    except ClientError:
        return {}
    return {t["Key"]: t["Value"] for t in tag_set}


def s3_writes(aws, since: int) -> list[dict]:
    return [e for e in aws.proxy.log() if e["service"] == "s3" and e["seq"] > since and e["method"] != "GET"]


def contain(run_playbook, name, **kw):
    return step(run_playbook, MODULE, bucket=name, incident_id=INCIDENT, **kw)


def release(run_playbook, name, entries, **kw):
    return step(run_playbook, MODULE, bucket=name, state="released", incident_id=INCIDENT, containments=entries, **kw)


def test_contain_records_none_configured_then_release_restores_none(aws, run_playbook):
    name = bucket(aws)
    assert configuration(aws, name) is None
    before_tags = tags(aws, name)

    run, result = contain(run_playbook, name)
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert configuration(aws, name) == ALL_ON
    assert tags(aws, name) == {**before_tags, "firebreak:incident": INCIDENT, "firebreak:step": "s3_public_block"}
    [entry] = result["containment"]
    assert entry["incident_id"] == INCIDENT and entry["step"] == "s3_public_block"
    assert entry["resource"] == f"arn:aws:s3:::{name}"
    assert entry["changed"]["public_access_block_before"] is None
    assert entry["changed"]["turned_on"] == list(ALL_ON)
    assert result["before"]["public_access_block"] is None and result["after"]["public_access_block"] == ALL_ON

    run, again = contain(run_playbook, name)
    assert run.returncode == 0 and again["changed"] is False, run.output
    assert again["containment"] == []

    run, released = release(run_playbook, name, [entry])
    assert run.returncode == 0, run.output
    assert released["changed"] is True
    assert configuration(aws, name) is None, "none configured before: the configuration must be deleted again"
    assert tags(aws, name) == before_tags, "the seed's own tags stay, the incident's go"
    assert released["release"][0]["releases"] == [entry["id"]]
    assert released["release"][0]["left_alone"] == {}

    run, again = release(run_playbook, name, [entry])
    assert run.returncode == 0 and again["changed"] is False, run.output


def test_release_leaves_a_setting_changed_meanwhile_and_restores_a_partial_previous_config(aws, run_playbook):
    name = bucket(aws)
    s3 = aws.client("s3")
    previous = dict(ALL_OFF, BlockPublicAcls=True)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=previous)

    run, result = contain(run_playbook, name)
    assert run.returncode == 0, run.output
    [entry] = result["containment"]
    assert entry["changed"]["public_access_block_before"] == previous
    assert entry["changed"]["turned_on"] == ["IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"]

    # Someone turns BlockPublicPolicy off by hand meanwhile, and adds a tag of their own.
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict(ALL_ON, BlockPublicPolicy=False))
    s3.put_bucket_tagging(
        Bucket=name,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in {**tags(aws, name), "owner": "bob"}.items()]},
    )

    run, released = release(run_playbook, name, [entry])
    assert run.returncode == 0, run.output
    assert configuration(aws, name) == previous, "BlockPublicAcls was on before the incident: it stays on"
    assert "BlockPublicPolicy" in released["release"][0]["left_alone"]
    assert released["release"][0]["restored"]["turned_off"] == ["IgnorePublicAcls", "RestrictPublicBuckets"]
    assert tags(aws, name)["owner"] == "bob"
    assert "firebreak:incident" not in tags(aws, name)


def test_check_mode_changes_nothing(aws, run_playbook):
    name = bucket(aws)
    seq = last_seq(aws)
    run, result = contain(run_playbook, name, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would turn on" in result["msg"]
    assert result["diff"]["after"]["public_access_block"] == ALL_ON
    assert configuration(aws, name) is None
    assert "firebreak:incident" not in tags(aws, name)
    assert s3_writes(aws, seq) == []


def test_release_in_check_mode_changes_nothing(aws, run_playbook):
    name = bucket(aws)
    _run, result = contain(run_playbook, name)
    seq = last_seq(aws)
    run, released = release(run_playbook, name, result["containment"], check=True)
    assert run.returncode == 0 and released["changed"] is True, run.output
    assert configuration(aws, name) == ALL_ON
    assert s3_writes(aws, seq) == []


@first_case_in_make_test
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"bucket": "no-such-bucket-firebreak"}, "S3 bucket 'no-such-bucket-firebreak' does not exist"),
        ({"bucket": "Bad_Bucket"}, "invalid S3 bucket name 'Bad_Bucket'"),
        ({"bucket": "firebreak-sandbox-uploads", "incident_id": ""}, "incident_id is required"),
    ],
    ids=["unknown-bucket", "invalid-name", "no-incident"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, args, expected):
    seq = last_seq(aws)
    full = {"incident_id": INCIDENT, **args}
    if full["incident_id"] is None:
        del full["incident_id"]
    run, result = step(run_playbook, MODULE, **full)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result["changed"] is False
    assert configuration(aws, bucket(aws)) is None
    assert s3_writes(aws, seq) == []


@pytest.mark.proof
def test_permanent_5xx_fails_within_budget_naming_call_and_code(aws, run_playbook):
    aws.proxy.add_rule({"service": "s3", "method": "PUT", "fault": "error", "status": 500})
    started = time.monotonic()
    run, result = contain(run_playbook, bucket(aws), retry_budget=3)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert "PutPublicAccessBlock" in result["msg"] and "InternalError" in result["msg"], result["msg"]
    assert result["aws_operation"] == "PutPublicAccessBlock"


def test_release_of_a_deleted_bucket_reports_it_gone(aws, run_playbook):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="firebreak-doomed-bucket")
    run, result = contain(run_playbook, "firebreak-doomed-bucket")
    assert run.returncode == 0, run.output
    s3.delete_bucket(Bucket="firebreak-doomed-bucket")
    run, released = release(run_playbook, "firebreak-doomed-bucket", result["containment"])
    assert run.returncode == 0, run.output
    assert released["gone"] == ["firebreak-doomed-bucket"] and released["changed"] is False
    assert released["release"][0]["gone"] is True
    assert released["release"][0]["releases"] == [result["containment"][0]["id"]]
