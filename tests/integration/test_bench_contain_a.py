"""bench/waf_block.py and bench/iam_quarantine.py still run and measure what they say, on tiny sizes
(no timing is asserted here)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench import iam_quarantine, waf_block

pytestmark = [pytest.mark.integration, pytest.mark.proof]  # a benchmark-as-test: make proof


def test_waf_block_benchmark_blocks_with_the_step_and_the_loop(aws):
    figures = waf_block.run(aws, SimpleNamespace(addresses=50, loop_sample=5))
    # the shared set is not tagged; the last call reads the set back (the step contract's `after`)
    assert figures["step"]["calls"] == ["GetWebACL", "GetIPSet", "UpdateIPSet", "GetIPSet"]
    assert figures["loop"]["api_calls_timed"] == 10 and figures["loop"]["extrapolated_api_calls"] == 100
    assert figures["speedup"] > 0
    assert any("**4 calls**" in line and "meets" in line for line in waf_block.report(figures))


def test_iam_benchmark_quarantines_every_user_each_way(aws):
    figures = iam_quarantine.run(aws, SimpleNamespace(users=3, workers=3, loop_sample=1))
    assert figures["concurrent"]["users_timed"] == figures["sequential"]["users_timed"] == 3
    assert figures["concurrent"]["api_calls"] == figures["sequential"]["api_calls"] > 0
    assert figures["task_loop"]["users_timed"] == 1
    assert any(f"**{figures['speedup_vs_sequential']}x**" in line for line in iam_quarantine.report(figures))
