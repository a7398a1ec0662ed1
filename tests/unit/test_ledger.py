"""The containment ledger (module_utils/containment/ledger.py) on its local store: selection, settling, handover to the
last claimant, concurrent claims, and the default directory beside the incident timelines."""

from __future__ import annotations

import concurrent.futures
import sys

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger

ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/blocklist/af7ab5ee"


def book(tmp_path):
    return ledger.Ledger(ledger.LocalStore(tmp_path / "claims"))


def test_an_item_only_this_incident_claims_is_removed(tmp_path):
    led = book(tmp_path)
    led.claim("INC-A", "waf_block", ARN, ["203.0.113.66/32"])
    led.mark_added("INC-A", "waf_block", ARN, ["203.0.113.66/32"])
    assert led.select("INC-A", ARN, ["203.0.113.66/32"], ["203.0.113.66/32"]) == {
        "remove": ["203.0.113.66/32"],
        "kept": {},
    }
    led.settle("INC-A", ARN, ["203.0.113.66/32"], removed=["203.0.113.66/32"])
    assert led.state(ARN) == {}


def test_shared_item_is_kept_then_removed_by_the_last_claimant(tmp_path):
    led = book(tmp_path)
    led.claim("INC-A", "waf_block", ARN, ["203.0.113.66/32"])
    led.mark_added("INC-A", "waf_block", ARN, ["203.0.113.66/32"])
    led.claim("INC-B", "waf_block", ARN, ["203.0.113.66/32", "203.0.113.77/32"])  # B found .66 already blocked
    led.mark_added("INC-B", "waf_block", ARN, ["203.0.113.77/32"])

    first = led.select("INC-A", ARN, ["203.0.113.66/32"], ["203.0.113.66/32"])
    assert first == {"remove": [], "kept": {"203.0.113.66/32": ["INC-B"]}}
    led.settle("INC-A", ARN, ["203.0.113.66/32"], removed=[])

    # B never added .66, but A's marker stays: B's release removes it
    second = led.select("INC-B", ARN, ["203.0.113.66/32", "203.0.113.77/32"], ["203.0.113.77/32"])
    assert second == {"remove": ["203.0.113.66/32", "203.0.113.77/32"], "kept": {}}
    led.settle("INC-B", ARN, ["203.0.113.66/32", "203.0.113.77/32"], removed=second["remove"])
    assert led.state(ARN) == {}


def test_an_item_no_containment_added_is_never_removed(tmp_path):
    led = book(tmp_path)
    led.claim("INC-A", "waf_block", ARN, ["192.0.2.10/32"])  # blocked by hand before the incident
    assert led.select("INC-A", ARN, ["192.0.2.10/32"], []) == {"remove": [], "kept": {}}


def test_concurrent_claims_of_many_incidents_lose_nothing(tmp_path):
    led = book(tmp_path)
    items = [f"203.0.113.{i}/32" for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        new = list(pool.map(lambda n: led.claim(f"INC-{n}", "waf_block", ARN, items), range(8)))
    assert new == [20] * 8
    state = led.state(ARN)
    assert len(state) == 20 and all(len(entry["claim"]) == 8 for entry in state.values())
    assert led.claim("INC-0", "waf_block", ARN, items) == 0, "a claim already there is not written again"


def test_keys_survive_odd_ids(tmp_path):
    led = book(tmp_path)
    odd = "INC/../x y%2F" + "z" * 300
    led.claim(odd, "deploy_freeze", "app/deploy", ["stage:Deploy"])
    assert len(led.claimants("app/deploy", "stage:Deploy")) == 1  # a long id is kept as its digest
    assert all(path.is_relative_to(tmp_path / "claims") for path in (tmp_path / "claims").rglob("*"))


def test_default_directory_is_beside_the_incident_timelines(tmp_path):
    timeline = tmp_path / "incidents" / "INC-A" / "timeline.jsonl"
    assert ledger.default_dir({"FIREBREAK_TIMELINE": str(timeline)}) == str(tmp_path / "incidents" / ".claims")
    assert ledger.default_dir({"FIREBREAK_CLAIMS_DIR": str(tmp_path / "x")}) == str(tmp_path / "x")
    # under ansible-runner or ansible-rulebook the incidents directory is FIREBREAK_INCIDENTS_DIR, as the callback's
    assert ledger.default_dir({"FIREBREAK_INCIDENTS_DIR": str(tmp_path / "runs")}) == str(tmp_path / "runs" / ".claims")


def test_deploy_freeze_flag_of_a_released_incident_is_not_someone_elses_change():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import deploy_freeze as df

    flag_a = df.flag_value("INC-A", df.freeze_reason("INC-A"), "2026-12-06T16:00:00Z")
    flag_b = df.flag_value("INC-B", df.freeze_reason("INC-B"), "2026-12-06T16:05:00Z")
    entry_a = {"changed": {"previous": None, "written_version": 1}}
    entry_b = {"changed": {"previous": {"value": flag_a, "version": 1}, "written_version": 2}}
    # B released first, A last: B's flag is still there but B no longer claims it
    assert df.decide_parameter_release([entry_a], {"value": flag_b, "version": 2}, claimants=[]) == ("delete", None)
    # without the ledger the old rule stands: someone else's version is left alone
    assert df.decide_parameter_release([entry_a], {"value": flag_b, "version": 2})[0] == "leave"
    # A released first, B last: A's flag is not a state to go back to
    assert df.decide_parameter_release([entry_b], {"value": flag_b, "version": 2}, claimants=[]) == ("delete", None)
    # a flag of an incident that still claims it is left alone
    assert df.decide_parameter_release([entry_a], {"value": flag_b, "version": 2}, claimants=["INC-B"])[0] == "leave"
    assert df.is_firebreak_reason(df.freeze_reason("INC-A")) and not df.is_firebreak_reason("maintenance")


def test_iam_release_undoes_only_what_the_ledger_allows():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import iam

    plan = {"deactivate": ["AKIA1"], "put_inline": ["firebreak-revoke-issued-INC-B"], "attach": []}
    keys = {"AKIA1": "Active", "AKIA2": "Inactive"}
    items = iam.claim_items("user", keys, [], plan, "arn:aws:iam::aws:policy/AWSDenyAll")
    assert items == ["key:AKIA1", "key:AKIA2", "policy:arn:aws:iam::aws:policy/AWSDenyAll"]
    changed = {"deactivated": ["AKIA1"], "inline_policies": ["firebreak-revoke-issued-INC-B"], "attached_policies": []}
    allowed = iam.releasable(changed, ["key:AKIA2", "policy:arn:aws:iam::aws:policy/AWSDenyAll"])
    assert allowed == {
        "deactivated": ["AKIA2"],
        "inline_policies": ["firebreak-revoke-issued-INC-B"],
        "attached_policies": ["arn:aws:iam::aws:policy/AWSDenyAll"],
    }
