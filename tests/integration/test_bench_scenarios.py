"""The scenarios benchmark runs one scenario end to end: the scenario, its AWS CLI script and its boto3 script each
fix the drill's fault, the two baselines make the same AWS calls, and the report carries the ratios (no timing is
asserted). Proof-marked: three runs of a scenario on a sandbox reset each time."""

from __future__ import annotations

import argparse

import pytest

from bench import scenarios

pytestmark = [pytest.mark.integration, pytest.mark.proof]


def test_scenarios_benchmark_runs_one_scenario_side_by_side(sandbox):
    args = argparse.Namespace(scenario=["lambda_failure"], repeat=5, repeat_given=False)
    figures = scenarios.run(sandbox, args)
    assert figures["repeat"] == 1, "one repetition unless --repeat is given"
    one = figures["scenarios"]["lambda_failure"]
    for variant in scenarios.VARIANTS:
        if variant == "cli" and one["cli"].get("skipped"):
            continue
        assert one[variant]["fixed"], (variant, one[variant])
        assert one[variant]["s"] > 0 and one[variant]["calls"]["per_service"].get("lambda"), (variant, one[variant])
    if not one["cli"].get("skipped"):
        assert one["cli"]["calls"] == one["boto3"]["calls"], "the two baselines make the same calls"
        assert set(one["ratios"]) >= {"vs_cli", "vs_cli_without_startup", "vs_boto3", "vs_boto3_without_startup"}
    assert figures["empty_s"] > 0
    text = scenarios.render(figures)
    assert text.startswith("## scenarios\n") and "| lambda_failure |" in text
