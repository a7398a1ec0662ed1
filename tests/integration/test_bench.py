"""The benchmarks still run and still measure what they say (no timing is asserted here)."""

from __future__ import annotations

import os

import pytest

from bench.run import bench_rollback, bench_timeline

pytestmark = pytest.mark.integration


def test_rollback_benchmark_rolls_back_with_both_tools(aws):
    env = {**os.environ, **aws.env(), "FIREBREAK_INCIDENT_ID": "BENCH-TEST"}
    result = bench_rollback(aws, env, repeat=1)
    assert len(result["runs"]["ansible"]) == len(result["runs"]["boto3"]) == 1
    assert result["ratio"] > 0


def test_timeline_benchmark_compares_with_and_without_the_callback(sandbox, tmp_path):
    env = {**os.environ, **sandbox.env(), "FIREBREAK_INCIDENT_ID": "BENCH-TEST"}
    result = bench_timeline(env, repeat=1, steps=2, workdir=tmp_path)
    assert result["steps"] == 2 and result["with_s"] > 0 and result["without_s"] > 0
