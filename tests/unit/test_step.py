"""plugins/module_utils/runtime/step.py: bounded retries, times, containment entries (no AWS)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import boto3
import botocore.exceptions
import botocore.utils
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step  # noqa: E402

from tests.unit.fakes import Clock  # noqa: E402


def _client_error(code, status, op="UpdateService"):
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": f"{code} happened"}, "ResponseMetadata": {"HTTPStatusCode": status}}, op
    )


class FakeClient:
    """Raises the queued errors in turn, then answers."""

    class meta:
        method_to_api_mapping = {"update_service": "UpdateService"}

    def __init__(self, errors, answer=None):
        self.errors = list(errors)
        self.answer = answer or {"ok": True}
        self.calls = 0

    def update_service(self, **params):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


def _caller(budget=60, **kwargs):
    clock = Clock()
    return step.Caller(budget, sleep=clock.sleep, clock=clock, **kwargs), clock


def test_throttling_and_transient_errors_are_retried_until_they_clear():
    client = FakeClient([_client_error("ThrottlingException", 400), _client_error("ServiceUnavailable", 503)])
    caller, clock = _caller()
    assert caller(client, "update_service", "service 'shop-api'", cluster="c") == {"ok": True}
    assert client.calls == 3 and len(clock.sleeps) == 2


def test_a_permanent_5xx_fails_within_the_budget_naming_call_code_and_resource():
    client = FakeClient([_client_error("InternalFailure", 500)] * 1000)
    caller, clock = _caller(budget=60)
    with pytest.raises(step.StepAWSError) as err:
        caller(client, "update_service", "service 'shop-api' (target shop-api:3)")
    assert clock.now < 60
    text = str(err.value)
    assert text.startswith("UpdateService failed for service 'shop-api' (target shop-api:3): InternalFailure")
    assert "gave up after" in text
    assert err.value.result()["aws_error_code"] == "InternalFailure"
    assert client.calls > 3  # it did retry


def test_an_error_that_retrying_cannot_fix_fails_at_once():
    client = FakeClient([_client_error("AccessDeniedException", 400)])
    caller, clock = _caller()
    with pytest.raises(step.StepAWSError, match=r"UpdateService failed for x: AccessDeniedException"):
        caller(client, "update_service", "x")
    assert client.calls == 1 and clock.sleeps == []


def test_extra_retry_codes_per_call():
    client = FakeClient([_client_error("WAFOptimisticLockException", 400)])
    caller, _clock = _caller()
    assert caller(client, "update_service", "ip set", retry_codes=("WAFOptimisticLockException",)) == {"ok": True}


def test_an_unimplemented_call_is_not_retried():
    client = FakeClient([_client_error("NotImplemented", 501)])
    caller, _clock = _caller()
    with pytest.raises(step.StepAWSError, match="NotImplemented"):
        caller(client, "update_service")
    assert client.calls == 1


def test_connection_errors_are_retried_then_fail_naming_the_call():
    error = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    client = FakeClient([error] * 1000)
    caller, clock = _caller(budget=5)
    with pytest.raises(step.StepAWSError, match=r"UpdateService failed: connection error"):
        caller(client, "update_service")
    assert clock.now < 5


def test_a_request_botocore_refuses_to_send_is_not_called_a_connection_error():
    error = botocore.exceptions.ParamValidationError(report='Invalid bucket name "s3://shop": Bucket name must match')
    client = FakeClient([error])
    caller, _clock = _caller()
    with pytest.raises(step.StepAWSError) as err:
        caller(client, "update_service", "bucket 's3://shop'")
    assert "connection error" not in str(err.value)
    assert str(err.value).startswith("UpdateService failed for bucket 's3://shop': not sent: ParamValidationError: ")
    assert 'Invalid bucket name "s3://shop"' in str(err.value)
    assert client.calls == 1


def test_budget_zero_makes_one_attempt():
    client = FakeClient([_client_error("ThrottlingException", 400)] * 3)
    caller, _clock = _caller(budget=0)
    with pytest.raises(step.StepAWSError):
        caller(client, "update_service")
    assert client.calls == 1


def test_backoff_is_bounded_and_jittered():
    assert step.backoff_delay(0, rng=lambda: 1.0) == step.BASE_DELAY
    assert step.backoff_delay(20, rng=lambda: 1.0) == step.MAX_DELAY
    assert step.backoff_delay(3, rng=lambda: 0.0) == step.BASE_DELAY / 2


def test_paginate_multi_follows_every_token():
    pages = [
        {"IsTruncated": True, "NextKeyMarker": "k1", "NextVersionIdMarker": "v1", "Versions": [1]},
        {"IsTruncated": True, "NextKeyMarker": "k2", "Versions": [2]},
        {"IsTruncated": False, "Versions": [3]},
    ]
    seen = []

    class Lister:
        class meta:
            method_to_api_mapping = {}

        def list_object_versions(self, **params):
            seen.append(params)
            return pages[len(seen) - 1]

    caller, _clock = _caller()
    got = list(
        caller.paginate_multi(
            Lister(),
            "list_object_versions",
            "bucket",
            {"KeyMarker": "NextKeyMarker", "VersionIdMarker": "NextVersionIdMarker"},
            Bucket="b",
        )
    )
    assert [p["Versions"] for p in got] == [[1], [2], [3]]
    assert seen[1] == {"Bucket": "b", "KeyMarker": "k1", "VersionIdMarker": "v1"}
    assert seen[2] == {"Bucket": "b", "KeyMarker": "k2"}  # a token the page does not give is dropped


class _Pages:
    """A lister answering ``pages`` in turn (the last one for ever)."""

    class meta:
        method_to_api_mapping = {"list_object_versions": "ListObjectVersions", "list_things": "ListThings"}

    def __init__(self, pages):
        self.pages, self.sent = pages, []

    def _answer(self, **params):
        self.sent.append(params)
        return self.pages[min(len(self.sent), len(self.pages)) - 1]

    list_object_versions = list_things = _answer


@pytest.mark.parametrize(
    "pages",
    [
        # truncated, but no marker: the next request would be the first page again
        [{"IsTruncated": True, "Versions": [1]}],
        # markers that do not move
        [{"IsTruncated": True, "NextKeyMarker": "k1", "NextVersionIdMarker": "v1", "Versions": [1]}],
        # markers that come round again
        [
            {"IsTruncated": True, "NextKeyMarker": "k1", "Versions": [1]},
            {"IsTruncated": True, "NextKeyMarker": "k2", "Versions": [2]},
            {"IsTruncated": True, "NextKeyMarker": "k1", "Versions": [1]},
        ],
    ],
)
def test_a_listing_that_does_not_advance_fails_instead_of_listing_for_ever(pages):
    lister = _Pages(pages)
    caller, _clock = _caller()
    tokens = {"KeyMarker": "NextKeyMarker", "VersionIdMarker": "NextVersionIdMarker"}
    with pytest.raises(step.StepAWSError) as err:
        for _ in caller.paginate_multi(lister, "list_object_versions", "bucket shop-data", tokens, Bucket="b"):
            assert len(lister.sent) < 10, "still listing"
    assert str(err.value).startswith("ListObjectVersions failed for bucket shop-data: ListingDidNotAdvance: ")
    assert len(lister.sent) <= 3


def test_a_next_token_that_repeats_fails_instead_of_listing_for_ever():
    lister = _Pages([{"NextToken": "a"}, {"NextToken": "b"}, {"NextToken": "b"}])
    caller, _clock = _caller()
    with pytest.raises(step.StepAWSError, match=r"ListThings failed for things: ListingDidNotAdvance: .*NextToken"):
        for _ in caller.paginate(lister, "list_things", "things"):
            assert len(lister.sent) < 10, "still listing"
    assert [p.get("NextToken") for p in lister.sent] == [None, "a", "b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T09:30:00Z", "2026-11-24T09:30:00Z"),
        ("2026-11-24T10:30:00+01:00", "2026-11-24T09:30:00Z"),
        ("2026-11-24T09:30:00", "2026-11-24T09:30:00Z"),
        ("2026-11-24 09:30:00.250", "2026-11-24T09:30:00.250Z"),
        ("1795512600", "2026-11-24T09:30:00Z"),
    ],
)
def test_parse_time(text, expected):
    assert step.iso_utc(step.parse_time(text)) == expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2026-13-01T00:00:00Z", None])
def test_parse_time_names_the_bad_value(bad):
    with pytest.raises(ValueError, match="time"):
        step.parse_time(bad)


def test_containment_entry_has_a_stable_id_and_the_incident():
    entry = step.containment_entry("INC-1", "waf_block", "arn:ipset", {"added": ["192.0.2.1/32"]})
    assert entry["incident_id"] == "INC-1" and entry["step"] == "waf_block" and len(entry["id"]) == 16
    datetime.datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
    release = step.release_entry("INC-1", "waf_block", "arn:ipset", [entry["id"]], {"removed": ["192.0.2.1/32"]})
    assert release["releases"] == [entry["id"]] and release["left_alone"] == {}
    assert step.incident_tags("INC-1", "waf_block") == {"firebreak:incident": "INC-1", "firebreak:step": "waf_block"}
    assert step.incident_tags(None) == {}


def test_no_retry_starts_that_would_end_after_the_budget():
    """Slow failing attempts (10 s each, as a hung 5xx): the caller stops while the next would still fit."""
    clock = Clock()

    class Slow(FakeClient):
        def update_service(self, **params):
            clock.now += 10.0
            return super().update_service(**params)

    client = Slow([_client_error("InternalFailure", 500)] * 100)
    caller = step.Caller(60, sleep=clock.sleep, clock=clock)
    with pytest.raises(step.StepAWSError):
        caller(client, "update_service")
    assert clock.now <= 60.0


@pytest.mark.parametrize(("pool", "connections"), [(None, 10), (1, 10), (8, 10), (16, 18), (64, 66)])
def test_a_client_shared_by_threads_has_a_connection_for_each(pool, connections):
    config = step.client_config(60, pool=pool)
    assert config.max_pool_connections == connections
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-24T09:30:00.000Z",
        "2026-11-24T09:30:00Z",
        "2026-11-24T09:30:00.123456Z",
        "2026-11-24T09:30:00.5Z",
        "2026-11-24T09:30:00.123456789Z",
        "2024-02-29T23:59:59.999Z",
        "Tue, 24 Nov 2026 09:30:00 GMT",
        "Thu, 29 Feb 2024 23:59:59 GMT",
        "2026-11-24T09:30:00+02:00",
        "2026-11-24T09:30:00",
        "2026-11-24 09:30:00Z",
        1795556916,
        1795556916.25,
        "1795556916",
    ],
)
def test_fast_timestamp_gives_what_botocore_gives(value):
    ours, theirs = step.fast_timestamp(value), botocore.utils.parse_timestamp(value)
    assert ours == theirs and type(ours) is type(theirs)
    assert ours.tzinfo == theirs.tzinfo and ours.isoformat() == theirs.isoformat()


@pytest.mark.parametrize("value", ["2026-02-30T09:30:00.000Z", "2026-13-01T00:00:00Z", "not a time", ""])
def test_fast_timestamp_refuses_what_botocore_refuses(value):
    with pytest.raises(ValueError):
        botocore.utils.parse_timestamp(value)
    with pytest.raises(ValueError):
        step.fast_timestamp(value)


def test_a_step_client_parses_response_timestamps_with_the_fast_path():
    credentials = {"aws_access_key_id": "x", "aws_secret_access_key": "y"}
    client = step.fast_timestamps(boto3.client("s3", region_name="us-east-1", **credentials))
    parser = client._endpoint._response_parser_factory.create_parser("rest-xml")
    assert parser._timestamp_parser is step.fast_timestamp
    assert step.fast_timestamps(object()) is not None  # a client without the hook is left alone


# -- aws_client: one boto3 session per profile for all of a module's clients -----------------------------


def _aws_module(monkeypatch, **params):
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule.__new__(AnsibleAWSModule)  # no argument parsing: only what aws_client reads
    defaults = {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9", "access_key": "AKIDEXAMPLE",
                "secret_key": "secret", "session_token": None, "profile": None, "validate_certs": True,
                "aws_ca_bundle": None, "aws_config": None, "retry_budget": 60}  # fmt: skip
    module._module = type("M", (), {"params": {**defaults, **params}, "_name": "test_step"})()
    monkeypatch.setattr(step, "_SESSIONS", {})
    return module


def test_aws_client_shares_one_session_between_services_and_keeps_retries_off(monkeypatch):
    made = []
    real = boto3.session.Session

    def counting(*args, **kwargs):
        made.append(kwargs.get("profile_name"))
        return real(*args, **kwargs)

    monkeypatch.setattr(boto3.session, "Session", counting)
    module = _aws_module(monkeypatch)
    ecs = step.aws_client(module, "ecs")
    elbv2 = step.aws_client(module, "elbv2", pool=32)
    assert made == [None], "each client made its own session"
    assert ecs.meta.region_name == "us-east-1" and ecs.meta.endpoint_url == "http://127.0.0.1:9"
    assert ecs.meta.config.retries["total_max_attempts"] == 1
    assert elbv2.meta.config.max_pool_connections == 34
    assert "firebreak.runbooks" in ecs.meta.config.user_agent or "APN/1.0 Ansible/" in ecs.meta.config.user_agent
    assert ecs._request_signer._credentials.access_key == "AKIDEXAMPLE"


def test_aws_client_lets_the_aws_config_option_override(monkeypatch):
    module = _aws_module(monkeypatch, aws_config={"max_pool_connections": 3, "connect_timeout": 4})
    client = step.aws_client(module, "s3", pool=32)
    assert client.meta.config.max_pool_connections == 3 and client.meta.config.connect_timeout == 4
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_aws_client_names_an_unknown_profile(monkeypatch):
    module = _aws_module(monkeypatch, profile="no-such-profile", access_key=None, secret_key=None)
    failures = []

    def fail_json_aws(exc, msg):
        failures.append(f"{msg}: {exc}")
        raise SystemExit(1)

    module.fail_json_aws = fail_json_aws
    with pytest.raises(SystemExit):
        step.aws_client(module, "ecs")
    assert "no-such-profile" in failures[0]


def test_aws_client_without_a_region_fails_saying_so(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    module = _aws_module(monkeypatch, region=None)
    module._name = "ecs_service_scale"
    failures = []

    def fail_json(msg):
        failures.append(msg)
        raise SystemExit(1)

    module.fail_json = fail_json
    with pytest.raises(SystemExit):
        step.aws_client(module, "ecs")
    assert failures == [
        "The ecs_service_scale module requires a region and none was found in configuration, "
        "environment variables or module parameters"
    ]


def test_a_mapping_for_a_list_option_is_named_with_its_value_unless_no_log():
    spec = {
        "cidrs": {"type": "list", "elements": "str", "aliases": ["addresses"]},
        "tokens": {"type": "list", "no_log": True},
        "name": {"type": "str"},
    }
    assert step.mapping_for_list_problems(spec, {"cidrs": ["192.0.2.1"], "name": {"x": 1}}) == []
    (problem,) = step.mapping_for_list_problems(spec, {"addresses": {"192.0.2.1": "attacker"}})
    assert problem == (
        'addresses: expected a list, got the mapping {"192.0.2.1": "attacker"}; write each item on its own \'- \' line'
    )
    (hidden,) = step.mapping_for_list_problems(spec, {"tokens": {"secret": "hunter2"}})
    assert "hunter2" not in hidden and "(value hidden: no_log)" in hidden
