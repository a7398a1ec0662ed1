"""Lambda recovery steps: alias rollback and limit decisions, module docs and role metadata, without AWS."""

from __future__ import annotations

import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import awslambda
from ansible_collections.firebreak.runbooks.plugins.modules import lambda_alias_rollback, lambda_limits_raise

SHARED = {"retry_budget", "incident_id"}  # from the step doc fragments


def alias(version, weights=None):
    found = {"FunctionVersion": version}
    if weights is not None:
        found["RoutingConfig"] = {"AdditionalVersionWeights": weights}
    return found


def test_published_versions_drop_latest_and_sort_numerically():
    versions = [{"Version": "$LATEST"}, {"Version": "10"}, {"Version": "9"}, {"Version": "2"}]
    assert awslambda.published_versions(versions) == [2, 9, 10]


@pytest.mark.parametrize(
    ("current", "published", "expected"),
    [("10", [2, 9, 10], "9"), ("9", [2, 9, 10], "2"), ("2", [2, 9, 10], None), ("$LATEST", [2, 9], "9")],
)
def test_previous_version_skips_gaps(current, published, expected):
    assert awslambda.previous_version(current, published) == expected


def test_rollback_to_previous_clears_routing_by_default():
    decision = awslambda.decide_alias_rollback(alias("3", {"1": 0.2}), published=[1, 2, 3])
    assert decision == {
        "changed": True,
        "target": "2",
        "routing": {},
        "reason": "from 3 to 2 (previous published version); weighted routing cleared",
    }


def test_keep_routing_drops_only_a_weight_on_the_target():
    decision = awslambda.decide_alias_rollback(alias("3", {"2": 0.1, "1": 0.2}), routing="keep", published=[1, 2, 3])
    assert decision["target"] == "2" and decision["routing"] == {"1": 0.2}


def test_record_stops_a_second_rollback_unless_asked():
    record = {"from": "3", "to": "2", "at": "2026-11-24T10:00:00Z"}
    again = awslambda.decide_alias_rollback(alias("2"), record=record, published=[1, 2, 3])
    assert again["changed"] is False and "already rolled back from 3 to 2" in again["reason"]
    further = awslambda.decide_alias_rollback(alias("2"), record=record, rollback_from="2", published=[1, 2, 3])
    assert further["changed"] is True and further["target"] == "1"


def test_rollback_from_another_version_changes_nothing():
    decision = awslambda.decide_alias_rollback(alias("2"), rollback_from="3", published=[1, 2, 3])
    assert decision["changed"] is False and "not 3 (rollback_from)" in decision["reason"]


def test_explicit_target_equal_to_current_without_routing_is_no_change():
    assert awslambda.decide_alias_rollback(alias("2", {}), target="2")["changed"] is False
    assert awslambda.decide_alias_rollback(alias("2", {"1": 0.5}), target="2")["changed"] is True  # clears routing


def test_no_lower_version_is_an_input_error():
    with pytest.raises(awslambda.LambdaInputError, match="no published version lower than 1"):
        awslambda.decide_alias_rollback(alias("1"), published=[1])


def test_record_round_trip():
    value = awslambda.record_value("3", "2", "2026-11-24T10:00:00Z")
    tags = {"firebreak:alias-rollback:live": value, "other": "x"}
    assert awslambda.read_record(tags, "live") == {"from": "3", "to": "2", "at": "2026-11-24T10:00:00Z"}
    assert awslambda.read_record(tags, "beta") is None
    assert awslambda.read_record({"firebreak:alias-rollback:live": "garbage"}, "live") is None


def test_module_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(lambda_alias_rollback.DOCUMENTATION)
    own = {k: v for k, v in lambda_alias_rollback.ARGUMENT_SPEC.items() if k not in SHARED}
    assert set(doc["options"]) == set(own)
    for name, spec in own.items():
        assert doc["options"][name]["type"] == spec["type"], name
        assert doc["options"][name].get("default") == spec.get("default"), name


# -- limits -----------------------------------------------------------------------------------------

CURRENT = {"memory_size": 128, "timeout": 3, "reserved_concurrency": None}


def test_raise_changes_only_what_differs():
    decision = awslambda.decide_limits(CURRENT, {"memory_size": 1024, "timeout": 3})
    assert decision == {"changes": {"memory_size": (128, 1024)}, "refused": {}}


def test_lower_values_and_a_first_reservation_are_refused_unless_forced():
    wanted = {"timeout": 2, "reserved_concurrency": 10}
    assert awslambda.decide_limits(CURRENT, wanted)["refused"] == {
        "timeout": (3, 2),
        "reserved_concurrency": (None, 10),
    }
    assert awslambda.decide_limits(CURRENT, wanted, force=True)["changes"] == {
        "timeout": (3, 2),
        "reserved_concurrency": (None, 10),
    }
    raised = awslambda.decide_limits(dict(CURRENT, reserved_concurrency=5), {"reserved_concurrency": 50})
    assert raised["changes"] == {"reserved_concurrency": (5, 50)}


def test_restore_plan_resets_only_limits_still_at_the_raised_value():
    previous = {
        "memory_size": {"old": 128, "new": 1024},
        "timeout": {"old": 3, "new": 60},
        "reserved_concurrency": {"old": None, "new": 50},
    }
    current = {"memory_size": 1024, "timeout": 120, "reserved_concurrency": 50}
    wanted, left_alone = lambda_limits_raise.restore_plan(previous, current)
    assert wanted == {"memory_size": 128, "reserved_concurrency": -1}
    assert left_alone == {"timeout": {"current": 120, "expected": 60, "old": 3}}
    decision = awslambda.decide_limits(current, wanted, restore=True)
    assert decision["changes"] == {"memory_size": (1024, 128), "reserved_concurrency": (50, None)}


def test_restore_plan_rejects_malformed_previous_naming_it():
    with pytest.raises(awslambda.LambdaInputError, match="previous\\['memory'\\]"):
        lambda_limits_raise.restore_plan({"memory": {"old": 1, "new": 2}}, CURRENT)


@pytest.mark.parametrize(
    ("wanted", "message"),
    [({"memory_size": 64}, "memory_size 64"), ({"timeout": 0}, "timeout 0"), ({"reserved_concurrency": -2}, "-2")],
)
def test_validate_limits_names_the_value(wanted, message):
    with pytest.raises(awslambda.LambdaInputError, match=message):
        awslambda.validate_limits(wanted)


def test_limits_module_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(lambda_limits_raise.DOCUMENTATION)
    own = {k: v for k, v in lambda_limits_raise.ARGUMENT_SPEC.items() if k not in SHARED}
    assert set(doc["options"]) == set(own)
    for name, spec in own.items():
        assert doc["options"][name]["type"] == spec["type"], name
        assert doc["options"][name].get("default") == spec.get("default"), name
