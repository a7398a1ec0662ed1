"""The fault proxy in front of a stub upstream: forwarding, matching, faults, control API, log.

Error bodies are checked the way runbooks meet them: parsed by real botocore clients.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.fault_proxy import MAX_LATENCY, FaultProxy

AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0123456789abcdef"
)


class StubUpstream:
    """A tiny upstream that records every request and answers 200 in a plausible shape."""

    def __init__(self):
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
                if self.headers.get("X-Amz-Target"):
                    payload, ctype = b"{}", "application/x-amz-json-1.1"
                elif b"Action=" in body or "Action=" in self.path:
                    action = (body.decode() + "&" + self.path).split("Action=", 1)[1].split("&", 1)[0]
                    payload = f"<{action}Response><{action}Result/></{action}Response>".encode()
                    ctype = "text/xml"
                else:
                    payload = json.dumps({"echo": self.path, "length": len(body)}).encode()
                    ctype = "application/json"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("X-Upstream", "stub")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def upstream():
    stub = StubUpstream()
    yield stub
    stub.stop()


@pytest.fixture(scope="module")
def _proxy(upstream):
    proxy = FaultProxy(upstream.url)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(_proxy, upstream):
    _proxy.reset()
    _proxy.clear_log()
    upstream.requests.clear()
    return _proxy


def client(proxy, service, attempts=1):
    return boto3.client(
        service,
        endpoint_url=proxy.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def raw(proxy, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def control(proxy, method, path, data=None):
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(f"{proxy.url}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- forwarding ---------------------------------------------------------------------------------
def test_forwards_method_path_headers_and_body_and_relays_the_answer(proxy, upstream):
    headers = {
        "Authorization": AUTH.format(service="lambda"),
        "X-Amz-Date": "20250101T000000Z",
        "X-Amz-Security-Token": "token",
        "Content-Type": "application/json",
    }
    status, response_headers, body = raw(
        proxy, "PUT", "/2015-03-31/functions/thumbnailer/code?Qualifier=live", b'{"a": 1}', headers
    )
    assert status == 200
    assert response_headers["X-Upstream"] == "stub"
    assert json.loads(body) == {"echo": "/2015-03-31/functions/thumbnailer/code?Qualifier=live", "length": 8}
    seen = upstream.requests[-1]
    assert seen["method"] == "PUT"
    assert seen["path"] == "/2015-03-31/functions/thumbnailer/code?Qualifier=live"
    assert seen["body"] == b'{"a": 1}'
    for key, value in headers.items():
        assert seen["headers"][key] == value


def test_keep_alive_connection_serves_several_requests(proxy, upstream):
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    try:
        for index in range(3):
            conn.request("GET", f"/item/{index}")
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["echo"] == f"/item/{index}"
    finally:
        conn.close()
    assert [r["path"] for r in upstream.requests] == ["/item/0", "/item/1", "/item/2"]


def test_absolute_form_target_still_goes_to_the_upstream(proxy, upstream):
    status, _, body = raw(proxy, "GET", "http://example.invalid/elsewhere?x=1")
    assert status == 200
    assert json.loads(body)["echo"] == "/elsewhere?x=1"
    assert upstream.requests[-1]["path"] == "/elsewhere?x=1"


def test_large_body_round_trips(proxy, upstream):
    payload = b"x" * 3_000_000
    status, _, body = raw(proxy, "PUT", "/bucket/key", payload, {"Authorization": AUTH.format(service="s3")})
    assert status == 200
    assert json.loads(body)["length"] == len(payload)
    assert upstream.requests[-1]["body"] == payload


def test_upstream_down_answers_502(upstream):
    dead = FaultProxy("http://127.0.0.1:9")  # discard port: nothing listens there
    dead.start()
    try:
        status, _, _ = raw(dead, "GET", "/")
        assert status == 502
        assert dead.log()[-1]["status"] == 502
    finally:
        dead.stop()


# -- identification -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "headers", "body", "expected"),
    [
        (
            "/",
            {"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DescribeServices", "svc": "ecs"},
            b"{}",
            ("ecs", "DescribeServices", "json"),
        ),
        (
            "/",
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "svc": "rds"},
            b"Action=DescribeDBClusters&Version=2014-10-31",
            ("rds", "DescribeDBClusters", "query"),
        ),
        ("/?Action=DescribeInstances&Version=2016-11-15", {"svc": "ec2"}, b"", ("ec2", "DescribeInstances", "ec2")),
        (
            "/service/GraniteServiceVersion20100801/operation/DescribeAlarms",
            {"smithy-protocol": "rpc-v2-cbor", "svc": "monitoring"},
            b"\xa0",
            ("monitoring", "DescribeAlarms", "cbor"),
        ),
        ("/bucket/key?versionId=1", {"svc": "s3"}, b"", ("s3", "", "s3")),
        ("/2015-03-31/functions", {"svc": "lambda"}, b"", ("lambda", "", "rest-json")),
    ],
)
def test_identifies_service_action_and_protocol(proxy, path, headers, body, expected):
    headers = dict(headers)
    headers["Authorization"] = AUTH.format(service=headers.pop("svc"))
    raw(proxy, "POST", path, body, headers)
    entry = proxy.log()[-1]
    assert (entry["service"], entry["action"], entry["protocol"]) == expected


# -- matching, counts, order --------------------------------------------------------------------
def test_rule_matches_service_and_action_only(proxy, upstream):
    proxy.add_rule({"service": "ecs", "action": "DescribeServices", "fault": "throttle"})
    ecs = client(proxy, "ecs")
    with pytest.raises(ClientError) as caught:
        ecs.describe_services(cluster="shop", services=["shop-api"])
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    ecs.list_clusters()  # other action: forwarded
    client(proxy, "stepfunctions").list_state_machines()  # other service: forwarded
    assert [r["headers"]["X-Amz-Target"].rsplit(".", 1)[1] for r in upstream.requests] == [
        "ListClusters",
        "ListStateMachines",
    ]


def test_rule_matches_method_and_path_regex_for_rest_protocols(proxy, upstream):
    proxy.add_rule({"service": "s3", "method": "PUT", "path": r"^/firebreak-sandbox-uploads/", "fault": "error"})
    s3 = client(proxy, "s3")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="firebreak-sandbox-uploads", Key="a.txt", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "InternalError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    raw(proxy, "GET", "/firebreak-sandbox-uploads/a.txt", headers={"Authorization": AUTH.format(service="s3")})
    raw(proxy, "PUT", "/other-bucket/a.txt", b"x", {"Authorization": AUTH.format(service="s3")})
    assert [(r["method"], r["path"]) for r in upstream.requests] == [
        ("GET", "/firebreak-sandbox-uploads/a.txt"),
        ("PUT", "/other-bucket/a.txt"),
    ]


def test_count_limits_how_often_a_rule_applies(proxy, upstream):
    rule_id = proxy.add_rule({"service": "ecs", "action": "ListClusters", "fault": "throttle", "count": 2})
    ecs = client(proxy, "ecs")
    for _ in range(2):
        with pytest.raises(ClientError):
            ecs.list_clusters()
    ecs.list_clusters()
    rule = next(r for r in proxy.rules() if r["id"] == rule_id)
    assert (rule["remaining"], rule["hits"], rule["count"]) == (0, 2, 2)
    assert [e["fault"] for e in proxy.log()] == ["throttle", "throttle", None]
    assert [e["status"] for e in proxy.log()] == [400, 400, 200]
    assert len(upstream.requests) == 1


def test_botocore_retries_through_a_counted_throttle(proxy, upstream):
    proxy.add_rule({"service": "ecs", "action": "ListClusters", "fault": "throttle", "count": 2})
    response = client(proxy, "ecs", attempts=3).list_clusters()
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [e["status"] for e in proxy.log()] == [400, 400, 200]


def test_first_added_rule_wins_and_added_rules_come_before_defaults(proxy):
    first = proxy.add_rule({"service": "cloudtrail", "fault": "error", "status": 503})
    proxy.add_rule({"service": "cloudtrail", "fault": "throttle"})
    order = [rule["id"] for rule in proxy.rules()]
    assert order[0] == first
    assert all(rule["default"] for rule in proxy.rules()[2:])
    with pytest.raises(ClientError) as caught:
        client(proxy, "cloudtrail").lookup_events()
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_latency_delays_then_later_rules_or_upstream_answer(proxy, upstream):
    proxy.add_rule({"service": "ecs", "fault": "latency", "seconds": 0.2, "count": 1})
    ecs = client(proxy, "ecs")
    started = time.monotonic()
    ecs.list_clusters()
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    ecs.list_clusters()
    assert time.monotonic() - started < 0.2
    assert len(upstream.requests) == 2
    assert [e["fault"] for e in proxy.log()] == ["latency", None]

    proxy.add_rule({"service": "ecs", "fault": "latency", "seconds": 0.2, "count": 1})
    proxy.add_rule({"service": "ecs", "fault": "throttle", "count": 1})
    started = time.monotonic()
    with pytest.raises(ClientError):
        ecs.list_clusters()
    assert time.monotonic() - started >= 0.2
    assert proxy.log()[-1]["fault"] == "throttle"
    assert proxy.log()[-1]["delay"] == pytest.approx(0.2)


def test_quiesce_waits_for_a_held_call_whose_client_left(proxy, upstream):
    """A client killed while the proxy holds its call: the call still lands (after the client left). quiesce()
    waits for it, so a reset made afterwards is not followed by that call in the next test's state and log."""
    proxy.add_rule({"service": "ecs", "fault": "latency", "seconds": 0.5, "count": 1})
    body = json.dumps({}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]), timeout=5)
    headers = {
        "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": AUTH.format(service="ecs"),
    }
    conn.request("POST", "/", body=body, headers=headers)
    deadline = time.monotonic() + 5
    while not proxy.in_flight() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.in_flight() == 1
    conn.close()  # the client leaves while its call is held
    assert proxy.log() == [] and upstream.requests == []
    assert proxy.quiesce(timeout=5) == 0
    assert [e["action"] for e in proxy.log()] == ["ListClusters"] and len(upstream.requests) == 1
    assert proxy.quiesce(timeout=0) == 0


def test_latency_is_capped(proxy):
    rule_id = proxy.add_rule({"fault": "latency", "seconds": 3600})
    assert next(r for r in proxy.rules() if r["id"] == rule_id)["seconds"] == MAX_LATENCY


@pytest.mark.parametrize(
    "rule",
    [
        {"fault": "explode"},
        {"fault": "throttle", "count": 0},
        {"fault": "throttle", "path": "(unclosed"},
        {"fault": "latency", "seconds": -1},
        {"fault": "error", "status": 42},
        {"fault": "canned", "builtin": "nope"},
        {"fault": "throttle", "colour": "red"},
    ],
)
def test_invalid_rules_are_refused(proxy, rule):
    with pytest.raises(ValueError):
        proxy.add_rule(rule)


def test_moto_api_passes_through_untouched(proxy, upstream):
    proxy.add_rule({"fault": "error"})  # everything
    status, _, _ = raw(proxy, "POST", "/moto-api/reset")
    assert status == 200
    assert upstream.requests[-1]["path"] == "/moto-api/reset"
    assert proxy.log() == []


# -- protocol-shaped errors, parsed by botocore -------------------------------------------------
@pytest.mark.parametrize(
    ("service", "call", "status", "code"),
    [
        ("ecs", lambda c: c.describe_services(cluster="shop", services=["x"]), 400, "ThrottlingException"),
        ("stepfunctions", lambda c: c.list_executions(stateMachineArn="arn"), 400, "ThrottlingException"),
        ("rds", lambda c: c.describe_db_clusters(), 400, "Throttling"),
        ("iam", lambda c: c.list_access_keys(UserName="alice"), 400, "Throttling"),
        ("elbv2", lambda c: c.describe_target_health(TargetGroupArn="arn"), 400, "Throttling"),
        ("ec2", lambda c: c.describe_instances(), 503, "RequestLimitExceeded"),
        ("s3", lambda c: c.list_object_versions(Bucket="firebreak-sandbox-uploads"), 503, "SlowDown"),
        ("lambda", lambda c: c.get_alias(FunctionName="thumbnailer", Name="live"), 429, "TooManyRequestsException"),
        ("batch", lambda c: c.describe_job_queues(), 400, "ThrottlingException"),
        ("cloudwatch", lambda c: c.describe_alarms(), 400, "ThrottlingException"),
    ],
)
def test_throttle_is_the_protocols_real_throttling_error(proxy, upstream, service, call, status, code):
    proxy.add_rule({"service": service, "fault": "throttle"})
    with pytest.raises(ClientError) as caught:
        call(client(proxy, service))
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert caught.value.response["ResponseMetadata"]["RequestId"]
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("ecs", lambda c: c.list_clusters(), "InternalFailure"),
        ("rds", lambda c: c.describe_db_clusters(), "InternalFailure"),
        ("ec2", lambda c: c.describe_vpcs(), "InternalError"),
        ("s3", lambda c: c.list_buckets(), "InternalError"),
        ("lambda", lambda c: c.list_functions(), "InternalFailure"),
    ],
)
def test_error_defaults_to_500_internal_failure(proxy, service, call, code):
    proxy.add_rule({"service": service, "fault": "error"})
    with pytest.raises(ClientError) as caught:
        call(client(proxy, service))
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_error_status_and_code_can_be_overridden(proxy):
    proxy.add_rule({"service": "rds", "fault": "error", "status": 400, "code": "InvalidDBClusterStateFault"})
    proxy.add_rule({"service": "ecs", "fault": "throttle", "code": "ThrottledException"})
    with pytest.raises(ClientError) as caught:
        client(proxy, "rds").failover_db_cluster(DBClusterIdentifier="orders-db")
    assert caught.value.response["Error"]["Code"] == "InvalidDBClusterStateFault"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as caught:
        client(proxy, "ecs").list_clusters()
    assert caught.value.response["Error"]["Code"] == "ThrottledException"


def test_permanent_error_fails_after_bounded_retries(proxy):
    proxy.add_rule({"service": "ecs", "fault": "error", "status": 503})
    with pytest.raises(ClientError) as caught:
        client(proxy, "ecs", attempts=2).list_clusters()
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert [e["status"] for e in proxy.log()] == [503, 503]


# -- canned answers -----------------------------------------------------------------------------
def test_default_rules_answer_what_moto_lacks(proxy, upstream):
    defaults = proxy.rules()
    assert {(r["service"], r["action"]) for r in defaults} == {
        ("cloudtrail", "LookupEvents"),
        ("guardduty", "*"),
        ("codepipeline", "DisableStageTransition"),
        ("codepipeline", "EnableStageTransition"),
        ("codepipeline", "GetPipelineState"),
        ("autoscaling", "StartInstanceRefresh"),
        ("autoscaling", "DescribeInstanceRefreshes"),
        ("autoscaling", "CancelInstanceRefresh"),
    }
    events = client(proxy, "cloudtrail").lookup_events()["Events"]
    assert {e["EventName"] for e in events} >= {"ConsoleLogin", "CreateAccessKey", "PutBucketPolicy"}
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)
    login = next(e for e in events if e["EventName"] == "ConsoleLogin")
    record = json.loads(login["CloudTrailEvent"])
    assert record["userIdentity"]["userName"] == "ci-deployer" == login["Username"]
    assert record["eventName"] == "ConsoleLogin"
    assert upstream.requests == []


def test_canned_lookup_events_honours_attributes_time_and_max_results(proxy):
    cloudtrail = client(proxy, "cloudtrail")
    mine = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "alice"}])
    assert {e["Username"] for e in mine["Events"]} == {"alice"}
    keys = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateAccessKey"}]
    )
    assert [e["EventName"] for e in keys["Events"]] == ["CreateAccessKey"]
    assert cloudtrail.lookup_events(MaxResults=2)["Events"].__len__() == 2
    everything = cloudtrail.lookup_events()["Events"]
    newest = everything[0]["EventTime"]
    assert cloudtrail.lookup_events(StartTime=newest)["Events"] == [everything[0]]


def test_canned_json_carries_content_type_and_request_id(proxy):
    proxy.add_rule(
        {
            "service": "ecs",
            "action": "DescribeServices",
            "fault": "canned",
            "body": {"services": [{"serviceName": "shop-api", "runningCount": 0, "desiredCount": 2}], "failures": []},
            "headers": {"X-Test": "yes"},
        }
    )
    response = client(proxy, "ecs").describe_services(cluster="shop", services=["shop-api"])
    assert response["services"][0]["runningCount"] == 0
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-requestid"]
    assert headers["x-test"] == "yes"


def test_canned_dict_is_rendered_as_xml_for_query_protocols(proxy):
    proxy.add_rule(
        {
            "service": "iam",
            "action": "ListAccessKeys",
            "fault": "canned",
            "body": {
                "AccessKeyMetadata": [{"UserName": "alice", "AccessKeyId": "AKIAEXAMPLE", "Status": "Inactive"}],
                "IsTruncated": False,
            },
        }
    )
    keys = client(proxy, "iam").list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert keys == [{"UserName": "alice", "AccessKeyId": "AKIAEXAMPLE", "Status": "Inactive"}]


def test_canned_dynamodb_answer_passes_botocore_crc32_check(proxy):
    proxy.add_rule({"service": "dynamodb", "action": "ListTables", "fault": "canned", "body": {"TableNames": ["t"]}})
    assert client(proxy, "dynamodb").list_tables()["TableNames"] == ["t"]


# -- control API and log ------------------------------------------------------------------------
def test_control_api_adds_lists_deletes_and_resets_rules(proxy):
    status, created = control(proxy, "POST", "/_fault/rules", {"service": "rds", "fault": "throttle", "count": 1})
    assert status == 201
    status, rules = control(proxy, "GET", "/_fault/rules")
    assert status == 200
    assert rules[0]["id"] == created["id"] and rules[0]["remaining"] == 1 and rules[0]["service"] == "rds"
    with pytest.raises(ClientError):
        client(proxy, "rds").describe_db_clusters()
    _, rules = control(proxy, "GET", "/_fault/rules")
    assert (rules[0]["remaining"], rules[0]["hits"]) == (0, 1)

    status, error = control(proxy, "POST", "/_fault/rules", {"fault": "nonsense"})
    assert status == 400 and "fault" in error["error"]

    control(proxy, "POST", "/_fault/rules", {"service": "ecs", "fault": "error"})
    status, rules = control(proxy, "DELETE", "/_fault/rules")
    assert status == 200
    assert rules and all(rule["default"] for rule in rules)

    proxy.clear()
    assert control(proxy, "GET", "/_fault/rules") == (200, [])
    rule_id = control(proxy, "POST", "/_fault/rules", {"service": "ecs", "fault": "error"})[1]["id"]
    assert control(proxy, "DELETE", f"/_fault/rules/{rule_id}")[0] == 200
    assert control(proxy, "DELETE", f"/_fault/rules/{rule_id}")[0] == 404
    assert proxy.rules() == []


def test_control_api_log(proxy):
    proxy.add_rule({"service": "ecs", "fault": "throttle", "count": 1})
    ecs = client(proxy, "ecs", attempts=2)
    ecs.list_clusters()
    status, entries = control(proxy, "GET", "/_fault/log")
    assert status == 200
    assert [(e["service"], e["action"], e["status"], e["fault"]) for e in entries] == [
        ("ecs", "ListClusters", 400, "throttle"),
        ("ecs", "ListClusters", 200, None),
    ]
    since = entries[0]["seq"]
    assert [e["seq"] for e in control(proxy, "GET", f"/_fault/log?since={since}")[1]] == [entries[1]["seq"]]
    assert len(control(proxy, "GET", "/_fault/log?limit=1")[1]) == 1
    assert control(proxy, "DELETE", "/_fault/log") == (200, [])
    assert proxy.log() == []


def test_log_is_a_bounded_ring(upstream):
    small = FaultProxy(upstream.url, log_size=5)
    small.start()
    try:
        for index in range(8):
            raw(small, "GET", f"/n/{index}")
        assert [e["path"] for e in small.log()] == [f"/n/{index}" for index in range(3, 8)]
    finally:
        small.stop()


def test_stop_closes_the_port(upstream):
    short = FaultProxy(upstream.url)
    url = short.start()
    assert urllib.request.urlopen(f"{url}/_fault/rules", timeout=5).status == 200
    short.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/_fault/rules", timeout=2)
