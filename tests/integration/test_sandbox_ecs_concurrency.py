"""The sandbox's failing ECS services under concurrent requests (found by the load proof, issue 20 item 3): moto
answers each request on its own thread, and bringing a failing service up to now walked the cluster's tasks while
another request added stopped tasks to them: ``RuntimeError: dictionary changed size during iteration``, a 500 on
DescribeServices. Many services failing at once, described from many threads: every answer is a 200, and each
round of stopped tasks is launched once (failedTasks counts whole rounds of desiredCount)."""

from __future__ import annotations

import concurrent.futures

import pytest
from botocore.config import Config

from tests.integration.load_helpers import add_service, break_service

pytestmark = pytest.mark.integration

SERVICES = 8
THREADS = 16
CALLS = 12


def test_describing_failing_services_from_many_threads(aws):
    names = [f"load-{i:02d}" for i in range(SERVICES)]
    services = [add_service(aws, name, i) for i, name in enumerate(names)]
    for svc in services:
        break_service(aws, svc)
    import boto3

    session = boto3.session.Session()
    client = session.client(
        "ecs", endpoint_url=aws.aws_url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}, max_pool_connections=THREADS),
    )  # fmt: skip
    aws.proxy.clear_log()

    def describe(n):
        svc = services[n % SERVICES]
        return client.describe_services(cluster=svc["cluster"], services=[svc["service"]])["services"][0]

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(describe, range(THREADS * CALLS)))
    statuses = [entry["status"] for entry in aws.proxy.log() if entry["action"] == "DescribeServices"]
    assert statuses == [200] * len(statuses) and len(statuses) == THREADS * CALLS
    for found in answers:
        assert found["runningCount"] == 0
        assert found["deployments"][0]["failedTasks"] % found["desiredCount"] == 0
