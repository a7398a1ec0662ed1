"""RDS recovery steps: failover target choice, restore-time validation, restore plans, role metadata."""

from __future__ import annotations

import datetime
import re
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils import rds
from ansible_collections.firebreak.runbooks.plugins.modules import rds_instance_failover

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


def _cluster(members, cluster_id="orders-db"):
    """members: (id, writer, tier)."""
    return {
        "DBClusterIdentifier": cluster_id,
        "Status": "available",
        "DBClusterMembers": [
            {"DBInstanceIdentifier": i, "IsClusterWriter": w, "PromotionTier": t} for i, w, t in members
        ],
    }


def _inst(ident, klass="db.r6g.large", az="us-east-1a", status="available"):
    return {
        ident: {
            "DBInstanceIdentifier": ident,
            "DBInstanceClass": klass,
            "AvailabilityZone": az,
            "DBInstanceStatus": status,
        }
    }


def _instances(*entries):
    out = {}
    for entry in entries:
        out.update(_inst(*entry))
    return out


# -- failover target choice ---------------------------------------------------------------------------


def test_best_reader_same_class_beats_a_better_tier():
    cluster = _cluster([("w", True, 1), ("small", False, 0), ("big", False, 5)])
    instances = _instances(("w",), ("small", "db.t3.medium", "us-east-1b"), ("big", "db.r6g.large", "us-east-1a"))
    decision = rds.choose_failover_target(cluster, instances)
    assert decision["changed"] is True and decision["target"] == "big"
    assert [c["id"] for c in decision["candidates"]] == ["big", "small"]
    assert "same class db.r6g.large" in decision["reason"]


def test_lower_promotion_tier_number_is_the_higher_priority():
    cluster = _cluster([("w", True, 1), ("r15", False, 15), ("r2", False, 2), ("r0", False, 0)])
    instances = _instances(("w",), ("r15",), ("r2",), ("r0",))
    decision = rds.choose_failover_target(cluster, instances)
    assert decision["target"] == "r0"
    assert [c["id"] for c in decision["candidates"]] == ["r0", "r2", "r15"]


def test_az_diversity_breaks_a_tier_tie_then_identifier():
    cluster = _cluster([("w", True, 1), ("a-same-az", False, 1), ("z-other-az", False, 1), ("b-same-az", False, 1)])
    instances = _instances(("w",), ("a-same-az",), ("z-other-az", "db.r6g.large", "us-east-1b"), ("b-same-az",))
    decision = rds.choose_failover_target(cluster, instances)
    assert [c["id"] for c in decision["candidates"]] == ["z-other-az", "a-same-az", "b-same-az"]
    assert "other AZ us-east-1b" in decision["reason"]


def test_unavailable_readers_are_never_chosen():
    cluster = _cluster([("w", True, 1), ("best", False, 0), ("ok", False, 9)])
    instances = _instances(("w",), ("best", "db.r6g.large", "us-east-1b", "rebooting"), ("ok",))
    assert rds.choose_failover_target(cluster, instances)["target"] == "ok"


def test_no_available_reader_is_an_error_listing_their_states():
    cluster = _cluster([("w", True, 1), ("r", False, 0)])
    instances = _instances(("w",), ("r", "db.r6g.large", "us-east-1b", "modifying"))
    with pytest.raises(rds.RDSInputError, match=r"no available reader .*r=modifying"):
        rds.choose_failover_target(cluster, instances)


def test_a_target_that_already_writes_is_no_change():
    cluster = _cluster([("w", True, 1), ("r", False, 0)])
    decision = rds.choose_failover_target(cluster, _instances(("w",), ("r",)), target="w")
    assert decision == {**decision, "changed": False, "target": "w"}
    assert "already is the writer" in decision["reason"]


def test_a_non_member_target_is_refused_naming_it_and_the_members():
    cluster = _cluster([("w", True, 1), ("r", False, 0)])
    with pytest.raises(
        rds.RDSInputError, match=r"target 'x' is not a member of DB cluster 'orders-db' \(members: r, w\)"
    ):
        rds.choose_failover_target(cluster, _instances(("w",), ("r",)), target="x")


def test_a_target_not_available_is_refused_naming_its_status():
    cluster = _cluster([("w", True, 1), ("r", False, 0)])
    instances = _instances(("w",), ("r", "db.r6g.large", "us-east-1b", "storage-full"))
    with pytest.raises(rds.RDSInputError, match="target 'r' of DB cluster 'orders-db' is storage-full, not available"):
        rds.choose_failover_target(cluster, instances, target="r")


def test_failover_from_an_instance_that_no_longer_writes_is_no_change():
    cluster = _cluster([("old", False, 1), ("new", True, 0)])
    decision = rds.choose_failover_target(cluster, _instances(("old",), ("new",)), failover_from="old")
    assert decision["changed"] is False and decision["target"] == "new"


def test_failover_from_the_current_writer_acts():
    cluster = _cluster([("old", True, 1), ("new", False, 0)])
    decision = rds.choose_failover_target(cluster, _instances(("old",), ("new",)), failover_from="old")
    assert decision["changed"] is True and decision["target"] == "new"


def test_missing_promotion_tier_counts_as_the_lowest_priority():
    cluster = {
        "DBClusterIdentifier": "c",
        "DBClusterMembers": [
            {"DBInstanceIdentifier": "w", "IsClusterWriter": True},
            {"DBInstanceIdentifier": "a", "IsClusterWriter": False},
            {"DBInstanceIdentifier": "b", "IsClusterWriter": False, "PromotionTier": 14},
        ],
    }
    assert rds.choose_failover_target(cluster, _instances(("w",), ("a",), ("b",)))["target"] == "b"


def test_member_state_is_writer_first():
    cluster = _cluster([("b", False, 1), ("a", True, 1)])
    state = rds.member_state(cluster, _instances(("a",), ("b",)))
    assert state["writer"] == "a" and state["readers"] == ["b"]
    assert [m["id"] for m in state["members"]] == ["a", "b"]


# -- instance failover refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ({"MultiAZ": False, "DBInstanceStatus": "available"}, "'db' is single-AZ (MultiAZ false)"),
        ({"MultiAZ": True, "DBInstanceStatus": "rebooting"}, "'db' is rebooting, not available"),
        ({"MultiAZ": True, "DBInstanceStatus": "available", "DBClusterIdentifier": "c"}, "member of DB cluster 'c'"),
    ],
)
def test_instance_failover_refusals_name_the_instance(instance, message):
    assert message in rds_instance_failover.refusal({"DBInstanceIdentifier": "db", **instance})


def test_a_multi_az_available_instance_can_fail_over():
    assert (
        rds_instance_failover.refusal({"DBInstanceIdentifier": "db", "MultiAZ": True, "DBInstanceStatus": "available"})
        is None
    )


# -- roles: argument_specs is the single source ----------------------------------------------------------

ROLES = ["aurora_failover", "rds_instance_failover"]


def _role_spec(role) -> dict:
    path = REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_agree_with_argument_specs(role):
    defaults = yaml.safe_load((REPO_ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    spec = _role_spec(role)
    assert defaults == {name: opt["default"] for name, opt in spec.items() if "default" in opt}
    for name, opt in spec.items():
        assert name.startswith(f"{role}_"), name
        assert opt.get("type") and opt.get("description"), name
        assert not (opt.get("required") and "default" in opt), name


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_documents_every_option(role):
    readme = (REPO_ROOT / "roles" / role / "README.md").read_text()
    rows = dict(re.findall(rf"^\| `({role}_\w+)` \| ([^|]+) \|", readme, re.M))
    assert set(rows) == set(_role_spec(role))
    for name, opt in _role_spec(role).items():
        assert rows[name].strip() == opt["type"], name


@pytest.mark.parametrize("role", ROLES)
def test_role_tasks_use_fqcn_and_pass_the_incident_id(role):
    tasks = yaml.safe_load((REPO_ROOT / "roles" / role / "tasks" / "main.yml").read_text())
    for task in tasks:
        action = next(k for k in task if k not in {"name", "register", "when", "vars", "tags", "no_log"})
        assert action.count(".") == 2, f"{task['name']}: {action} is not an FQCN"
        if action.startswith("firebreak.runbooks."):
            assert "FIREBREAK_INCIDENT_ID" in task[action]["incident_id"]
