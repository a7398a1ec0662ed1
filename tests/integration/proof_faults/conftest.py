"""The proof suites' own fixture: a fault proxy in front of the Kubernetes API test server. Their tally (cases tried,
faults survived, records lost, end states that differed) is printed by tests/conftest.py at the end of the session."""

from __future__ import annotations

import pytest

from tests.integration.proof_faults import support


@pytest.fixture(scope="session")
def kube_proxy(sandbox, tmp_path_factory):
    """The worker's Kubernetes fault proxy, with a kubeconfig aimed at it."""
    kproxy = support.KubeProxy(sandbox, tmp_path_factory.mktemp("kproxy"))
    yield kproxy
    kproxy.stop()
