"""s3_write_freeze against the sandbox: the bucket policy read back with boto3, and writes tried.

moto 5.2.5 evaluates a bucket policy's Deny on object writes (PutObject, DeleteObject) but with no principal in
the request context: a condition on ``aws:PrincipalArn`` never sees a value, so the freeze denies every
principal there, the exempt caller included.  So these tests check that a write is denied while the freeze is
on and allowed again after the release, and assert the stored policy exactly (the Condition with the exempt
ARNs); that the exemption matches a role's sessions is checked in tests/unit/test_s3_write_freeze.py.
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.integration.containment_helpers import last_seq, step
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

MODULE = "s3_write_freeze"
INCIDENT = "INC-WF-1"
RESPONDER = "arn:aws:iam::123456789012:role/IncidentResponder"
OTHERS = {
    "Version": "2012-10-17",
    "Id": "uploads-policy",
    "Statement": [
        {
            "Sid": "ReadForCdn",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/cdn"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::firebreak-sandbox-uploads/*",
        },
        {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::firebreak-sandbox-uploads/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}


def bucket(aws) -> str:
    return aws.manifest["aws"]["s3"]["uploads_bucket"]


def policy(aws, name):
    try:
        return json.loads(aws.client("s3").get_bucket_policy(Bucket=name)["Policy"])
    except ClientError as err:
        assert err.response["Error"]["Code"] == "NoSuchBucketPolicy"
        return None


def caller(aws) -> str:
    return aws.client("sts").get_caller_identity()["Arn"]


def write_denied(aws, name) -> bool:
    try:
        aws.client("s3").put_object(Bucket=name, Key="probe/write.txt", Body=b"x")
    except ClientError as err:
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403, err.response
        return True
    aws.client("s3").delete_object(Bucket=name, Key="probe/write.txt")
    return False


def s3_writes(aws, since: int) -> list[dict]:
    return [e for e in aws.proxy.log() if e["service"] == "s3" and e["seq"] > since and e["method"] != "GET"]


def freeze(run_playbook, name, incident=INCIDENT, **kw):
    return step(run_playbook, MODULE, bucket=name, incident_id=incident, exempt_principal_arns=[RESPONDER], **kw)


def release(run_playbook, name, entries, incident=INCIDENT, **kw):
    return step(run_playbook, MODULE, bucket=name, state="released", incident_id=incident, containments=entries, **kw)


def expected_statement(aws, name, sid):
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": [
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:ReplicateObject",
            "s3:ReplicateDelete",
            "s3:PutLifecycleConfiguration",
            "s3:PutBucketVersioning",
            "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy",
        ],
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": [caller(aws), RESPONDER]}},
    }


def test_freeze_denies_writes_and_release_deletes_the_policy_it_created(aws, run_playbook, tmp_path):
    name = bucket(aws)
    assert policy(aws, name) is None and not write_denied(aws, name)
    aws.client("s3").put_object(Bucket=name, Key="kept/read.txt", Body=b"r")
    env = {"FIREBREAK_CLAIMS_DIR": str(tmp_path / "claims")}

    run, result = freeze(run_playbook, name, env=env)
    assert run.returncode == 0, run.output
    sid = result["sid"]
    assert sid.startswith("FirebreakWriteFreezeINCWF1")
    assert policy(aws, name) == {"Version": "2012-10-17", "Statement": [expected_statement(aws, name, sid)]}
    assert write_denied(aws, name), "a PutObject must be denied while the bucket is frozen"
    assert aws.client("s3").get_object(Bucket=name, Key="kept/read.txt")["Body"].read() == b"r", "reads go on"
    assert result["policy_before"] is None and result["before"]["policy"] is None
    assert result["after"]["frozen_by"] == [sid]
    [entry] = result["containment"]
    assert entry["step"] == "s3_write_freeze" and entry["resource"] == f"arn:aws:s3:::{name}"
    assert entry["changed"]["policy_before"] is None and entry["claimed"] == ["freeze"]
    assert (tmp_path / "claims").exists(), "the claim is recorded before the freeze"

    run, again = freeze(run_playbook, name, env=env)
    assert run.returncode == 0 and again["changed"] is False, run.output
    assert again["containment"] == []

    run, released = release(run_playbook, name, [entry], env=env)
    assert run.returncode == 0, run.output
    assert released["changed"] is True and released["release"][0]["restored"]["policy_deleted"] is True
    assert policy(aws, name) is None, "there was no policy before: it is deleted again"
    assert not write_denied(aws, name)

    run, again = release(run_playbook, name, [entry], env=env)
    assert run.returncode == 0 and again["changed"] is False, run.output


def test_a_policy_with_statements_is_kept_equal_through_freeze_and_release(aws, run_playbook):
    name = bucket(aws)
    aws.client("s3").put_bucket_policy(Bucket=name, Policy=json.dumps(OTHERS))
    run, result = freeze(run_playbook, name)
    assert run.returncode == 0, run.output
    assert json.loads(result["policy_before"]) == OTHERS, "the evidence: the policy before, as S3 answered it"
    frozen = policy(aws, name)
    assert frozen["Statement"][:2] == OTHERS["Statement"] and frozen["Id"] == OTHERS["Id"]
    assert frozen["Statement"][2] == expected_statement(aws, name, result["sid"])

    run, released = release(run_playbook, name, result["containment"])
    assert run.returncode == 0, run.output
    assert policy(aws, name) == OTHERS
    assert released["release"][0]["restored"] == {"removed_statement": result["sid"], "policy_deleted": False}


def test_a_statement_added_meanwhile_is_kept_and_a_single_statement_object_given_back(aws, run_playbook):
    name = bucket(aws)
    single = {"Version": "2012-10-17", "Statement": OTHERS["Statement"][0]}
    aws.client("s3").put_bucket_policy(Bucket=name, Policy=json.dumps(single))
    _run, result = freeze(run_playbook, name)
    run, _released = release(run_playbook, name, result["containment"])
    assert run.returncode == 0, run.output
    assert policy(aws, name) == single, "one statement as an object before: the same JSON after"

    _run, result = freeze(run_playbook, name)
    meanwhile = policy(aws, name)
    meanwhile["Statement"].append(OTHERS["Statement"][1])
    aws.client("s3").put_bucket_policy(Bucket=name, Policy=json.dumps(meanwhile))
    run, _released = release(run_playbook, name, result["containment"])
    assert run.returncode == 0, run.output
    assert policy(aws, name) == {"Version": "2012-10-17", "Statement": OTHERS["Statement"]}


def test_two_incidents_freezing_one_bucket_the_first_release_keeps_the_freeze(aws, run_playbook, tmp_path):
    name = bucket(aws)
    env = {"FIREBREAK_CLAIMS_DIR": str(tmp_path / "claims")}
    _run, first = freeze(run_playbook, name, incident="INC-A", env=env)
    _run, second = freeze(run_playbook, name, incident="INC-B", env=env)
    assert policy(aws, name)["Statement"] == [
        expected_statement(aws, name, first["sid"]),
        expected_statement(aws, name, second["sid"]),
    ]
    run, released = release(run_playbook, name, first["containment"], incident="INC-A", env=env)
    assert run.returncode == 0, run.output
    assert released["kept"] == {"freeze": ["INC-B"]}
    assert "stays frozen for INC-B" in released["msg"]
    assert policy(aws, name)["Statement"] == [expected_statement(aws, name, second["sid"])]
    assert write_denied(aws, name), "INC-B still freezes the bucket"

    run, released = release(run_playbook, name, second["containment"], incident="INC-B", env=env)
    assert run.returncode == 0 and released["kept"] == {}, run.output
    assert policy(aws, name) is None and not write_denied(aws, name)
    assert not [p for p in (tmp_path / "claims").rglob("*") if p.is_file()], "the claims and markers are settled"


def test_check_mode_changes_nothing(aws, run_playbook):
    name = bucket(aws)
    aws.client("s3").put_bucket_policy(Bucket=name, Policy=json.dumps(OTHERS))
    seq = last_seq(aws)
    run, result = freeze(run_playbook, name, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would add" in result["msg"]
    assert result["diff"]["after"]["policy"]["Statement"][2]["Sid"] == result["sid"]
    assert policy(aws, name) == OTHERS
    assert s3_writes(aws, seq) == []

    _run, frozen = freeze(run_playbook, name)
    seq = last_seq(aws)
    run, released = release(run_playbook, name, frozen["containment"], check=True)
    assert run.returncode == 0 and released["changed"] is True, run.output
    assert policy(aws, name)["Statement"][2]["Sid"] == frozen["sid"]
    assert s3_writes(aws, seq) == []


@first_case_in_make_test
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"bucket": "no-such-bucket-firebreak"}, "S3 bucket 'no-such-bucket-firebreak' does not exist"),
        ({"bucket": "Bad_Bucket"}, "invalid S3 bucket name 'Bad_Bucket'"),
        ({"exempt_principal_arns": ["*"]}, "invalid exempt principal '*'"),
        ({"exempt_principal_arns": ["IncidentResponder"]}, "invalid exempt principal 'IncidentResponder'"),
        ({"incident_id": ""}, "incident_id is required"),
    ],
    ids=["unknown-bucket", "invalid-name", "star", "not-an-arn", "no-incident"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, args, expected):
    seq = last_seq(aws)
    full = {"bucket": bucket(aws), "incident_id": INCIDENT, **args}
    run, result = step(run_playbook, MODULE, **full)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result["changed"] is False and "Traceback" not in run.output
    assert policy(aws, bucket(aws)) is None
    assert s3_writes(aws, seq) == []


@pytest.mark.proof
def test_permanent_5xx_fails_within_budget_naming_call_and_code(aws, run_playbook):
    aws.proxy.add_rule({"service": "s3", "method": "PUT", "fault": "error", "status": 500})
    started = time.monotonic()
    run, result = freeze(run_playbook, bucket(aws), retry_budget=3)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert result["aws_operation"] == "PutBucketPolicy" and "InternalError" in result["msg"], result["msg"]


def test_release_of_a_deleted_bucket_reports_it_gone(aws, run_playbook):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="firebreak-doomed-bucket")
    run, result = freeze(run_playbook, "firebreak-doomed-bucket")
    assert run.returncode == 0, run.output
    s3.delete_bucket_policy(Bucket="firebreak-doomed-bucket")
    s3.delete_bucket(Bucket="firebreak-doomed-bucket")
    run, released = release(run_playbook, "firebreak-doomed-bucket", result["containment"])
    assert run.returncode == 0, run.output
    assert released["gone"] == ["firebreak-doomed-bucket"] and released["changed"] is False
    assert released["release"][0]["gone"] is True
