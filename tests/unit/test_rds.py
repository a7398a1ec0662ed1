"""RDS recovery steps: failover target choice, restore-time validation, restore plans, role metadata."""

from __future__ import annotations

import datetime
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import rds
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


def test_a_cluster_that_is_not_available_is_not_failed_over():
    cluster = dict(_cluster([("w", True, 1), ("r", False, 0)]), Status="failing-over")
    with pytest.raises(rds.RDSInputError, match="DB cluster 'orders-db' is failing-over, not available"):
        rds.choose_failover_target(cluster, _instances(("w",), ("r",)), target="r")
    # ... but a target that already writes is still no change
    assert rds.choose_failover_target(cluster, _instances(("w",), ("r",)), target="w")["changed"] is False


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


# -- restore time validation ----------------------------------------------------------------------------

EARLIEST = datetime.datetime(2026, 11, 17, 12, 0, 0, tzinfo=UTC)
LATEST = datetime.datetime(2026, 11, 24, 11, 55, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["", "  ", None, "latest", "LATEST"])
def test_empty_or_latest_means_the_latest_restorable_time(value):
    assert rds.validate_restore_time(value, EARLIEST, LATEST, NOW) == {"use_latest": True, "restore_time": None}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24T09:30:00Z", datetime.datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("2026-11-24T10:30:00+01:00", datetime.datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("2026-11-24T04:30:00-05:00", datetime.datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("2026-11-24T09:30:00", datetime.datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),  # naive = UTC
        ("2026-11-24 09:30:00.250Z", datetime.datetime(2026, 11, 24, 9, 30, 0, 250000, tzinfo=UTC)),
        ("1795512600", datetime.datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),  # epoch seconds
        ("2026-11-17T12:00:00Z", EARLIEST),  # the window's ends are inside it
        ("2026-11-24T11:55:00Z", LATEST),
    ],
)
def test_times_inside_the_window_are_accepted_in_utc(value, expected):
    decision = rds.validate_restore_time(value, EARLIEST, LATEST, NOW)
    assert decision == {"use_latest": False, "restore_time": expected}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-11-24T12:00:01Z", "'2026-11-24T12:00:01Z' (2026-11-24T12:00:01Z) is in the future"),
        (
            "2026-11-24T12:58:00+01:00",
            "(2026-11-24T11:58:00Z) is after the latest restorable time of db (2026-11-24T11:55:00Z)",
        ),
        ("2026-11-17T11:59:59Z", "is before the earliest restorable time of db (2026-11-17T12:00:00Z)"),
        ("2026-11-17T12:59:59+01:00", "(2026-11-17T11:59:59Z) is before the earliest"),
        ("yesterday", "unparseable time 'yesterday'"),
        ("2026-02-30T10:00:00Z", "unparseable time '2026-02-30T10:00:00Z'"),
    ],
)
def test_bad_times_are_refused_naming_the_value(value, message):
    with pytest.raises(rds.RDSInputError) as err:
        rds.validate_restore_time(value, EARLIEST, LATEST, NOW, source="db")
    assert message in err.value.message


def test_a_source_without_a_window_cannot_be_restored():
    with pytest.raises(rds.RDSInputError, match="no restorable time window"):
        rds.validate_restore_time("", None, None, NOW, source="db")


def test_instance_window_reported_by_automated_backups_wins():
    backup = {"RestoreWindow": {"EarliestTime": EARLIEST, "LatestTime": LATEST}}
    instance = {"BackupRetentionPeriod": 7, "LatestRestorableTime": NOW, "InstanceCreateTime": EARLIEST}
    assert rds.instance_restore_window(instance, backup, NOW) == (EARLIEST, LATEST, "reported")


def test_instance_window_is_derived_from_retention_and_creation_when_not_reported():
    old = {
        "BackupRetentionPeriod": 7,
        "LatestRestorableTime": LATEST,
        "InstanceCreateTime": NOW - datetime.timedelta(days=30),
    }
    earliest, latest, how = rds.instance_restore_window(old, {"Status": "active"}, NOW)
    assert earliest == NOW - datetime.timedelta(days=7) and latest == LATEST and how.startswith("derived")
    young = dict(old, InstanceCreateTime=NOW - datetime.timedelta(hours=2))
    assert rds.instance_restore_window(young, None, NOW)[0] == NOW - datetime.timedelta(hours=2)


def test_instance_without_backups_has_no_window():
    instance = {"BackupRetentionPeriod": 0, "LatestRestorableTime": None}
    assert rds.instance_restore_window(instance, None, NOW)[:2] == (None, None)


# -- restore plans, ownership, cut-over names ------------------------------------------------------------


def test_cluster_instance_plan_puts_the_writer_first_and_copies_class_az_tier():
    cluster = _cluster([("src-b", False, 2), ("src-a", False, 0), ("src-w", True, 1)], cluster_id="src")
    instances = _instances(
        ("src-w", "db.r6g.xlarge", "us-east-1a"), ("src-a", "db.r6g.large", "us-east-1b"), ("src-b",)
    )
    instances["src-w"]["DBParameterGroups"] = [{"DBParameterGroupName": "custom-pg"}]
    plan = rds.cluster_instance_plan(cluster, instances, "dst")
    assert [(i["id"], i["source"], i["writer"]) for i in plan] == [
        ("dst-1", "src-w", True),
        ("dst-2", "src-a", False),
        ("dst-3", "src-b", False),
    ]
    assert plan[0]["instance_class"] == "db.r6g.xlarge" and plan[0]["parameter_group"] == "custom-pg"
    assert (plan[1]["availability_zone"], plan[1]["promotion_tier"]) == ("us-east-1b", 0)


def test_ownership_needs_the_source_and_the_incident():
    tags = {rds.TAG_RESTORED_FROM: "orders-db", "firebreak:incident": "INC-1"}
    assert rds.restore_ownership(tags, "orders-db", "INC-1")[0] is True
    assert rds.restore_ownership(tags, "orders-db", None)[0] is True
    assert rds.restore_ownership(tags, "other-db", "INC-1") == (
        False,
        f"it is not a restore of other-db ({rds.TAG_RESTORED_FROM}=orders-db)",
    )
    assert "restored for incident 'INC-1', not 'INC-2'" in rds.restore_ownership(tags, "orders-db", "INC-2")[1]
    assert rds.restore_ownership({}, "orders-db", "INC-1")[0] is False


def test_an_existing_restore_to_another_time_is_refused():
    tags = {rds.TAG_RESTORED_FROM: "db", rds.TAG_RESTORED_TO_TIME: "2026-11-24T09:00:00Z"}
    rds.check_existing_target("cluster", "t", tags, "db", None, "2026-11-24T09:00:00Z")
    rds.check_existing_target("cluster", "t", tags, "db", None, "latest")
    with pytest.raises(rds.RDSInputError, match="already exists as a restore of db to 2026-11-24T09:00:00Z, not to"):
        rds.check_existing_target("cluster", "t", tags, "db", None, "2026-11-24T10:00:00Z")


def test_restore_tags_copy_the_source_but_not_its_markers_or_aws_keys():
    source = {
        "team": "orders",
        "aws:cloudformation:stack-name": "x",
        rds.TAG_RESTORED_FROM: "older",
        "firebreak:incident": "OLD",
    }
    tags = rds.restore_tags(source, "orders-db", "latest", "INC-2", "pitr_restore", {"purpose": "verify"})
    assert tags == {
        "team": "orders",
        "purpose": "verify",
        "firebreak:incident": "INC-2",
        "firebreak:step": "pitr_restore",
        rds.TAG_RESTORED_FROM: "orders-db",
        rds.TAG_RESTORED_TO_TIME: "latest",
    }


@pytest.mark.parametrize(
    ("incident", "expected"),
    [
        ("INC-42", "orders-db-replaced-inc-42"),
        ("INC 2026/11_24", "orders-db-replaced-inc-2026-11-24"),
        ("x" * 80, ("orders-db-replaced-" + "x" * 80)[:63]),
    ],
)
def test_replaced_identifier_is_a_valid_identifier(incident, expected):
    name = rds.replaced_identifier("orders-db", incident)
    assert name == expected and len(name) <= 63
    assert rds.validate_identifier(name, "x") == name


def test_cutover_needs_the_typed_source_and_an_incident():
    with pytest.raises(rds.RDSInputError, match="set cutover_confirm to 'orders-db' to confirm"):
        rds.cutover_plan("orders-db", "t", "INC-1", "yes")
    with pytest.raises(rds.RDSInputError, match="needs an incident id"):
        rds.cutover_plan("orders-db", "t", None, "orders-db")


@pytest.mark.parametrize("value", ["1abc", "a--b", "a-", "a_b", "", "a" * 64])
def test_invalid_identifiers_are_named(value):
    with pytest.raises(rds.RDSInputError, match="is not a valid DB identifier"):
        rds.validate_identifier(value, "target")


def test_default_groups_are_not_copied():
    assert rds.is_default_group("default.aurora-postgresql15") and rds.is_default_group("default:postgres-15")
    assert rds.is_default_group(None) and not rds.is_default_group("orders-pg")


def test_wait_for_times_out_naming_what_it_waited_for_and_why():
    clock = iter(range(0, 1000, 10))
    with pytest.raises(rds.RDSWaitTimeout, match=r"timed out after 30s waiting for the writer: the writer is a"):
        rds.wait_for(
            lambda: "a",
            lambda v: (False, f"the writer is {v}"),
            30,
            "the writer",
            sleep=lambda s: None,
            clock=lambda: next(clock),
        )


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


# -- identifiers: RDS's case folding and the identifiers a step derives (issue 21, findings 1 and 2) -----


@pytest.mark.parametrize(("value", "expected"), [("ORDERS-DB-RST", "orders-db-rst"), (" Orders-Db ", "orders-db")])
def test_identifiers_are_folded_to_lower_case_as_rds_stores_them(value, expected):
    assert rds.validate_identifier(value, "target") == expected


def test_an_invalid_identifier_is_named_with_the_rule_it_breaks():
    with pytest.raises(rds.RDSInputError, match=r"target: 'a-' is not a valid DB identifier: it ends with a hyphen"):
        rds.validate_identifier("a-", "target")
    with pytest.raises(rds.RDSInputError, match=r"it is 64 characters long \(at most 63\)"):
        rds.validate_identifier("a" * 64, "target")


@pytest.mark.parametrize("length", [62, 63])
def test_a_target_too_long_for_the_instance_ids_it_derives_is_refused_naming_them(length):
    target = "t" * length
    cluster = _cluster([("src-w", True, 1), ("src-a", False, 0)], cluster_id="src")
    with pytest.raises(rds.RDSInputError) as caught:
        rds.cluster_instance_plan(cluster, _instances(("src-w",), ("src-a",)), target)
    message = caught.value.message
    assert f"'{target}-1'" in message and "at most 63" in message
    assert "choose a target of at most 61 characters" in message


def test_the_longest_target_that_fits_its_instance_ids_is_accepted():
    cluster = _cluster([("src-w", True, 1), ("src-a", False, 0)], cluster_id="src")
    plan = rds.cluster_instance_plan(cluster, _instances(("src-w",), ("src-a",)), "t" * 61)
    assert [i["id"] for i in plan] == ["t" * 61 + "-1", "t" * 61 + "-2"]
    assert all(len(i["id"]) == 63 for i in plan)


def test_ten_or_more_members_leave_less_room_for_the_target():
    members = [(f"src-{n:02d}", n == 0, 1) for n in range(10)]
    cluster = _cluster(members, cluster_id="src")
    instances = _instances(*[(m[0],) for m in members])
    assert len(rds.cluster_instance_plan(cluster, instances, "t" * 60)) == 10
    with pytest.raises(rds.RDSInputError, match="choose a target of at most 60 characters"):
        rds.cluster_instance_plan(cluster, instances, "t" * 61)


def test_a_source_too_long_to_name_its_replaced_self_is_refused():
    source = "s" * 53  # "<source>-replaced-" leaves no room for the incident
    with pytest.raises(
        rds.RDSInputError, match=r"cut-over: the source's new identifier .* is not a valid DB identifier"
    ):
        rds.cutover_plan(source, "t", "INC-1", source)
    assert rds.cutover_plan("s" * 52, "t", "INC-1", "s" * 52)["replaced"] == "s" * 52 + "-replaced-i"


def test_a_replaced_name_equal_to_the_target_is_refused():
    message = r"'orders-db-replaced-inc-1' \(<source>-replaced-<incident>\) is also the target"
    with pytest.raises(rds.RDSInputError, match=message):
        rds.cutover_plan("orders-db", "orders-db-replaced-inc-1", "INC-1", "orders-db")


def test_the_typed_confirmation_and_the_ownership_tag_ignore_case():
    assert rds.cutover_plan("orders-db", "t", "INC-1", " ORDERS-DB ")["replaced"] == "orders-db-replaced-inc-1"
    assert rds.restore_ownership({rds.TAG_RESTORED_FROM: "ORDERS-DB"}, "orders-db")[0] is True
