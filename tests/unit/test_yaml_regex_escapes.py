"""A regex in a folded or plain YAML scalar keeps its backslashes as written: ``'[^,\\\\s]+'`` there reaches Jinja
as a class of a backslash and the letter s, so ``'x1.5s, y'`` splits into ``['x1.5', ' y']`` (a survey's list
value as one string, cut at every s). Only a double-quoted scalar turns ``\\\\`` into one backslash. Every
string of the playbooks and roles is checked as Ansible reads it: a doubled backslash before a regex class letter
is that mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sandbox import REPO_ROOT

FILES = sorted(
    [*(REPO_ROOT / "playbooks").glob("*.yml"), *(REPO_ROOT / "roles").glob("*/*/*.yml")],
    key=str,
)
DOUBLED = re.compile(r"\\\\[sdwSDW.]")


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_regex_reaches_jinja_with_a_doubled_backslash(path: Path):
    data = yaml.safe_load(path.read_text())
    bad = [s for s in _strings(data) if "{{" in s or "{%" in s or "regex" in s if DOUBLED.search(s)]
    assert not bad, f"{path.relative_to(REPO_ROOT)}: {[DOUBLED.search(s).group(0) for s in bad]} in {bad[0][:200]!r}"
