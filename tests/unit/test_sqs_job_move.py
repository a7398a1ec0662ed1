"""sqs_job_move without AWS: queue references, the FIFO/standard refusal, the send entries, and the module's move
against a fake SQS (send before delete, a failed delete, a refused send, check mode); the sandbox tests are
tests/integration/test_sqs_job_move.py."""

from __future__ import annotations

import importlib
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import sqs_move as sm

module_under_test = importlib.import_module("ansible_collections.firebreak.runbooks.plugins.modules.sqs_job_move")

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/{}"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("prod-jobs", {"name": "prod-jobs", "url": None}),
        ("renders.fifo", {"name": "renders.fifo", "url": None}),
        (URL.format("prod-jobs"), {"name": "prod-jobs", "url": URL.format("prod-jobs")}),
        ("arn:aws:sqs:us-east-1:123456789012:prod-jobs-dlq", {"name": "prod-jobs-dlq", "url": None}),
    ],
)
def test_a_queue_is_given_by_name_url_or_arn(value, parsed):
    assert sm.parse_queue(value, "source_queue") == parsed


@pytest.mark.parametrize("bad", ["", "bad queue", "x" * 81, "jobs.fifo.fifo", "arn:aws:sqs:us-east-1:1:q"])
def test_a_bad_queue_reference_is_refused_naming_it(bad):
    with pytest.raises(sm.SqsMoveError, match=r"invalid source_queue"):
        sm.parse_queue(bad, "source_queue")


@pytest.mark.parametrize("bad", [0, -1, 201, True])
def test_max_messages_is_bounded(bad):
    with pytest.raises(sm.SqsMoveError, match=r"max_messages .* is out of range: 1 to 200"):
        sm.validate_max(bad)


def test_fifo_and_standard_are_refused_naming_both_queues():
    with pytest.raises(sm.SqsMoveError) as err:
        sm.check_kinds({"name": "a.fifo", "fifo": True}, {"name": "hold"}, False)
    assert "FIFO queue 'a.fifo'" in str(err.value) and "standard queue 'hold'" in str(err.value)
    with pytest.raises(sm.SqsMoveError, match=r"standard queue 'a' to the FIFO queue 'b\.fifo'"):
        sm.check_kinds({"name": "a", "fifo": False}, {"name": "b.fifo"}, True)
    sm.check_kinds({"name": "a", "fifo": False}, {"name": "b"}, False)


def _message(i, group=None, dedup=None):
    attributes = {"ApproximateReceiveCount": "4", "SentTimestamp": "1796583591045"}
    if group:
        attributes["MessageGroupId"] = group
    if dedup:
        attributes["MessageDeduplicationId"] = dedup
    return {
        "MessageId": f"m-{i}",
        "ReceiptHandle": f"rh-{i}",
        "MD5OfBody": f"md5-{i}",
        "Body": f"body-{i}",
        "Attributes": attributes,
        "MessageAttributes": {"tenant": {"DataType": "String", "StringValue": "t1", "StringListValues": []}},
    }


def test_a_standard_message_is_sent_with_its_body_and_attributes():
    entry = sm.send_entry(3, _message(3), fifo=False)
    assert entry == {
        "Id": "3",
        "MessageBody": "body-3",
        "MessageAttributes": {"tenant": {"DataType": "String", "StringValue": "t1"}},
    }


def test_a_fifo_message_keeps_its_group_and_deduplication_id():
    entry = sm.send_entry(0, _message(0, group="film-1", dedup="render-1"), fifo=True)
    assert entry["MessageGroupId"] == "film-1" and entry["MessageDeduplicationId"] == "render-1"
    entry = sm.send_entry(0, _message(0, group="film-1"), fifo=True)
    assert entry["MessageDeduplicationId"] == "m-0", "content-based deduplication: the message id stands in"


def test_the_record_has_ids_and_md5_and_the_body_only_when_asked():
    record = sm.moved_record(_message(1), "n-1", include_body=False)
    assert record == {
        "message_id": "m-1",
        "new_message_id": "n-1",
        "md5_of_body": "md5-1",
        "receive_count": 4,
        "sent_at": "2026-12-06T18:59:51.045Z",
    }
    assert sm.moved_record(_message(1), "n-1", include_body=True)["body"] == "body-1"


def test_the_plan_is_the_visible_messages_up_to_the_bound():
    assert sm.plan_count(15, 100) == 15 and sm.plan_count(500, 200) == 200 and sm.plan_count(0, 10) == 0


# -- the module against a fake SQS --------------------------------------------------------------------------


class FakeSQS:
    """Two standard queues, ``jobs`` and ``hold``; records every call in order."""

    def __init__(self, jobs=0, fail_delete=(), refuse_send=()):
        self.meta = type("Meta", (), {"region_name": "us-east-1", "method_to_api_mapping": {}})()
        self.queues = {"jobs": [_message(i) for i in range(jobs)], "hold": []}
        self.hidden = {"jobs": [], "hold": []}
        self.calls = []
        self.fail_delete = set(fail_delete)
        self.refuse_send = set(refuse_send)

    def _name(self, url):
        return url.rsplit("/", 1)[1]

    def get_queue_url(self, QueueName):
        self.calls.append(("GetQueueUrl", QueueName))
        return {"QueueUrl": URL.format(QueueName)}

    def get_queue_attributes(self, QueueUrl, AttributeNames):
        name = self._name(QueueUrl)
        self.calls.append(("GetQueueAttributes", name))
        return {
            "Attributes": {
                "QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{name}",
                "ApproximateNumberOfMessages": str(len(self.queues[name])),
                "ApproximateNumberOfMessagesNotVisible": str(len(self.hidden[name])),
            }
        }

    def receive_message(self, QueueUrl, MaxNumberOfMessages, **kwargs):
        name = self._name(QueueUrl)
        self.calls.append(("ReceiveMessage", name))
        got, self.queues[name] = self.queues[name][:MaxNumberOfMessages], self.queues[name][MaxNumberOfMessages:]
        self.hidden[name] += got
        return {"Messages": got}

    def send_message_batch(self, QueueUrl, Entries):
        name = self._name(QueueUrl)
        self.calls.append(("SendMessageBatch", name, [e["MessageBody"] for e in Entries]))
        ok, failed = [], []
        for entry in Entries:
            if entry["MessageBody"] in self.refuse_send:
                failed.append(
                    {"Id": entry["Id"], "Code": "InvalidMessageContents", "Message": "no", "SenderFault": True}
                )
                continue
            self.queues[name].append(dict(_message(0), Body=entry["MessageBody"]))
            ok.append({"Id": entry["Id"], "MessageId": "new-" + entry["MessageBody"]})
        return {"Successful": ok, "Failed": failed}

    def delete_message_batch(self, QueueUrl, Entries):
        name = self._name(QueueUrl)
        self.calls.append(("DeleteMessageBatch", name, [e["ReceiptHandle"] for e in Entries]))
        failed = []
        for entry in Entries:
            if entry["ReceiptHandle"] in self.fail_delete:
                failed.append({"Id": entry["Id"], "Code": "InternalError", "SenderFault": False})
                continue
            self.hidden[name] = [m for m in self.hidden[name] if m["ReceiptHandle"] != entry["ReceiptHandle"]]
        return {"Successful": [], "Failed": failed}

    def change_message_visibility_batch(self, QueueUrl, Entries):
        name = self._name(QueueUrl)
        self.calls.append(("ChangeMessageVisibilityBatch", name, [e["ReceiptHandle"] for e in Entries]))
        back = [m for m in self.hidden[name] if m["ReceiptHandle"] in {e["ReceiptHandle"] for e in Entries}]
        self.hidden[name] = [m for m in self.hidden[name] if m not in back]
        self.queues[name] = back + self.queues[name]
        return {"Successful": [], "Failed": []}


class FakeModule:
    def __init__(self, sqs, check_mode=False, **params):
        self.sqs = sqs
        self.check_mode = check_mode
        self.params = {
            "source_queue": "jobs",
            "destination_queue": "hold",
            "create_destination": False,
            "max_messages": 100,
            "include_body": False,
            "visibility_timeout": 60,
            "incident_id": "INC-1",
            "retry_budget": 0,
            **params,
        }
        self.warnings = []

    def client(self, service, config=None):
        return self.sqs

    def warn(self, msg):
        self.warnings.append(msg)


def _run(module):
    result = {}
    return module_under_test.run(module, result)


def test_every_batch_is_sent_before_it_is_deleted_and_every_id_recorded():
    sqs = FakeSQS(jobs=23)
    result = _run(FakeModule(sqs))
    assert result["moved"] == [f"m-{i}" for i in range(23)]
    assert [r["new_message_id"] for r in result["moved_messages"]] == [f"new-body-{i}" for i in range(23)]
    moves = [c for c in sqs.calls if c[0] in ("ReceiveMessage", "SendMessageBatch", "DeleteMessageBatch")]
    assert [c[0] for c in moves] == ["ReceiveMessage", "SendMessageBatch", "DeleteMessageBatch"] * 3
    assert [len(c[2]) for c in moves if c[0] == "SendMessageBatch"] == [10, 10, 3]
    assert result["after"]["source"]["visible"] == 0 and result["after"]["destination"]["visible"] == 23
    assert result["changed"] is True and result["duplicated"] == []


def test_a_failed_delete_is_reported_as_a_duplicate_not_a_loss():
    sqs = FakeSQS(jobs=3, fail_delete={"rh-1"})
    module = FakeModule(sqs)
    result = _run(module)
    assert result["moved"] == ["m-0", "m-1", "m-2"] and result["duplicated"] == ["m-1"]
    assert "now in both" in result["msg"] and module.warnings
    assert [m["MessageId"] for m in sqs.hidden["jobs"]] == ["m-1"], "still in the source"


def test_a_refused_message_is_made_visible_again_and_the_step_fails_naming_it():
    sqs = FakeSQS(jobs=3, refuse_send={"body-1"})
    result = {}
    with pytest.raises(sm.SqsMoveError, match=r"'hold' refused 1 message\(s\), left in 'jobs' \(m-1: Invalid"):
        module_under_test.run(FakeModule(sqs), result)
    assert result["moved"] == ["m-0", "m-2"] and result["changed"] is True
    assert [m["MessageId"] for m in sqs.queues["jobs"]] == ["m-1"] and sqs.hidden["jobs"] == []
    deleted = next(c for c in sqs.calls if c[0] == "DeleteMessageBatch")[2]
    assert deleted == ["rh-0", "rh-2"], "the refused message is never deleted"


def test_check_mode_counts_and_receives_nothing():
    sqs = FakeSQS(jobs=7)
    result = _run(FakeModule(sqs, check_mode=True, max_messages=5))
    assert result["planned"] == 5 and result["moved"] == [] and result["changed"] is True
    assert result["after"]["source"]["visible"] == 2 and result["after"]["destination"]["visible"] == 5
    assert {c[0] for c in sqs.calls} == {"GetQueueUrl", "GetQueueAttributes"}


def test_the_bound_stops_the_move():
    sqs = FakeSQS(jobs=30)
    result = _run(FakeModule(sqs, max_messages=12))
    assert len(result["moved"]) == 12 and len(sqs.queues["jobs"]) == 18


def test_module_documentation_matches_the_argument_spec():
    documented = yaml.safe_load(module_under_test.DOCUMENTATION)["options"]
    spec = dict(module_under_test.ARGUMENT_SPEC)
    for shared in ("retry_budget", "incident_id"):
        spec.pop(shared)
    assert set(documented) == set(spec)
    for option, definition in spec.items():
        assert documented[option]["type"] == definition["type"], option
        assert documented[option].get("default") == definition.get("default"), option


def test_the_ids_of_a_whole_run_fit_in_one_timeline_record_uncut():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline

    messages = [
        dict(
            _message(i), MessageId=f"{i:08d}-5c1b-4a53-9d1e-3f3b8c1e7a11", MD5OfBody="5d41402abc4b2a76b9719d911017c592"
        )
        for i in range(sm.MAX_MESSAGES_LIMIT)
    ]
    result = {
        "changed": True,
        "msg": "moved 200 message(s) from prod-jobs to prod-jobs-holding",
        "moved": [m["MessageId"] for m in messages],
        "moved_messages": [sm.moved_record(m, "7a2b9c1d-0e3f-4a5b-8c6d-1e2f3a4b5c6d", False) for m in messages],
        "before": {"source": sm.queue_view("prod-jobs", {"ApproximateNumberOfMessages": "200"}), "destination": None},
        "after": {"source": sm.queue_view("prod-jobs", {}), "destination": sm.queue_view("prod-jobs-holding", {})},
        "step_kind": "mitigation",
        "containment": [],
    }
    details, _ = timeline.result_details(result)
    assert "truncated" not in details
    assert details["moved"] == result["moved"] and details["moved_messages"] == result["moved_messages"]
