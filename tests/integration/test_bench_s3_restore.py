"""The S3 restore benchmark still runs and counts what it says (no timing is asserted here)."""

from __future__ import annotations

import argparse

import pytest

from bench import s3_restore

pytestmark = [pytest.mark.integration, pytest.mark.proof]  # a benchmark-as-test: make proof


def test_s3_restore_benchmark_restores_with_both_tools_and_counts_calls(aws, tmp_path):
    figures = s3_restore.run(aws, argparse.Namespace(s3_keys=40, s3_concurrency=4))
    assert figures["changed_keys"] == 20
    for kind in ("module", "loop", "floor"):
        calls = figures[kind]["calls"]
        assert calls["list"] == calls["list_bound"] == 1, calls
        assert calls["mutating_per_changed_key"] == 1.0, calls
        assert calls["head"] == 10, calls  # one read per copied key (encryption), none per marker removal
    assert figures["speedup"] > 0 and figures["floor_speedup"] > 0
    out = tmp_path / "results.md"
    out.write_text("# Benchmark results\n\n## other\n\nkept\n\n## s3_restore\n\nold\n")
    s3_restore.write_section(s3_restore.render(figures), out)
    text = out.read_text()
    assert "## other\n\nkept" in text and "old" not in text and text.count("## s3_restore") == 1
