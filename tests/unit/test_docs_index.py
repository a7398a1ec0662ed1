"""docs/README.md, the index of the steps, names every role and every module, and its links resolve."""

from __future__ import annotations

import re
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils import timeline

INDEX = REPO_ROOT / "docs" / "README.md"
KINDS = {"containment", "mitigation", "recovery", "evidence", "verification", "record"}


def _rows(heading: str) -> dict[str, list[str]]:
    """First cell (without backticks) -> the row's cells, for the table under ``heading``."""
    text = INDEX.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    return rows


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`([a-z0-9_]+)`", cell))


ROLES = sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if path.is_dir())
MODULES = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__")


def test_every_role_has_a_row_and_no_row_names_a_missing_role():
    assert set(_rows("Steps (one role each)")) == set(ROLES)


def test_every_module_appears_once_in_the_index():
    steps, others = _rows("Steps (one role each)"), _rows("Modules outside the step roles")
    listed = [name for cells in steps.values() for name in _names(cells[1])] + list(others)
    assert sorted(listed) == MODULES, set(listed) ^ set(MODULES)


@pytest.mark.parametrize("role", ROLES)
def test_the_row_names_the_modules_the_role_calls(role):
    tasks = "\n".join(path.read_text() for path in (REPO_ROOT / "roles" / role / "tasks").glob("*.yml"))
    called = set(re.findall(r"^\s*firebreak\.runbooks\.([a-z0-9_]+):", tasks, re.M))
    assert _names(_rows("Steps (one role each)")[role][1]) == called


@pytest.mark.parametrize("role", ROLES)
def test_the_step_kind_is_what_the_report_classifies(role):
    """A timeline record of the role's step call names the role and the module; the report classifies by both."""
    row = _rows("Steps (one role each)")[role]
    kind = row[2]
    assert kind in KINDS, kind
    for module in _names(row[1]):
        classified = timeline.classify_step(role=role, action=f"firebreak.runbooks.{module}")
        assert classified == (kind if kind in {"containment", "recovery"} else None), (role, module, classified)


def test_every_linked_page_exists():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", INDEX.read_text())
    assert len(links) > len(ROLES)
    missing = [link for link in links if not (INDEX.parent / link).is_file()]
    assert not missing, missing


@pytest.mark.parametrize("role", ROLES)
def test_each_role_links_its_own_step_page(role):
    assert f"(steps/{role}.md)" in _rows("Steps (one role each)")[role][4]
