"""The proof suites' own fixture (a fault proxy in front of the Kubernetes API test server) and the tally printed at
the end of the session: cases tried, faults survived, records lost, end states that differed."""

from __future__ import annotations

import pytest

from tests.integration.proof_faults import support


@pytest.fixture(scope="session")
def kube_proxy(sandbox, tmp_path_factory):
    """The worker's Kubernetes fault proxy, with a kubeconfig aimed at it."""
    kproxy = support.KubeProxy(sandbox, tmp_path_factory.mktemp("kproxy"))
    yield kproxy
    kproxy.stop()


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput"):
        return
    text = support.summary(support.results_file(config))
    if text:
        terminalreporter.section("proof tally")
        terminalreporter.write_line(text)
