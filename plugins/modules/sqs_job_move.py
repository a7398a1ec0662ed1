#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sqs_job_move
short_description: Move stuck SQS jobs to a holding queue or re-drive a dead-letter queue, recording every id
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Mitigation step of the queue workers scenario (incident-procedures.md, "Film Generation Service Down", whose
    response says "clear stuck jobs from queue"), as a move and never a silent purge.
  - Moves up to O(max_messages) visible messages from O(source_queue) to O(destination_queue). Without
    O(destination_queue), re-drives a dead-letter queue to its source, the one queue whose redrive policy names
    O(source_queue) as its dead-letter queue.
  - Each batch of up to 10 messages is received, sent to the destination with its body and message attributes
    (for FIFO queues its group id and deduplication id), and only then deleted from the source. A crash or a failed
    delete between the send and the delete leaves the message in both queues (a duplicate at worst, listed in
    RV(duplicated)); nothing is ever lost. A message the destination refuses is made visible again in the source.
  - Every message moved is recorded in RV(moved) (its id) and RV(moved_messages) (its id in the destination, the
    MD5 of its body, its receive count and when it was first sent; the body only with O(include_body)), so the
    incident timeline holds them.
  - Refuses a move between a FIFO and a standard queue, naming both, and a destination that does not exist
    unless O(create_destination) (a holding queue with 14 days' retention, tagged with the incident).
  - In check mode nothing is received or changed. SQS has no way to look at messages without receiving them (a
    receive hides them for the visibility timeout and counts as a receive towards the dead-letter policy), so
    check mode reports only how many messages would be moved, from the queue's approximate count.
options:
  source_queue:
    description:
      - The queue to take the messages from (its name, URL or ARN).
    type: str
    required: true
  destination_queue:
    description:
      - The queue to put them on (its name, URL or ARN).
      - Omitted, O(source_queue) must be a dead-letter queue and its messages go back to its source queue (a
        re-drive); the step fails when no queue, or more than one, uses it as its dead-letter queue.
    type: str
  create_destination:
    description:
      - Create O(destination_queue) (given by name) when it does not exist, as a holding queue of the same kind as
        the source (a FIFO name must end in C(.fifo)) with 14 days' message retention.
    type: bool
    default: false
  max_messages:
    description:
      - At most this many messages are moved in one run (1 to 200). Only the messages visible when the step starts
        are counted; run the step again to move more (each run records its own).
    type: int
    default: 100
  include_body:
    description:
      - Also record each message's body in RV(moved_messages). Off by default, as bodies may hold customer data,
        and large bodies make the timeline cut the record (marked C(truncated)).
    type: bool
    default: false
  visibility_timeout:
    description:
      - Seconds a received message stays hidden from other consumers while it is being moved.
    type: int
    default: 60
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - A moved message is a new message in the destination (a new id, receive count and retention period); the
    original id is kept in RV(moved) beside the new one.
  - Workers still consuming the source may take some of the visible messages first; the step moves what it
    receives and says how many.
  - C(StartMessageMoveTask) is not used, as it reports counts and not the ids it moved.
  - "AWS permissions are C(sqs:GetQueueUrl), C(sqs:GetQueueAttributes), C(sqs:ReceiveMessage), C(sqs:SendMessage),
    C(sqs:DeleteMessage), C(sqs:ChangeMessageVisibility), C(sqs:ListDeadLetterSourceQueues), and C(sqs:CreateQueue),
    C(sqs:TagQueue) with O(create_destination)."
seealso:
  - module: firebreak.runbooks.health_verify
"""

EXAMPLES = r"""
- name: Move the stuck render jobs to the holding queue
  firebreak.runbooks.sqs_job_move:
    source_queue: prod-jobs
    destination_queue: prod-jobs-holding
    create_destination: true
    max_messages: 200
    incident_id: INC-2041
  register: moved

- name: Re-drive the dead-letter queue to its source once the workers are fixed
  firebreak.runbooks.sqs_job_move:
    source_queue: prod-jobs-dlq
    incident_id: INC-2041
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "moved 12 message(s) from prod-jobs to prod-jobs-holding"
source:
  description: The source queue's name.
  returned: always
  type: str
  sample: prod-jobs
destination:
  description: The destination queue's name.
  returned: when known
  type: str
  sample: prod-jobs-holding
redrive:
  description: Whether the destination is the source queue of the dead-letter queue O(source_queue).
  returned: always
  type: bool
created:
  description: Whether the destination queue was (or in check mode would be) created.
  returned: always
  type: bool
planned:
  description: How many messages the run set out to move (the visible ones, up to O(max_messages)).
  returned: always
  type: int
  sample: 12
moved:
  description: The source message ids of every message moved, in order.
  returned: always
  type: list
  elements: str
  sample: ["0f8e2a6c-5c1b-4a53-9d1e-3f3b8c1e7a11"]
moved_messages:
  description:
    - One record per message moved, in order; C(body) only with O(include_body).
  returned: always
  type: list
  elements: dict
  sample:
    - message_id: 0f8e2a6c-5c1b-4a53-9d1e-3f3b8c1e7a11
      new_message_id: 7a2b9c1d-0e3f-4a5b-8c6d-1e2f3a4b5c6d
      md5_of_body: 5d41402abc4b2a76b9719d911017c592
      receive_count: 4
      sent_at: "2026-11-24T09:30:00.123Z"
duplicated:
  description: Ids of messages sent to the destination whose delete from the source failed (now in both queues).
  returned: always
  type: list
  elements: str
  sample: []
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
containment:
  description: Always empty (a move is a mitigation; move the messages back with the queues swapped).
  returned: always
  type: list
  elements: dict
  sample: []
before:
  description: The queues before the step (SQS's approximate counts); C(destination) is C(null) when it does not exist.
  returned: always
  type: dict
  sample:
    source: {name: prod-jobs, fifo: false, visible: 12, in_flight: 0, delayed: 0}
    destination: null
after:
  description: The queues read back after the move, or in check mode the predicted counts.
  returned: always
  type: dict
  sample:
    source: {name: prod-jobs, visible: 0}
    destination: {name: prod-jobs-holding, visible: 12}
"""

import contextlib

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import sqs_move as sm
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

ARGUMENT_SPEC = dict(
    source_queue=dict(type="str", required=True),
    destination_queue=dict(type="str"),
    create_destination=dict(type="bool", default=False),
    max_messages=dict(type="int", default=100),
    include_body=dict(type="bool", default=False),
    visibility_timeout=dict(type="int", default=60),
    **step.INCIDENT_OPTION,
    **step.RETRY_BUDGET_OPTION,
)


def resolve(module, caller, sqs, result):
    """The source and destination (``{"name", "url", "attributes"}``); fails before any change on bad queues."""
    params = module.params
    source = sm.parse_queue(params["source_queue"], "source_queue")
    source["url"] = sm.queue_url(caller, sqs, source, "source_queue")
    source["attributes"] = sm.read_attributes(caller, sqs, source["url"], source["name"]) if source["url"] else None
    if source["attributes"] is None:
        raise sm.SqsMoveError(f"source_queue {params['source_queue']!r}: the SQS queue does not exist")
    result["source"] = source["name"]

    if params["destination_queue"]:
        destination = sm.parse_queue(params["destination_queue"], "destination_queue")
    else:
        sources = sm.dead_letter_sources(caller, sqs, source["url"], source["name"])
        if len(sources) != 1:
            found = ", ".join(sources) or "none"
            raise sm.SqsMoveError(
                f"no destination_queue given, so {source['name']!r} is re-driven to the queue that uses it as its "
                f"dead-letter queue; found {found}: name the destination_queue"
            )
        destination = sm.parse_queue(sources[0], "destination_queue")
        result["redrive"] = True
    result["destination"] = destination["name"]
    if destination["name"] == source["name"]:
        raise sm.SqsMoveError(f"source_queue and destination_queue are the same queue {source['name']!r}")
    destination["url"] = sm.queue_url(caller, sqs, destination, "destination_queue")
    destination["attributes"] = (
        sm.read_attributes(caller, sqs, destination["url"], destination["name"]) if destination["url"] else None
    )
    source_view = sm.queue_view(source["name"], source["attributes"])
    if destination["attributes"] is None:
        if not params["create_destination"] or params["destination_queue"] is None:
            raise sm.SqsMoveError(
                f"destination_queue {destination['name']!r}: the SQS queue does not exist "
                "(create_destination: true creates it as a holding queue)"
            )
        fifo = destination["name"].endswith(".fifo")
        sm.check_kinds(source_view, destination, fifo)
    else:
        sm.check_kinds(source_view, destination, sm.is_fifo(destination["attributes"]))
    return source, destination


def views(source, destination):
    return {
        "source": sm.queue_view(source["name"], source["attributes"]),
        "destination": sm.queue_view(destination["name"], destination["attributes"]),
    }


def give_back(caller, sqs, source, messages):
    """Make received messages that were not sent visible again in the source (best effort: else they come back
    when their visibility timeout ends)."""
    entries = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(messages)
    ]
    with contextlib.suppress(step.StepAWSError):
        sm.make_visible(caller, sqs, source["url"], source["name"], entries)


def move(module, caller, sqs, source, destination, planned, result):
    """Receive, send, then delete, batch by batch, until ``planned`` messages moved or the source is empty."""
    fifo = sm.is_fifo(source["attributes"])
    moved_ids = set()
    while len(result["moved"]) < planned:
        want = min(sm.BATCH, planned - len(result["moved"]))
        messages = sm.receive(caller, sqs, source["url"], source["name"], want, module.params["visibility_timeout"])
        if not messages:
            break
        fresh = [m for m in messages if m["MessageId"] not in moved_ids]
        already = [m for m in messages if m["MessageId"] in moved_ids]  # sent before, its delete was not seen
        by_id = {str(i): m for i, m in enumerate(fresh)}
        sent, failed = ([], [])
        if fresh:
            entries = [sm.send_entry(i, m, fifo) for i, m in enumerate(fresh)]
            try:
                sent, failed = sm.send_batch(caller, sqs, destination["url"], destination["name"], entries)
            except step.StepAWSError:
                give_back(caller, sqs, source, fresh)  # not sent: visible in the source again at once
                raise
        if sent:
            result["changed"] = True
        for answer in sent:
            message = by_id[answer["Id"]]
            moved_ids.add(message["MessageId"])
            result["moved"].append(message["MessageId"])
            result["moved_messages"].append(
                sm.moved_record(message, answer.get("MessageId"), module.params["include_body"])
            )
        to_delete = [by_id[a["Id"]] for a in sent] + already
        if to_delete:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(to_delete)]
            for failure in sm.delete_batch(caller, sqs, source["url"], source["name"], entries):
                result["duplicated"].append(to_delete[int(failure["Id"])]["MessageId"])
        if failed:
            give_back(caller, sqs, source, [by_id[f["Id"]] for f in failed])
            reasons = "; ".join(
                f"{by_id[f['Id']]['MessageId']}: {f.get('Code')} {f.get('Message', '')}" for f in failed
            )
            raise sm.SqsMoveError(
                f"{destination['name']!r} refused {len(failed)} message(s), left in {source['name']!r} "
                f"({reasons}); moved {len(result['moved'])} before that"
            )


def run(module, result):
    params = module.params
    sm.validate_max(params["max_messages"])
    if not 0 <= params["visibility_timeout"] <= 43200:
        raise sm.SqsMoveError(f"visibility_timeout {params['visibility_timeout']!r} is out of range: 0 to 43200")
    sm.parse_queue(params["source_queue"], "source_queue")
    if params["destination_queue"] is not None:
        sm.parse_queue(params["destination_queue"], "destination_queue")
    result.update(changed=False, redrive=False, created=False, moved=[], moved_messages=[], duplicated=[], planned=0)
    sqs = step.aws_client(module, "sqs")
    caller = step.Caller(params["retry_budget"])
    source, destination = resolve(module, caller, sqs, result)
    result["before"] = views(source, destination)
    planned = sm.plan_count(result["before"]["source"]["visible"], params["max_messages"])
    result["planned"] = planned
    create = destination["attributes"] is None
    where = f"from {source['name']} to {destination['name']}" + (" (re-drive)" if result["redrive"] else "")

    if module.check_mode:
        predicted = views(source, destination)
        predicted["source"]["visible"] -= planned
        if predicted["destination"] is None:
            predicted["destination"] = {"name": destination["name"], "fifo": predicted["source"]["fifo"], "visible": 0}
        predicted["destination"]["visible"] += planned
        result.update(after=predicted, created=create, changed=bool(planned or create))
        creating = f" (creating {destination['name']})" if create else ""
        result["msg"] = (
            f"check mode: would move {planned} message(s) {where}{creating}; SQS cannot show messages without "
            "receiving them, so this is the queue's approximate count"
        )
        return result

    if create:
        tags = step.incident_tags(params["incident_id"], sm.STEP)
        fifo = sm.is_fifo(source["attributes"])
        destination["url"] = sm.create_holding_queue(caller, sqs, destination["name"], fifo, tags)
        result.update(created=True, changed=True)
    if planned:
        move(module, caller, sqs, source, destination, planned, result)
    source["attributes"] = sm.read_attributes(caller, sqs, source["url"], source["name"])
    destination["attributes"] = sm.read_attributes(caller, sqs, destination["url"], destination["name"])
    result["after"] = views(source, destination)
    count = len(result["moved"])
    if not count and not create:
        result["msg"] = f"no change: no visible message in {source['name']} to move"
        return result
    result["msg"] = f"moved {count} message(s) {where}" + (f", creating {destination['name']}" if create else "")
    if count < planned:
        result["msg"] += f"; {planned - count} of the {planned} counted were taken by others first"
    if result["duplicated"]:
        result["msg"] += f"; {len(result['duplicated'])} could not be deleted from {source['name']} (now in both)"
        module.warn(f"messages {result['duplicated']} are now in both {source['name']} and {destination['name']}")
    return result


def main():
    run_aws_step(run, "mitigation", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
