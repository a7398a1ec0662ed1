"""ECS restart and scale-out decisions, the pending rollback record, and the new modules' docs, without AWS."""

from __future__ import annotations

import datetime
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.doc_fragments import step as step_fragment
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import ecs
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.modules import (
    ecs_service_restart,
    ecs_service_rollback,
    ecs_service_scale,
    ecs_service_status_info,
)

NOW = datetime.datetime(2026, 11, 24, 13, 0, 0, tzinfo=datetime.UTC)


# -- the pending rollback record ----------------------------------------------------------------------


def test_pending_record_round_trips_and_tolerates_garbage():
    tags = ecs.pending_tags("shop-api:3", "shop-api:2", "2026-11-24T12:59:00Z")
    assert ecs.read_pending([{"key": k, "value": v} for k, v in tags.items()]) == {
        "from": "shop-api:3",
        "to": "shop-api:2",
        "at": "2026-11-24T12:59:00Z",
    }
    assert ecs.read_pending({ecs.TAG_PENDING: "nonsense"}) is None
    assert ecs.read_pending({ecs.TAG_PENDING: "from=shop-api to=x:y"}) is None
    assert ecs.read_pending({}) is None


PENDING = {"from": "shop-api:3", "to": "shop-api:2", "at": "2026-11-24T12:59:00Z"}


def test_pending_rollback_still_on_the_source_is_resumed_to_the_same_target():
    decision = ecs.decide_rollback("shop-api:3", pending=PENDING, active_revisions=[1, 2, 3])
    assert decision["action"] == "resume" and decision["target"] == "shop-api:2" and decision["changed"]


def test_pending_rollback_that_reached_the_service_is_only_recorded_never_repeated():
    listed = []
    decision = ecs.decide_rollback("shop-api:2", pending=PENDING, active_revisions=lambda: listed.append(1) or [1, 2])
    assert decision["action"] == "reconcile" and decision["target"] == "shop-api:2"
    assert listed == [], "reconciling must not even look for an older revision"
    same = ecs.decide_rollback("shop-api:2", pending=PENDING, rollback_from="shop-api:3")
    assert same["action"] == "reconcile"


def test_stale_pending_record_does_not_decide():
    decision = ecs.decide_rollback("shop-api:5", pending=PENDING, active_revisions=[1, 2, 3, 4, 5])
    assert decision["action"] == "rollback" and decision["target"] == "shop-api:4"
    explicit = ecs.decide_rollback("shop-api:3", target="shop-api:1", pending=PENDING)
    assert explicit["target"] == "shop-api:1"


# -- restart ------------------------------------------------------------------------------------------


def _record(seconds_ago, incident="INC-1"):
    at = (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"at": at, "deployment": "ecs-svc/1", "incident": incident}


@pytest.mark.parametrize(
    ("record", "incident", "interval", "changed", "says"),
    [
        (None, "INC-1", 900, True, "no restart recorded"),
        (_record(60), "INC-1", 900, False, "within min_interval 900s"),
        (_record(60), "INC-1", 0, True, "min_interval is 0"),
        (_record(1000), "INC-1", 900, True, "last restart 1000s ago"),
        (_record(60), "INC-2", 900, True, "was for INC-1"),
        (_record(60, incident=None), None, 900, False, "within min_interval"),
        (_record(60, incident=None), "INC-1", 900, True, "was for no incident"),
        ({"at": "yesterday", "incident": "INC-1"}, "INC-1", 900, True, "unreadable restart record"),
        (_record(-120), "INC-1", 900, True, "ago"),  # a record from the future (clock skew) does not block
    ],
)
def test_decide_restart(record, incident, interval, changed, says):
    decision = ecs.decide_restart(record, incident, NOW, interval)
    assert decision["changed"] is changed and says in decision["reason"], decision


def test_restart_record_round_trip():
    tags = ecs.restart_tags("2026-11-24T12:59:00Z", "ecs-svc/9", "INC-1")
    assert ecs.read_restart(tags) == {"at": "2026-11-24T12:59:00Z", "deployment": "ecs-svc/9", "incident": "INC-1"}
    assert ecs.read_restart(ecs.restart_tags("t", None, None))["incident"] is None


def test_restart_stability_waits_for_the_new_deployment():
    service = {
        "taskDefinition": "shop-api:3",
        "runningCount": 2,
        "desiredCount": 2,
        "deployments": [{"id": "old", "status": "PRIMARY", "rolloutState": "COMPLETED"}],
    }
    assert ecs.restart_stability(service, "new")[0] == "waiting"
    assert ecs.restart_stability(service, "old")[0] == "stable"


# -- scale out ----------------------------------------------------------------------------------------


def test_scale_out_records_the_current_count_or_keeps_the_first_one():
    assert ecs.decide_scale_out(2, 5, None) | {"reason": ""} == {"changed": True, "from": 2, "to": 5, "reason": ""}
    further = ecs.decide_scale_out(5, 7, {"from": 2, "to": 5, "at": "t"})
    assert further["changed"] and further["from"] == 2
    assert ecs.decide_scale_out(5, 5, None)["changed"] is False


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (1, "desired_count 1 is lower than the service's desired count 2"),
        (-1, "got -1"),
        (5001, "got 5001"),
        (True, "got True"),
        (None, "desired_count is required"),
    ],
)
def test_scale_out_refuses_bad_counts_naming_them(requested, message):
    with pytest.raises(ecs.ECSInputError, match=message):
        ecs.decide_scale_out(2, requested, None)


def test_scale_restore_decisions():
    record = {"from": 2, "to": 5, "at": "t"}
    assert ecs.decide_scale_restore(5, record)["action"] == "restore"
    assert ecs.decide_scale_restore(5, record)["to"] == 2
    assert ecs.decide_scale_restore(2, record)["action"] == "forget"
    left = ecs.decide_scale_restore(6, record)
    assert left["action"] == "none" and left["changed"] is False
    assert left["left_alone"] == {"desired_count": 6, "scaled_to": 5, "scaled_from": 2}
    assert ecs.decide_scale_restore(3, None)["action"] == "none"
    assert ecs.read_scale(ecs.scale_tags(2, 5, "t")) == record
    assert ecs.read_scale({ecs.TAG_SCALED_FROM: "two", ecs.TAG_SCALED_TO: "5"}) is None


# -- documentation mirrors the argument spec ----------------------------------------------------------

MODULES = [ecs_service_restart, ecs_service_scale, ecs_service_rollback, ecs_service_status_info]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_argument_spec_matches_documentation_with_fragments(module):
    doc = yaml.safe_load(module.DOCUMENTATION)
    options = dict(doc["options"])
    fragments = doc["extends_documentation_fragment"]
    assert "firebreak.runbooks.step" in fragments
    for fragment in fragments:
        if fragment == "firebreak.runbooks.step" or fragment.startswith("firebreak.runbooks.step."):
            text = getattr(
                step_fragment.ModuleDocFragment, fragment.rpartition("step")[2].lstrip(".") or "DOCUMENTATION"
            )
            options.update(yaml.safe_load(text).get("options") or {})
    spec = module.ARGUMENT_SPEC
    assert set(options) == set(spec)
    for name, opt in options.items():
        for key in ("type", "default", "choices"):
            assert opt.get(key) == spec[name].get(key), f"{name}.{key}"
        assert bool(opt.get("required", False)) == bool(spec[name].get("required", False)), name


# -- scale_out picks its platform (the role contract for every role: tests/unit/test_role_contract.py) ----


def _role_spec(role) -> dict:
    path = REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


def test_scale_out_includes_the_platform_file_and_leaves_room_for_kubernetes():
    main = yaml.safe_load((REPO_ROOT / "roles" / "scale_out" / "tasks" / "main.yml").read_text())
    assert main[0]["ansible.builtin.include_tasks"] == "{{ scale_out_platform }}.yml"
    assert _role_spec("scale_out")["scale_out_platform"]["choices"] == ["ecs", "kubernetes"]


# -- the calls up to the mitigating one share the mitigation deadline -----------------------------------------------


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class _FailingClient:
    """Answers every call with a permanent 500 (as the fault proxy's error rule), advancing the clock per attempt."""

    def __init__(self, clock, seconds_per_attempt=0.0):
        self.clock, self.attempts, self.per_attempt = clock, 0, seconds_per_attempt

    def update_service(self, **kwargs):
        from botocore.exceptions import ClientError

        self.attempts += 1
        self.clock.now += self.per_attempt
        error = {"Error": {"Code": "InternalFailure", "Message": "boom"}, "ResponseMetadata": {"HTTPStatusCode": 500}}
        raise ClientError(error, "UpdateService")


def test_the_deadline_bounds_the_calls_up_to_the_mitigation_from_the_step_start():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError

    clock = _Clock()
    caller = step.Caller(60, sleep=clock.sleep, clock=clock.clock, deadline=60)
    start = clock.now
    clock.now += 20  # slow reads before the update
    with pytest.raises(StepAWSError) as err:
        caller(_FailingClient(clock), "update_service", "ECS service 'shop-api'", cluster="shop", service="shop-api")
    assert clock.now - start < 60 - 1, "the update gave up past the mitigation deadline (less the reporting margin)"
    assert err.value.code == "InternalFailure" and err.value.attempts > 1


def test_after_the_deadline_ends_each_call_gets_the_full_budget():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError

    clock = _Clock()
    caller = step.Caller(30, sleep=clock.sleep, clock=clock.clock, deadline=30)
    clock.now += 100  # a long wait after the update
    caller.end_deadline()
    started = clock.now
    with pytest.raises(StepAWSError):
        caller(_FailingClient(clock), "update_service", "x")
    assert 20 < clock.now - started < 30


def test_a_zero_deadline_makes_one_attempt():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError

    clock = _Clock()
    client = _FailingClient(clock)
    with pytest.raises(StepAWSError):
        step.Caller(0, sleep=clock.sleep, clock=clock.clock, deadline=0)(client, "update_service", "x")
    assert client.attempts == 1


@pytest.mark.parametrize(
    "value",
    [
        "shop",
        "shop_api-2",
        "arn:aws:ecs:us-east-1:123456789012:cluster/shop",
        "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api",
        "arn:aws:ecs:us-east-1:123456789012:service/shop-api",
    ],
)
def test_check_name_takes_names_and_arns(value):
    assert ecs.check_name("cluster", value) == value


@pytest.mark.parametrize("value", ["../shop", "shop/api", "shop-\u0430pi", "", "a" * 256, "arn:aws:ecs:bad", None])
def test_check_name_refuses_what_ecs_would_not_take(value):
    with pytest.raises(ecs.ECSInputError, match="invalid ECS service name"):
        ecs.check_name("service", value)
