"""The incident timeline callback and the report, with real ansible-playbook runs on localhost.

Every playbook runs from the repository root, so the repository's ansible.cfg applies (collections
path and ``callbacks_enabled = firebreak.runbooks.incident_timeline``); each test points
FIREBREAK_TIMELINE at its own file.  No sandbox is needed: every host is this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import redaction as rd  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402

pytestmark = pytest.mark.integration

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
PLAYBOOKS = REPO / "tests" / "integration" / "playbooks" / "timeline"
INVENTORY = PLAYBOOKS / "inventory.ini"
REPORT = REPO / "playbooks" / "incident_report.yml"
NOTE = REPO / "playbooks" / "incident_note.yml"

SECRETS = [
    "NOLOG-hunter2-secret-arg",
    "PW-correct-horse-battery",
    "SAK-wJalrXUtnFEMIK7MDENG",
    "TOK-FQoGZXIvYXdzEJr",
    "PK-BEGIN-RSA-PRIVATE-KEY",
    "CS-client-secret-value",
    "ECHO-tok-9f8e7d6c5b4a",
    "ECHO-pw-1234abcd",
    "DBG-pw-5678efgh",
]


def _env(timeline=None, env=None):
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_", "ANSIBLE_"))}
    run_env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_DEPRECATION_WARNINGS": "0"})
    run_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if timeline is not None:
        run_env["FIREBREAK_TIMELINE"] = str(timeline)
    run_env.update(env or {})
    return run_env


def _cmd(playbook, *args, extra_vars=None):
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(INVENTORY), str(playbook), *args]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return cmd


def run(playbook, *args, timeline=None, extra_vars=None, env=None, cwd=REPO):
    proc = subprocess.run(
        _cmd(playbook, *args, extra_vars=extra_vars),
        cwd=cwd,
        env=_env(timeline, env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    proc.output = f"{proc.stdout}\n{proc.stderr}"
    return proc


def records(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def report(timeline):
    return run(REPORT, extra_vars={"incident_timeline": str(timeline)})


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """One timeline of a small incident (note, dry run, containment, failure, recovery, skip, note)."""
    timeline = tmp_path_factory.mktemp("scenario") / "timeline.jsonl"
    proc = run(PLAYBOOKS / "scenario.yml", timeline=timeline, extra_vars={"incident_id": "INC-SCENARIO"})
    assert proc.returncode == 0, proc.output
    return timeline


# ------------------------------------------------------------------ the record


def test_records_have_every_field_and_the_chain_verifies(scenario):
    recs = tl.verify_timeline(scenario)
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    for rec in recs:
        assert set(rec) == {*tl.FIELDS, "run_id"}
        assert rec["run_id"] == recs[0]["run_id"]  # one run: one run id, from playbook_start to playbook_end
        assert rec["incident_id"] == "INC-SCENARIO"
        assert rec["ts"].endswith("Z") and len(rec["ts"]) == len("2025-12-27T14:00:00.000Z")
        assert rec["operator"]["source"] == "local"
    events = [r["event"] for r in recs]
    assert events[0] == "playbook_start" and events[1] == "play_start" and events[-1] == "playbook_end"
    by_task = {r["task"]: r for r in recs if r["task"]}
    assert by_task["Record the decision to contain"]["event"] == "note"
    assert by_task["Record the decision to contain"]["msg"] == "Blocking 203.0.113.66 at the WAF, then rolling back api"
    assert by_task["Record the decision to contain"]["action"] == "firebreak.runbooks.incident_note"
    dry = by_task["Dry run of the rollback"]
    assert dry["event"] == "task_changed" and dry["check_mode"] is True
    block = by_task["Block the attacking address"]
    assert block["event"] == "task_changed" and block["role"] == "waf_block" and block["check_mode"] is False
    assert block["details"]["before"] == {"addresses": ["198.51.100.7/32"]}
    assert block["details"]["after"] == {"addresses": ["198.51.100.7/32", "203.0.113.66/32"]}
    assert block["details"]["resource_id"] == "ipset-blocklist-1"
    failed = by_task["A step that fails"]
    assert failed["event"] == "task_failed" and failed["action"] == "ansible.builtin.command"
    assert failed["details"]["ignore_errors"] is True
    assert by_task["A step that does not apply"]["event"] == "task_skipped"
    assert "invocation" not in json.dumps([r["details"] for r in recs])
    # a module echoing a credential under a secret-looking key, and a no_log parameter
    assert b"APITOKEN-do-not-record-4242" not in scenario.read_bytes()


def test_secrets_never_reach_the_file(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    proc = run(PLAYBOOKS / "secrets.yml", timeline=timeline, extra_vars={"incident_id": "INC-SECRETS"})
    assert proc.returncode == 0, proc.output
    data = timeline.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in data, secret
    assert b"AKIAIOSFODNN7EXAMPLE" in data  # which key: never masked
    recs = tl.verify_timeline(timeline)
    nolog = next(r for r in recs if r["task"] == "A no_log task whose argument is a secret")
    assert nolog["details"] == tl.NO_LOG_DETAILS and nolog["msg"] is None
    facts = next(r for r in recs if r["task"] == "A task returning secret-looking keys")["details"]["ansible_facts"]
    assert facts["db_password"] == rd.MASK and facts["nested"]["items"][0]["clientSecret"] == rd.MASK


# ------------------------------------------------------------------ the report


def test_report_has_the_sections_and_before_after_and_does_not_touch_the_timeline(scenario, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    timeline.write_bytes(scenario.read_bytes())
    before = timeline.read_bytes()
    proc = report(timeline)
    assert proc.returncode == 0, proc.output
    assert timeline.read_bytes() == before  # the report run is not recorded in the timeline it verifies
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    for heading in (
        "# Post-incident report: INC-SCENARIO",
        "## Incident Summary",
        "## Timeline",
        "## Actions",
        "## Notes, Decisions and Communications",
        "## Time to Containment and Recovery",
        "### Root Cause",
        "### Contributing Factors",
        "### What Went Well",
        "### What Didn't Go Well",
        "### Action Items",
        "## Timeline Verification",
    ):
        assert heading in md, heading
    recs = records(timeline)
    assert f"**Records**: {len(recs)}" in md
    assert recs[-1]["hash"] in md
    # actions with before/after, rendered as JSON
    assert '"203.0.113.66/32"' in md and '"taskDefinition": "api:141"' in md and '"api:142"' in md
    assert "check mode — nothing was changed" in md
    # containment and recovery reached (the check-mode dry run does not count)
    assert "**Time to containment**: not reached" not in md
    assert "**Time to recovery**: not reached" not in md
    assert "decision** (P1): Blocking 203.0.113.66" in md
    assert "**Severity**: P1" in md
    assert "[Owner: TBD] [Due: YYYY-MM-DD]" in md
    # a second rendering of the same timeline changes nothing
    again = report(timeline)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.output


@pytest.mark.parametrize(
    ("lineno", "how"),
    [
        (3, "field"),  # change a field value, the line stays valid JSON
        (6, "prev_hash"),  # one hex digit of the link
        (9, "seq"),  # the seq number itself
        (4, "json"),  # one byte that breaks the JSON
    ],
)
def test_one_byte_edit_fails_the_report_naming_the_seq(scenario, tmp_path, lineno, how):
    timeline = tmp_path / "timeline.jsonl"
    lines = scenario.read_bytes().splitlines(keepends=True)
    line = lines[lineno - 1]
    if how == "field":
        i = line.index(b'"host":"localhost"') + len(b'"host":"localhos')
    elif how == "prev_hash":
        i = line.index(b'"prev_hash":"') + len(b'"prev_hash":"') + 10
    elif how == "seq":
        i = line.index(b'"seq":') + len(b'"seq":')
    else:
        i = 0
    edited = bytearray(line)
    edited[i : i + 1] = b"0" if line[i : i + 1] != b"0" else b"1"
    if how == "field":
        edited[i : i + 1] = b"T"
    lines[lineno - 1] = bytes(edited)
    timeline.write_bytes(b"".join(lines))
    proc = report(timeline)
    assert proc.returncode != 0, proc.output
    assert str(timeline) in proc.output
    if how == "json":
        assert f"line {lineno}: not valid JSON" in proc.output, proc.output
    else:
        assert f"line {lineno}: seq {lineno}:" in proc.output, proc.output
    assert not (tmp_path / "report.md").exists()


def test_report_on_a_missing_file_names_it(tmp_path):
    missing = tmp_path / "no-such" / "timeline.jsonl"
    proc = report(missing)
    assert proc.returncode != 0
    assert f"{missing}: timeline file not found" in proc.output, proc.output


def test_report_on_a_non_json_file_names_file_and_line(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# not a timeline\n", encoding="utf-8")
    proc = report(notes)
    assert proc.returncode != 0
    assert f"{notes} line 1: not valid JSON" in proc.output, proc.output


# ------------------------------------------------------------------ safety


def test_concurrent_runs_with_forks_lose_nothing(tmp_path):
    timeline = tmp_path / "shared" / "timeline.jsonl"
    runs = 4
    procs = [
        subprocess.Popen(
            _cmd(
                PLAYBOOKS / "concurrent.yml", "--forks", "5", extra_vars={"incident_id": "INC-CONC", "timeline_run": n}
            ),
            cwd=REPO,
            env=_env(timeline),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(runs)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    recs = tl.verify_timeline(timeline)
    hosts, tasks = 5, 2
    assert len(recs) == runs * (3 + hosts * tasks)  # playbook_start, play_start, playbook_end + results
    assert sum(r["event"] == "playbook_start" for r in recs) == runs
    results = [(r["task"], r["host"]) for r in recs if r["event"] == "task_ok"]
    assert len(results) == runs * hosts * tasks
    assert len(set(results)) == hosts * tasks


def test_a_timeline_that_cannot_be_opened_stops_the_run_before_any_task(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    timeline = blocker / "timeline.jsonl"
    marker = tmp_path / "marker"
    proc = run(PLAYBOOKS / "marker.yml", timeline=timeline, extra_vars={"timeline_marker": str(marker)})
    assert proc.returncode != 0, proc.output
    assert str(timeline) in proc.stderr and "cannot write the incident timeline" in proc.stderr, proc.output
    assert not marker.exists()


def test_a_timeline_that_breaks_mid_run_stops_the_run(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    marker = tmp_path / "marker"
    proc = run(PLAYBOOKS / "break_midrun.yml", timeline=timeline, extra_vars={"timeline_marker": str(marker)})
    assert proc.returncode != 0, proc.output
    assert str(timeline) in proc.stderr, proc.output
    assert "Not recorded (1): task_changed of task 'Replace the timeline with a directory'" in proc.stderr, proc.output
    assert not marker.exists()  # the next task never ran


# ------------------------------------------------------------------ incident id, operator, notes


def test_incident_id_extra_var_wins_over_env(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    proc = run(
        NOTE,
        timeline=timeline,
        extra_vars={"incident_id": "INC-EXTRA", "note": "from extra var"},
        env={"FIREBREAK_INCIDENT_ID": "INC-ENV"},
    )
    assert proc.returncode == 0, proc.output
    assert {r["incident_id"] for r in records(timeline)} == {"INC-EXTRA"}


def test_incident_id_from_env_and_operator_from_awx_vars(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    awx = {"awx_user_name": "alice", "awx_job_id": 4242, "awx_job_template_name": "Contain: WAF block"}
    proc = run(NOTE, timeline=timeline, extra_vars={"note": "via AWX", **awx}, env={"FIREBREAK_INCIDENT_ID": "INC-ENV"})
    assert proc.returncode == 0, proc.output
    recs = records(timeline)
    assert {r["incident_id"] for r in recs} == {"INC-ENV"}
    assert recs[0]["operator"] == {
        "user": "alice",
        "source": "awx",
        "job_id": 4242,
        "job_template": "Contain: WAF block",
    }


def test_generated_incident_id_and_default_path(tmp_path):
    """No id and no path: an id is generated and printed, the timeline is incidents/<id>/timeline.jsonl."""
    env = {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    proc = run(PLAYBOOKS / "marker.yml", extra_vars={"timeline_marker": str(tmp_path / "m")}, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.output
    found = list((tmp_path / "incidents").glob("INC-*/timeline.jsonl"))
    assert len(found) == 1, proc.output
    incident_id = found[0].parent.name
    assert f"generated {incident_id}" in proc.output
    assert {r["incident_id"] for r in tl.verify_timeline(found[0])} == {incident_id}


def test_incident_note_playbook_writes_a_note(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    proc = run(
        NOTE,
        "-e",
        "incident_id=INC-NOTE",
        "-e",
        "note='Rolled back api to revision 141'",
        "-e",
        "kind=decision",
        timeline=timeline,
    )
    assert proc.returncode == 0, proc.output
    recs = tl.verify_timeline(timeline)
    notes = [r for r in recs if r["event"] == "note"]
    assert len(notes) == 1
    assert notes[0]["msg"] == "Rolled back api to revision 141"
    assert notes[0]["details"] == {"msg": "Rolled back api to revision 141", "kind": "decision"}
    assert notes[0]["incident_id"] == "INC-NOTE"
    assert not any(r["play"] == "Check the note" for r in recs)  # input checking is not recorded
    assert not any(r["event"] == "task_ok" for r in recs)


# ------------------------------------------------------------------ containments lookup


def _open_resources(proc):
    for line in proc.stdout.splitlines():
        if "OPEN=" in line:
            return json.loads(line.split("OPEN=", 1)[1].rstrip('"').replace('\\"', '"'))
    raise AssertionError(proc.stdout + proc.stderr)


def test_containments_lookup_lists_what_is_contained_and_not_released(tmp_path):
    """The lookup reads the verified timeline: check-mode runs and released entries are not open."""
    timeline = tmp_path / "timeline.jsonl"
    book = PLAYBOOKS / "containments.yml"
    base = {"incident_id": "INC-LOOKUP"}

    def run(*args, **extra):
        proc = subprocess.run(
            _cmd(book, *args, extra_vars={**base, **extra}), env=_env(timeline), capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    assert _open_resources(run(fake_resources=["ipset-a", "ipset-b"])) == ["ipset-a", "ipset-b"]
    # a check-mode containment changed nothing, so it is not open
    assert _open_resources(run("--check", fake_resources=["ipset-c"])) == ["ipset-a", "ipset-b"]
    # entries a step recorded for another incident are never returned
    assert _open_resources(run(fake_incident="INC-OTHER", fake_resources=["ipset-z"])) == ["ipset-a", "ipset-b"]
    # releasing ipset-a leaves ipset-b open; releasing again releases nothing
    assert _open_resources(run(fake_state="released", fake_resources=["ipset-a"])) == ["ipset-b"]
    again = run(fake_state="released", fake_resources=["ipset-a"])
    assert "changed=0" in again.stdout
    records = tl.verify_timeline(timeline)
    releases = [r for r in records if isinstance(r.get("details"), dict) and "results" in r["details"]]
    assert any(item.get("release") for r in releases for item in r["details"]["results"])


def test_containments_lookup_refuses_a_broken_chain(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    book = PLAYBOOKS / "containments.yml"
    extra = {"incident_id": "INC-LOOKUP", "fake_resources": ["ipset-a"]}
    proc = subprocess.run(_cmd(book, extra_vars=extra), env=_env(timeline), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = timeline.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"ipset-a", b"ipset-x")
    timeline.write_bytes(b"".join(lines))
    # released mode reads the damaged timeline (FIREBREAK_TIMELINE) and must refuse, naming the seq
    proc = subprocess.run(
        _cmd(book, extra_vars={**extra, "fake_state": "released"}),
        env=_env(timeline),
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "seq 3" in proc.stdout + proc.stderr
