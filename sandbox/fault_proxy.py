"""A fault-injecting HTTP proxy in front of moto (stdlib only).

Every request is forwarded to the upstream (moto) unchanged -- method, path and query, headers
(``Authorization``, ``X-Amz-*``), body -- and the answer is streamed back.  Fault rules can answer
instead of the upstream, in the shape the calling protocol expects, so real botocore clients (and
the Ansible modules on top of them) see real AWS-looking errors:

``throttle``
    the protocol's throttling error (JSON: 400 ``ThrottlingException``; query: 400 ``Throttling``;
    EC2: 503 ``RequestLimitExceeded``; S3: 503 ``SlowDown``; Lambda: 429 ``TooManyRequestsException``).
``error``
    an HTTP ``status`` (default 500) with an ``InternalFailure``/``ServiceUnavailable`` body.
``latency``
    sleep ``seconds`` (capped at ``MAX_LATENCY``), then carry on with the next rules / upstream.
``canned``
    answer with ``status``/``body``/``headers`` without asking the upstream (for calls moto lacks).

A request is identified by its SigV4 credential scope (service), ``X-Amz-Target`` or the ``Action``
parameter or the RPC v2 path (action), method and path.  The same port serves a control API:
``GET/POST/DELETE /_fault/rules``, ``DELETE /_fault/rules/<id>``, ``GET/DELETE /_fault/log``.
``/moto-api/*`` passes through untouched.  See docs/sandbox.md.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import datetime as dt
import fnmatch
import http.client
import itertools
import json
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from sandbox import autoscaling_refresh

MAX_LATENCY = 30.0
LOG_SIZE = 2000
PARAMS_LOG_LIMIT = 16 * 1024  # JSON request bodies up to this size are kept in the log as ``params``
MAX_RULES = 500
MAX_CONTROL_BODY = 1 << 20
FORM_PARSE_LIMIT = 1 << 20
UPSTREAM_TIMEOUT = 120.0
ACCOUNT_ID = "123456789012"

FAULTS = ("throttle", "error", "latency", "canned")
RULE_FIELDS = {
    "service",
    "action",
    "method",
    "path",
    "query",
    "fault",
    "count",
    "status",
    "code",
    "message",
    "seconds",
    "body",
    "headers",
    "builtin",
    "description",
}

# Friendly names -> the SigV4 signing name that appears in the credential scope.
SERVICE_ALIASES = {
    "cloudwatch": "monitoring",
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "stepfunctions": "states",
    "sfn": "states",
    "waf": "wafv2",
    "cloudwatchlogs": "logs",
}
REST_XML_SERVICES = {"s3", "s3control", "route53", "cloudfront"}
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}

_CREDENTIAL_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_RPCV2_PATH_RE = re.compile(r"/service/([^/]+)/operation/([^/?]+)")


# --------------------------------------------------------------------------------------------
# Encoders: CBOR (CloudWatch speaks smithy-rpc-v2-cbor in botocore >= 1.38) and query-style XML.
# --------------------------------------------------------------------------------------------
def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if value < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, value)
    raise ValueError("integer too large for CBOR")


def cbor_encode(value) -> bytes:
    """Encode JSON-like data (plus bytes and datetimes) as CBOR (RFC 8949)."""
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _cbor_head(3, len(raw)) + raw
    if isinstance(value, bytes | bytearray):
        return _cbor_head(2, len(value)) + bytes(value)
    if isinstance(value, dt.datetime):
        return b"\xc1" + cbor_encode(value.timestamp())
    if isinstance(value, list | tuple):
        return _cbor_head(4, len(value)) + b"".join(cbor_encode(item) for item in value)
    if isinstance(value, dict):
        return _cbor_head(5, len(value)) + b"".join(cbor_encode(k) + cbor_encode(v) for k, v in value.items())
    raise TypeError(f"cannot CBOR-encode {type(value).__name__}")


def _xml_value(value, item_tag: str) -> str:
    if isinstance(value, dict):
        return "".join(f"<{key}>{_xml_value(item, item_tag)}</{key}>" for key, item in value.items())
    if isinstance(value, list | tuple):
        return "".join(f"<{item_tag}>{_xml_value(item, item_tag)}</{item_tag}>" for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return escape(str(value))


# --------------------------------------------------------------------------------------------
# Request identification
# --------------------------------------------------------------------------------------------
class RequestInfo:
    """What the proxy knows about one request: service, action, protocol."""

    __slots__ = ("action", "body", "headers", "json_version", "method", "path", "protocol", "query", "service")

    def __init__(self, method: str, target: str, headers, body: bytes):
        parts = urlsplit(target)
        self.method = method.upper()
        self.path = parts.path or "/"
        self.query = parts.query
        self.headers = headers
        self.body = body
        self.service, self.action, self.protocol, self.json_version = _identify(self)

    def params(self) -> dict:
        """The request's JSON body (JSON protocols), or {}."""
        if self.protocol not in ("json", "rest-json") or not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def _header(headers, name: str) -> str:
    value = headers.get(name) if headers is not None else None
    return value or ""


def _identify(req: RequestInfo):
    service = ""
    match = _CREDENTIAL_RE.search(_header(req.headers, "Authorization"))
    query = parse_qs(req.query, keep_blank_values=True)
    if not match and "X-Amz-Credential" in query:
        match = _CREDENTIAL_RE.search("Credential=" + query["X-Amz-Credential"][0])
    if match:
        service = match.group(2).lower()

    content_type = _header(req.headers, "Content-Type").lower()
    json_version = "1.1"
    if content_type.startswith("application/x-amz-json-"):
        json_version = content_type.split("application/x-amz-json-", 1)[1].split(";")[0].strip() or "1.1"

    target = _header(req.headers, "X-Amz-Target")
    if _header(req.headers, "smithy-protocol").lower() == "rpc-v2-cbor":
        rpc = _RPCV2_PATH_RE.search(req.path)
        return service, (rpc.group(2) if rpc else ""), "cbor", json_version
    if target:
        return service, target.rsplit(".", 1)[-1], "json", json_version

    action = query.get("Action", [""])[0]
    if not action and "x-www-form-urlencoded" in content_type and req.body and len(req.body) <= FORM_PARSE_LIMIT:
        form = parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        action = form.get("Action", [""])[0]
    if service == "s3":
        return service, "", "s3", json_version
    if action:
        return service, action, ("ec2" if service == "ec2" else "query"), json_version
    if service in REST_XML_SERVICES:
        return service, "", "rest-xml", json_version
    return service, "", "rest-json", json_version


# --------------------------------------------------------------------------------------------
# Protocol-shaped responses
# --------------------------------------------------------------------------------------------
def _throttle_defaults(req: RequestInfo) -> tuple[int, str, str]:
    if req.protocol == "s3":
        return 503, "SlowDown", "Please reduce your request rate."
    if req.protocol == "ec2":
        return 503, "RequestLimitExceeded", "Request limit exceeded."
    if req.protocol in ("query", "rest-xml"):
        return 400, "Throttling", "Rate exceeded"
    if req.protocol == "rest-json" and req.service == "lambda":
        return 429, "TooManyRequestsException", "Rate exceeded"
    return 400, "ThrottlingException", "Rate exceeded"


def _error_defaults(req: RequestInfo, status: int) -> tuple[str, str]:
    if status == 503:
        code = "Unavailable" if req.protocol == "ec2" else "ServiceUnavailable"
        return code, "Service is unavailable. Please try again later."
    if status >= 500:
        code = "InternalError" if req.protocol in ("ec2", "s3") else "InternalFailure"
        return code, "An internal error occurred. Please try again."
    return "BadRequest", "The request was rejected by a fault rule."


def error_response(req: RequestInfo, status: int, code: str, message: str, request_id: str):
    """(status, headers, body) of an AWS error in the shape ``req``'s protocol expects."""
    headers = {"x-amzn-RequestId": request_id}
    if req.protocol == "json":
        headers["Content-Type"] = f"application/x-amz-json-{req.json_version}"
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"__type": code, "message": message}).encode()
    elif req.protocol == "rest-json":
        headers["Content-Type"] = "application/json"
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    elif req.protocol == "cbor":
        headers["Content-Type"] = "application/cbor"
        headers["smithy-protocol"] = "rpc-v2-cbor"
        body = cbor_encode({"__type": code, "message": message})
    elif req.protocol == "s3":
        headers.update({"Content-Type": "application/xml", "x-amz-request-id": request_id, "x-amz-id-2": request_id})
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()
    elif req.protocol == "ec2":
        headers["Content-Type"] = "text/xml;charset=UTF-8"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"</Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
    else:  # query and other rest-xml services
        kind = "Sender" if status < 500 else "Receiver"
        headers["Content-Type"] = "text/xml"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
    return status, headers, body


def canned_response(req: RequestInfo, status: int, body, extra_headers: dict | None, request_id: str):
    """(status, headers, body) of a canned answer; dict/list bodies are encoded for the protocol."""
    headers = {"x-amzn-RequestId": request_id}
    if req.protocol == "s3":
        headers["x-amz-request-id"] = request_id
    if body is None:
        raw = b""
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode("utf-8")
        if body.lstrip().startswith("<"):
            headers["Content-Type"] = "text/xml"
        else:
            headers["Content-Type"] = _json_content_type(req)
    elif req.protocol == "cbor":
        raw = cbor_encode(body)
        headers.update({"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"})
    elif req.protocol in ("query", "ec2", "rest-xml", "s3"):
        raw = _xml_document(req, body, request_id).encode("utf-8")
        headers["Content-Type"] = "text/xml"
    else:
        raw = json.dumps(body, default=_json_default).encode("utf-8")
        headers["Content-Type"] = _json_content_type(req)
    if req.service == "dynamodb":
        headers["x-amz-crc32"] = str(zlib.crc32(raw) & 0xFFFFFFFF)
    for key, value in (extra_headers or {}).items():
        for existing in [name for name in headers if name.lower() == str(key).lower()]:
            del headers[existing]
        headers[str(key)] = str(value)
    return status, headers, raw


def _json_content_type(req: RequestInfo) -> str:
    return f"application/x-amz-json-{req.json_version}" if req.protocol == "json" else "application/json"


def _json_default(value):
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def control_datetime(obj: dict):
    """A canned body's timestamp over the HTTP control API: ``{"$datetime": "<ISO 8601>"}`` is the datetime (as a
    rule added in-process holds one, answered in the protocol's own timestamp form); any other object is itself."""
    if set(obj) == {"$datetime"} and isinstance(obj["$datetime"], str):
        return dt.datetime.fromisoformat(obj["$datetime"])
    return obj


def _xml_document(req: RequestInfo, body, request_id: str) -> str:
    action = req.action or "Operation"
    if req.protocol == "ec2":
        inner = _xml_value(body, "item")
        return f"<{action}Response><requestId>{request_id}</requestId>{inner}</{action}Response>"
    if req.protocol == "query":
        inner = _xml_value(body, "member")
        return (
            f"<{action}Response><{action}Result>{inner}</{action}Result>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
        )
    return _xml_value(body, "member")


# --------------------------------------------------------------------------------------------
# Built-in responders (canned answers that depend on the request)
# --------------------------------------------------------------------------------------------
COMPROMISED_USER = "ci-deployer"
COMPROMISED_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id, not one of moto's
ATTACKER_NEW_ACCESS_KEY = "AKIAI44QH8DHBEXAMPLE"
ATTACKER_IP = "203.0.113.66"


def _cloudtrail_events(now: dt.datetime) -> list[dict]:
    """A small, realistic CloudTrail history: the seeded user ``ci-deployer`` misused from one IP."""
    specs = [
        # minutes ago, user, source, name, read-only, resources, request, response, ip, key
        (55, COMPROMISED_USER, "signin.amazonaws.com", "ConsoleLogin", False, [], None,
         {"ConsoleLogin": "Success"}, ATTACKER_IP, None),
        (48, COMPROMISED_USER, "iam.amazonaws.com", "CreateAccessKey", False,
         [("AWS::IAM::AccessKey", ATTACKER_NEW_ACCESS_KEY), ("AWS::IAM::User", COMPROMISED_USER)],
         {"userName": COMPROMISED_USER},
         {"accessKey": {"accessKeyId": ATTACKER_NEW_ACCESS_KEY, "status": "Active", "userName": COMPROMISED_USER}},
         ATTACKER_IP, COMPROMISED_ACCESS_KEY),
        (41, COMPROMISED_USER, "secretsmanager.amazonaws.com", "GetSecretValue", True,
         [("AWS::SecretsManager::Secret", "app/admin")], {"secretId": "app/admin"}, None,
         ATTACKER_IP, ATTACKER_NEW_ACCESS_KEY),
        (37, COMPROMISED_USER, "s3.amazonaws.com", "PutBucketPolicy", False,
         [("AWS::S3::Bucket", "firebreak-sandbox-uploads")],
         {"bucketName": "firebreak-sandbox-uploads", "policy": {"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
              "Resource": "arn:aws:s3:::firebreak-sandbox-uploads/*"}]}},
         None, ATTACKER_IP, ATTACKER_NEW_ACCESS_KEY),
        (20, "alice", "rds.amazonaws.com", "DescribeDBClusters", True, [], {"dBClusterIdentifier": "orders-db"},
         None, "198.51.100.23", None),
    ]  # fmt: skip
    events = []
    for minutes, user, source, name, read_only, resources, request, response, ip, key in specs:
        when = (now - dt.timedelta(minutes=minutes)).replace(microsecond=0)
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"firebreak-sandbox/{name}/{minutes}"))
        access_key = key or (COMPROMISED_ACCESS_KEY if user == COMPROMISED_USER else "AKIAEXAMPLEALICE0001")
        record = {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDA" + uuid.uuid5(uuid.NAMESPACE_DNS, user).hex[:17].upper(),
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{user}",
                "accountId": ACCOUNT_ID,
                "userName": user,
                **({} if name == "ConsoleLogin" else {"accessKeyId": access_key}),
            },
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source,
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": ip,
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)" if name == "ConsoleLogin" else "aws-cli/2.15.0",
            "requestParameters": request,
            "responseElements": response,
            "requestID": str(uuid.uuid5(uuid.NAMESPACE_OID, event_id)),
            "eventID": event_id,
            "readOnly": read_only,
            "eventType": "AwsConsoleSignIn" if name == "ConsoleLogin" else "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT_ID,
            "eventCategory": "Management",
        }
        if name == "ConsoleLogin":
            record["additionalEventData"] = {"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com/"}
        event = {
            "EventId": event_id,
            "EventName": name,
            "ReadOnly": "true" if read_only else "false",
            "EventTime": when.timestamp(),
            "EventSource": source,
            "Username": user,
            "Resources": [{"ResourceType": rtype, "ResourceName": rname} for rtype, rname in resources],
            "CloudTrailEvent": json.dumps(record),
        }
        if name != "ConsoleLogin":
            event["AccessKeyId"] = access_key
        events.append(event)
    events.sort(key=lambda item: item["EventTime"], reverse=True)
    return events


def _as_epoch(value):
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def builtin_cloudtrail_lookup_events(req: RequestInfo, proxy: FaultProxy) -> dict:
    """CloudTrail ``LookupEvents`` over the canned history, honouring attributes, time range, MaxResults."""
    params = req.params()
    events = _cloudtrail_events(proxy.anchor_time)
    field_of = {
        "EventId": lambda e: [e["EventId"]],
        "EventName": lambda e: [e["EventName"]],
        "ReadOnly": lambda e: [e["ReadOnly"]],
        "Username": lambda e: [e["Username"]],
        "EventSource": lambda e: [e["EventSource"]],
        "AccessKeyId": lambda e: [e.get("AccessKeyId", "")],
        "ResourceType": lambda e: [r["ResourceType"] for r in e["Resources"]],
        "ResourceName": lambda e: [r["ResourceName"] for r in e["Resources"]],
    }
    for attribute in params.get("LookupAttributes") or []:
        getter = field_of.get(attribute.get("AttributeKey"))
        if getter is not None:
            events = [e for e in events if attribute.get("AttributeValue") in getter(e)]
    start, end = _as_epoch(params.get("StartTime")), _as_epoch(params.get("EndTime"))
    if start is not None:
        events = [e for e in events if e["EventTime"] >= start]
    if end is not None:
        events = [e for e in events if e["EventTime"] <= end]
    try:
        limit = max(1, min(int(params.get("MaxResults") or 50), 50))
    except (TypeError, ValueError):
        limit = 50
    return {"Events": events[:limit]}


class BuiltinError(Exception):
    """A built-in responder's AWS error: answered as ``status``/``code``/``message`` in the protocol's shape."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# CodePipeline stage transitions (moto 5.2.5 lacks DisableStageTransition, EnableStageTransition and
# GetPipelineState).  Behaviour per the CodePipeline API reference: the pipeline and stage must exist
# (PipelineNotFoundException / StageNotFoundException, read from moto's GetPipeline), the reason is 1-300
# characters of [a-zA-Z0-9!@ ()._*?-]; GetPipelineState reports each stage's inboundTransitionState
# (enabled, lastChangedBy, lastChangedAt, disabledReason; the first stage has none).  Outbound
# transitions are kept but, as in GetPipelineState's documented shape, not reported.
_TRANSITION_REASON_RE = re.compile(r"^[a-zA-Z0-9!@ \(\)\.\*\?\-]{1,300}$")


def _pipeline_from_moto(req: RequestInfo, proxy: FaultProxy, name: str) -> dict:
    """The pipeline declaration, asked of moto with the caller's own credential scope."""
    conn = http.client.HTTPConnection(proxy._up_host, proxy._up_port, timeout=30)
    try:
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "CodePipeline_20150709.GetPipeline",
            "Authorization": _header(req.headers, "Authorization"),
            "X-Amz-Date": _header(req.headers, "X-Amz-Date"),
        }
        conn.request("POST", "/", body=json.dumps({"name": name}).encode(), headers=headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise BuiltinError(400, "PipelineNotFoundException", f"Pipeline not found: {name}")
    return json.loads(payload).get("pipeline") or {}


def _transition_target(req: RequestInfo, proxy: FaultProxy) -> tuple:
    params = req.params()
    name, stage = params.get("pipelineName"), params.get("stageName")
    kind = params.get("transitionType")
    if kind not in ("Inbound", "Outbound"):
        raise BuiltinError(400, "ValidationException", "transitionType must be Inbound or Outbound")
    stages = [s.get("name") for s in _pipeline_from_moto(req, proxy, str(name)).get("stages") or []]
    if stage not in stages:
        raise BuiltinError(400, "StageNotFoundException", f"Stage not found: {stage} in pipeline {name}")
    return (name, stage, kind)


def builtin_codepipeline_disable_stage_transition(req: RequestInfo, proxy: FaultProxy) -> dict:
    reason = req.params().get("reason")
    if not isinstance(reason, str) or not _TRANSITION_REASON_RE.match(reason):
        raise BuiltinError(400, "ValidationException", "reason must be 1-300 characters of [a-zA-Z0-9!@ ()._*?-]")
    key = _transition_target(req, proxy)
    with proxy._transitions_lock:
        proxy._transitions[key] = {
            "enabled": False,
            "disabledReason": reason,
            "lastChangedBy": _caller_arn(req),
            "lastChangedAt": dt.datetime.now(dt.UTC).timestamp(),
        }
    return {}


def builtin_codepipeline_enable_stage_transition(req: RequestInfo, proxy: FaultProxy) -> dict:
    key = _transition_target(req, proxy)
    with proxy._transitions_lock:
        proxy._transitions[key] = {
            "enabled": True,
            "lastChangedBy": _caller_arn(req),
            "lastChangedAt": dt.datetime.now(dt.UTC).timestamp(),
        }
    return {}


def builtin_codepipeline_get_pipeline_state(req: RequestInfo, proxy: FaultProxy) -> dict:
    name = req.params().get("name")
    pipeline = _pipeline_from_moto(req, proxy, str(name))
    states = []
    for index, stage in enumerate(pipeline.get("stages") or []):
        state = {"stageName": stage.get("name"), "actionStates": []}
        if index > 0:
            with proxy._transitions_lock:
                held = proxy._transitions.get((name, stage.get("name"), "Inbound"))
            state["inboundTransitionState"] = dict(held) if held else {"enabled": True}
        states.append(state)
    return {"pipelineName": name, "pipelineVersion": pipeline.get("version", 1), "stageStates": states}


def _caller_arn(req: RequestInfo) -> str:
    match = re.search(r"Credential=([^/,\s]+)/", _header(req.headers, "Authorization"))
    return f"arn:aws:iam::{ACCOUNT_ID}:user/{match.group(1) if match else 'unknown'}"


# GuardDuty findings (moto 5.2.5 keeps detectors but has no ListFindings or GetFindings).  Per the GuardDuty API
# reference: the detector must exist (read from moto's GetDetector; else 400 BadRequestException); ListFindings
# honours FindingCriteria (Eq/Neq/Equals/NotEquals, Gt/Gte/Lt/Lte and their long forms; a field is a dotted path
# into the finding and matches when any value at it does), SortCriteria, MaxResults (1-50) and NextToken;
# GetFindings returns the findings asked for, in the order asked, and skips unknown ids.  The findings are what
# GuardDuty would say about the canned CloudTrail incident: the compromised user's key (CreateAccessKey,
# GetSecretValue), the uploads bucket made public, and each EC2 instance tagged firebreak:compromised=true in moto
# (command-and-control DNS traffic).
GUARDDUTY_BUCKET = "firebreak-sandbox-uploads"
_GD_DETECTOR_PATH = re.compile(r"^/detector/([^/]+)/findings(/get)?$")


def _moto_request(req: RequestInfo, proxy: FaultProxy, method: str, path: str, body: bytes = b"", headers=None):
    """(status, payload) of a request to moto, signed as the caller (moto scopes by the credential's account)."""
    conn = http.client.HTTPConnection(proxy._up_host, proxy._up_port, timeout=30)
    try:
        sent = {
            "Authorization": _header(req.headers, "Authorization"),
            "X-Amz-Date": _header(req.headers, "X-Amz-Date"),
        }
        sent.update(headers or {})
        conn.request(method, path, body=body or None, headers=sent)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _guardduty_instances(req: RequestInfo, proxy: FaultProxy) -> list[dict]:
    """The EC2 instances tagged firebreak:compromised=true in moto (id, type, tags)."""
    form = "Action=DescribeInstances&Version=2016-11-15"
    form += "&Filter.1.Name=tag%3Afirebreak%3Acompromised&Filter.1.Value.1=true"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Authorization": _header(req.headers, "Authorization").replace("/guardduty/", "/ec2/"),
    }
    status, payload = _moto_request(req, proxy, "POST", "/", form.encode(), headers)
    if status != 200:
        return []
    found = []
    for node in ElementTree.fromstring(payload).iter():  # noqa: S314 - moto's own answer
        if not node.tag.endswith("instancesSet"):
            continue
        for item in node:
            ident = next((c.text for c in item if c.tag.endswith("instanceId")), None)
            kind = next((c.text for c in item if c.tag.endswith("instanceType")), None)
            tags = []
            for child in item:
                if child.tag.endswith("tagSet"):
                    for tag in child:
                        key = next((c.text for c in tag if c.tag.endswith("key")), None)
                        value = next((c.text for c in tag if c.tag.endswith("value")), None)
                        tags.append({"key": key, "value": value})
            if ident:
                found.append({"instanceId": ident, "instanceType": kind, "tags": tags})
    return found


def _guardduty_findings(req: RequestInfo, proxy: FaultProxy, detector: str) -> list[dict]:
    now = proxy.anchor_time.replace(microsecond=0)

    def at(minutes: int) -> str:
        return (now - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    key = {
        "accessKeyId": COMPROMISED_ACCESS_KEY,
        "principalId": "AIDA" + uuid.uuid5(uuid.NAMESPACE_DNS, COMPROMISED_USER).hex[:17].upper(),
        "userName": COMPROMISED_USER,
        "userType": "IAMUser",
    }
    remote = {"ipAddressV4": ATTACKER_IP, "country": {"countryName": "Unknown"}, "organization": {"asn": "64496"}}

    def api_call(api: str, source: str) -> dict:
        return {
            "actionType": "AWS_API_CALL",
            "awsApiCallAction": {
                "api": api,
                "serviceName": source,
                "callerType": "Remote IP",
                "remoteIpDetails": remote,
            },
        }

    specs = [
        ("Persistence:IAMUser/AnomalousBehavior", 5.0, 48, {"resourceType": "AccessKey", "accessKeyDetails": key},
         api_call("CreateAccessKey", "iam.amazonaws.com"),
         "An API commonly used to maintain access to an environment was invoked in an anomalous way."),
        ("CredentialAccess:IAMUser/AnomalousBehavior", 5.0, 41, {"resourceType": "AccessKey", "accessKeyDetails": key},
         api_call("GetSecretValue", "secretsmanager.amazonaws.com"),
         "An API commonly used to access credentials was invoked in an anomalous way."),
        ("Policy:S3/BucketAnonymousAccessGranted", 8.0, 37,
         {"resourceType": "S3Bucket", "accessKeyDetails": key, "s3BucketDetails": [
             {"name": GUARDDUTY_BUCKET, "arn": f"arn:aws:s3:::{GUARDDUTY_BUCKET}", "type": "Destination"}]},
         api_call("PutBucketPolicy", "s3.amazonaws.com"),
         f"The S3 bucket {GUARDDUTY_BUCKET} was granted anonymous access by a bucket policy."),
    ]  # fmt: skip
    for instance in _guardduty_instances(req, proxy):
        specs.append(
            (
                "Backdoor:EC2/C&CActivity.B!DNS",
                8.0,
                30,
                {"resourceType": "Instance", "instanceDetails": instance},
                {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": "c2.example.invalid", "protocol": "UDP"}},
                f"EC2 instance {instance['instanceId']} is querying a domain name associated with a known "
                "command and control server.",
            )
        )
    region = "us-east-1"
    findings = []
    for kind, severity, minutes, resource, action, description in specs:
        subject = json.dumps(resource, sort_keys=True)
        ident = uuid.uuid5(uuid.NAMESPACE_URL, f"firebreak-sandbox/guardduty/{detector}/{kind}/{subject}").hex
        findings.append(
            {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:guardduty:{region}:{ACCOUNT_ID}:detector/{detector}/finding/{ident}",
                "createdAt": at(minutes),
                "updatedAt": at(max(0, minutes - 2)),
                "description": description,
                "id": ident,
                "partition": "aws",
                "region": region,
                "resource": resource,
                "schemaVersion": "2.0",
                "service": {
                    "action": action,
                    "archived": False,
                    "count": 1,
                    "detectorId": detector,
                    "eventFirstSeen": at(minutes),
                    "eventLastSeen": at(max(0, minutes - 2)),
                    "resourceRole": "TARGET",
                    "serviceName": "guardduty",
                },
                "severity": severity,
                "title": description.split(".")[0],
                "type": kind,
            }
        )
    return findings


def _guardduty_detector(req: RequestInfo, proxy: FaultProxy) -> str:
    match = _GD_DETECTOR_PATH.match(req.path)
    detector = match.group(1) if match else ""
    status, _ = _moto_request(req, proxy, "GET", f"/detector/{detector}")
    if status != 200:
        raise BuiltinError(
            400,
            "BadRequestException",
            "The request is rejected because the input detectorId is not owned by the current account.",
        )
    return detector


def _gd_values(node, path: list[str]) -> list:
    if not path:
        return node if isinstance(node, list) else [node]
    if isinstance(node, list):
        return [value for item in node for value in _gd_values(item, path)]
    if isinstance(node, dict) and path[0] in node:
        return _gd_values(node[path[0]], path[1:])
    return []


def _gd_comparable(value):
    """Numbers as numbers; ISO times as epoch milliseconds (GuardDuty compares times as longs)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = str(value)
    if re.match(r"^\d{4}-\d\d-\d\dT", text):
        epoch = _as_epoch(text)
        if epoch is not None:
            return epoch * 1000
    try:
        return float(text)
    except ValueError:
        return text


def _gd_matches(finding: dict, criterion: dict) -> bool:
    for field, condition in (criterion or {}).items():
        values = [_gd_comparable(v) for v in _gd_values(finding, field.split("."))]
        texts = {str(v).lower() if isinstance(v, str) else v for v in values}
        for op, operand in (condition or {}).items():
            op = str(op).lower()  # on the wire: eq, equals, greaterThanOrEqual ...
            if op in ("eq", "equals"):
                wanted = {_gd_comparable(v) for v in operand}
                if not texts & {str(w).lower() if isinstance(w, str) else w for w in wanted}:
                    return False
            elif op in ("neq", "notequals"):
                wanted = {_gd_comparable(v) for v in operand}
                if texts & {str(w).lower() if isinstance(w, str) else w for w in wanted}:
                    return False
            else:
                compare = {
                    "gt": float.__gt__, "greaterthan": float.__gt__,
                    "gte": float.__ge__, "greaterthanorequal": float.__ge__,
                    "lt": float.__lt__, "lessthan": float.__lt__,
                    "lte": float.__le__, "lessthanorequal": float.__le__,
                }.get(op)  # fmt: skip
                if compare is None:
                    raise BuiltinError(400, "BadRequestException", f"The request is rejected: unknown condition {op}")
                numbers = [float(v) for v in values if isinstance(v, int | float)]
                if not any(compare(v, float(operand)) for v in numbers):
                    return False
    return True


def builtin_guardduty_list_findings(req: RequestInfo, proxy: FaultProxy) -> dict:
    detector = _guardduty_detector(req, proxy)
    params = req.params()
    criterion = (params.get("findingCriteria") or {}).get("criterion") or {}
    findings = [f for f in _guardduty_findings(req, proxy, detector) if _gd_matches(f, criterion)]
    sort = params.get("sortCriteria") or {}
    if sort.get("attributeName"):
        field = sort["attributeName"].split(".")

        def sort_key(finding):
            values = _gd_values(finding, field)
            return str(_gd_comparable(values[0])) if values and isinstance(values[0], str) else (values or [0])[0]

        findings.sort(key=sort_key, reverse=sort.get("orderBy") == "DESC")
    try:
        limit = int(params.get("maxResults") or 50)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= 50:
        raise BuiltinError(400, "BadRequestException", "The request is rejected: maxResults must be between 1 and 50.")
    offset = int(params.get("nextToken") or 0)
    page = findings[offset : offset + limit]
    following = str(offset + limit) if offset + limit < len(findings) else ""
    return {"findingIds": [f["id"] for f in page], "nextToken": following}


def builtin_guardduty_get_findings(req: RequestInfo, proxy: FaultProxy) -> dict:
    detector = _guardduty_detector(req, proxy)
    ids = req.params().get("findingIds") or []
    if not 1 <= len(ids) <= 50:
        raise BuiltinError(400, "BadRequestException", "The request is rejected: findingIds must have 1 to 50 ids.")
    by_id = {f["id"]: f for f in _guardduty_findings(req, proxy, detector)}
    return {"findings": [by_id[i] for i in ids if i in by_id]}


BUILTINS = {
    "cloudtrail_lookup_events": builtin_cloudtrail_lookup_events,
    "codepipeline_disable_stage_transition": builtin_codepipeline_disable_stage_transition,
    "codepipeline_enable_stage_transition": builtin_codepipeline_enable_stage_transition,
    "codepipeline_get_pipeline_state": builtin_codepipeline_get_pipeline_state,
    "guardduty_list_findings": builtin_guardduty_list_findings,
    "guardduty_get_findings": builtin_guardduty_get_findings,
    **autoscaling_refresh.BUILTINS,
}

DEFAULT_RULES: list[dict] = [
    {
        "service": "cloudtrail",
        "action": "LookupEvents",
        "fault": "canned",
        "builtin": "cloudtrail_lookup_events",
        "description": "moto lacks LookupEvents (500, retried by botocore): canned history of a compromised user",
    },
    *[
        {
            "service": "codepipeline",
            "action": action,
            "fault": "canned",
            "builtin": f"codepipeline_{snake}",
            "description": f"moto lacks {action} (500): stage transitions kept by the proxy, per the API reference",
        }
        for action, snake in (
            ("DisableStageTransition", "disable_stage_transition"),
            ("EnableStageTransition", "enable_stage_transition"),
            ("GetPipelineState", "get_pipeline_state"),
        )
    ],
    {
        "service": "guardduty",
        "method": "POST",
        "path": r"^/detector/[^/]+/findings$",
        "fault": "canned",
        "builtin": "guardduty_list_findings",
        "description": "moto lacks ListFindings: findings about the canned incident, criteria honoured",
    },
    {
        "service": "guardduty",
        "method": "POST",
        "path": r"^/detector/[^/]+/findings/get$",
        "fault": "canned",
        "builtin": "guardduty_get_findings",
        "description": "moto lacks GetFindings: the canned incident's findings by id",
    },
    *autoscaling_refresh.RULES,
]


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------
def normalize_rule(rule: dict) -> dict:
    """Validate a rule and fill in its defaults; raises ValueError with a readable message."""
    if not isinstance(rule, dict):
        raise ValueError("a rule must be a JSON object")
    unknown = set(rule) - RULE_FIELDS
    if unknown:
        raise ValueError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
    fault = rule.get("fault")
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
    service = str(rule.get("service") or "*").lower()
    out = {
        "service": SERVICE_ALIASES.get(service, service),
        "action": str(rule.get("action") or "*"),
        "method": str(rule["method"]).upper() if rule.get("method") else None,
        "path": rule.get("path") or None,
        "query": rule.get("query") or None,
        "fault": fault,
        "count": rule.get("count"),
        "description": rule.get("description"),
    }
    for key in ("path", "query"):
        if out[key] is not None:
            try:
                re.compile(out[key])
            except re.error as exc:
                raise ValueError(f"{key} is not a valid regular expression: {exc}") from None
    count = out["count"]
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer or null (forever)")
    if rule.get("status") is not None:
        status = rule["status"]
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError("status must be an HTTP status code (200-599)")
    if fault == "latency":
        try:
            seconds = float(rule.get("seconds", 1.0))
        except (TypeError, ValueError):
            raise ValueError("seconds must be a number") from None
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        out["seconds"] = min(seconds, MAX_LATENCY)
    elif fault in ("throttle", "error"):
        out["status"] = rule.get("status") or (500 if fault == "error" else None)
        out["code"] = rule.get("code")
        out["message"] = rule.get("message")
    else:  # canned
        if rule.get("builtin") is not None and rule["builtin"] not in BUILTINS:
            raise ValueError(f"builtin must be one of {', '.join(BUILTINS)}")
        headers = rule.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError("headers must be an object")
        out.update(
            status=rule.get("status") or 200,
            body=copy.deepcopy(rule.get("body")),
            headers={str(k): str(v) for k, v in headers.items()},
            builtin=rule.get("builtin"),
        )
    return out


def rule_matches(rule: dict, req: RequestInfo) -> bool:
    if rule["service"] != "*" and not fnmatch.fnmatchcase(req.service, rule["service"]):
        return False
    if rule["action"] != "*" and not fnmatch.fnmatchcase(req.action or "", rule["action"]):
        return False
    if rule["method"] and rule["method"] != req.method:
        return False
    if rule["path"] and not re.search(rule["path"], req.path):
        return False
    return not (rule["query"] and not re.search(rule["query"], req.query))


# --------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, handler, proxy: FaultProxy):
        self.proxy = proxy
        self.open_sockets: set = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, handler)


class _UpstreamConnection(http.client.HTTPConnection):
    """An upstream connection without Nagle's delay (http.client sends headers and body separately)."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "firebreak-fault-proxy"
    timeout = 300  # idle keep-alive connections are closed after this
    server: _Server

    # -- connection bookkeeping --------------------------------------------------------------
    def setup(self):
        super().setup()
        self._upstream: http.client.HTTPConnection | None = None
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.connection)
            if self._upstream is not None:
                self._upstream.close()

    def log_message(self, format, *args):
        pass

    # -- dispatch ----------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _target(self) -> str:
        # An absolute-form request target ("GET http://elsewhere/x") never leaves the upstream.
        if self.path.startswith(("http://", "https://")):
            parts = urlsplit(self.path)
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self.path if self.path.startswith("/") else "/" + self.path

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self):
        target = self._target()
        body = self._read_body()
        path = urlsplit(target).path
        proxy = self.server.proxy
        if path == "/_fault" or path.startswith("/_fault/"):
            self._control(path, target, body)
            return
        if path.startswith("/moto-api"):
            self._forward(target, body)
            return
        started = time.monotonic()
        req = RequestInfo(self.command, target, self.headers, body)
        with proxy._lock:
            proxy._in_flight += 1
        try:
            decision = proxy._decide(req)

            def record(status: int) -> None:  # before the answer goes out, so a client never outruns the log
                proxy._record(req, status, decision, time.monotonic() - started)

            if decision["response"] is not None:
                status, headers, payload = decision["response"]
                record(status)
                self._send(status, headers, payload)
            else:
                self._forward(target, body, on_status=record)
        finally:
            with proxy._lock:
                proxy._in_flight -= 1

    # -- upstream ----------------------------------------------------------------------------
    def _upstream_conn(self) -> http.client.HTTPConnection:
        if self._upstream is None:
            proxy = self.server.proxy
            self._upstream = _UpstreamConnection(proxy._up_host, proxy._up_port, timeout=UPSTREAM_TIMEOUT)
        return self._upstream

    def _forward(self, target: str, body: bytes, on_status=None) -> int:
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        if not any(k.lower() == "host" for k, _ in headers):
            headers.append(("Host", self.server.proxy._up_netloc))
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        response = None
        for attempt in (1, 2):  # a pooled keep-alive connection may have been closed by the upstream
            conn = self._upstream_conn()
            try:
                conn.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
                for key, value in headers:
                    conn.putheader(key, value)
                conn.endheaders(body or None)
                response = conn.getresponse()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                conn.close()
                self._upstream = None
                if attempt == 2:
                    if on_status is not None:
                        on_status(502)
                    message = json.dumps({"message": f"fault proxy: upstream unreachable: {exc}"}).encode()
                    self._send(502, {"Content-Type": "application/json"}, message)
                    return 502
        if on_status is not None:
            on_status(response.status)
        try:
            self._relay(response)
        finally:
            if response.will_close:
                self._upstream.close()
                self._upstream = None
        return response.status

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        for key, value in response.getheaders():
            if key.lower() in HOP_BY_HOP or key.lower() == "content-length":
                continue
            self.send_header(key, value)
        if no_body:
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            response.read()
            return
        if length is None:
            payload = response.read()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("Content-Length", length)
        self.end_headers()
        while True:
            chunk = response.read(65536)
            if not chunk:
                break
            self.wfile.write(chunk)

    def _send(self, status: int, headers: dict, payload: bytes) -> None:
        self.send_response_only(status, http.client.responses.get(status, ""))
        for key, value in headers.items():
            if key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    # -- control API -------------------------------------------------------------------------
    def _json(self, status: int, data) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(data, default=str).encode())

    def _control(self, path: str, target: str, body: bytes) -> None:
        proxy = self.server.proxy
        method = self.command
        path = path.rstrip("/")
        if path == "/_fault/rules":
            if method == "GET":
                return self._json(200, proxy.rules())
            if method == "POST":
                if len(body) > MAX_CONTROL_BODY:
                    return self._json(413, {"error": "rule too large"})
                try:
                    rule = json.loads(body or b"null", object_hook=control_datetime)
                    return self._json(201, {"id": proxy.add_rule(rule)})
                except ValueError as exc:
                    return self._json(400, {"error": str(exc)})
            if method == "DELETE":
                proxy.reset()
                return self._json(200, proxy.rules())
        elif path.startswith("/_fault/rules/"):
            rule_id = path.rsplit("/", 1)[1]
            if method == "GET":
                found = [rule for rule in proxy.rules() if rule["id"] == rule_id]
                return self._json(200, found[0]) if found else self._json(404, {"error": "no such rule"})
            if method == "DELETE":
                return self._json(200, {"id": rule_id}) if proxy.remove_rule(rule_id) else self._json(404, {})
        elif path == "/_fault/log":
            if method == "GET":
                query = parse_qs(urlsplit(target).query)
                entries = proxy.log()
                if "since" in query:
                    entries = [e for e in entries if e["seq"] > int(query["since"][0])]
                if "limit" in query:
                    entries = entries[-max(0, int(query["limit"][0])) :]
                return self._json(200, entries)
            if method == "DELETE":
                proxy.clear_log()
                return self._json(200, [])
        elif path == "/_fault" and method == "GET":
            return self._json(200, {"upstream": proxy.upstream, "rules": len(proxy.rules())})
        else:
            return self._json(404, {"error": f"unknown control path {path}"})
        return self._json(405, {"error": f"{method} not allowed on {path}"})


class FaultProxy:
    """A fault-injecting proxy on ``host:port`` (0 = any free port) in front of ``upstream``."""

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0, log_size: int = LOG_SIZE):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._up_host = parts.hostname
        self._up_port = parts.port or 80
        self._up_netloc = parts.netloc
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self._log: collections.deque = collections.deque(maxlen=max(1, log_size))
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._in_flight = 0  # API requests being handled (held by a latency rule, or forwarded and not answered)
        self.anchor_time = dt.datetime.now(dt.UTC)
        self._transitions_lock = threading.Lock()
        self._transitions: dict = {}  # CodePipeline (pipeline, stage, Inbound|Outbound) -> transition state
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> str:
        if self._server is None:
            self._server = _Server((self.host, self.port), _Handler, self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="fault-proxy", daemon=True
            )
            self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.sockets_lock:
            sockets = list(server.open_sockets)
        for sock in sockets:  # wake handler threads blocked on idle keep-alive connections
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- rules -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop every rule, then install ``DEFAULT_RULES`` (canned answers for calls moto lacks)."""
        with self._transitions_lock:
            self._transitions = {}
        self.instance_refreshes = autoscaling_refresh.State()  # Auto Scaling instance refreshes (moto lacks them)
        self.instance_refresh_seconds = 0.0
        with self._lock:
            self._rules = []
            self.anchor_time = dt.datetime.now(dt.UTC)
            for rule in DEFAULT_RULES:
                self._install(normalize_rule(rule), default=True)

    def clear(self) -> None:
        """Drop every rule, the defaults included."""
        with self._lock:
            self._rules = []

    def add_rule(self, rule: dict) -> str:
        """Add a rule ahead of the defaults (after earlier added rules); returns its id."""
        normalized = normalize_rule(rule)
        with self._lock:
            if len(self._rules) >= MAX_RULES:
                raise ValueError(f"too many rules (max {MAX_RULES})")
            return self._install(normalized, default=False)

    def remove_rule(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [rule for rule in self._rules if rule["id"] != rule_id]
            return len(self._rules) != before

    def rules(self) -> list[dict]:
        """The rules in evaluation order, with ``remaining`` (None = forever) and ``hits``."""
        with self._lock:
            return copy.deepcopy(self._rules)

    def _install(self, rule: dict, default: bool) -> str:
        rule_id = f"{'default' if default else 'rule'}-{next(self._ids)}"
        rule.update(id=rule_id, default=default, remaining=rule["count"], hits=0)
        if default:
            self._rules.append(rule)
        else:
            position = next((i for i, existing in enumerate(self._rules) if existing["default"]), len(self._rules))
            self._rules.insert(position, rule)
        return rule_id

    def _decide(self, req: RequestInfo) -> dict:
        """Apply latency rules, pick the first answering rule; returns what to do with ``req``."""
        applied, delay, answer = [], 0.0, None
        with self._lock:
            for rule in self._rules:
                if rule["remaining"] == 0 or not rule_matches(rule, req):
                    continue
                if rule["remaining"] is not None:
                    rule["remaining"] -= 1
                rule["hits"] += 1
                applied.append(rule)
                if rule["fault"] == "latency":
                    delay = min(MAX_LATENCY, delay + rule["seconds"])
                    continue
                answer = copy.deepcopy(rule)
                break
        if delay:
            time.sleep(delay)
        response = None
        if answer is not None:
            request_id = str(uuid.uuid4())
            if answer["fault"] == "canned":
                body = answer["body"]
                try:
                    if answer.get("builtin"):
                        body = BUILTINS[answer["builtin"]](req, self)
                    response = canned_response(req, answer["status"], body, answer["headers"], request_id)
                except BuiltinError as err:
                    response = error_response(req, err.status, err.code, err.message, request_id)
            elif answer["fault"] == "throttle":
                status, code, message = _throttle_defaults(req)
                response = error_response(
                    req, answer["status"] or status, answer["code"] or code, answer["message"] or message, request_id
                )
            else:
                code, message = _error_defaults(req, answer["status"])
                response = error_response(
                    req, answer["status"], answer["code"] or code, answer["message"] or message, request_id
                )
        return {"applied": [(rule["id"], rule["fault"]) for rule in applied], "delay": delay, "response": response}

    # -- log ---------------------------------------------------------------------------------
    def _record(self, req: RequestInfo, status, decision: dict, elapsed: float) -> None:
        faults = [fault for _, fault in decision["applied"]]
        answering = [fault for fault in faults if fault != "latency"]
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "service": req.service,
            "action": req.action,
            "protocol": req.protocol,
            "method": req.method,
            "path": req.path,
            "status": status,
            "fault": answering[0] if answering else ("latency" if faults else None),
            "rules": [rule_id for rule_id, _ in decision["applied"]],
            "delay": round(decision["delay"], 3),
            "elapsed": round(elapsed, 4),
            # What a JSON-protocol client sent, for asserting on what moto does not store (StopExecution's
            # error and cause, UpdateService's forceNewDeployment).
            "params": (req.params() or None) if len(req.body or b"") <= PARAMS_LOG_LIMIT else None,
        }
        with self._lock:
            entry["seq"] = next(self._seq)
            self._log.append(entry)

    def log(self) -> list[dict]:
        """Recent requests (oldest first, at most ``LOG_SIZE``): service, action, status, fault applied."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def in_flight(self) -> int:
        """How many API requests are being handled now (the control API and /moto-api not counted)."""
        with self._lock:
            return self._in_flight

    def quiesce(self, timeout: float = 30.0) -> int:
        """Wait until no API request is in flight, at most ``timeout`` seconds; returns how many still are.

        A client killed mid-call leaves its request here (held by a latency rule, or still at the upstream): it
        reaches the API and the log after its client is gone, as a real API finishes a call whose caller left.
        A reset made meanwhile would see that request land afterwards, in the next test's state and log."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.in_flight()
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.02)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
