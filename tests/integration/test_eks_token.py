"""The eks_token lookup in a real ansible-playbook run against the sandbox (moto's EKS DescribeCluster)."""

from __future__ import annotations

import pytest

from tests.integration.k8s_api import JSON_OUTPUT, result_of

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/eks_token.yml"


def create_cluster(aws, name="shop-prod"):
    return aws.client("eks").create_cluster(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-12345678"]},
    )["cluster"]


def test_connection_and_kubeconfig_from_describe_cluster(aws, run_playbook):
    cluster = create_cluster(aws)
    run = run_playbook(PLAYBOOK, extra_vars={"eks_cluster": "shop-prod"}, env=JSON_OUTPUT)
    assert run.returncode == 0, run.output
    conn = result_of(run, "Connection")["msg"]
    assert conn["host"] == cluster["endpoint"]
    assert conn["ca_data"] == cluster["certificateAuthority"]["data"]
    assert conn["api_key"].startswith("k8s-aws-v1.")
    run = run_playbook(PLAYBOOK, extra_vars={"eks_cluster": "shop-prod", "eks_output": "kubeconfig"}, env=JSON_OUTPUT)
    assert run.returncode == 0, run.output
    config = result_of(run, "Connection")["msg"]
    assert config["clusters"][0]["cluster"]["server"] == cluster["endpoint"]
    assert config["users"][0]["user"]["token"].startswith("k8s-aws-v1.")


def test_unknown_cluster_is_named(aws, run_playbook):
    run = run_playbook(PLAYBOOK, extra_vars={"eks_cluster": "nope"}, env=JSON_OUTPUT)
    assert run.returncode != 0
    assert "DescribeCluster failed for EKS cluster 'nope': ResourceNotFoundException" in run.stdout


@pytest.mark.proof
def test_permanent_5xx_fails_within_the_budget_naming_call_and_code(aws, run_playbook):
    import time

    create_cluster(aws)
    aws.proxy.add_rule({"service": "eks", "method": "GET", "path": "^/clusters/shop-prod", "fault": "error"})
    started = time.monotonic()
    run = run_playbook(PLAYBOOK, extra_vars={"eks_cluster": "shop-prod", "eks_retry_budget": 5}, env=JSON_OUTPUT)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert "DescribeCluster failed for EKS cluster 'shop-prod'" in run.stdout
    assert "gave up after" in run.stdout
