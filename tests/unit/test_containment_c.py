"""Containment steps s3_public_block, pipeline_pause, secret_rotate, deploy_freeze: pure decisions,
module documentation and role metadata, without AWS."""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils import s3_public_access as s3pa

ROLES = ["s3_public_block"]
MODULES = ["s3_public_access_lock"]
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


# -- modules: documentation matches the argument spec ------------------------------------------------


def _module(name):
    import importlib

    return importlib.import_module(f"ansible_collections.firebreak.runbooks.plugins.modules.{name}")


@pytest.mark.parametrize("name", MODULES)
def test_module_documentation_matches_the_argument_spec(name):
    module = _module(name)
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = dict(module.ARGUMENT_SPEC)
    for shared in ("retry_budget", "incident_id"):
        spec.pop(shared, None)
    assert set(documented) == set(spec)
    for option, definition in spec.items():
        assert documented[option]["type"] == definition["type"], option
        assert documented[option].get("default") == definition.get("default"), option
        assert documented[option].get("choices") == definition.get("choices"), option


# -- roles: argument_specs is the single source ------------------------------------------------------


def _role_spec(name) -> dict:
    path = REPO_ROOT / "roles" / name / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("name", ROLES)
def test_role_defaults_readme_and_tasks_agree(name):
    role = REPO_ROOT / "roles" / name
    spec = _role_spec(name)
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    assert defaults == {key: opt["default"] for key, opt in spec.items() if "default" in opt}
    for key, opt in spec.items():
        assert key.startswith(f"{name}_"), key
        assert opt.get("type") and opt.get("description"), key
        assert not (opt.get("required") and "default" in opt), key
    readme = (role / "README.md").read_text()
    rows = dict(re.findall(rf"^\| `({name}_\w+)` \| ([^|]+) \|", readme, re.M))
    assert set(rows) == set(spec)
    for key, opt in spec.items():
        assert rows[key].strip() == opt["type"], key
    for task in yaml.safe_load((role / "tasks" / "main.yml").read_text()):
        action = next(k for k in task if k not in {"name", "register", "when", "vars", "tags", "no_log"})
        assert action.count(".") == 2, f"{task['name']}: {action} is not an FQCN"
        register = task.get("register")
        assert register is None or register.startswith((f"__{name}_", f"{name}_")), register
    assert (REPO_ROOT / "docs" / "steps" / f"{name}.md").exists()
