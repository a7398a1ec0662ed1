"""The event-driven path's AWS side (what extensions/eda/aws/alarm-queue.cfn.yml creates in an account): the queue
``firebreak-alarms`` with a dead-letter queue, and an EventBridge rule sending CloudWatch alarm state changes to it.

moto emits no event when an alarm changes state; ``python -m sandbox.alarm`` puts one on the queue."""

from __future__ import annotations

import json

QUEUE = "firebreak-alarms"
VISIBILITY_TIMEOUT = 60
MAX_RECEIVE_COUNT = 5


def seed(make_client) -> dict:
    sqs = make_client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = make_client("events")
    pattern = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}
    rule_arn = events.put_rule(Name="firebreak-alarms", EventPattern=json.dumps(pattern), State="ENABLED")["RuleArn"]
    events.put_targets(Rule="firebreak-alarms", Targets=[{"Id": "firebreak-alarm-queue", "Arn": arn}])
    return {"queue": QUEUE, "queue_url": url, "queue_arn": arn, "dlq_url": dlq_url, "rule_arn": rule_arn}
