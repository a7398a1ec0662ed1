"""The "Film Generation" workers' queues (incident-procedures.md, "Film Generation Service Down"): GPU workers on
EC2 take jobs from ``prod-jobs``; a job that fails ``MAX_RECEIVE_COUNT`` times goes to the dead-letter queue
``prod-jobs-dlq``; ``prod-jobs-holding`` is where the runbook moves stuck jobs (``sqs_job_move``).

No messages are seeded: a drill or a test puts the stuck jobs it needs (seeding stays three calls per reset)."""

from __future__ import annotations

import json

JOBS = "prod-jobs"
DLQ = f"{JOBS}-dlq"
HOLDING = f"{JOBS}-holding"
VISIBILITY_TIMEOUT = 900  # a GPU render job runs for minutes
MAX_RECEIVE_COUNT = 3
RETENTION = 1209600  # 14 days, SQS's maximum: held and dead-lettered jobs outlive the incident


def seed(make_client) -> dict:
    sqs = make_client("sqs")
    retention = {"MessageRetentionPeriod": str(RETENTION)}
    dlq_url = sqs.create_queue(QueueName=DLQ, Attributes=retention)["QueueUrl"]
    holding_url = sqs.create_queue(QueueName=HOLDING, Attributes=retention)["QueueUrl"]
    account = dlq_url.rstrip("/").split("/")[-2]
    region = sqs.meta.region_name
    dlq_arn = f"arn:aws:sqs:{region}:{account}:{DLQ}"
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    jobs_url = sqs.create_queue(
        QueueName=JOBS,
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    return {
        "jobs_queue": JOBS,
        "jobs_url": jobs_url,
        "dlq": DLQ,
        "dlq_url": dlq_url,
        "dlq_arn": dlq_arn,
        "holding_queue": HOLDING,
        "holding_url": holding_url,
    }
