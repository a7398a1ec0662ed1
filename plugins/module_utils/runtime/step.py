# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What every incident step module shares: bounded AWS calls, time parsing, the containment entry.

Bounded calls
    ``amazon.aws``'s ``AWSRetry`` (and botocore's own retries) let a permanent 5xx take minutes to
    surface, and the failure message omits the AWS error code.  During an incident that is wrong.
    ``aws_client`` makes a client with botocore's retries off; ``call`` (or a ``Caller`` bound to a
    budget) retries throttling and transient errors with jittered backoff, but never starts an attempt
    that would end after the budget (60 s by default), and raises ``StepAWSError`` naming the API call,
    the AWS error code and the resource::

        ecs = aws_client(module, "ecs")
        caller = Caller(module.params["retry_budget"])
        service = caller(ecs, "describe_services", f"service {name!r}", cluster=c, services=[name])

    A module adds ``RETRY_BUDGET_OPTION`` to its argument spec (and the ``retry_budget`` option to its
    DOCUMENTATION via the ``firebreak.runbooks.step`` doc fragment) and fails with ``fail_step``.

Times
    ``parse_time`` accepts ISO 8601 with or without an offset (naive means UTC), ``Z``, and epoch
    seconds; it returns an aware UTC datetime and raises ``ValueError`` naming the value.

The runner
    ``run_aws_step(run, STEP_KIND, ARGUMENT_SPEC)`` is a step module's whole ``main()`` (the Kubernetes
    steps reach ``run_step`` through ``k8s_common.run_module``): it runs ``run(module, result)``, stamps
    the result contract (``step_kind``, ``containment`` always a list; docs/contract.md) and turns any
    ``StepError`` into ``fail_json`` with the error's message, its call and code, and the partial result.

Containment
    ``containment_entry`` builds the ``containment`` return value that the timeline records and that
    a role's ``released`` mode reads back (``lookup('firebreak.runbooks.containments', ...)``).
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import json
import random
import re
import threading
import time

from ansible.module_utils.basic import env_fallback

try:
    import boto3.session
    import botocore.config
    import botocore.exceptions
    import botocore.utils
    from dateutil.tz import tzutc as _tzutc
except ImportError:  # pragma: no cover - AnsibleAWSModule reports the missing library
    botocore = None

DEFAULT_RETRY_BUDGET = 60

RETRY_BUDGET_OPTION = {"retry_budget": {"type": "int", "default": DEFAULT_RETRY_BUDGET}}
# Documented by the firebreak.runbooks.step.DEADLINE fragment.
DEADLINE_OPTION = {"mitigation_deadline": {"type": "int", "default": DEFAULT_RETRY_BUDGET}}

# Throttling: the call was not made; retrying is always safe.
THROTTLING_CODES = frozenset(
    (
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
        "PriorRequestNotComplete",
        "LimitExceededException",  # WAFv2 and Step Functions use it for rate limits
    )
)
# Transient server-side errors.
TRANSIENT_CODES = frozenset(
    (
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerErrorException",
        "InternalServiceError",
        "InternalServiceErrorException",
        "ServerException",
        "ServiceException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "WAFInternalErrorException",
        "WAFUnavailableEntityException",
    )
)

BASE_DELAY = 0.5
MAX_DELAY = 8.0


# What a step does, for the report's clock (docs/contract.md).  Every step result carries one.
STEP_KINDS = ("containment", "mitigation", "recovery", "evidence", "verification")


class StepError(Exception):
    """The one base of every error a step raises on purpose (bad input, a failed call, a wait that ran
    out).  ``run_step`` turns it into ``fail_json``: ``msg`` is the error's ``message`` (else its text)
    and ``fail_result()`` adds what a playbook branches on (the call, the code, the resource) and what
    the step had done so far."""

    def fail_result(self):
        return {}


class StepAWSError(StepError):
    """An AWS call failed for good (or ran out of its retry budget).

    ``operation`` is the API call (``UpdateService``), ``code`` the AWS error code (``None`` for a
    connection error), ``resource`` what the call was about, ``attempts`` and ``elapsed`` how hard it
    tried.
    """

    def __init__(self, operation, code, message, resource=None, attempts=1, elapsed=0.0, exception=None):
        self.operation = operation
        self.code = code
        self.aws_message = message
        self.resource = resource
        self.attempts = attempts
        self.elapsed = elapsed
        self.exception = exception
        text = f"{operation} failed"
        if resource:
            text += f" for {resource}"
        if code:
            text += f": {code}"
        elif exception is None or isinstance(exception, _CONNECTION_ERRORS):
            text += ": connection error"
        else:  # refused by botocore before anything was sent (ParamValidationError and the like)
            text += f": not sent: {type(exception).__name__}"
        if message:
            text += f": {message}"
        if attempts > 1:
            text += f" (gave up after {attempts} attempts in {elapsed:.1f}s)"
        super().__init__(text)

    def result(self):
        """Keys a module adds to ``fail_json`` so playbooks can branch on the error."""
        return {
            "aws_operation": self.operation,
            "aws_error_code": self.code,
            "resource": self.resource,
            "attempts": self.attempts,
        }

    fail_result = result


def operation_name(client, method):
    """``UpdateService`` for ``update_service`` (the name AWS documents and CloudTrail shows)."""
    mapping = getattr(getattr(client, "meta", None), "method_to_api_mapping", None) or {}
    return mapping.get(method) or "".join(part.capitalize() for part in method.split("_"))


def error_details(exc):
    """``(code, message, http_status)`` of a botocore exception."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return error.get("Code"), error.get("Message") or str(exc), status


def is_retryable(code, status, extra_codes=()):
    """Throttling and transient errors (and any 5xx or 429 without a known code) are retried."""
    if code in THROTTLING_CODES or code in TRANSIENT_CODES or code in extra_codes:
        return True
    return bool(status) and (status >= 500 or status == 429) and code not in _PERMANENT_5XX


# 5xx answers that will not clear by retrying (an unimplemented call, for example).
_PERMANENT_5XX = frozenset(("NotImplemented", "NotImplementedException"))


def backoff_delay(attempt, base=BASE_DELAY, cap=MAX_DELAY, rng=random.random):
    """Full-jitter exponential backoff: a random delay in [base/2, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * (2**attempt))
    return max(base / 2, ceiling * rng())


class Caller:
    """Make AWS calls within a retry budget (seconds), shared by every call of one step.

    The budget applies per call: each call may retry for up to ``budget`` seconds.  ``sleep`` and
    ``clock`` are injectable for tests.
    """

    REPORT_MARGIN = 2.0  # seconds of a ``deadline`` kept for failing the module and the timeline's record

    def __init__(
        self, budget=DEFAULT_RETRY_BUDGET, extra_codes=(), sleep=time.sleep, clock=time.monotonic, deadline=None
    ):
        self.budget = float(budget if budget is not None else DEFAULT_RETRY_BUDGET)
        self.extra_codes = frozenset(extra_codes)
        self.sleep = sleep
        self.clock = clock
        self.calls = 0
        # ``deadline`` (the ``mitigation_deadline`` option): seconds from now within which every call fails
        # and is reported, until ``end_deadline()`` (the mitigating call was made, or there is none).  A
        # permanent 5xx on the mitigating call after a few slow reads then does not take the budget plus
        # those reads; the wait and verification calls after it get the per-call budget again.
        self.deadline = None
        if deadline is not None:
            self.deadline = self.clock() + max(0.0, deadline - min(self.REPORT_MARGIN, deadline / 10))

    def end_deadline(self) -> None:
        self.deadline = None

    def __call__(self, client, method, resource=None, retry_codes=(), **params):
        operation = operation_name(client, method)
        start = self.clock()
        deadline = start + self.budget
        if self.deadline is not None:
            deadline = max(start, min(deadline, self.deadline))
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            began = self.clock()
            try:
                return getattr(client, method)(**params)
            except Exception as exc:  # botocore ClientError and connection errors
                if botocore is None or not isinstance(exc, (botocore.exceptions.BotoCoreError, _client_error())):
                    raise
                if isinstance(exc, _client_error()):
                    code, message, status = error_details(exc)
                else:
                    code, message, status = None, str(exc), None
                    if not isinstance(exc, _CONNECTION_ERRORS):
                        raise StepAWSError(operation, None, message, resource, attempt, 0.0, exc) from None
                retryable = code is None or is_retryable(code, status, self.extra_codes | frozenset(retry_codes))
                delay = backoff_delay(attempt - 1)
                now = self.clock()
                # no attempt that would end after the budget: allow for one more attempt as long as this one
                if not retryable or now + delay + (now - began) >= deadline:
                    raise StepAWSError(operation, code, message, resource, attempt, now - start, exc) from None
                self.sleep(delay)

    def paginate(self, client, method, resource=None, result_key=None, token_in="NextToken", token_out=None, **params):  # noqa: S107
        """Yield every page of a listing, each page call within the budget.

        ``token_out`` defaults to ``token_in``; pass e.g. ``token_in="KeyMarker"`` and a
        ``tokens`` mapping through repeated calls for multi-token listings (see ``paginate_multi``).
        """
        token_out = token_out or token_in
        asked = {params.get(token_in)}
        while True:
            page = self(client, method, resource, **params)
            yield page
            token = page.get(token_out)
            if not token:
                return
            advance_or_fail(client, method, resource, asked, token, f"its {token_out}")
            params = dict(params, **{token_in: token})

    def paginate_multi(self, client, method, resource, tokens, truncated_key="IsTruncated", **params):
        """Pages of a listing with several continuation tokens (S3 ``ListObjectVersions``:
        ``tokens={"KeyMarker": "NextKeyMarker", "VersionIdMarker": "NextVersionIdMarker"}``)."""
        asked = {tuple(params.get(key) for key in tokens)}
        while True:
            page = self(client, method, resource, **params)
            yield page
            if not page.get(truncated_key):
                return
            params = dict(params)
            for request_key, response_key in tokens.items():
                if page.get(response_key) is not None:
                    params[request_key] = page[response_key]
                else:
                    params.pop(request_key, None)
            markers = tuple(params.get(key) for key in tokens)
            advance_or_fail(client, method, resource, asked, markers, f"its {'/'.join(tokens.values())}")


def advance_or_fail(client, method, resource, asked, token, what):
    """Stop a listing whose next page would be one already asked for (a truncated answer without a
    new token, or tokens that come round again), instead of listing, and growing, for ever."""
    if token in asked:
        raise StepAWSError(
            operation_name(client, method),
            "ListingDidNotAdvance",
            f"the answer was truncated but {what} asks for a page already listed; stopped instead of listing for ever",
            resource,
        )
    asked.add(token)


def _client_error():
    return botocore.exceptions.ClientError


_CONNECTION_ERRORS = ()
if botocore is not None:
    _CONNECTION_ERRORS = (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.ConnectTimeoutError,
    )


def attempt_timeout(budget) -> int:
    """Seconds one attempt may wait for an answer: half the budget, between 10 and 60 (AWS and Kubernetes)."""
    return max(10, min(60, int(budget) // 2 or 10))


def client_config(budget=DEFAULT_RETRY_BUDGET, pool=None):
    """botocore config for a step client: botocore's own retries off (``Caller`` retries), and
    timeouts that keep one hung attempt inside the budget.

    ``pool``: how many threads share the client.  botocore keeps 10 connections by default, so a
    step running more threads than that would have them queue for a connection.
    """
    read_timeout = attempt_timeout(budget)
    return botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=10,
        read_timeout=read_timeout,
        max_pool_connections=max(10, (pool or 0) + 2),
    )


_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()  # a boto3 session is not thread-safe; its clients are


def _new_client(profile, service, **kwargs):
    """A client from the module process's boto3 session for ``profile`` (``None``: the default chain)."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(profile)
        if session is None:
            session = _SESSIONS[profile] = boto3.session.Session(profile_name=profile)
        return session.client(service, **kwargs)


def aws_client(module, service, budget=None, pool=None):
    """A client for ``service`` with the module's connection options (as ``AnsibleAWSModule.client``
    reads them), botocore retries off, ``pool`` the number of threads that will share it (see
    ``client_config``), and timestamps parsed by ``fast_timestamp``.

    Every client of the module process comes from one boto3 session per profile.
    ``AnsibleAWSModule.client`` makes a new session per client: each one loads botocore's endpoint
    and model data again (about 50 ms a client here) and resolves credentials again, which for an
    assume-role profile is another ``AssumeRole`` call, and from an instance profile another metadata
    request.  A step using three services paid that three times."""
    # Imported here, not at the top: the Kubernetes modules that use this file need no amazon.aws.
    from ansible_collections.amazon.aws.plugins.module_utils import botocore as aws_botocore
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    if budget is None:
        budget = module.params.get("retry_budget") or DEFAULT_RETRY_BUDGET
    # a stand-in module (unit tests) makes its own clients; the step run in its task's worker
    # (plugins/plugin_utils/step_in_task.py, aws_connection) gets them as AnsibleAWSModule's are made
    if not isinstance(module, AnsibleAWSModule) and not getattr(module, "aws_connection", False):
        return fast_timestamps(module.client(service, config=client_config(budget, pool)))
    region, endpoint_url, params = aws_botocore.get_aws_connection_info(module)
    params = dict(params)
    profile = params.pop("profile_name", None)
    # The user agent amazon.aws gives its clients: "APN/1.0 Ansible/<version> <collection>/<version>".
    user_agent = getattr(aws_botocore, "_get_user_agent_string", None)
    config = botocore.config.Config(user_agent=user_agent()) if user_agent else None
    extra = params.pop("aws_config", None)
    for part in (client_config(budget, pool), extra):  # as amazon.aws: the aws_config option last
        if part is not None:
            config = part if config is None else config.merge(part)
    try:
        client = _new_client(profile, service, config=config, region_name=region, endpoint_url=endpoint_url, **params)
    except botocore.exceptions.NoRegionError:
        module.fail_json(
            msg=f"The {module._name} module requires a region and none was found in configuration, "
            "environment variables or module parameters"
        )
    except (ValueError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Couldn't connect to AWS")
    return fast_timestamps(client)


_ISO_UTC_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")
_HTTP_DATE_RE = re.compile(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")


def fast_timestamp(value):
    """botocore's timestamp parser, with a fast path for the two shapes AWS answers with.

    botocore hands every timestamp string to ``dateutil.parser.parse``: about 0.1 ms a value, which
    was 60% of the CPU time of parsing a ListObjectVersions page (1,000 ``LastModified``).  A
    ``2026-11-24T09:30:00.000Z`` body timestamp and a ``Tue, 24 Nov 2026 09:30:00 GMT`` header are
    read directly into the same value botocore returns (an aware datetime in dateutil's ``tzutc``);
    anything else goes to botocore's own parser."""
    if isinstance(value, str):
        match = _ISO_UTC_RE.match(value)
        if match:
            fields = [int(part) for part in match.groups()[:6]]
            micro = int((match.group(7) or "0").ljust(6, "0")[:6])
            try:
                return datetime.datetime(*fields, micro, tzinfo=_tzutc())
            except ValueError:
                pass
        elif _HTTP_DATE_RE.match(value):
            try:
                return email.utils.parsedate_to_datetime(value).replace(tzinfo=_tzutc())
            except (TypeError, ValueError):
                pass
    return botocore.utils.parse_timestamp(value)


def fast_timestamps(client):
    """Make ``client`` (and the clients of its session) parse timestamps with ``fast_timestamp``, the
    way the AWS CLI sets its own timestamp parser.  A client without the hook is left as it is."""
    factory = getattr(getattr(client, "_endpoint", None), "_response_parser_factory", None)
    if factory is not None and hasattr(factory, "set_parser_defaults"):
        factory.set_parser_defaults(timestamp_parser=fast_timestamp)
    return client


def mapping_for_list_problems(argument_spec, params):
    """Messages for mappings given to ``type: list`` options, each naming the option and the value.

    Ansible's own coercion refuses them naming the option only ("argument 'keys' is of type dict and we were
    unable to convert to list"), which leaves the responder to find the value; a ``no_log`` option's value is
    not shown."""
    problems = []
    for name, spec in argument_spec.items():
        if spec.get("type") != "list":
            continue
        for key in (name, *(spec.get("aliases") or ())):
            value = params.get(key)
            if isinstance(value, dict):
                shown = "(value hidden: no_log)" if spec.get("no_log") else json.dumps(value, default=str)[:300]
                problems.append(
                    f"{key}: expected a list, got the mapping {shown}; write each item on its own '- ' line"
                )
    return problems


def refuse_mappings_for_lists(argument_spec):
    """``run_aws_step`` calls it before the module is built: fail naming the option and the value (see
    ``mapping_for_list_problems``).  Nothing has been called or changed at that point."""
    from ansible.module_utils import basic

    params = basic._load_params()
    if not isinstance(params, dict):  # no arguments to read (ansible-test's argument-spec introspection)
        return
    problems = mapping_for_list_problems(argument_spec, params)
    if problems:
        print(json.dumps({"failed": True, "changed": False, "msg": "; ".join(problems)}))
        raise SystemExit(1)


def fail_step(module, err, **result):
    """``fail_json`` for a ``StepAWSError``: the message names the call, the code and the resource."""
    module.fail_json(msg=str(err), **err.result(), **result)


# --------------------------------------------------------------------------------------------------
# The runner: one main() for every step module
# --------------------------------------------------------------------------------------------------


def step_result(result, step_kind):
    """``result`` with the contract's fixed fields: ``step_kind``, ``predicted``, and ``containment``
    (``[]`` when the step set none).  A ``containment`` that is not a list is left as it is, for the
    contract test to find: the step builds the list, the runner does not guess it."""
    if step_kind not in STEP_KINDS:
        raise ValueError(f"step_kind {step_kind!r} is not one of {', '.join(STEP_KINDS)}")
    out = dict(result)
    out["step_kind"] = step_kind
    out.setdefault("predicted", False)
    if out.get("containment") is None:
        out["containment"] = []
    return out


def failed_result(err, result, step_kind):
    """The ``fail_json`` keywords for ``err``: the partial ``result`` (``changed`` only if the step did
    change something before it failed), the error's own keys, its message, and the contract's fields."""
    out = {"changed": False, **result}
    out.pop("msg", None)
    out.update(err.fail_result())
    message = getattr(err, "message", None) or str(err)
    note = getattr(err, "note", None)
    out["msg"] = f"{message}; {note}" if note else message
    return step_result(out, step_kind)


def run_step(module, run, step_kind):
    """Run ``run(module, result)`` and end the module: ``exit_json`` with the result (the returned dict,
    else ``result`` as ``run`` filled it; in diff mode ``diff`` is ``before``/``after`` unless the step
    set its own), or ``fail_json`` for a ``StepError`` with what ``run`` had put in ``result`` so far."""
    predicted = bool(module.check_mode)
    fail_json = module.fail_json

    def fail_json_by_contract(**failed):
        # a step that reports its own failure (with what it contained so far) keeps the contract too
        fail_json(**step_result(dict(failed, predicted=predicted), step_kind))

    module.fail_json = fail_json_by_contract
    result = {}
    try:
        out = run(module, result)
    except StepError as err:
        module.fail_json(**failed_result(err, result, step_kind))
    result = result if out is None else out
    if getattr(module, "_diff", False) and "diff" not in result and "before" in result and "after" in result:
        result = dict(result, diff={"before": result["before"], "after": result["after"]})
    module.exit_json(**step_result(dict(result, predicted=predicted), step_kind))


def run_aws_step(run, step_kind, argument_spec, **options):
    """A whole AWS step module's ``main()``: ``AnsibleAWSModule`` with check mode, then ``run_step``.
    ``options`` go to the module (``mutually_exclusive``, ``required_if``, ...)."""
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    refuse_mappings_for_lists(argument_spec)  # before Ansible's own message, which names no value
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True, **options)
    run_step(module, run, step_kind)


# --------------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------------

_EPOCH_RE = re.compile(r"^\d{9,11}(\.\d+)?$")


def utc_now():
    return datetime.datetime.now(datetime.UTC)


def parse_time(value):
    """An aware UTC datetime for ISO 8601 (offset or ``Z``; naive means UTC) or epoch seconds.

    Raises ``ValueError`` naming the value."""
    if isinstance(value, datetime.datetime):
        parsed = value
    else:
        text = str(value if value is not None else "").strip()
        if not text:
            raise ValueError("empty time: expected ISO 8601 such as 2026-11-24T09:30:00Z")
        if _EPOCH_RE.match(text):
            return datetime.datetime.fromtimestamp(float(text), datetime.UTC)
        candidate = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        candidate = candidate.replace(" ", "T", 1) if "T" not in candidate and " " in candidate else candidate
        try:
            parsed = datetime.datetime.fromisoformat(candidate)
        except ValueError:
            raise ValueError(
                f"unparseable time {value!r}: expected ISO 8601 such as 2026-11-24T09:30:00Z "
                "or 2026-11-24T10:30:00+01:00"
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def iso_seconds(value):
    """``2026-11-24T13:30:00Z``: whole seconds (as Kubernetes timestamps and the ECS step records)."""
    return value.astimezone(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def isoformat(value):
    """``value.isoformat()`` for a date or time from an API answer; anything else as it is."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def iso_utc(value):
    """``2026-11-24T09:30:00Z`` (seconds; milliseconds when present) for an aware datetime."""
    if value is None:
        return None
    value = value.astimezone(datetime.UTC)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------
# Incident tags and the containment entry
# --------------------------------------------------------------------------------------------------

INCIDENT_TAG = "firebreak:incident"
# The environment variable names the incident when no task passes it (the callback reads the same one).
INCIDENT_OPTION = {"incident_id": {"type": "str", "fallback": (env_fallback, ["FIREBREAK_INCIDENT_ID"])}}


def incident_tags(incident_id, step=None):
    """Tags that mark a resource as touched by ``incident_id`` (``{}`` without an incident id)."""
    if not incident_id:
        return {}
    tags = {INCIDENT_TAG: str(incident_id)}
    if step:
        tags["firebreak:step"] = str(step)
    return tags


def containment_entry(incident_id, step, resource, changed, **extra):
    """The ``containment`` value a containment module returns (and the timeline records).

    ``step`` is the role name (``waf_block``), ``resource`` the contained resource (an ARN or id),
    ``changed`` exactly what was changed (a dict: ``{"added": [...]}``, ``{"deactivated": [...]}``,
    ``{"groups": {eni: [old groups]}}``) so that the release undoes exactly that.  ``id`` is a stable
    digest of the rest, so the release of an entry can name it.
    """
    entry = {
        "incident_id": incident_id,
        "step": step,
        "resource": resource,
        "changed": changed,
        "at": iso_utc(utc_now()),
    }
    entry.update(extra)
    body = json.dumps({k: v for k, v in entry.items() if k != "at"}, sort_keys=True, default=str)
    entry["id"] = hashlib.sha256((body + entry["at"]).encode("utf-8")).hexdigest()[:16]
    return entry


def release_entry(incident_id, step, resource, released_ids, restored, left_alone=None, **extra):
    """The ``release`` value a module returns when it undoes containments ``released_ids``.

    ``restored`` is what was undone; ``left_alone`` what was found changed by someone else meanwhile
    and therefore not touched (reported, never reverted)."""
    entry = {
        "incident_id": incident_id,
        "step": step,
        "resource": resource,
        "releases": sorted(released_ids),
        "restored": restored,
        "left_alone": left_alone or {},
        "at": iso_utc(utc_now()),
    }
    entry.update(extra)
    return entry
