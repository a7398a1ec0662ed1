"""aws_triage_info's logic (plugins/module_utils/aws/triage.py) without AWS: the window, the caps, the
redaction, errors per section, and bad input named by its value."""

from __future__ import annotations

import datetime
import json
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

import botocore.exceptions
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import triage as t

NOW = datetime.datetime(2026, 11, 24, 10, 0, 0, tzinfo=datetime.UTC)
START, END = NOW - datetime.timedelta(hours=2), NOW


def at(minutes_ago):
    return NOW - datetime.timedelta(minutes=minutes_ago)


class FakeClient:
    """Answers each method from ``answers`` (a list of pages, or an exception to raise); records the calls."""

    def __init__(self, **answers):
        self.answers = {k: list(v) if isinstance(v, list) else v for k, v in answers.items()}
        self.calls = []
        self.meta = type("Meta", (), {"method_to_api_mapping": {}})()

    def __getattr__(self, method):
        if method.startswith("_") or method not in self.answers:
            raise AttributeError(method)

        def call(**params):
            self.calls.append((method, params))
            answer = self.answers[method]
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, list):
                return answer.pop(0) if len(answer) > 1 else answer[0]
            return answer(**params) if callable(answer) else answer

        return call


def denied(operation, code="AccessDenied"):
    answer = {"Error": {"Code": code, "Message": "not authorized"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
    return botocore.exceptions.ClientError(answer, operation)


def run_section(name, request, client, max_items=50):
    return t.read_section(name, request, lambda service: client, 0, max_items, START, END)


# -- the window ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-2h", NOW - datetime.timedelta(hours=2)),
        ("-30m", NOW - datetime.timedelta(minutes=30)),
        ("-1d12h", NOW - datetime.timedelta(hours=36)),
        ("- 90 s", NOW - datetime.timedelta(seconds=90)),
        ("-1w", NOW - datetime.timedelta(days=7)),
        ("now", NOW),
        ("2026-11-24T09:30:00Z", datetime.datetime(2026, 11, 24, 9, 30, tzinfo=datetime.UTC)),
        ("2026-11-24T10:30:00+01:00", datetime.datetime(2026, 11, 24, 9, 30, tzinfo=datetime.UTC)),
        ("2026-11-24T09:30:00", datetime.datetime(2026, 11, 24, 9, 30, tzinfo=datetime.UTC)),
    ],
)
def test_moments_are_iso_relative_or_now(value, expected):
    assert t.parse_moment(value, "since", NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "-2x", "2h", "-h", "", "2026-13-01T00:00:00Z"])
def test_a_bad_moment_is_refused_naming_the_option_and_the_value(value):
    with pytest.raises(t.TriageInputError) as caught:
        t.parse_moment(value, "since", NOW)
    assert caught.value.message.startswith("since: ") and repr(value) in caught.value.message
    assert "-2h" in caught.value.message  # says what would do


def test_the_window_defaults_to_now_and_refuses_a_reversed_or_too_long_one():
    assert t.parse_window("-2h", None, NOW) == (START, END)
    assert t.parse_window("-3h", "-1h", NOW) == (NOW - datetime.timedelta(hours=3), NOW - datetime.timedelta(hours=1))
    with pytest.raises(t.TriageInputError, match=r"since '-1h' \(2026-11-24T09:00:00Z\) is not before until '-2h'"):
        t.parse_window("-1h", "-2h", NOW)
    with pytest.raises(t.TriageInputError, match="spans 120 days"):
        t.parse_window("-120d", None, NOW)


@pytest.mark.parametrize("value", [0, -1, 1001, "50", True, None])
def test_max_items_is_bounded(value):
    with pytest.raises(t.TriageInputError, match=f"max_items must be between 1 and 1000, got {value!r}"):
        t.check_max_items(value)


# -- caps ---------------------------------------------------------------------------------------------------------


def test_cap_keeps_the_first_items_and_counts_what_it_left_out():
    assert t.cap([1, 2, 3], 5) == {"items": [1, 2, 3], "count": 3, "truncated": False, "left_out": 0, "more": False}
    assert t.cap([1, 2, 3], 2) == {"items": [1, 2], "count": 2, "truncated": True, "left_out": 1, "more": False}
    assert t.cap([1], 2, more=True)["truncated"] is True
    assert t.cap([1, 2], 1, unfetched=4)["left_out"] == 5


def test_an_oversized_item_keeps_its_summary():
    item = {"event_name": "PutObject", "event": {"blob": "x" * 20000}}
    cut = t.bounded(item, ("event_name",))
    assert cut["event_name"] == "PutObject" and "event" not in cut and "cut to its summary" in cut["truncated"]
    assert t.bounded({"a": 1}, ("a",)) == {"a": 1}


def cloudtrail_event(name, minutes_ago, **record):
    return {
        "EventId": f"id-{name}",
        "EventName": name,
        "EventTime": at(minutes_ago),
        "Username": "ci-deployer",
        "Resources": [{"ResourceType": "AWS::S3::Bucket", "ResourceName": record.pop("bucket", "other")}],
        "CloudTrailEvent": json.dumps({"eventName": name, "sourceIPAddress": "203.0.113.66", **record}),
    }


def test_cloudtrail_pages_are_capped_newest_first_with_the_count_left_out():
    pages = [
        {"Events": [cloudtrail_event("B", 5), cloudtrail_event("A", 10)], "NextToken": "t1"},
        {"Events": [cloudtrail_event("C", 1)]},
    ]
    client = FakeClient(lookup_events=pages)
    request = t.validate_sections({"cloudtrail": {"principal": "ci-deployer"}})["cloudtrail"]
    result = run_section("cloudtrail", request, client, max_items=2)
    assert [e["event_name"] for e in result["items"]] == ["C", "B"]
    assert (result["count"], result["truncated"], result["left_out"], result["more"]) == (2, True, 1, False)
    assert client.calls[1][1]["NextToken"] == "t1" and client.calls[0][1]["StartTime"] == START
    assert client.calls[0][1]["LookupAttributes"] == [{"AttributeKey": "Username", "AttributeValue": "ci-deployer"}]


def test_a_listing_stops_after_ten_pages_and_says_there_was_more():
    page = {"Versions": [{"Version": "1", "LastModified": at(1).isoformat()}], "NextMarker": None}
    counter = iter(range(100))

    def versions(**params):
        return dict(page, NextMarker=f"m{next(counter)}")

    client = FakeClient(list_versions_by_function=versions)
    result = run_section("lambda", {"function": "f", "alias": None}, client)
    assert len(client.calls) == t.MAX_PAGES and result["more"] is True and result["truncated"] is True


# -- redaction ----------------------------------------------------------------------------------------------------


def test_secrets_in_cloudtrail_payloads_are_masked_and_names_kept():
    event = cloudtrail_event(
        "GetSessionToken",
        3,
        requestParameters={"durationSeconds": 3600},
        responseElements={
            "credentials": {"accessKeyId": "ASIAEXAMPLE0000001", "sessionToken": "tok-123456789", "expiration": "x"}
        },
        additionalEventData={"note": "password=hunter22"},
    )
    client = FakeClient(lookup_events=[{"Events": [event]}])
    request = t.validate_sections({"cloudtrail": {"principal": "ASIAEXAMPLE0000001"}})["cloudtrail"]
    [item] = run_section("cloudtrail", request, client)["items"]
    text = json.dumps(item)
    assert "tok-123456789" not in text and "hunter22" not in text
    assert item["event"]["responseElements"]["credentials"]["sessionToken"] == "********"
    assert item["event"]["responseElements"]["credentials"]["accessKeyId"] == "ASIAEXAMPLE0000001"
    assert item["event_name"] == "GetSessionToken" and item["source_ip"] == "203.0.113.66"


def test_a_finding_type_is_not_mistaken_for_a_secret():
    finding = {"Id": "f1", "Type": "CredentialAccess:IAMUser/AnomalousBehavior", "UpdatedAt": at(5).isoformat()}
    client = FakeClient(
        list_detectors=[{"DetectorIds": ["d1"]}],
        list_findings=[{"FindingIds": ["f1"]}],
        get_findings=[{"Findings": [finding]}],
    )
    request = t.validate_sections({"guardduty": {"resource": "AKIAIOSFODNN7EXAMPLE"}})["guardduty"]
    result = run_section("guardduty", request, client)
    assert result["items"][0]["type"] == "CredentialAccess:IAMUser/AnomalousBehavior"
    criterion = client.calls[1][1]["FindingCriteria"]["Criterion"]
    assert criterion["resource.accessKeyDetails.accessKeyId"] == {"Equals": ["AKIAIOSFODNN7EXAMPLE"]}
    assert criterion["service.archived"] == {"Equals": ["false"]}


# -- errors per section -------------------------------------------------------------------------------------------


def test_a_refused_call_is_the_sections_error_and_others_still_return():
    client = FakeClient(
        list_detectors=denied("ListDetectors", "AccessDeniedException"),
        describe_events=[{"Events": [{"Date": at(3), "Message": "DB instance restarted", "SourceIdentifier": "db"}]}],
    )
    requests = t.validate_sections({"guardduty": {"resource": "i-0123456789abcdef0"}, "rds": {"instance": "db"}})
    found = {s["section"]: s for s in t.gather(requests, lambda service: client, 0, 50, START, END)}
    guard = found["guardduty"]
    assert guard["status"] == "failed" and guard["items"] == []
    assert guard["errors"][0] | {"message": None} == {
        "call": "ListDetectors",
        "code": "AccessDeniedException",
        "message": None,
        "resource": "GuardDuty detectors",
        "attempts": 1,
    }
    assert found["rds"]["status"] == "ok" and [e["message"] for e in found["rds"]["items"]] == ["DB instance restarted"]


def test_no_detector_is_reported_as_guardduty_not_enabled():
    result = run_section(
        "guardduty",
        t.validate_sections({"guardduty": {"resource": "i-0123456789abcdef0"}})["guardduty"],
        FakeClient(list_detectors=[{"DetectorIds": []}]),
    )
    assert result["status"] == "failed" and result["errors"][0]["code"] == "NoDetector"
    assert "not enabled" in result["errors"][0]["message"]


def test_a_section_with_some_calls_failed_is_partial():
    alarms = {"MetricAlarms": [{"AlarmName": "a", "StateValue": "ALARM"}, {"AlarmName": "b", "StateValue": "OK"}]}

    def history(**params):
        if params["AlarmName"] == "b":
            raise denied("DescribeAlarmHistory")
        return {"AlarmHistoryItems": [{"AlarmName": "a", "Timestamp": at(2), "HistoryItemType": "StateUpdate"}]}

    client = FakeClient(describe_alarms=[alarms], describe_alarm_history=history)
    result = run_section("alarms", {"names": ["a", "b", "c"]}, client)
    assert result["status"] == "partial" and result["missing"] == ["c"]
    assert [i["alarm_name"] for i in result["items"]] == ["a"]
    assert [(e["call"], e["code"]) for e in result["errors"]] == [("DescribeAlarmHistory", "AccessDenied")]


def test_every_section_failing_names_the_first_call():
    sections = [
        {"section": "cloudtrail", "errors": [{"call": "LookupEvents", "code": "AccessDenied", "resource": "x"}]},
        {"section": "rds", "errors": [{"call": "DescribeEvents", "code": "AccessDenied", "resource": "y"}]},
    ]
    err = t.TriageFailed(sections)
    assert (
        err.fail_result()["aws_operation"] == "LookupEvents" and err.fail_result()["aws_error_code"] == "AccessDenied"
    )
    assert "cloudtrail: LookupEvents failed for x: AccessDenied" in err.message and "DescribeEvents" in err.message


def test_items_outside_the_window_are_left_out_even_when_the_api_returns_them():
    client = FakeClient(
        describe_events=[{"Events": [{"Date": at(500), "Message": "old"}, {"Date": at(1), "Message": "new"}]}]
    )
    result = run_section("rds", {"cluster": "c", "instance": None}, client)
    assert [e["message"] for e in result["items"]] == ["new"]
    assert client.calls[0][1]["SourceType"] == "db-cluster"


def test_ecs_stopped_tasks_and_deployments():
    service = {
        "serviceName": "api",
        "status": "ACTIVE",
        "desiredCount": 2,
        "events": [{"id": "e1", "createdAt": at(1), "message": "(service api) has started 2 tasks"}],
        "deployments": [{"id": "d1", "status": "PRIMARY", "failedTasks": 4, "rolloutState": "IN_PROGRESS"}],
    }
    task = {
        "taskArn": "t1",
        "stopCode": "TaskFailedToStart",
        "stoppedReason": "CannotPullContainerError: x",
        "stoppedAt": at(1),
    }
    client = FakeClient(
        describe_services=[{"services": [service]}],
        list_tasks=[{"taskArns": ["t1", "t2"]}],
        describe_tasks=[{"tasks": [task, dict(task, taskArn="t2", stoppedAt=at(600))]}],
    )
    result = run_section("ecs", {"cluster": "shop", "service": "api"}, client)
    assert [t_["task_arn"] for t_ in result["stopped_tasks"]["items"]] == ["t1"]
    assert result["deployments"]["items"][0]["failed_tasks"] == 4 and result["items"][0]["id"] == "e1"
    assert client.calls[1][1]["desiredStatus"] == "STOPPED"
    assert result["stopped_tasks"]["left_out"] == 0 and result["stopped_tasks"]["more"] is False


# -- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "no section requested: give at least one of cloudtrail"),
        ({"cloudtrail": {"principal": None, "resource": None}}, "cloudtrail needs principal"),
        ({"cloudtrail": {"principal": "arn:aws:s3:::bucket"}}, "'arn:aws:s3:::bucket': expected a user, role"),
        ({"guardduty": {"resource": "my-bucket"}}, "guardduty.resource 'my-bucket' is neither an instance id"),
        ({"guardduty": {"resource": "x", "resource_type": "table"}}, "guardduty.resource_type 'table' is not one of"),
        ({"rds": {"cluster": "a", "instance": "b"}}, "rds needs exactly one of cluster or instance"),
        ({"alarms": {"names": []}}, "alarms.names must be a non-empty list of alarm names, got []"),
        ({"ecs": {"cluster": "shop", "service": ""}}, "ecs.service is required"),
        ({"lambda": "thumbnailer"}, "lambda must be a mapping of its options, got 'thumbnailer'"),
    ],
)
def test_bad_input_names_the_value(params, message):
    with pytest.raises(t.TriageInputError) as caught:
        t.validate_sections(params)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("principal", "attribute"),
    [
        ("AKIAIOSFODNN7EXAMPLE", ("AccessKeyId", "AKIAIOSFODNN7EXAMPLE")),
        ("arn:aws:iam::123456789012:user/ops/alice", ("Username", "alice")),
        ("arn:aws:sts::123456789012:assumed-role/deployer/session-7", ("Username", "session-7")),
        ("ci-deployer", ("Username", "ci-deployer")),
    ],
)
def test_the_principal_picks_the_lookup_attribute(principal, attribute):
    [lookup], _ = t.cloudtrail_lookup(principal, None)
    assert (lookup["AttributeKey"], lookup["AttributeValue"]) == attribute


def test_a_principal_and_a_resource_look_up_the_principal_and_keep_events_naming_the_resource():
    events = [cloudtrail_event("PutBucketPolicy", 2, bucket="uploads"), cloudtrail_event("GetObject", 3)]
    client = FakeClient(lookup_events=[{"Events": events}])
    request = t.validate_sections({"cloudtrail": {"principal": "ci-deployer", "resource": "uploads"}})["cloudtrail"]
    result = run_section("cloudtrail", request, client)
    assert [e["event_name"] for e in result["items"]] == ["PutBucketPolicy"]
