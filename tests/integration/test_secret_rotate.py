"""secret_rotate against the sandbox: the secret's versions and value, and the ECS services, read back with boto3.

No secret value may reach the result or the timeline: every test that rotates scans both for the old
and the new value.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.containment_helpers import last_seq, step, timeline_text
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

MODULE = "secret_rotate"
INCIDENT = "INC-SECRET-1"
SECRET = "app/admin"
MUTATING = {"PutSecretValue", "RotateSecret", "TagResource", "UpdateService", "UpdateSecretVersionStage"}


def secret_value(aws) -> tuple[str, dict]:
    answer = aws.client("secretsmanager").get_secret_value(SecretId=SECRET)
    return answer["VersionId"], json.loads(answer["SecretString"])


def deployment_id(aws, service) -> str:
    described = aws.client("ecs").describe_services(cluster="shop", services=[service])["services"][0]
    return next(d["id"] for d in described["deployments"] if d["status"] == "PRIMARY")


@pytest.fixture
def readers(aws):
    """Two services that read app/admin (by ARN with a JSON key; by name) and shop-api, which does not."""
    ecs = aws.client("ecs")
    arn = aws.manifest["aws"]["secretsmanager"]["arn"]
    for family, value_from in (("admin-api", f"{arn}:ADMIN_PASS::"), ("admin-worker", SECRET)):
        ecs.register_task_definition(
            family=family,
            containerDefinitions=[
                {
                    "name": "app",
                    "image": f"registry.local/{family}:1.0.0",
                    "memory": 256,
                    "secrets": [{"name": "ADMIN_PASS", "valueFrom": value_from}],
                }
            ],
        )
        ecs.create_service(cluster="shop", serviceName=family, taskDefinition=family, desiredCount=1)
    return {name: deployment_id(aws, name) for name in ("admin-api", "admin-worker", "shop-api")}


def assert_no_value(text, *values):
    for value in values:
        assert value not in text, "a secret value reached the result or the timeline"


def mutations(aws, since):
    return [e for e in aws.proxy.log() if e["seq"] > since and e["action"] in MUTATING]


def test_generate_rotates_the_credential_keys_and_redeploys_the_readers(aws, run_playbook, readers):
    old_version, old = secret_value(aws)
    run, result = step(run_playbook, MODULE, secret=SECRET, incident_id=INCIDENT, clusters=["shop"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["method"] == "generate"
    new_version, new = secret_value(aws)
    assert new_version != old_version
    assert new["ADMIN_USER"] == old["ADMIN_USER"], "keys that are not credentials are kept"
    assert new["ADMIN_PASS"] != old["ADMIN_PASS"] and len(new["ADMIN_PASS"]) == 32
    stages = aws.client("secretsmanager").describe_secret(SecretId=SECRET)["VersionIdsToStages"]
    assert stages[new_version] == ["AWSCURRENT"] and "AWSPREVIOUS" in stages[old_version]
    assert result["generated_keys"] == ["ADMIN_PASS"]
    assert result["before"]["current_version_id"] == old_version
    assert result["after"]["current_version_id"] == new_version

    redeployed = {s["service_name"]: s for s in result["services"]}
    assert set(redeployed) == {"admin-api", "admin-worker"}
    for name in ("admin-api", "admin-worker"):
        assert redeployed[name]["redeployed"] is True
        assert deployment_id(aws, name) != readers[name], f"{name} got no new deployment"
    assert deployment_id(aws, "shop-api") == readers["shop-api"], "a service that does not read it is left alone"

    changed = result["containment"][0]["changed"]
    assert changed["previous_version_id"] == old_version and changed["new_version_id"] == new_version
    assert sorted(changed["services_redeployed"]) == sorted(s["service_arn"] for s in result["services"])
    assert result["containment"][0]["releasable"] is False
    assert_no_value(json.dumps(result) + run.output + timeline_text(run), old["ADMIN_PASS"], new["ADMIN_PASS"])

    seq = last_seq(aws)
    run, again = step(run_playbook, MODULE, secret=SECRET, incident_id=INCIDENT, clusters=["shop"])
    assert run.returncode == 0 and again["changed"] is False, run.output
    assert secret_value(aws)[0] == new_version
    assert mutations(aws, seq) == []


def test_plain_string_secret_is_replaced_whole(aws, run_playbook):
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="app/signing-key", SecretString="old-signing-key-value-1234567890")
    run, result = step(run_playbook, MODULE, secret="app/signing-key", incident_id=INCIDENT, redeploy=False)
    assert run.returncode == 0, run.output
    value = sm.get_secret_value(SecretId="app/signing-key")["SecretString"]
    assert value != "old-signing-key-value-1234567890" and len(value) == 32
    assert result["generated_keys"] == [] and result["services"] == []
    assert_no_value(json.dumps(result) + timeline_text(run), value, "old-signing-key-value-1234567890")


def test_check_mode_changes_nothing(aws, run_playbook, readers):
    old_version, old = secret_value(aws)
    seq = last_seq(aws)
    run, result = step(run_playbook, MODULE, secret=SECRET, incident_id=INCIDENT, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would rotate" in result["msg"]
    assert secret_value(aws) == (old_version, old)
    assert {s["service_name"] for s in result["services"]} == {"admin-api", "admin-worker"}
    assert deployment_id(aws, "admin-api") == readers["admin-api"]
    assert mutations(aws, seq) == []
    assert_no_value(json.dumps(result) + timeline_text(run), old["ADMIN_PASS"])


def configure_rotation(aws) -> str:
    """Give app/admin a rotation Lambda. moto starts a rotation at once (RotateImmediately=False or not),
    leaving an AWSPENDING version; returns that version id."""
    sm = aws.client("secretsmanager")
    function_arn = aws.manifest["aws"]["lambda"]["function_arn"]
    sm.rotate_secret(
        SecretId=SECRET,
        RotationLambdaARN=function_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    stages = sm.describe_secret(SecretId=SECRET)["VersionIdsToStages"]
    return next(version for version, names in stages.items() if "AWSPENDING" in names)


def test_a_rotation_in_progress_is_refused_naming_the_pending_version(aws, run_playbook, readers):
    pending = configure_rotation(aws)
    seq = last_seq(aws)
    run, result = step(run_playbook, MODULE, secret=SECRET, incident_id=INCIDENT)
    assert run.returncode != 0
    assert f"rotation in progress (version {pending} is AWSPENDING)" in result["msg"], result["msg"]
    assert mutations(aws, seq) == []


def test_a_rotation_lambda_that_never_promotes_fails_loudly_and_redeploys_nothing(aws, run_playbook, readers):
    pending = configure_rotation(aws)
    sm = aws.client("secretsmanager")
    sm.update_secret_version_stage(SecretId=SECRET, VersionStage="AWSPENDING", RemoveFromVersionId=pending)
    old_version, _old = secret_value(aws)
    run, result = step(run_playbook, MODULE, secret=SECRET, incident_id=INCIDENT, wait_timeout=3)
    assert run.returncode != 0
    assert result["method"] == "lambda"
    assert "the rotation did not complete" in result["msg"], result["msg"]
    assert "no service was redeployed" in result["msg"]
    assert result["before"]["current_version_id"] == old_version
    assert deployment_id(aws, "admin-api") == readers["admin-api"]
    assert deployment_id(aws, "admin-worker") == readers["admin-worker"]


def test_lambda_method_without_a_rotation_lambda_is_refused_and_changes_nothing(aws, run_playbook):
    before = secret_value(aws)
    seq = last_seq(aws)
    run, result = step(run_playbook, MODULE, secret=SECRET, incident_id=INCIDENT, method="lambda")
    assert run.returncode != 0
    assert "has no rotation Lambda configured" in result["msg"] and "'app/admin'" in result["msg"]
    assert secret_value(aws) == before
    assert mutations(aws, seq) == []


@first_case_in_make_test
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"secret": "app/no-such-secret"}, "secret 'app/no-such-secret' does not exist"),
        ({"secret": "bad secret name!"}, "invalid secret 'bad secret name!'"),
        ({"generate_keys": ["NOPE"]}, "generate_keys ['NOPE'] not in the secret"),
        ({"clusters": ["no-such-cluster"]}, "ECS cluster 'no-such-cluster' not found"),
        ({"password_length": 4}, "password_length must be between 12 and 4096, got 4"),
        ({"incident_id": ""}, "incident_id is required"),
    ],
    ids=["unknown-secret", "invalid-name", "unknown-key", "unknown-cluster", "short-password", "no-incident"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, args, expected):
    before = secret_value(aws)
    seq = last_seq(aws)
    run, result = step(run_playbook, MODULE, **{"secret": SECRET, "incident_id": INCIDENT, **args})
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result["changed"] is False
    assert secret_value(aws) == before
    assert mutations(aws, seq) == []
    assert_no_value(json.dumps(result) + timeline_text(run), before[1]["ADMIN_PASS"])


@pytest.mark.proof
def test_permanent_5xx_fails_within_budget_naming_call_and_code(aws, run_playbook):
    before = secret_value(aws)
    aws.proxy.add_rule({"service": "secretsmanager", "action": "PutSecretValue", "fault": "error", "status": 503})
    started = time.monotonic()
    run, result = step(run_playbook, MODULE, secret=SECRET, incident_id=INCIDENT, retry_budget=3, redeploy=False)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert "PutSecretValue" in result["msg"] and "ServiceUnavailable" in result["msg"], result["msg"]
    assert secret_value(aws) == before
