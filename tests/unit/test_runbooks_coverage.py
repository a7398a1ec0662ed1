"""docs/runbooks/README.md: the symptom table and the coverage table of the seed plans' steps stay true.

A row marked ``automated`` names a scenario whose playbook exists and runs the roles or modules the row names; every
role or module named exists (the new steps of issue 17 excepted while they are being built); every row has a
status; every seed plan keeps at least the rows it has today, so deleting a seed's rows fails.
"""

from __future__ import annotations

import configparser
import re

import pytest

from sandbox import REPO_ROOT

DOC = REPO_ROOT / "docs" / "runbooks" / "README.md"

# issue 17's scenarios
SCENARIOS = {
    "service_down",
    "high_error_rate",
    "bad_deploy",
    "database_unavailable",
    "data_loss",
    "security_breach",
    "credential_compromise",
    "auth_attack",
    "pipeline_incident",
    "performance_degradation",
    "lambda_failure",
    "queue_workers_down",
    "k8s_service_down",
    "release_containment",
}
# issue 17's new steps, built on other branches: named as planned, not required to exist yet
PLANNED_STEPS = {
    "s3_write_freeze",
    "rds_snapshot_restore",
    "rds_instance_scale",
    "waf_rate_limit",
    "asg_capacity",
    "sqs_job_move",
    "ec2_reboot",
    "k8s_node_drain",
}
# the actionable steps counted in each seed plan when the table was written: a seed's rows may grow, never shrink
MIN_ROWS = {
    "ecs-fargate-plan.md": 20,
    "eks-batch-stepfunctions-plan.md": 21,
    "incident-procedures.md": 102,
    "k8s-playbooks.md": 59,
    "serverless-neptune-runbook.md": 47,
}
STATUS = re.compile(r"^(automated|planned \(scenario\)|planned \(step ([a-z0-9_]+)\)|manual: \S.{9,})$")
SEED_CELL = re.compile(r"^`([a-z0-9-]+\.md)` § \S.*, l\. \d+$")


def _section(heading: str) -> str:
    return DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _table(heading: str) -> list[list[str]]:
    rows = []
    for line in _section(heading).splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


def _names(cell: str) -> list[str]:
    return re.findall(r"`([a-z0-9_]+)`", cell)


COVERAGE = _table("Coverage")
SYMPTOMS = _table("From symptom or alarm to scenario")
ROW_IDS = [f"{row[0].split('`')[1]}:{row[0].rsplit('l. ', 1)[-1]}:{i}" for i, row in enumerate(COVERAGE)]


def _exists(name: str) -> bool:
    return (REPO_ROOT / "roles" / name / "tasks").is_dir() or any((REPO_ROOT / "plugins").glob(f"*/{name}.py"))


def _enabled_callbacks() -> set[str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO_ROOT / "ansible.cfg")
    enabled = config.get("defaults", "callbacks_enabled", fallback="")
    return {name.strip().rsplit(".", 1)[-1] for name in enabled.split(",") if name.strip()}


def _reached(scenario: str) -> set[str]:
    """Every role and module the scenario's playbook runs, through the roles it includes, and the callbacks on."""
    pending = [(REPO_ROOT / "playbooks" / f"{scenario}.yml").read_text()]
    reached: set[str] = set()
    while pending:
        for name in re.findall(r"firebreak\.runbooks\.([a-z0-9_]+)", pending.pop()):
            if name in reached:
                continue
            reached.add(name)
            tasks = REPO_ROOT / "roles" / name / "tasks"
            if tasks.is_dir():
                pending.extend(path.read_text() for path in sorted(tasks.glob("*.yml")))
    return reached | _enabled_callbacks()


def test_the_tables_were_read():
    assert len(COVERAGE) >= sum(MIN_ROWS.values())
    assert {name for row in SYMPTOMS for name in _names(row[1])} == SCENARIOS


@pytest.mark.parametrize("seed", sorted(MIN_ROWS))
def test_each_seed_keeps_its_rows(seed):
    rows = [row for row in COVERAGE if row[0].startswith(f"`{seed}`")]
    assert len(rows) >= MIN_ROWS[seed], f"{seed}: {len(rows)} rows in the coverage table, expected {MIN_ROWS[seed]}"


@pytest.mark.parametrize("row", COVERAGE, ids=ROW_IDS)
def test_row_is_well_formed(row):
    assert len(row) == 5, row
    seed, step, scenarios, _, status = row
    match = SEED_CELL.match(seed)
    assert match and match.group(1) in MIN_ROWS, f"seed cell {seed!r}: `<seed>.md` § <section>, l. <line>"
    assert step, row
    assert STATUS.match(status), f"status {status!r} of {step}: automated, planned (...) or manual: <reason>"
    unknown = set(_names(scenarios)) - SCENARIOS
    assert not unknown, f"{step}: {sorted(unknown)} is not a scenario of issue 17"


@pytest.mark.parametrize("row", COVERAGE, ids=ROW_IDS)
def test_named_roles_and_modules_exist(row):
    _, step, _, automated_by, status = row
    missing = [name for name in _names(automated_by) if name not in PLANNED_STEPS and not _exists(name)]
    assert not missing, f"{step}: no role or module {missing} under roles/ or plugins/"
    match = STATUS.match(status)
    assert match, f"status {status!r} of {step}"
    planned = match.group(2)
    if planned:
        assert planned in PLANNED_STEPS and planned in _names(automated_by), f"{step}: planned step {planned}"
    if status.startswith(("automated", "planned")):
        assert _names(automated_by), f"{step} is {status} but names no role or module"


@pytest.mark.parametrize("row", [row for row in COVERAGE if row[4] == "automated"], ids=lambda row: row[1][:40])
def test_automated_rows_run_in_an_existing_scenario(row):
    _, step, scenarios, automated_by, _ = row
    assert _names(scenarios), f"{step} is automated but names no scenario"
    for scenario in _names(scenarios):
        playbook = REPO_ROOT / "playbooks" / f"{scenario}.yml"
        assert playbook.is_file(), f"{step}: automated by scenario {scenario}, but {playbook} does not exist"
        not_run = set(_names(automated_by)) - _reached(scenario)
        assert not not_run, f"{step}: playbooks/{scenario}.yml does not run {sorted(not_run)}"


@pytest.mark.parametrize("row", SYMPTOMS, ids=lambda row: "".join(_names(row[1])))
def test_symptom_table_says_which_playbooks_exist(row):
    (scenario,) = _names(row[1])
    exists = (REPO_ROOT / "playbooks" / f"{scenario}.yml").is_file()
    if exists:
        expected = f"exists: `playbooks/{scenario}.yml`"
        assert row[2] == expected, f"{scenario}: its playbook exists, the table says {row[2]}"
    else:
        assert row[2] == "planned", f"{scenario}: no playbooks/{scenario}.yml, the table says {row[2]}"


def test_links_resolve():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", DOC.read_text()):
        assert (DOC.parent / target).resolve().is_file(), f"docs/runbooks/README.md links {target}, a missing file"
