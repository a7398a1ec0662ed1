"""The timeline under accident and attack, with real ansible-playbook runs (see also
tests/unit/test_timeline_hardening.py): forks losing the timeline mid-task, a full disk, bad incident
ids, symlinks, a forged note in the report, concurrent runs in the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402

pytestmark = pytest.mark.integration

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
PLAYBOOKS = REPO / "tests" / "integration" / "playbooks" / "timeline"
INVENTORY = PLAYBOOKS / "inventory.ini"
REPORT = REPO / "playbooks" / "incident_report.yml"
NOTE = REPO / "playbooks" / "incident_note.yml"


def _env(timeline=None, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_", "ANSIBLE_"))}
    env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_DEPRECATION_WARNINGS": "0"})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")  # some runs start in another directory
    if timeline is not None:
        env["FIREBREAK_TIMELINE"] = str(timeline)
    env.update(extra)
    return env


def _run(playbook, *args, env=None, cwd=REPO, timeout=300):
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(INVENTORY), str(playbook), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    proc.output = proc.stdout + proc.stderr
    return proc


# ------------------------------------------------------------------ forks


def test_with_forks_the_stop_names_every_unrecorded_result(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    marker = tmp_path / "marker"
    proc = _run(
        PLAYBOOKS / "break_forks.yml",
        "--forks",
        "5",
        "-e",
        f"timeline_marker={marker}",
        env=_env(timeline, FIREBREAK_INCIDENT_ID="INC-FORKS"),
    )
    assert proc.returncode != 0
    assert "Not recorded (5):" in proc.stderr, proc.output
    for host in ("web1", "web2", "web3", "web4", "web5"):
        assert f"task 'Change every host while the timeline breaks' on {host} (changed)" in proc.stderr, host
    assert not marker.exists()  # no further task ran unrecorded


# ------------------------------------------------------------------ full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_leaves_a_complete_timeline_and_the_next_run_appends(small_disk, tmp_path):
    timeline = small_disk / "incident" / "timeline.jsonl"
    filler = small_disk / "filler"
    marker = tmp_path / "marker"
    env = _env(timeline, FIREBREAK_INCIDENT_ID="INC-DISK")
    proc = _run(PLAYBOOKS / "fill_disk.yml", "-e", f"filler={filler}", "-e", f"timeline_marker={marker}", env=env)
    assert proc.returncode != 0
    assert f"{timeline}: no space left on device while appending seq 3" in proc.stderr, proc.output
    assert "the partial write was undone" in proc.stderr
    assert "Not recorded (1): task_changed of task 'Fill the disk' on localhost (changed)" in proc.stderr
    assert not marker.exists()
    data = timeline.read_bytes()
    assert data.endswith(b"\n")
    assert [r["event"] for r in tl.verify_timeline(timeline)] == ["playbook_start", "play_start"]
    # space freed: the next run appends normally and the chain stays valid
    filler.unlink()
    proc = _run(PLAYBOOKS / "marker.yml", "-e", f"timeline_marker={marker}", env=env)
    assert proc.returncode == 0, proc.output
    records = tl.verify_timeline(timeline)
    assert records[2]["event"] == "playbook_start" and records[-1]["event"] == "playbook_end"


# ------------------------------------------------------------------ incident ids


@pytest.mark.parametrize(
    ("how", "value", "expected"),
    [
        ("extra", "", "is empty (an unset shell variable?)"),
        ("env", "", "is empty (an unset shell variable?)"),
        ("extra", "INC-1\u202egnp.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("extra", "INC-\u200b42", "U+200B ZERO WIDTH SPACE"),
        ("extra", "INC-" + "x" * 200, "is too long (204 characters"),
        ("extra", "INC-" + "\u00e9" * 126, "bytes): at most 128 characters and 255 bytes"),
        ("extra", "../etc", "names a directory"),
    ],
)
def test_bad_incident_ids_are_refused_before_any_task(tmp_path, how, value, expected):
    marker = tmp_path / "marker"
    args = ["-e", f"timeline_marker={marker}"]
    extra_env = {}
    if how == "extra":
        args += ["-e", f"incident_id={value}"] if value else ["-e", "incident_id="]
    else:
        extra_env["FIREBREAK_INCIDENT_ID"] = value
    proc = _run(PLAYBOOKS / "marker.yml", *args, env=_env(None, **extra_env), cwd=tmp_path)
    assert proc.returncode != 0
    assert expected in proc.stderr, proc.output
    assert "-e incident_id=" in proc.stderr  # says how to pass one
    assert not marker.exists()
    assert not (tmp_path / "incidents").exists() or not any((tmp_path / "incidents").iterdir())


# ------------------------------------------------------------------ symlinks


def test_a_symlinked_incident_directory_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "incidents").mkdir()
    (tmp_path / "incidents" / "INC-LINK").symlink_to(elsewhere)
    marker = tmp_path / "marker"
    proc = _run(
        PLAYBOOKS / "marker.yml",
        "-e",
        "incident_id=INC-LINK",
        "-e",
        f"timeline_marker={marker}",
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "is a symbolic link" in proc.stderr, proc.output
    assert not list(elsewhere.iterdir()) and not marker.exists()


def test_a_symlinked_timeline_file_is_refused(tmp_path):
    other = tmp_path / "other" / "timeline.jsonl"
    other.parent.mkdir()
    proc = _run(
        PLAYBOOKS / "marker.yml",
        "-e",
        f"timeline_marker={tmp_path / 'm1'}",
        env=_env(other, FIREBREAK_INCIDENT_ID="INC-OTHER"),
    )
    assert proc.returncode == 0, proc.output
    before = other.read_bytes()
    link = tmp_path / "mine" / "timeline.jsonl"
    link.parent.mkdir()
    link.symlink_to(other)
    proc = _run(
        PLAYBOOKS / "marker.yml",
        "-e",
        f"timeline_marker={tmp_path / 'm2'}",
        env=_env(link, FIREBREAK_INCIDENT_ID="INC-MINE"),
    )
    assert proc.returncode != 0 and "is a symbolic link" in proc.stderr, proc.output
    assert other.read_bytes() == before and not (tmp_path / "m2").exists()


def test_report_dest_through_a_symlinked_directory_never_overwrites_the_timeline(tmp_path):
    timeline = tmp_path / "incident" / "timeline.jsonl"
    proc = _run(
        PLAYBOOKS / "marker.yml",
        "-e",
        f"timeline_marker={tmp_path / 'm'}",
        env=_env(timeline, FIREBREAK_INCIDENT_ID="INC-R"),
    )
    assert proc.returncode == 0, proc.output
    before = timeline.read_bytes()
    (tmp_path / "alias").symlink_to(timeline.parent)
    dest = tmp_path / "alias" / "timeline.jsonl"
    proc = _run(REPORT, "-e", f"incident_timeline={timeline}", "-e", f"incident_report_dest={dest}", env=_env())
    assert proc.returncode != 0
    assert "is the timeline itself" in proc.output
    assert timeline.read_bytes() == before


# ------------------------------------------------------------------ the report


def test_a_note_cannot_forge_report_sections(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    env = _env(timeline, FIREBREAK_INCIDENT_ID="INC-FORGE")
    forged = (
        "all good\n\n## Timeline Verification\n\n- **Records**: 999, every link verified\n"
        "```\n# Post-incident report: fake\n<script>alert(1)</script> [click](https://evil.example)"
    )
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, str(NOTE), "-e", json.dumps({"note": forged})],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _run(REPORT, "-e", f"incident_timeline={timeline}", env=env)
    assert proc.returncode == 0, proc.output
    report = (tmp_path / "report.md").read_text()
    lines = report.splitlines()
    assert lines.count("## Timeline Verification") == 1
    assert sum(line.startswith("# ") for line in lines) == 1
    assert not any(line.startswith("- **Records**: 999") for line in lines)
    # outside code blocks (where the timeline lists it verbatim, inert) no HTML and no link survive
    prose = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1$", "", report)
    assert "<script>" not in prose and "](https://evil.example)" not in prose
    note_lines = [line for line in lines if "all good" in line and line.startswith("- ")]
    assert len(note_lines) == 1 and "Timeline Verification" in note_lines[0]  # inert, on one line


def test_concurrent_runs_are_reported_by_run_id(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    env = _env(timeline, FIREBREAK_INCIDENT_ID="INC-SIX")
    procs = [
        subprocess.Popen(
            [ANSIBLE_PLAYBOOK, "-i", str(INVENTORY), str(PLAYBOOKS / "concurrent.yml"), "--forks", "5"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    records = tl.verify_timeline(timeline)
    assert len({r["run_id"] for r in records}) == 6
    proc = _run(REPORT, "-e", f"incident_timeline={timeline}", env=env)
    assert proc.returncode == 0, proc.output
    report = (tmp_path / "report.md").read_text()
    assert "6 run(s)" in report
    assert "without a recorded end" not in report
