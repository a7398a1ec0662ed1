"""The Kubernetes steps' API layer (``k8s_common.Kube``): what is retried within ``retry_budget``, what fails at once,
and that no call waits for ever on an API server that does not answer."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

import pytest
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from sandbox import REPO_ROOT
from tests.unit.fakes import Clock

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import common as k8s_common
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    K8sInputError,
    K8sStepError,
    Kube,
)

HOST = "https://10.0.0.1:6443"


class FakeDynamicClient:
    """``K8SClient.client.request`` answering from a list of outcomes (an exception to raise, or a dict)."""

    def __init__(self, clock, outcomes, took=0.05):
        self.clock = clock
        self.outcomes = list(outcomes)
        self.took = took
        self.calls = []

    def request(self, verb, path, body=None, serialize=False, **params):
        self.calls.append((verb, path, params))
        self.clock.now += self.took
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return type("Resp", (), {"data": json.dumps(outcome).encode()})()


class FakeK8s:
    def __init__(self, client):
        self.client = client
        self.configuration = type("Configuration", (), {"host": HOST})()


def kube(outcomes, budget=60, took=0.05):
    clock = Clock()
    client = FakeDynamicClient(clock, outcomes, took)
    return Kube(FakeK8s(client), sleep=clock.sleep, budget=budget, clock=clock), client, clock


def api_error(status, reason, message="", headers=None):
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "reason": reason, "message": message}).encode()
    exc.headers = headers or {}
    return exc


def read_timeout():
    return urllib3.exceptions.ReadTimeoutError(None, "/apis/apps/v1", "Read timed out. (read timeout=30)")


def refused():
    reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return urllib3.exceptions.MaxRetryError(None, "/apis/apps/v1", reason)


DEPLOYMENT = {"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}


def test_a_5xx_that_does_not_clear_fails_within_the_budget_naming_the_call_and_status():
    k, client, clock = kube([api_error(503, "ServiceUnavailable", "etcdserver: request timed out")])
    with pytest.raises(K8sStepError) as err:
        k.get("Deployment", "shop", "web")
    msg = str(err.value)
    assert msg.startswith("GET Deployment shop/web failed: 503 ServiceUnavailable: etcdserver: request timed out (")
    assert "retry_budget 60s" in msg
    assert err.value.status == 503
    assert len(client.calls) > 4  # retried, with backoff ...
    assert clock.now <= 60  # ... and given up inside the budget
    assert clock.sleeps[:4] == [0.5, 1.0, 2.0, 4.0] and max(clock.sleeps) == 5.0


def test_a_5xx_that_clears_is_retried_and_the_answer_returned():
    k, client, _ = kube([api_error(500, "InternalError"), api_error(504, "Timeout"), DEPLOYMENT])
    assert k.get("Deployment", "shop", "web") == DEPLOYMENT
    assert len(client.calls) == 3


def test_throttling_waits_as_long_as_retry_after_says():
    k, _, clock = kube([api_error(429, "TooManyRequests", headers={"Retry-After": "3"}), DEPLOYMENT])
    assert k.get("Deployment", "shop", "web") == DEPLOYMENT
    assert clock.sleeps == [3.0]


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "Forbidden"), (404, "NotFound"), (409, "Conflict"), (422, "Invalid")]
)
def test_errors_retrying_cannot_fix_fail_at_once(status, reason):
    k, client, clock = kube([api_error(status, reason, "no")])
    with pytest.raises(K8sStepError) as err:
        k.request("PATCH", "Deployment", "shop", "web", body={})
    assert len(client.calls) == 1 and clock.sleeps == []
    assert str(err.value) == f"PATCH Deployment shop/web failed: {status} {reason}: no"


def test_every_attempt_has_a_connect_and_read_timeout_from_the_budget():
    k, client, _ = kube([DEPLOYMENT], budget=60)
    k.get("Deployment", "shop", "web")
    assert client.calls[0][2]["_request_timeout"] == (10, 30)
    k, client, _ = kube([DEPLOYMENT], budget=0)
    k.get("Deployment", "shop", "web")
    assert client.calls[0][2]["_request_timeout"] == (10, 10)
    k, client, _ = kube([DEPLOYMENT], budget=600)
    k.get("Deployment", "shop", "web")
    assert client.calls[0][2]["_request_timeout"] == (10, 60)


def test_a_read_that_gets_no_answer_is_sent_again_within_the_budget():
    k, _, clock = kube([read_timeout()], took=30)
    with pytest.raises(K8sStepError) as err:
        k.get("Deployment", "shop", "web")
    assert str(err.value).startswith(f"GET Deployment shop/web failed: no answer from the Kubernetes API at {HOST}")
    assert clock.now <= 61  # one 30 s attempt, then what is left of the budget
    k, _, _ = kube([read_timeout(), DEPLOYMENT], took=1)
    assert k.get("Deployment", "shop", "web") == DEPLOYMENT


@pytest.mark.parametrize("verb", ["PATCH", "POST", "DELETE"])
def test_a_write_that_gets_no_answer_is_not_sent_again(verb):
    k, client, _ = kube([read_timeout(), DEPLOYMENT])
    with pytest.raises(K8sStepError) as err:
        k.request(verb, "Deployment", "shop", "web", body={})
    assert len(client.calls) == 1
    assert "may have been carried out: re-run the step, it reads the state again" in str(err.value)


def test_a_write_whose_connection_was_refused_is_sent_again():
    k, client, _ = kube([refused(), refused(), DEPLOYMENT])
    assert k.request("PATCH", "Deployment", "shop", "web", body={}) == DEPLOYMENT
    assert len(client.calls) == 3


def test_a_refused_connection_that_does_not_clear_names_the_server():
    k, client, clock = kube([refused()])
    with pytest.raises(K8sStepError) as err:
        k.get("Deployment", "shop", "web")
    assert f"cannot reach the Kubernetes API at {HOST}" in str(err.value) and "attempts in" in str(err.value)
    assert clock.now <= 60 and len(client.calls) > 3


def test_a_tls_failure_fails_at_once():
    bad_cert = urllib3.exceptions.MaxRetryError(None, "/api", urllib3.exceptions.SSLError("certificate verify failed"))
    k, client, _ = kube([bad_cert])
    with pytest.raises(K8sStepError, match="certificate verify failed"):
        k.get("Deployment", "shop", "web")
    assert len(client.calls) == 1


def test_a_budget_of_zero_makes_one_attempt():
    k, client, _ = kube([api_error(503, "ServiceUnavailable")], budget=0)
    with pytest.raises(K8sStepError) as err:
        k.get("Deployment", "shop", "web")
    assert len(client.calls) == 1 and "attempts" not in str(err.value)


@pytest.mark.parametrize("budget", [-1, "60", True, 1.5])
def test_a_bad_budget_is_refused_naming_it(budget):
    with pytest.raises(K8sInputError, match=f"retry_budget must be an integer >= 0, got {budget!r}"):
        Kube(FakeK8s(None), budget=budget)


class Hanging:
    """A client that takes ``seconds`` and ignores every timeout it is given (as a blocked read can)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.calls = 0

    def request(self, *args, **kwargs):
        self.calls += 1
        time.sleep(self.seconds)


@pytest.fixture
def short_attempts(monkeypatch):
    """Attempts of 1 s, so that the alarm can be shown in a unit test."""
    if threading.current_thread() is not threading.main_thread():
        pytest.fail("the alarm needs the main thread; tests run in it (pytest and pytest-xdist workers)")
    monkeypatch.setattr(k8s_common, "attempt_timeout", lambda budget: 1)


def test_the_alarm_ends_a_call_that_ignores_its_timeout(short_attempts):
    hanging = Hanging(12)
    k = Kube(FakeK8s(hanging), budget=0)
    began = time.monotonic()
    with pytest.raises(K8sStepError, match=r"^GET Deployment shop/web failed: no answer .* within 1s$"):
        k.get("Deployment", "shop", "web")
    assert time.monotonic() - began < 10 and hanging.calls == 1


def test_the_alarm_is_cleared_after_a_call():
    import signal

    k, _, _ = kube([DEPLOYMENT])
    before = signal.getsignal(signal.SIGALRM)
    k.get("Deployment", "shop", "web")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


class FakeModule:
    server_side_dry_run = False

    def __init__(self, **params):
        self.params = {key: None for key in k8s_common.AUTH_ARG_SPEC}
        self.params.update(params)

    def requires(self, *args, **kwargs):
        pass


def test_a_hung_api_server_fails_the_client_creation_instead_of_holding_it(short_attempts, silent_server, tmp_path):
    """kubernetes.core reads the server's version while it creates the client; without a bound that read never
    ended (a step against a hung control plane ran until the job was killed)."""
    url, accepted = silent_server
    module = FakeModule(host=url, api_key="token", retry_budget=0)
    began = time.monotonic()
    with pytest.raises(K8sStepError) as err:
        Kube.from_module(module)
    assert str(err.value) == f"cannot create a Kubernetes client: no answer from the Kubernetes API at {url} within 1s"
    assert time.monotonic() - began < 10 and accepted  # it did connect, and got no answer


def test_a_refused_connection_at_client_creation_names_the_server(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    module = FakeModule(host=f"http://127.0.0.1:{port}", api_key="token", retry_budget=0)
    with pytest.raises(K8sStepError, match=rf"^cannot create a Kubernetes client: .*127\.0\.0\.1.*{port}"):
        Kube.from_module(module)


def test_a_bad_budget_is_refused_before_any_connection():
    with pytest.raises(K8sInputError, match="got -5"):
        Kube.from_module(FakeModule(host="http://127.0.0.1:9", api_key="token", retry_budget=-5))


def test_a_listing_follows_continue_tokens():
    pages = [
        {"metadata": {"continue": "a"}, "items": [1]},
        {"metadata": {"continue": "b"}, "items": [2]},
        {"metadata": {}, "items": [3]},
    ]
    k, client, _ = kube(pages)
    assert k.list("Pod", "shop", limit=1) == [1, 2, 3]
    assert [c[2].get("_continue") for c in client.calls] == [None, "a", "b"]


def test_a_continue_token_that_comes_round_again_fails_instead_of_listing_for_ever():
    pages = [{"metadata": {"continue": "a"}, "items": [1]}, {"metadata": {"continue": "b"}, "items": [2]}]
    pages.append(pages[0])
    k, client, _ = kube(pages)
    with pytest.raises(K8sStepError, match=r"^GET Pods in namespace 'shop' failed: the API answered a continue token"):
        k.list("Pod", "shop", limit=1)
    assert len(client.calls) == 3
