"""A timeline that outlives the job: two AWX jobs of one incident, each in its own private data directory (its own
empty container), keep one chain in the sandbox's evidence bucket (S3 Object Lock, through the fault proxy).

Each job runs ``playbooks/incident_note.yml`` under ``ansible-runner`` as AWX runs it (tests/integration/
test_awx_runner.py builds the directory): its timeline callback writes every record through to
``s3://firebreak-sandbox-evidence/firebreak/timelines/<incident>/<seq>.json`` by a conditional PutObject, and the
second job, whose local file does not exist, continues the chain from the bucket.  Then both jobs at once: they
race for the same sequence numbers and must serialise without losing or forking a record.  The report, run in a
third directory without any local timeline, verifies the whole chain from the bucket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import REPO_ROOT
from tests.integration.test_awx_runner import BIN, awx_extra_vars, private_data_dir, runner_env

REPO = Path(REPO_ROOT)
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import durable as dur  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402

pytestmark = pytest.mark.integration

NOTE = "playbooks/incident_note.yml"
REPORT = "playbooks/incident_report.yml"
RECORDS_PER_NOTE = 4  # playbook_start, play_start, note, playbook_end (the input check play is not recorded)


def _job(tmp_path, aws, name, job_id, extra):
    variables = awx_extra_vars("incident_note", extra)
    variables.update({"awx_job_id": job_id, "tower_job_id": job_id})
    return private_data_dir(tmp_path / name, variables, runner_env(aws))


def _start(pdd, playbook, ident):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FIREBREAK_", "ANSIBLE_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.Popen(
        [BIN / "ansible-runner", "run", pdd, "--playbook", playbook, "--ident", ident],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc, pdd, ident):
    out, err = proc.communicate(timeout=300)
    path = pdd / "artifacts" / ident / "stdout"
    stdout = path.read_text() if path.exists() else ""
    assert proc.returncode == 0, f"{out}\n{err}\n{stdout}"
    return stdout


def _local(pdd, incident):
    return pdd / "project" / "incidents" / incident / "timeline.jsonl"


def _bucket_chain(aws, incident):
    """The durable copy, read straight from the sandbox and verified as one chain from seq 1."""
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    copy = dur.DurableTimeline(aws.client("s3"), bucket, incident)
    return dur.read_durable_records(copy, tl._check_stored)


def _report(tmp_path, aws, incident, name="report"):
    pdd = _job(tmp_path, aws, name, 9000, {"incident_id": incident})
    _finish(_start(pdd, REPORT, "9000"), pdd, "9000")
    assert not _local(pdd, incident).exists(), "the report job had no local timeline"
    return json.loads((pdd / "project" / "incidents" / incident / "report.json").read_text())


def test_the_next_job_in_an_empty_container_continues_the_chain_from_the_bucket(aws, tmp_path):
    incident = "INC-DURABLE-SEQ"
    first = _job(tmp_path, aws, "job1", 101, {"incident_id": incident, "note": "first job"})
    _finish(_start(first, NOTE, "101"), first, "101")
    stored = _bucket_chain(aws, incident)
    assert len(stored) == RECORDS_PER_NOTE
    assert [r["hash"] for r in stored] == [r["hash"] for r in tl.verify_timeline(_local(first, incident))]
    assert {r["operator"]["job_id"] for r in stored} == {101}

    second = _job(tmp_path, aws, "job2", 102, {"incident_id": incident, "note": "second job"})
    assert not _local(second, incident).exists()
    _finish(_start(second, NOTE, "102"), second, "102")
    records = tl.verify_timeline(_local(second, incident))
    assert len(records) == 2 * RECORDS_PER_NOTE
    assert [r["hash"] for r in records[:RECORDS_PER_NOTE]] == [r["hash"] for r in stored], "continued, not restarted"
    assert [r["operator"]["job_id"] for r in records] == [101] * RECORDS_PER_NOTE + [102] * RECORDS_PER_NOTE
    assert [r["hash"] for r in _bucket_chain(aws, incident)] == [r["hash"] for r in records]

    # the Object Lock bucket keeps each record under retention
    s3 = aws.client("s3")
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    head = s3.head_object(Bucket=bucket, Key=dur.record_key(None, incident, 1))
    assert head["ObjectLockMode"] == "COMPLIANCE"

    report = _report(tmp_path, aws, incident)
    durable = report["timeline"]["durable"]
    assert durable["used"] and durable["complete"] and durable["records"] == 2 * RECORDS_PER_NOTE
    assert report["timeline"]["records"] == 2 * RECORDS_PER_NOTE
    assert report["timeline"]["last_hash"] == records[-1]["hash"]


@pytest.mark.proof
def test_two_jobs_at_once_serialise_without_losing_or_forking_a_record(aws, tmp_path):
    incident = "INC-DURABLE-RACE"
    jobs = {
        job_id: _job(tmp_path, aws, f"job{job_id}", job_id, {"incident_id": incident, "note": f"job {job_id}"})
        for job_id in (201, 202)
    }
    running = {job_id: _start(pdd, NOTE, str(job_id)) for job_id, pdd in jobs.items()}
    for job_id, proc in running.items():
        _finish(proc, jobs[job_id], str(job_id))

    stored = _bucket_chain(aws, incident)  # one chain: every prev_hash link and hash verified
    assert len(stored) == 2 * RECORDS_PER_NOTE, [(r["seq"], r["event"], r["operator"]["job_id"]) for r in stored]
    for job_id in jobs:
        mine = [r for r in stored if r["operator"]["job_id"] == job_id]
        assert [r["event"] for r in mine] == ["playbook_start", "play_start", "note", "playbook_end"]
        assert [r["msg"] for r in mine if r["event"] == "note"] == [f"job {job_id}"]
        local = tl.verify_timeline(_local(jobs[job_id], incident))
        # each container's file is a prefix of the one chain (what it wrote and what it copied in)
        assert [r["hash"] for r in local] == [r["hash"] for r in stored[: len(local)]]

    report = _report(tmp_path, aws, incident)
    assert report["timeline"]["records"] == 2 * RECORDS_PER_NOTE
    assert report["timeline"]["durable"]["complete"] is True


def test_the_sandbox_answers_conditional_writes_as_s3_does(aws):
    """PutObject with If-None-Match: * or a stale If-Match is refused with 412 PreconditionFailed, If-Match on a
    missing key with 404 NoSuchKey, and of several writers racing for one key exactly one wins (docs/sandbox.md)."""
    import threading

    import botocore.exceptions

    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    s3 = aws.client("s3")

    def put(key, body, client=s3, **kwargs):
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)
            return "ok"
        except botocore.exceptions.ClientError as exc:
            return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]

    assert put("cond/a", b"1", IfNoneMatch="*") == "ok"
    assert put("cond/a", b"2", IfNoneMatch="*") == ("PreconditionFailed", 412)
    etag = s3.head_object(Bucket=bucket, Key="cond/a")["ETag"]
    assert put("cond/a", b"3", IfMatch=etag) == "ok"
    assert put("cond/a", b"4", IfMatch=etag) == ("PreconditionFailed", 412)
    assert put("cond/missing", b"5", IfMatch=etag) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket=bucket, Key="cond/a")["Body"].read() == b"3"

    clients = [aws.client("s3") for _ in range(6)]
    barrier, answers = threading.Barrier(6), []

    def racer(n):
        barrier.wait(timeout=30)
        answers.append(put("cond/race", f"w{n}".encode(), client=clients[n], IfNoneMatch="*"))

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers.count("ok") == 1 and answers.count(("PreconditionFailed", 412)) == 5, answers
    versions = s3.list_object_versions(Bucket=bucket, Prefix="cond/race")["Versions"]
    assert len(versions) == 1


@pytest.mark.proof
def test_a_bucket_that_refuses_the_write_through_does_not_stop_the_run_and_the_report_says_so(aws, run_playbook):
    """Every PutObject of a timeline record is denied (403, not retried): the run still succeeds with every record in
    its local file, the timeline notes that the durable copy is incomplete from seq 1, the run's output warns, and
    the report renders from the local file saying the durable copy is incomplete."""
    aws.proxy.add_rule(
        {
            "service": "s3",
            "method": "PUT",
            "path": "^/firebreak-sandbox-evidence/firebreak/timelines/",
            "fault": "error",
            "status": 403,
            "code": "AccessDenied",
        }
    )
    on = {"FIREBREAK_TIMELINE_DURABLE": "true"}
    run = run_playbook(NOTE, {"note": "contained at the edge"}, env=on)
    assert run.returncode == 0, run.output
    records = tl.verify_timeline(run.timeline)
    assert [r["event"] for r in records] == ["playbook_start", "note", "play_start", "note", "playbook_end"]
    gap = records[1]
    assert gap["details"]["durable"]["kept"] is False and gap["details"]["durable"]["from_seq"] == 1
    assert "AccessDenied" in gap["msg"] and "is incomplete from seq 1" in run.output
    assert _bucket_chain(aws, records[0]["incident_id"]) == []

    report = run_playbook(REPORT, {"incident_timeline": str(run.timeline)}, env=on)
    assert report.returncode == 0, report.output
    facts = json.loads((run.timeline.parent / "report.json").read_text())
    assert facts["timeline"]["durable"]["complete"] is False and facts["timeline"]["durable"]["records"] == 0
    assert "**incomplete**: it holds 0 of the 5 records" in (run.timeline.parent / "report.md").read_text()
