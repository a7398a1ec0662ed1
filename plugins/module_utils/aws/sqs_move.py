# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Moving stuck jobs between SQS queues: the API layer and the pure decisions of ``sqs_job_move``.

The seed's "clear stuck jobs from queue" as a move, never a purge: up to ``max_messages`` messages go from a
source queue to a destination queue (a holding queue, or a dead-letter queue's source for a re-drive), and
every message id moved is recorded with the MD5 of its body (the body itself only when asked).

Each batch is sent to the destination *before* it is deleted from the source, so a crash (or a failed delete)
between the two leaves the message in both queues: a duplicate at worst, never a loss.  A message the
destination refused is made visible again in the source at once.

``StartMessageMoveTask`` (SQS's own re-drive) is not used: it reports counts, not message ids, so it cannot
record what it moved, and moto does not implement it.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError, iso_utc

STEP = "sqs_job_move"
BATCH = 10  # SQS's maximum per ReceiveMessage, SendMessageBatch and DeleteMessageBatch
MAX_MESSAGES_LIMIT = 200  # per run: the ids of a whole run fit in one timeline record (64 KiB of details)
RECEIVE_WAIT_SECONDS = 1  # long polling asks every SQS server; it only waits when the queue is empty
HOLDING_RETENTION = 1209600  # 14 days, SQS's maximum: held jobs outlive the incident

NO_QUEUE_CODES = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue")
READ_ATTRIBUTES = [
    "QueueArn",
    "FifoQueue",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "RedrivePolicy",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,75}(\.fifo)?$")
_URL_RE = re.compile(r"^https?://[^/\s]+/(\d{12})/([A-Za-z0-9_-]{1,75}(?:\.fifo)?)$")
_ARN_RE = re.compile(r"^arn:aws(?:-[a-z]+)*:sqs:[a-z0-9-]+:(\d{12}):([A-Za-z0-9_-]{1,75}(?:\.fifo)?)$")


class SqsMoveError(StepError):
    """Bad input or a state the step refuses to act on (names the queues)."""


# --------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------


def parse_queue(value, option):
    """``{"name": ..., "url": url or None}`` for a queue name, URL or ARN; ``SqsMoveError`` naming the value."""
    text = str(value or "").strip()
    for regex, is_url in ((_URL_RE, True), (_ARN_RE, False)):
        match = regex.match(text)
        if match:
            return {"name": match.group(2), "url": text if is_url else None}
    if _NAME_RE.match(text):
        return {"name": text, "url": None}
    raise SqsMoveError(
        f"invalid {option} {value!r}: expected an SQS queue name (letters, digits, '-' and '_', up to 80 "
        "characters with '.fifo'), its URL or its ARN"
    )


def validate_max(value):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_MESSAGES_LIMIT:
        raise SqsMoveError(
            f"max_messages {value!r} is out of range: 1 to {MAX_MESSAGES_LIMIT} per run "
            "(run the step again to move more; each run records its own message ids)"
        )
    return value


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def _missing(err):
    return isinstance(err, StepAWSError) and err.code in NO_QUEUE_CODES


def queue_url(caller, sqs, queue, option):
    """The URL of ``queue`` (parsed by ``parse_queue``), or ``None`` when the queue does not exist."""
    if queue["url"]:
        return queue["url"]
    try:
        return caller(sqs, "get_queue_url", f"queue {queue['name']!r}", QueueName=queue["name"])["QueueUrl"]
    except StepAWSError as err:
        if _missing(err):
            return None
        raise


def read_attributes(caller, sqs, url, name):
    """The queue's attributes, or ``None`` when it does not exist."""
    try:
        answer = caller(sqs, "get_queue_attributes", f"queue {name!r}", QueueUrl=url, AttributeNames=READ_ATTRIBUTES)
    except StepAWSError as err:
        if _missing(err):
            return None
        raise
    return answer.get("Attributes") or {}


def dead_letter_sources(caller, sqs, url, name):
    """URLs of the queues whose redrive policy names ``url`` as their dead-letter queue."""
    urls = []
    for page in caller.paginate(
        sqs, "list_dead_letter_source_queues", f"queue {name!r}", result_key="queueUrls", QueueUrl=url
    ):
        urls.extend(page.get("queueUrls") or [])
    return urls


def create_holding_queue(caller, sqs, name, fifo, tags):
    attributes = {"MessageRetentionPeriod": str(HOLDING_RETENTION)}
    if fifo:
        attributes["FifoQueue"] = "true"
    params = {"QueueName": name, "Attributes": attributes}
    if tags:
        params["tags"] = dict(tags)
    return caller(sqs, "create_queue", f"queue {name!r}", **params)["QueueUrl"]


def receive(caller, sqs, url, name, count, visibility_timeout):
    answer = caller(
        sqs,
        "receive_message",
        f"queue {name!r}",
        QueueUrl=url,
        MaxNumberOfMessages=count,
        WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
        VisibilityTimeout=visibility_timeout,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return answer.get("Messages") or []


def send_batch(caller, sqs, url, name, entries):
    answer = caller(sqs, "send_message_batch", f"queue {name!r}", QueueUrl=url, Entries=entries)
    return answer.get("Successful") or [], answer.get("Failed") or []


def delete_batch(caller, sqs, url, name, entries):
    answer = caller(sqs, "delete_message_batch", f"queue {name!r}", QueueUrl=url, Entries=entries)
    return answer.get("Failed") or []


def make_visible(caller, sqs, url, name, entries):
    """Give messages back to the source at once (visibility timeout 0)."""
    if entries:
        caller(sqs, "change_message_visibility_batch", f"queue {name!r}", QueueUrl=url, Entries=entries)


# --------------------------------------------------------------------------------------------------
# Decisions (pure)
# --------------------------------------------------------------------------------------------------


def is_fifo(attributes):
    return str((attributes or {}).get("FifoQueue", "false")).lower() == "true"


def queue_view(name, attributes):
    """What before/after show of a queue: its counts (SQS's approximations) and kind; ``None`` when absent."""
    if attributes is None:
        return None
    return {
        "name": name,
        "arn": attributes.get("QueueArn"),
        "fifo": is_fifo(attributes),
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


def check_kinds(source, destination, destination_fifo):
    """Refuse a move between a FIFO and a standard queue, naming both."""
    if source["fifo"] != destination_fifo:
        kind = {True: "FIFO", False: "standard"}
        raise SqsMoveError(
            f"refusing to move messages from the {kind[source['fifo']]} queue {source['name']!r} to the "
            f"{kind[destination_fifo]} queue {destination['name']!r}: FIFO order and deduplication cannot be kept "
            "across kinds; use a destination of the same kind"
        )


def send_entry(index, message, fifo):
    """The SendMessageBatch entry that puts ``message`` (as received) on the destination unchanged."""
    entry = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = {}
    for key, value in (message.get("MessageAttributes") or {}).items():
        attributes[key] = {k: v for k, v in value.items() if v not in (None, [], "")}
    if attributes:
        entry["MessageAttributes"] = attributes
    if fifo:
        system = message.get("Attributes") or {}
        entry["MessageGroupId"] = system.get("MessageGroupId") or "firebreak-moved"
        entry["MessageDeduplicationId"] = system.get("MessageDeduplicationId") or message["MessageId"]
    return entry


def moved_record(message, new_id, include_body):
    """What the result (and the timeline) keep of a moved message: ids, the body's MD5, when it was first sent
    and how often it was received; the body only when asked."""
    system = message.get("Attributes") or {}
    record = {
        "message_id": message["MessageId"],
        "new_message_id": new_id,
        "md5_of_body": message.get("MD5OfBody"),
        "receive_count": int(system.get("ApproximateReceiveCount", 0)),
    }
    sent = system.get("SentTimestamp")
    if sent and str(sent).isdigit():
        record["sent_at"] = iso_utc(datetime.datetime.fromtimestamp(int(sent) / 1000, datetime.UTC))
    if include_body:
        record["body"] = message.get("Body")
    return record


def plan_count(visible, max_messages):
    """How many messages a run moves (or in check mode would move): the visible ones, up to ``max_messages``."""
    return max(0, min(int(visible), int(max_messages)))
