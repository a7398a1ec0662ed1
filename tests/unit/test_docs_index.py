"""docs/README.md, the index of the steps, names every role and every module, and its links resolve."""

from __future__ import annotations

import re

import pytest
import yaml

from sandbox import REPO_ROOT

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
    # a record module (incident_note) is listed under the modules outside the steps, and also in the row of a
    # frame role (incident_*) that records with it; a module only the frame roles call (incident_lifecycle:
    # declare, update, resolve) is in each of their rows and counted once
    # (a step role that records a decision with incident_note, as evidence_capture does, names it in its row too)
    framed = {name for role, cells in steps.items() if role.startswith("incident_") for name in _names(cells[1])}
    assert all(others[name][2] == "record" for name in framed if name in others), framed
    framed |= {name for name, cells in others.items() if cells[2] == "record"}
    listed = [
        name
        for role, cells in steps.items()
        if not role.startswith("incident_")
        for name in _names(cells[1])
        if name not in framed
    ]
    listed += sorted(framed - set(others)) + list(others)
    assert sorted(listed) == MODULES, set(listed) ^ set(MODULES)


@pytest.mark.parametrize("role", ROLES)
def test_the_row_names_the_modules_the_role_calls(role):
    tasks = "\n".join(path.read_text() for path in (REPO_ROOT / "roles" / role / "tasks").glob("*.yml"))
    called = set(re.findall(r"^\s*firebreak\.runbooks\.([a-z0-9_]+):", tasks, re.M))
    assert _names(_rows("Steps (one role each)")[role][1]) == called


def _returned_kind(module: str) -> str:
    """The ``step_kind`` a module documents in RETURN (the contract test checks the module returns it)."""
    source = (REPO_ROOT / "plugins" / "modules" / f"{module}.py").read_text()
    returned = yaml.safe_load(source.split('RETURN = r"""', 1)[1].split('"""', 1)[0]) or {}
    return (returned.get("step_kind") or {}).get("sample", "record")


@pytest.mark.parametrize("role", ROLES)
def test_the_step_kind_is_what_the_modules_return(role):
    """The report classifies a step by the step_kind its module returns: the index says the same."""
    row = _rows("Steps (one role each)")[role]
    kind = row[2]
    assert kind in KINDS, kind
    records = {name for name, cells in _rows("Modules outside the step roles").items() if cells[2] == "record"}
    for module in _names(row[1]) - records:  # a note the step records is not the step
        assert _returned_kind(module) == kind, (role, module)


def test_the_kind_of_each_other_module_is_what_it_returns():
    for module, cells in _rows("Modules outside the step roles").items():
        assert _returned_kind(module) == cells[2], module


def test_every_linked_page_exists():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", INDEX.read_text())
    assert len(links) > len(ROLES)
    missing = [link for link in links if not (INDEX.parent / link).is_file()]
    assert not missing, missing


@pytest.mark.parametrize("role", ROLES)
def test_each_role_links_its_own_step_page(role):
    assert f"(steps/{role}.md)" in _rows("Steps (one role each)")[role][4]
