"""Containment steps s3_public_block, pipeline_pause, secret_rotate, deploy_freeze: pure decisions,
module documentation, without AWS (the roles' contract is tests/unit/test_role_contract.py)."""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import deploy_freeze as df
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import s3_public_access as s3pa
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import secret_rotation as sr
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import stepfunctions_batch as sb

MODULES = ["s3_public_access_lock", "stepfunctions_batch_pause", "secret_rotate", "deploy_freeze"]
ALL_ON = dict.fromkeys(s3pa.SETTINGS, True)
ALL_OFF = dict.fromkeys(s3pa.SETTINGS, False)


def _entry(before, turned_on, tags_added=None, at="2026-11-24T13:00:00Z", entry_id="e1"):
    return {
        "id": entry_id,
        "step": "s3_public_block",
        "resource": "arn:aws:s3:::b-1",
        "at": at,
        "changed": {"public_access_block_before": before, "turned_on": turned_on, "tags_added": tags_added or {}},
    }


# -- s3_public_block ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ab", "Bad_Bucket", "a..b", "192.168.1.1", "-abc", "x" * 64, ""])
def test_invalid_bucket_names_are_named(name):
    with pytest.raises(s3pa.S3PublicAccessError, match=re.escape(repr(name))):
        s3pa.validate_bucket(name)


def test_bucket_arn_is_accepted():
    assert s3pa.validate_bucket("arn:aws:s3:::my-bucket.logs") == "my-bucket.logs"


def test_contain_turns_on_only_what_is_off_and_adds_missing_tags():
    decision = s3pa.decide_contain(dict(ALL_OFF, BlockPublicAcls=True), {"team": "x"}, {"firebreak:incident": "I"})
    assert decision["turn_on"] == ["IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"]
    assert decision["tags_added"] == {"firebreak:incident": "I"}
    assert decision["after_tags"] == {"team": "x", "firebreak:incident": "I"}
    assert decision["after"] == ALL_ON


def test_contain_of_a_fully_blocked_tagged_bucket_changes_nothing():
    decision = s3pa.decide_contain(ALL_ON, {"firebreak:incident": "I"}, {"firebreak:incident": "I"})
    assert decision["turn_on"] == [] and decision["tags_added"] == {}


def test_containment_records_none_configured():
    decision = s3pa.decide_contain(None, {}, {})
    assert s3pa.containment_changed(None, decision) == {
        "public_access_block_before": None,
        "turned_on": list(s3pa.SETTINGS),
        "tags_added": {},
    }


def test_release_of_none_configured_deletes_the_configuration():
    decision = s3pa.decide_release([_entry(None, list(s3pa.SETTINGS))], ALL_ON, {})
    assert decision["delete_configuration"] is True and decision["after"] is None and decision["changed"]


def test_release_leaves_a_setting_turned_off_meanwhile_and_keeps_what_was_on_before():
    entry = _entry(dict(ALL_OFF, BlockPublicAcls=True), ["IgnorePublicAcls", "BlockPublicPolicy"])
    decision = s3pa.decide_release([entry], dict(ALL_ON, BlockPublicPolicy=False), {})
    assert decision["turn_off"] == ["IgnorePublicAcls"]
    assert "BlockPublicPolicy" in decision["left_alone"]
    assert decision["after"] == dict(ALL_ON, IgnorePublicAcls=False, BlockPublicPolicy=False)
    assert decision["delete_configuration"] is False


def test_release_of_stacked_entries_goes_back_to_the_first_recorded_configuration():
    first = _entry(None, list(s3pa.SETTINGS), at="2026-11-24T13:00:00Z", entry_id="a")
    second = _entry(dict(ALL_ON, BlockPublicPolicy=False), ["BlockPublicPolicy"], at="2026-11-24T14:00:00Z")
    entries = s3pa.entries_for([second, first], "b-1")
    assert [e["id"] for e in entries] == ["a", "e1"]
    decision = s3pa.decide_release(entries, ALL_ON, {})
    assert decision["after"] is None and decision["delete_configuration"] is True


def test_release_removes_only_tags_still_holding_the_recorded_value():
    entry = _entry(None, [], tags_added={"firebreak:incident": "I", "firebreak:step": "s3_public_block"})
    decision = s3pa.decide_release([entry], None, {"firebreak:incident": "OTHER", "firebreak:step": "s3_public_block"})
    assert decision["tags_removed"] == ["firebreak:step"]
    assert decision["after_tags"] == {"firebreak:incident": "OTHER"}
    assert "tag firebreak:incident" in decision["left_alone"]


def test_entries_of_other_buckets_and_steps_are_ignored_and_foreign_shapes_refused():
    other = dict(_entry(None, []), resource="arn:aws:s3:::other")
    waf = dict(_entry(None, []), step="waf_block")
    assert s3pa.entries_for([other, waf], "b-1") == []
    with pytest.raises(s3pa.S3PublicAccessError, match="'x'"):
        s3pa.entries_for([{"id": "x", "step": "s3_public_block", "resource": "b-1", "changed": {}}], "b-1")


# -- pipeline_pause ----------------------------------------------------------------------------------

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/q1"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:m1"


def _queue_entry(disabled=True, tags=None, at="2026-11-24T13:00:00Z", entry_id="q"):
    changed = {"disabled": disabled, "state_before": "ENABLED" if disabled else "DISABLED", "tags_added": tags or {}}
    return {
        "id": entry_id,
        "step": "pipeline_pause",
        "kind": "job_queue",
        "resource": QUEUE,
        "at": at,
        "changed": changed,
    }


@pytest.mark.parametrize(
    ("value", "kind"),
    [("bad queue!", "job queue"), ("arn:aws:batch:us-east-1:1:job-queue/x", "job queue"), ("a" * 81, "state machine")],
)
def test_invalid_names_are_named(value, kind):
    with pytest.raises(sb.PipelinePauseError, match=re.escape(repr(value))):
        sb.validate_names([value], kind)


def test_names_and_arns_are_accepted_and_deduplicated():
    assert sb.validate_names(["m1", MACHINE, "m1"], "state machine") == ["m1", MACHINE]


def test_stop_reason_names_the_incident_within_limits():
    error, cause = sb.stop_reason("INC-9" + "x" * 300)
    assert error.startswith("firebreak.IncidentPause.INC-9") and len(error) == sb.ERROR_MAX
    assert "INC-9" in cause and len(cause) <= sb.CAUSE_MAX


def test_resume_enables_only_a_queue_still_disabled():
    entries = [_queue_entry(tags={"firebreak:incident": "I"})]
    now = {QUEUE: {"state": "DISABLED", "tags": {"firebreak:incident": "I"}}}
    assert sb.decide_queue_resume(entries, now) == {
        "enable": [QUEUE],
        "left_alone": {},
        "tags_removed": {QUEUE: ["firebreak:incident"]},
    }


def test_resume_leaves_a_queue_reenabled_meanwhile_or_gone():
    decision = sb.decide_queue_resume([_queue_entry()], {QUEUE: {"state": "ENABLED"}})
    assert decision["enable"] == [] and "re-enabled by someone else" in decision["left_alone"][QUEUE]
    decision = sb.decide_queue_resume([_queue_entry()], {QUEUE: None})
    assert decision["left_alone"][QUEUE] == "the job queue no longer exists"


def test_resume_of_a_queue_only_tagged_does_not_enable_it():
    decision = sb.decide_queue_resume([_queue_entry(disabled=False)], {QUEUE: {"state": "DISABLED"}})
    assert decision["enable"] == []


def test_entries_are_split_by_kind_and_executions_deduplicated():
    machine = {
        "id": "m",
        "step": "pipeline_pause",
        "kind": "state_machine",
        "resource": MACHINE,
        "at": "2026-11-24T13:00:00Z",
        "changed": {"stopped_executions": [{"arn": "e1", "name": "one"}, {"arn": "e1", "name": "one"}]},
    }
    machines, queues = sb.entries_by_kind([machine, _queue_entry(), dict(machine, step="waf_block")])
    assert [e["id"] for e in machines] == ["m"] and [e["id"] for e in queues] == ["q"]
    assert sb.stopped_executions(machines) == [{"arn": "e1", "name": "one", "state_machine_arn": MACHINE}]
    with pytest.raises(sb.PipelinePauseError, match="'z'"):
        sb.entries_by_kind([{"id": "z", "step": "pipeline_pause", "changed": {}}])


def test_missing_tags():
    assert sb.missing_tags({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == {"b": "3", "c": "4"}


# -- secret_rotate -----------------------------------------------------------------------------------

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/admin-AbCdEf"


@pytest.mark.parametrize(
    ("value_from", "matches", "pinned"),
    [
        (SECRET_ARN, True, False),
        (f"{SECRET_ARN}:ADMIN_PASS::", True, False),
        (f"{SECRET_ARN}:ADMIN_PASS:AWSCURRENT:", True, False),
        (f"{SECRET_ARN}:ADMIN_PASS:AWSPREVIOUS:", True, True),
        (f"{SECRET_ARN}:ADMIN_PASS::0d1e2f3a-4b5c", True, True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/admin", True, False),  # partial ARN
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/admin-AbCdEf", False, False),  # other region
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/admin-two-XyZxYz", False, False),
        ("app/admin", True, False),
        ("app/admin:ADMIN_PASS::", True, False),
        ("app/administrator", False, False),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/aws/reference/secretsmanager/app/admin", True, False),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/app/admin", False, False),
    ],
)
def test_ecs_secret_references(value_from, matches, pinned):
    assert sr.references_secret(value_from, SECRET_ARN, "app/admin") == (matches, pinned)


def test_task_definition_reads_reports_pinned_containers():
    td = {
        "containerDefinitions": [
            {"name": "api", "secrets": [{"name": "ADMIN_PASS", "valueFrom": f"{SECRET_ARN}:ADMIN_PASS:AWSPREVIOUS:"}]},
            {"name": "sidecar", "secrets": [{"name": "X", "valueFrom": "other/secret"}]},
        ]
    }
    assert sr.task_definition_reads(td, SECRET_ARN, "app/admin") == (True, ["api/ADMIN_PASS"])
    assert sr.task_definition_reads({"containerDefinitions": [{"name": "a"}]}, SECRET_ARN, "app/admin") == (False, [])


def test_json_secret_regenerates_only_credential_keys():
    import json
    import random

    current = json.dumps({"ADMIN_USER": "admin", "ADMIN_PASS": "old", "db_host": "h"})
    new, keys = sr.new_secret_string(current, rng=random.Random(1))
    document = json.loads(new)
    assert keys == ["ADMIN_PASS"]
    assert document["ADMIN_USER"] == "admin" and document["db_host"] == "h"
    assert document["ADMIN_PASS"] != "old" and len(document["ADMIN_PASS"]) == 32


def test_json_secret_without_credential_keys_is_refused_naming_keys_not_values():
    with pytest.raises(sr.SecretRotateError, match=r"\['host', 'user'\]") as err:
        sr.new_secret_string('{"user": "u-value", "host": "h-value"}')
    assert "u-value" not in str(err.value)


def test_plain_secret_is_replaced_and_generate_keys_refused_for_it():
    new, keys = sr.new_secret_string("plain-old-value")
    assert keys == [] and new != "plain-old-value"
    with pytest.raises(sr.SecretRotateError, match="not a JSON object"):
        sr.new_secret_string("plain-old-value", ["K"])


def test_generated_passwords_mix_classes_and_respect_length():
    for _ in range(20):
        value = sr.generate_password(12)
        assert len(value) == 12 and value.isalnum()
        assert any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)
    with pytest.raises(sr.SecretRotateError, match="got 8"):
        sr.generate_password(8)


def test_method_choice_never_rotates_without_a_lambda():
    assert sr.decide_method("auto", {"Name": "s"}) == "generate"
    assert sr.decide_method("auto", {"RotationLambdaARN": "arn:l"}) == "lambda"
    assert sr.decide_method("generate", {"RotationLambdaARN": "arn:l"}) == "generate"
    with pytest.raises(sr.SecretRotateError, match="no rotation Lambda"):
        sr.decide_method("lambda", {"Name": "s"})


def test_already_rotated_needs_the_same_incident_and_version():
    tags = {"firebreak:incident": "I", sr.ROTATED_TAG: "v2"}
    assert sr.already_rotated(tags, "I", "v2")
    assert not sr.already_rotated(tags, "I", "v3")
    assert not sr.already_rotated(tags, "J", "v2")


def test_service_stable_needs_a_new_completed_primary_deployment():
    old = {"deployments": [{"id": "d1", "status": "PRIMARY", "rolloutState": "COMPLETED"}]}
    assert not sr.service_stable(old, "d1")
    new = {"deployments": [{"id": "d2", "status": "PRIMARY", "rolloutState": "COMPLETED"}]}
    assert sr.service_stable(new, "d1")
    failed = {"serviceName": "s", "deployments": [{"id": "d2", "status": "PRIMARY", "rolloutState": "FAILED"}]}
    with pytest.raises(sr.SecretRotateError, match="FAILED"):
        sr.service_stable(failed, "d1")


# -- deploy_freeze -----------------------------------------------------------------------------------


def test_freeze_reason_keeps_to_codepipelines_characters():
    reason = df.freeze_reason("INC/2041:x")
    assert re.fullmatch(r"[a-zA-Z0-9!@ ().*?\-]{1,300}", reason) and "INC-2041-x" in reason


def test_stages_to_freeze_defaults_to_all_but_the_first_and_refuses_unknown_or_first():
    assert df.stages_to_freeze(["Source", "Build", "Deploy"], []) == ["Build", "Deploy"]
    assert df.stages_to_freeze(["Source", "Build", "Deploy"], ["Deploy"]) == ["Deploy"]
    with pytest.raises(df.DeployFreezeError, match="'Nope'"):
        df.stages_to_freeze(["Source", "Deploy"], ["Nope"])
    with pytest.raises(df.DeployFreezeError, match="'Source' is the first stage"):
        df.stages_to_freeze(["Source", "Deploy"], ["Source"])


def test_flag_is_recognised_only_for_the_same_incident():
    value = df.flag_value("I-1", "r", "2026-11-24T13:00:00Z")
    assert df.is_frozen_by(value, "I-1") and not df.is_frozen_by(value, "I-2")
    assert not df.is_frozen_by("not json", "I-1")


def test_pipeline_release_enables_only_transitions_still_held_with_this_reason():
    entry = {"changed": {"disabled_transitions": ["Build", "Deploy", "Test"], "reason": "mine"}}
    inbound = {
        "Build": {"enabled": True, "reason": None},
        "Deploy": {"enabled": False, "reason": "mine"},
        "Test": {"enabled": False, "reason": "theirs"},
    }
    enable, left = df.decide_pipeline_release(entry, inbound)
    assert enable == ["Deploy"] and set(left) == {"Build", "Test"}


def test_parameter_release():
    written = [{"resource": "/f", "changed": {"previous": None, "written_version": 3}}]
    assert df.decide_parameter_release(written, {"version": 3, "value": "x"}) == ("delete", None)
    assert df.decide_parameter_release(written, {"version": 4, "value": "x"})[0] == "leave"
    assert df.decide_parameter_release(written, None)[0] == "leave"
    had = [{"resource": "/f", "changed": {"previous": {"value": "old", "version": 1}, "written_version": 2}}]
    assert df.decide_parameter_release(had, {"version": 2, "value": "x"}) == ("restore", {"value": "old", "version": 1})


@pytest.mark.parametrize(
    ("pipelines", "stages", "parameter", "bad"),
    [(["bad name"], [], "/f", "'bad name'"), ([], ["a b"], "/f", "'a b'"), ([], [], "/aws/x", "'/aws/x'")],
)
def test_deploy_freeze_validation_names_the_value(pipelines, stages, parameter, bad):
    with pytest.raises(df.DeployFreezeError, match=re.escape(bad)):
        df.validate(pipelines, stages, parameter)


# -- modules: documentation matches the argument spec ------------------------------------------------


def _module(name):
    import importlib

    return importlib.import_module(f"ansible_collections.firebreak.runbooks.plugins.modules.{name}")


@pytest.mark.parametrize("name", MODULES)
def test_module_documentation_matches_the_argument_spec(name):
    module = _module(name)
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = dict(module.ARGUMENT_SPEC)
    for shared in ("retry_budget", "incident_id", "claims_bucket", "claims_dir"):  # from the step doc fragments
        spec.pop(shared, None)
    if "firebreak.runbooks.step.CONTAINMENT" in module.DOCUMENTATION:  # its own state, else the fragment's
        for shared in ("state", "containments"):
            if shared not in documented:
                spec.pop(shared, None)
    assert set(documented) == set(spec)
    for option, definition in spec.items():
        assert documented[option]["type"] == definition["type"], option
        assert documented[option].get("default") == definition.get("default"), option
        assert documented[option].get("choices") == definition.get("choices"), option
