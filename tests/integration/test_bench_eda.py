"""The event-driven benchmark still runs and measures what it says (no timing is asserted here)."""

from __future__ import annotations

import argparse

import pytest

from bench import eda
from sandbox.rulebook import rulebook_available

pytestmark = [pytest.mark.integration, pytest.mark.proof]  # a benchmark-as-test: make proof

if not rulebook_available():
    pytest.skip("ansible-rulebook and a Java 17+ runtime are needed", allow_module_level=True)


def test_eda_benchmark_measures_alarm_to_mitigation_and_recovery(aws):
    figures = eda.run(aws, argparse.Namespace())
    # in order: read, Ansible started, the mitigating call, verified, finished
    assert 0 < figures["read_s"] < figures["playbook_start_s"] < figures["first_mitigation_s"], figures
    assert figures["first_mitigation_s"] < figures["verified_s"] <= figures["finished_s"], figures
    assert figures["verified_task"] and figures["empty_playbook_s"] > 0
    lines = eda.report(figures)
    assert any("first mitigating call" in line for line in lines)
