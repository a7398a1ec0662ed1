"""sqs_job_move against the sandbox: the queues read back with boto3 (the seeded Film Generation queues)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.integration.containment_helpers import calls, last_seq, step, timeline_records
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

MODULE = "sqs_job_move"


def queues(aws) -> dict:
    return aws.manifest["aws"]["queues"]


def put_jobs(aws, url, count, fifo=False, prefix="render"):
    sqs = aws.client("sqs")
    ids = []
    for start in range(0, count, 10):
        entries = []
        for i in range(start, min(count, start + 10)):
            entry = {
                "Id": str(i),
                "MessageBody": json.dumps({"job": f"{prefix}-{i}", "frames": [1, 240]}),
                "MessageAttributes": {"tenant": {"DataType": "String", "StringValue": f"t{i % 3}"}},
            }
            if fifo:
                entry.update(MessageGroupId=f"film-{i % 2}", MessageDeduplicationId=f"{prefix}-{i}")
            entries.append(entry)
        answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not answer.get("Failed"), answer
        ids += [a["MessageId"] for a in sorted(answer["Successful"], key=lambda a: int(a["Id"]))]
    return ids


def drain(aws, url) -> list[dict]:
    """Every message of a queue (received and deleted: the test's own read-back)."""
    sqs = aws.client("sqs")
    found = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            return found
        found += got
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )


def counts(aws, url) -> tuple[int, int]:
    attrs = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def move(run_playbook, **args):
    return step(run_playbook, MODULE, incident_id="INC-Q-1", **args)


def test_stuck_jobs_move_to_the_holding_queue_with_every_id_recorded(aws, run_playbook):
    q = queues(aws)
    ids = put_jobs(aws, q["jobs_url"], 15)
    run, result = move(run_playbook, source_queue=q["jobs_queue"], destination_queue=q["holding_queue"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["step_kind"] == "mitigation" and result["containment"] == []
    assert result["moved"] == ids, "every message id, in order"
    assert result["planned"] == 15 and result["duplicated"] == []
    assert counts(aws, q["jobs_url"]) == (0, 0), "moved, not left in flight"
    held = drain(aws, q["holding_url"])
    assert sorted(json.loads(m["Body"])["job"] for m in held) == sorted(f"render-{i}" for i in range(15))
    assert all(m["MessageAttributes"]["tenant"]["DataType"] == "String" for m in held)
    by_new_id = {r["new_message_id"]: r for r in result["moved_messages"]}
    assert {m["MessageId"] for m in held} == set(by_new_id)
    for message in held:
        record = by_new_id[message["MessageId"]]
        assert record["md5_of_body"] == hashlib.md5(message["Body"].encode()).hexdigest()  # noqa: S324 - SQS's own
        assert "body" not in record and record["receive_count"] == 1
    assert result["before"]["source"]["visible"] == 15 and result["after"]["source"]["visible"] == 0
    assert result["after"]["destination"]["visible"] == 15
    # the timeline holds every id (the record of the move)
    [record] = [r for r in timeline_records(run.timeline) if r["event"] == "task_changed"]
    assert record["details"]["moved"] == ids and "truncated" not in record["details"]
    assert "render-1" not in json.dumps(record), "no body in the timeline unless asked"

    run, again = move(run_playbook, source_queue=q["jobs_queue"], destination_queue=q["holding_queue"])
    assert run.returncode == 0 and again["changed"] is False and again["moved"] == [], run.output


def test_max_messages_bounds_the_move(aws, run_playbook):
    q = queues(aws)
    ids = put_jobs(aws, q["jobs_url"], 12)
    run, result = move(
        run_playbook,
        source_queue=q["jobs_url"],
        destination_queue=q["holding_queue"],
        max_messages=5,
        include_body=True,
    )
    assert run.returncode == 0, run.output
    assert len(result["moved"]) == 5 and set(result["moved"]) <= set(ids)
    assert all(json.loads(r["body"])["job"].startswith("render-") for r in result["moved_messages"])
    assert counts(aws, q["jobs_url"]) == (7, 0) and counts(aws, q["holding_url"]) == (5, 0)


def test_the_dead_letter_queue_is_re_driven_to_its_source(aws, run_playbook):
    q = queues(aws)
    ids = put_jobs(aws, q["dlq_url"], 3, prefix="failed")
    run, result = move(run_playbook, source_queue=q["dlq"])
    assert run.returncode == 0, run.output
    assert result["redrive"] is True and result["destination"] == q["jobs_queue"]
    assert result["moved"] == ids
    assert counts(aws, q["dlq_url"]) == (0, 0)
    assert sorted(json.loads(m["Body"])["job"] for m in drain(aws, q["jobs_url"])) == [
        "failed-0",
        "failed-1",
        "failed-2",
    ]


def test_a_holding_queue_is_created_when_asked_and_fifo_keeps_groups(aws, run_playbook):
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="renders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    ids = put_jobs(aws, url, 4, fifo=True)
    run, result = move(
        run_playbook, source_queue="renders.fifo", destination_queue="renders-holding.fifo", create_destination=True
    )
    assert run.returncode == 0, run.output
    assert result["created"] is True and result["moved"] == ids
    holding = sqs.get_queue_url(QueueName="renders-holding.fifo")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=holding, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true" and attrs["MessageRetentionPeriod"] == "1209600"
    assert sqs.list_queue_tags(QueueUrl=holding)["Tags"]["firebreak:incident"] == "INC-Q-1"
    held = drain(aws, holding)
    assert [m["Attributes"]["MessageGroupId"] for m in held] == ["film-0", "film-1", "film-0", "film-1"] or sorted(
        m["Attributes"]["MessageGroupId"] for m in held
    ) == ["film-0", "film-0", "film-1", "film-1"]


def test_fifo_and_standard_queues_are_refused_naming_both(aws, run_playbook):
    q = queues(aws)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="renders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    put_jobs(aws, url, 2, fifo=True)
    seq = last_seq(aws)
    run, result = move(run_playbook, source_queue="renders.fifo", destination_queue=q["holding_queue"])
    assert run.returncode != 0
    assert "FIFO queue 'renders.fifo'" in result["msg"] and f"standard queue '{q['holding_queue']}'" in result["msg"]
    assert counts(aws, url) == (2, 0)
    assert "ReceiveMessage" not in calls(aws, "sqs", seq)


def test_check_mode_counts_and_receives_nothing(aws, run_playbook):
    q = queues(aws)
    put_jobs(aws, q["jobs_url"], 6)
    seq = last_seq(aws)
    run, result = move(
        run_playbook,
        source_queue=q["jobs_queue"],
        destination_queue="prod-jobs-held-inc",
        create_destination=True,
        check=True,
        diff=True,
    )
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["predicted"] is True and result["planned"] == 6
    assert "would move 6 message(s)" in result["msg"] and "approximate count" in result["msg"]
    assert result["after"]["destination"]["visible"] == 6 and result["moved"] == []
    assert counts(aws, q["jobs_url"]) == (6, 0)
    sent = calls(aws, "sqs", seq)
    assert not {"ReceiveMessage", "SendMessageBatch", "DeleteMessageBatch", "CreateQueue"} & set(sent), sent
    assert "prod-jobs-held-inc" not in json.dumps(aws.client("sqs").list_queues())


def test_a_failed_delete_duplicates_and_never_loses(aws, run_playbook):
    q = queues(aws)
    [job] = put_jobs(aws, q["jobs_url"], 1)
    aws.proxy.add_rule(
        {
            "service": "sqs",
            "action": "DeleteMessageBatch",
            "fault": "canned",
            "count": 1,
            "headers": {"Content-Type": "application/x-amz-json-1.0"},
            "body": {"Successful": [], "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]},
        }
    )
    run, result = move(run_playbook, source_queue=q["jobs_queue"], destination_queue=q["holding_queue"])
    assert run.returncode == 0, run.output
    assert result["moved"] == [job] and result["duplicated"] == [job]
    assert "now in both" in result["msg"]
    assert counts(aws, q["holding_url"])[0] == 1
    assert sum(counts(aws, q["jobs_url"])) == 1, "still in the source too: a duplicate, not a loss"


def test_a_refused_send_gives_the_messages_back_and_fails_naming_the_call(aws, run_playbook):
    q = queues(aws)
    put_jobs(aws, q["jobs_url"], 3)
    aws.proxy.add_rule({"service": "sqs", "action": "SendMessageBatch", "fault": "error", "status": 500})
    started = time.monotonic()
    run, result = move(run_playbook, source_queue=q["jobs_queue"], destination_queue=q["holding_queue"], retry_budget=3)
    assert run.returncode != 0 and time.monotonic() - started < 60
    assert result["aws_operation"] == "SendMessageBatch" and result["moved"] == []
    assert counts(aws, q["jobs_url"]) == (3, 0), "visible again at once, not hidden for the visibility timeout"
    assert counts(aws, q["holding_url"]) == (0, 0)


@first_case_in_make_test
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"source_queue": "no-such-queue"}, "source_queue 'no-such-queue': the SQS queue does not exist"),
        ({"source_queue": "bad queue!"}, "invalid source_queue 'bad queue!'"),
        ({"destination_queue": "prod-jobs-nowhere"}, "destination_queue 'prod-jobs-nowhere': the SQS queue does not"),
        ({"max_messages": 0}, "max_messages 0 is out of range"),
        ({"max_messages": 5000}, "max_messages 5000 is out of range"),
        ({"destination_queue": "prod-jobs"}, "are the same queue 'prod-jobs'"),
        ({"destination_queue": None, "source_queue": "prod-jobs-holding"}, "found none: name the destination_queue"),
    ],
    ids=["unknown", "invalid", "no-destination", "zero", "too-many", "same", "not-a-dlq"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, args, expected):
    q = queues(aws)
    put_jobs(aws, q["jobs_url"], 2)
    seq = last_seq(aws)
    full = {"source_queue": q["jobs_queue"], "destination_queue": q["holding_queue"], **args}
    full = {k: v for k, v in full.items() if v is not None}
    run, result = move(run_playbook, **full)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result["changed"] is False and "Traceback" not in run.output
    assert counts(aws, q["jobs_url"]) == (2, 0)
    assert not {"ReceiveMessage", "SendMessageBatch", "CreateQueue"} & set(calls(aws, "sqs", seq))
