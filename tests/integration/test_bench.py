"""The benchmarks still run and still measure what they say (no timing is asserted here).

make test runs one cheap benchmark (the rollback, both tools once) as the check that ``make bench`` still works;
the others are long benchmarks-as-tests, marked proof (make proof runs them)."""

from __future__ import annotations

import os

import pytest

from bench.run import bench_rollback, bench_timeline, timeline_report

pytestmark = pytest.mark.integration


def test_rollback_benchmark_rolls_back_with_both_tools(aws):
    env = {**os.environ, **aws.env(), "FIREBREAK_INCIDENT_ID": "BENCH-TEST"}
    result = bench_rollback(aws, env, repeat=1)
    assert len(result["runs"]["ansible"]) == len(result["runs"]["boto3"]) == 1
    assert result["ratio"] > 0


@pytest.mark.proof
def test_timeline_benchmark_compares_with_and_without_the_callback(sandbox, tmp_path):
    env = {**os.environ, **sandbox.env(), "FIREBREAK_INCIDENT_ID": "BENCH-TEST"}
    result = bench_timeline(env, repeat=1, steps=2, workdir=tmp_path)
    assert result["steps"] == 2 and result["with_s"] > 0 and result["without_s"] > 0
    assert result["record_ms"] > 0 and result["record_share_pct"] > 0
    lines = timeline_report(result)
    assert any("overhead" in line and f"{result['overhead_pct']}%" in line for line in lines), lines


@pytest.mark.proof
def test_ecs_benchmark_measures_first_mutation_and_the_step_against_its_floor(aws):
    from bench import ecs as bench_ecs

    env = {**os.environ, **aws.env(), "FIREBREAK_INCIDENT_ID": "BENCH-TEST"}
    first = bench_ecs.first_mutation(aws, env, repeat=1)
    assert first["service_down"]["first_mutation_s"] > 0 and first["empty_playbook_s"] > 0
    assert first["service_down"]["update_service_s"] >= first["service_down"]["first_mutation_s"]
    # the floor of the first mutating call, measured in the same run: one thin module making the one UpdateService
    assert first["floor"]["update_service_s"] == first["floor"]["first_mutation_s"] > 0
    assert first["service_down"]["first_mutation_vs_floor"] == round(
        first["service_down"]["first_mutation_s"] / first["floor"]["update_service_s"], 2
    )
    step = bench_ecs.compare_step(aws, env, "restart", repeat=1, aws=None)  # no AWS CLI in tests (no download)
    assert step["same_calls_as_thin"], (step["step_calls"], step.get("thin_calls"), step.get("thin_aws_calls"))
    assert step["thin_aws_s"] > 0 and len(step["runs"]["thin_aws"]) == 1
    assert (
        step["step_calls"][:2] == ["DescribeServices", "DescribeTargetHealth"] and "UpdateService" in step["step_calls"]
    )
    lines = bench_ecs.report({"first_mutation": first, "steps": {"restart": step}, "awscli": "skipped: test"})
    assert any("restart: step" in line and "thin AnsibleAWSModule module" in line for line in lines), lines
    assert any(line.startswith("service_down: first mutating call") and "x the floor" in line for line in lines), lines
