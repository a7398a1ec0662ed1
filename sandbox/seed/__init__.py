"""Seed data for the sandbox: the architectures of the incident-response plans in the seeds.

``seed_aws`` builds, through the fault proxy, the shared network first and then each area on it,
and returns a manifest of the ids it created (written to ``<workdir>/manifest.json`` by the
sandbox) so tests and drills never hard-code an id.
"""

from __future__ import annotations

import functools

import boto3
from botocore.config import Config

from sandbox.seed import alarm_queue, ecs, evidence, network, platform, workers
from sandbox.seed import neptune as neptune_seed
from sandbox.seed import queues as queues_seed


@functools.lru_cache(maxsize=8)
def make_client_factory(endpoint_url: str, region: str):
    """Return ``make_client(service)`` giving boto3 clients aimed at ``endpoint_url`` (cached: seeds run per test)."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    config = Config(retries={"mode": "standard", "max_attempts": 3})
    cache: dict = {}

    def make_client(service: str):
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=endpoint_url, config=config)
        return cache[service]

    return make_client


def seed_aws(endpoint_url: str, region: str = "us-east-1") -> dict:
    """Create the seed resources and return their ids, grouped by area."""
    make_client = make_client_factory(endpoint_url, region)
    manifest = {"region": region, "network": network.seed(make_client)}
    manifest["ecs"] = ecs.seed(make_client, manifest["network"])
    manifest.update(platform.seed(make_client, manifest["network"]))
    manifest["neptune"] = neptune_seed.seed(make_client, manifest)
    manifest["evidence"] = evidence.seed(make_client, manifest)
    manifest["alarm_queue"] = alarm_queue.seed(make_client)
    manifest["queues"] = queues_seed.seed(make_client)
    manifest["workers"] = workers.seed(make_client, manifest["network"])
    return manifest
