"""Each recovery role verifies the state it reads back, not the state it asked for.

The fault proxy acknowledges the step's one mutating call with a canned answer and never passes it on,
so AWS keeps the state from before: the write "succeeded" but the state is wrong behind the module's back
(as when another actor undoes the change at once). The role must fail, naming what it read back.
"""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import recap, role
from tests.integration.rds_helpers import writer

pytestmark = pytest.mark.integration


def _swallow(aws, **rule) -> None:
    """Answer matching calls with ``rule``'s canned answer; moto never sees them."""
    aws.proxy.add_rule({"fault": "canned", "description": "acknowledged, never applied", **rule})


def _failed_task(run) -> str:
    """The name of the task that failed (the line before the first ``fatal:``)."""
    lines = run.stdout.splitlines()
    fatal = next(i for i, line in enumerate(lines) if line.startswith("fatal:"))
    return next(line for line in reversed(lines[:fatal]) if line.startswith("TASK ["))


def _service(aws) -> dict:
    return aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]


def _update_service_answer(aws, **changes) -> dict:
    """What ECS answers UpdateService with: the service, as the update claims it now is."""
    service = {key: value for key, value in _service(aws).items() if key not in ("events", "deployments")}
    return {"service": {**service, **changes}}


def test_ecs_rollback_fails_when_the_service_still_runs_the_bad_revision(aws, run_playbook):
    target = aws.client("ecs").describe_task_definition(taskDefinition="shop-api:2")["taskDefinition"]
    _swallow(
        aws,
        service="ecs",
        action="UpdateService",
        body=_update_service_answer(aws, taskDefinition=target["taskDefinitionArn"]),
    )
    run = run_playbook("tests/integration/playbooks/ecs/role.yml", extra_vars={"ecs_rollback_wait": False})
    assert run.returncode != 0, run.output
    assert "Verify the service runs the target revision" in _failed_task(run), run.stdout
    assert "runs shop-api:3" in run.stdout and "target shop-api:2" in run.stdout, run.stdout
    assert _service(aws)["taskDefinition"].endswith("shop-api:3")


@pytest.mark.parametrize("wait", [False, True])
def test_scale_out_fails_when_the_desired_count_did_not_change(aws, run_playbook, wait):
    _swallow(aws, service="ecs", action="UpdateService", body=_update_service_answer(aws, desiredCount=4))
    run = run_playbook(
        "tests/integration/playbooks/ecs/role_scale_out.yml", extra_vars={"count": 4, "scale_out_ecs_wait": wait}
    )
    assert run.returncode != 0, run.output
    assert "Verify the service runs its desired count" in _failed_task(run), run.stdout
    assert "2/2 tasks" in run.stdout and "not the 4 asked for" in run.stdout, run.stdout
    assert _service(aws)["desiredCount"] == 2


def test_ecs_service_restart_fails_when_no_new_deployment_runs(aws, run_playbook):
    before = _service(aws)["deployments"][0]
    claimed = dict(before, id="ecs-svc/0000000000000000001", status="PRIMARY")
    _swallow(aws, service="ecs", action="UpdateService", body=_update_service_answer(aws, deployments=[claimed]))
    run = run_playbook(
        "tests/integration/playbooks/ecs/role_restart.yml",
        extra_vars={"ecs_service_restart_wait": False, "ecs_service_restart_min_interval": 0},
    )
    assert run.returncode != 0, run.output
    assert "Verify the service is stable on its new deployment" in _failed_task(run), run.stdout
    assert f"deployment {before['id']}, the restart started ecs-svc/0000000000000000001" in run.stdout, run.stdout
    assert _service(aws)["deployments"][0]["id"] == before["id"]


def test_lambda_limits_raise_fails_when_the_function_keeps_its_old_limits(aws, run_playbook):
    _swallow(aws, service="lambda", method="PUT", path="/functions/thumbnailer/configuration", body={})
    run = run_playbook(
        "tests/integration/playbooks/lambda/role_limits.yml",
        extra_vars={"lambda_limits_raise_memory_size": 1024, "lambda_limits_raise_wait": False},
    )
    assert run.returncode != 0, run.output
    assert "thumbnailer reads back {'memory_size': 128} after the update" in run.stdout, run.stdout
    found = aws.client("lambda").get_function_configuration(FunctionName="thumbnailer")
    assert found["MemorySize"] == 128


@pytest.mark.parametrize(
    "wait",
    [
        True,
        False,
    ],
)
def test_lambda_alias_rollback_fails_when_the_alias_still_points_at_the_bad_version(aws, run_playbook, wait):
    lam = aws.client("lambda")
    alias = lam.get_alias(FunctionName="thumbnailer", Name="live")
    answer = {key: alias[key] for key in ("AliasArn", "Name", "Description", "RevisionId") if key in alias}
    _swallow(
        aws,
        service="lambda",
        method="PUT",
        path="/functions/thumbnailer/aliases/live",
        body=answer | {"FunctionVersion": "1"},
    )
    run = run_playbook(
        "tests/integration/playbooks/lambda/role_alias_rollback.yml",
        extra_vars={"lambda_alias_rollback_wait_timeout": 2, "lambda_alias_rollback_wait": wait},
    )
    assert run.returncode != 0, run.output
    assert "points at 2" in run.stdout and "not 1" in run.stdout, run.stdout
    assert lam.get_alias(FunctionName="thumbnailer", Name="live")["FunctionVersion"] == "2"


def test_s3_public_block_fails_when_the_bucket_still_allows_public_access(aws, run_playbook):
    bucket = "firebreak-sandbox-uploads"
    _swallow(aws, service="s3", method="PUT", query="publicAccessBlock")
    run = role(run_playbook, "s3_public_block", s3_public_block_bucket=bucket)
    assert run.returncode != 0, run.output
    assert recap(run)["failed"] == 1
    assert bucket in run.stdout, run.stdout
    with pytest.raises(aws.client("s3").exceptions.ClientError):
        aws.client("s3").get_public_access_block(Bucket=bucket)


def test_aurora_failover_fails_when_the_writer_did_not_change(aws, run_playbook):
    _swallow(aws, service="rds", action="FailoverDBCluster", body={"DBCluster": {"DBClusterIdentifier": "orders-db"}})
    run = run_playbook(
        "tests/integration/playbooks/rds/aurora_failover_role.yml", extra_vars={"aurora_failover_wait_timeout": 3}
    )
    assert run.returncode != 0, run.output
    assert "orders-db-2" in run.stdout, run.stdout
    assert writer(aws, "orders-db") == "orders-db-1"


# -- containment: the contained state read back ------------------------------------------------------------------


def test_iam_key_disable_fails_when_a_key_stays_active(aws, run_playbook):
    _swallow(aws, service="iam", action="UpdateAccessKey", body={})
    run = run_playbook("tests/integration/playbooks/iam/role.yml")
    assert run.returncode != 0, run.output
    keys = aws.client("iam").list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]
    assert any(key["Status"] == "Active" for key in keys)
    assert "Active" in run.stdout or "active" in run.stdout, run.stdout


def test_pipeline_pause_fails_when_a_queue_stays_enabled(aws, run_playbook):
    _swallow(aws, service="batch", method="POST", path="/v1/updatejobqueue", body={"jobQueueName": "results-queue"})
    run = role(
        run_playbook,
        "pipeline_pause",
        pipeline_pause_state_machines=["results-pipeline"],
        pipeline_pause_job_queues=["results-queue"],
        pipeline_pause_wait_timeout=3,
    )
    assert run.returncode != 0, run.output
    assert "ENABLED" in run.stdout, run.stdout
    queue = aws.client("batch").describe_job_queues(jobQueues=["results-queue"])["jobQueues"][0]
    assert queue["state"] == "ENABLED"


def test_alb_drain_fails_when_the_targets_stay_registered(aws, run_playbook):
    _swallow(aws, service="elasticloadbalancing", action="DeregisterTargets", body={})
    run = run_playbook(
        "tests/integration/playbooks/alb_drain/role.yml",
        extra_vars={
            "alb_drain_target_groups": ["shop-api-tg"],
            "alb_drain_availability_zone": "us-east-1a",
            "alb_drain_wait_timeout": 3,
        },
    )
    assert run.returncode != 0, run.output
    assert "still registered" in run.stdout, run.stdout


def test_ec2_isolate_fails_when_an_interface_keeps_its_groups(aws, run_playbook):
    seed = aws.manifest["aws"]["evidence"]
    _swallow(aws, service="ec2", action="ModifyNetworkInterfaceAttribute", body={"return": "true"})
    run = run_playbook(
        "tests/integration/playbooks/ec2_isolate/role.yml",
        extra_vars={"ec2_isolate_instance": seed["instance_id"], "ec2_isolate_snapshots": False},
    )
    assert run.returncode != 0, run.output
    assert "network interfaces are not (only) in" in run.stdout, run.stdout


def test_secret_rotate_fails_when_the_new_value_never_becomes_current(aws, run_playbook):
    before = aws.client("secretsmanager").describe_secret(SecretId="app/admin")
    _swallow(aws, service="secretsmanager", action="PutSecretValue", body={"VersionId": "not-stored-anywhere"})
    run = role(run_playbook, "secret_rotate", secret_rotate_secret="app/admin", secret_rotate_method="generate")
    assert run.returncode != 0, run.output
    assert "not the new version not-stored-anywhere" in run.stdout, run.stdout
    after = aws.client("secretsmanager").describe_secret(SecretId="app/admin")
    assert after["VersionIdsToStages"] == before["VersionIdsToStages"]


def test_evidence_capture_fails_when_a_copy_never_lands(aws, run_playbook):
    seed = aws.manifest["aws"]["evidence"]
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    _swallow(aws, service="s3", method="PUT", path=f"^/{bucket}/", body=None)
    run = run_playbook(
        "tests/integration/playbooks/evidence_capture/role.yml",
        extra_vars={
            "evidence_capture_bucket": bucket,
            "evidence_capture_sources": [{"bucket": seed["log_bucket"], "prefix": seed["cloudtrail_prefix"]}],
        },
    )
    assert run.returncode != 0, run.output
    assert aws.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_pitr_restore_fails_when_the_restored_cluster_gets_no_instance(aws, run_playbook):
    answer = {"DBInstance": {"DBInstanceIdentifier": "orders-db-restored-1", "DBInstanceStatus": "creating"}}
    _swallow(aws, service="rds", action="CreateDBInstance", body=answer)
    run = run_playbook(
        "tests/integration/playbooks/rds/pitr_restore_role.yml", extra_vars={"pitr_restore_wait_timeout": 3}
    )
    assert run.returncode != 0, run.output
    assert "timed out after 3s waiting for" in run.stdout and "orders-db-restored-1" in run.stdout, run.stdout
    found = aws.client("rds").describe_db_clusters(DBClusterIdentifier="orders-db-restored")["DBClusters"][0]
    assert found["DBClusterMembers"] == []
