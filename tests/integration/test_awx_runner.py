"""Every scenario runs under ``ansible-runner`` as AWX runs a job, against the sandbox.

AWX syncs the project into a private data directory, writes the job's inventory, the extra variables (the
survey's answers and its own ``awx_*``/``tower_*`` variables) and environment under it, and starts
``ansible-runner``; runner puts its own event callback in front (``awx_display``) and writes one JSON file per
event under ``artifacts/<ident>/job_events``. Here the same directory is built by hand and the job is run with
the ``ansible-runner`` CLI (no container: AWX would run the same inside the execution environment of
meta/execution-environment.yml). Both records of the run are checked: runner's events, and the incident
timeline with the AWX user as the operator.

Scenarios are the playbooks whose header says ``# Scenario:``; each has a drill of the same name in
``sandbox/drills`` that injects its fault and verifies the recovery.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox import REPO_ROOT

REPO = Path(REPO_ROOT)
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import durable as dur  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402

BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.integration, pytest.mark.drill]

JOB_ID = 4242
AWX_USER = "awx-alice"  # not the OS user, so the operator can only have come from AWX's variables
JOB_TEMPLATE = "firebreak: {scenario}"
FRAME = ("firebreak.runbooks.incident_lifecycle", "firebreak.runbooks.incident_note")  # plugin_utils/frame.py


def scenarios() -> list[str]:
    """``playbooks/<name>.yml`` whose header (first comment line) starts with ``# Scenario:``."""
    found = []
    for playbook in sorted((REPO / "playbooks").glob("*.yml")):
        first = next((line for line in playbook.read_text().splitlines() if line.startswith("#")), "")
        if first.startswith("# Scenario:"):
            found.append(playbook.stem)
    return found


def awx_extra_vars(scenario: str, survey: dict) -> dict:
    """What AWX passes a job launched from a job template with a survey: the survey's answers, plus its own
    variables under both prefixes (awx/main/models/jobs.py ``awx_meta_vars``)."""
    meta = {
        "job_id": JOB_ID,
        "job_launch_type": "manual",
        "user_id": 7,
        "user_name": AWX_USER,
        "user_email": "alice@example.invalid",
        "user_first_name": "Alice",
        "user_last_name": "Responder",
        "job_template_id": 12,
        "job_template_name": JOB_TEMPLATE.format(scenario=scenario),
        "project_revision": "0123456789abcdef0123456789abcdef01234567",
        "project_scm_branch": "main",
        "inventory_id": 3,
        "inventory_name": "sandbox",
        "execution_node": "awx-task-0",
    }
    variables = dict(survey)
    for prefix in ("awx", "tower"):
        variables.update({f"{prefix}_{key}": value for key, value in meta.items()})
    return variables


def _project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    return [name for name in listed.stdout.decode().split("\0") if name]


def private_data_dir(root: Path, extra_vars: dict, env: dict) -> Path:
    """A private data directory laid out as AWX lays it out for a job: ``project/`` (the synced project),
    ``inventory/`` (the job's inventory), ``env/extravars`` and ``env/envvars``."""
    project = root / "project"
    for name in _project_files():
        source, target = REPO / name, project / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    shutil.copytree(REPO / "inventories" / "sandbox", root / "inventory")
    (root / "env").mkdir()
    (root / "env" / "extravars").write_text(yaml.safe_dump(extra_vars))
    (root / "env" / "envvars").write_text(yaml.safe_dump(env))
    (root / "env" / "settings").write_text(yaml.safe_dump({"job_timeout": 600, "suppress_ansible_output": True}))
    return root


def runner_env(sandbox) -> dict:
    """The sandbox's endpoints and credentials as the job's environment (AWX: credentials injected into
    env/envvars), with what AWX sets itself; no ANSIBLE_CONFIG, so the project's ansible.cfg applies."""
    env = {key: value for key, value in sandbox.env().items() if key != "ANSIBLE_CONFIG"}
    env.update(
        {
            "JOB_ID": str(JOB_ID),
            "AWX_HOST": "https://awx.example.invalid",
            "PROJECT_REVISION": "0123456789abcdef0123456789abcdef01234567",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    return env


def run_job(pdd: Path, playbook: str, ident: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FIREBREAK_", "ANSIBLE_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [BIN / "ansible-runner", "run", pdd, "--playbook", playbook, "--ident", ident],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def runner_events(pdd: Path, ident: str) -> list[dict]:
    files = (pdd / "artifacts" / ident / "job_events").glob("*.json")
    return sorted((json.loads(path.read_text()) for path in files), key=lambda event: event["counter"])


# make test runs three representative jobs: service_down (ECS), one whose survey answers its gate
# (database_unavailable: the failover's approval in firebreak_gate_approvals) and the Kubernetes one. The whole
# matrix (every scenario as an AWX job) is proof: make proof runs the other scenarios.
IN_MAKE_TEST = ("service_down", "database_unavailable", "k8s_service_down")


def scenario_params() -> list:
    return [name if name in IN_MAKE_TEST else pytest.param(name, marks=pytest.mark.proof) for name in scenarios()]


@pytest.mark.parametrize("scenario", scenario_params())
def test_scenario_runs_under_ansible_runner_as_an_awx_job(scenario, aws, tmp_path):
    playbook = f"playbooks/{scenario}.yml"
    if not (REPO / "sandbox" / "drills" / f"{scenario}.py").is_file():
        pytest.fail(f"{playbook} is a scenario without a drill (sandbox/drills/{scenario}.py: inject, verify)")
    drill = importlib.import_module(f"sandbox.drills.{scenario}")
    assert playbook == drill.PLAYBOOK, f"sandbox/drills/{scenario}.py runs {drill.PLAYBOOK}"
    context = drill.inject(aws)
    incident_id = f"INC-AWX-{JOB_ID}-{scenario}"
    survey = {key: value for key, value in context.items() if not key.startswith("_")}
    survey["incident_id"] = incident_id
    pdd = private_data_dir(tmp_path / "job", awx_extra_vars(scenario, survey), runner_env(aws))
    ident = str(JOB_ID)

    job = run_job(pdd, playbook, ident)
    artifacts = pdd / "artifacts" / ident
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else ""
    assert job.returncode == 0, f"{job.stdout}\n{job.stderr}\n{stdout}"
    assert (artifacts / "status").read_text() == "successful"
    assert (artifacts / "rc").read_text() == "0"
    drill.verify(aws, context)

    # runner's own event stream: the whole playbook, each task result per host, the final stats
    events = runner_events(pdd, ident)
    kinds = [event["event"] for event in events]
    assert kinds[0] == "playbook_on_start" and kinds[-1] == "playbook_on_stats", kinds
    assert all(event["runner_ident"] == ident for event in events)
    results = [event for event in events if event["event"] in ("runner_on_ok", "runner_on_failed")]
    assert results and all(event["event"] == "runner_on_ok" for event in results)
    assert any(event["event_data"]["res"].get("changed") for event in results), "no task changed anything"
    stats = events[-1]["event_data"]
    assert stats["failures"] == {} and stats["dark"] == {}

    # our timeline: in the project directory (the job's working directory), chained, the AWX user as operator
    timeline = pdd / "project" / "incidents" / incident_id / "timeline.jsonl"
    records = tl.verify_timeline(str(timeline))
    assert records[0]["event"] == "playbook_start" and records[-1]["event"] == "playbook_end"
    assert records[0]["playbook"] == drill.PLAYBOOK == events[0]["event_data"]["playbook"]
    assert {record["incident_id"] for record in records} == {incident_id}
    expected_operator = {
        "user": AWX_USER,
        "source": "awx",
        "job_id": JOB_ID,
        "job_template": JOB_TEMPLATE.format(scenario=scenario),
    }
    assert all(record["operator"] == expected_operator for record in records), records[0]["operator"]
    assert str(records[0]["operator"]["job_id"]) == events[0]["runner_ident"]  # AWX's ident is the job id
    assert {"awx_user_name", "awx_job_id", "tower_user_name", "incident_id"} <= set(records[0]["details"]["extra_vars"])

    # and its durable copy in the inventory's evidence bucket, written through as the job ran (docs/timeline.md)
    stored = dur.read_durable_records(
        dur.DurableTimeline(aws.client("s3"), aws.manifest["aws"]["s3"]["evidence_bucket"], incident_id),
        tl._check_stored,
    )
    assert [record["hash"] for record in stored] == [record["hash"] for record in records]

    # both record the same task results: (task, host, changed) from runner's events and from the timeline
    from_runner = sorted(
        (event["event_data"]["task"], event["event_data"]["host"], bool(event["event_data"]["res"].get("changed")))
        for event in results
    )
    from_timeline = sorted(
        (record["task"], record["host"], record["event"] == "task_changed")
        for record in records
        if record["event"] in ("task_ok", "task_changed", "task_failed", "note")  # a note task is a note event
    )
    # beyond those, only the incident frame's work done inside a step's own task (docs/frame.md, "No task before
    # the first mitigating call"): the declaration and the gate's decision, recorded as the tasks they replace,
    # with no runner event of their own
    extra = list(from_timeline)
    for item in from_runner:
        assert item in extra, f"runner's {item} is not in the timeline"
        extra.remove(item)
    framed = {(r["task"], r["host"], r["event"] == "task_changed") for r in records if r.get("action") in FRAME}
    assert all(item in framed for item in extra), f"timeline records with no runner event: {extra}"


def test_scenarios_are_found():
    assert "service_down" in scenarios()
    assert set(IN_MAKE_TEST) <= set(scenarios()), "a representative AWX job names a scenario that is gone"
    assert "incident_report" not in scenarios() and "incident_seal" not in scenarios()
