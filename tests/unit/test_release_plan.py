"""The release_plan filter: grouping, newest-first order, the roles' variables, refusals naming the value."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.filter.release import RELEASERS, release_plan  # noqa: E402


def entry(step, resource, seq):
    return {"id": f"{step}-{seq}", "step": step, "resource": resource, "seq": seq, "incident_id": "INC-1"}


def test_newest_first_grouped_by_step_and_resource():
    entries = [
        entry("waf_block", "arn:ipset/a", 3),
        entry("iam_key_disable", "arn:user/x", 5),
        entry("waf_block", "arn:ipset/b", 7),
        entry("iam_key_disable", "arn:user/y", 9),
        entry("waf_block", "arn:ipset/a", 11),
    ]
    plan = release_plan(entries)
    assert [(g["step"], g["resource"], g["entries"]) for g in plan] == [
        ("waf_block", "arn:ipset/a", 2),
        ("iam_key_disable", "", 2),  # one call releases every entry of the incident
        ("waf_block", "arn:ipset/b", 1),
    ]
    assert plan[0]["vars"] == {"waf_block_state": "released", "waf_block_ip_set": "arn:ipset/a"}
    assert plan[1]["vars"] == {"iam_key_disable_state": "released"}


def test_resource_shapes_and_states():
    plan = {
        g["step"]: g["vars"]
        for g in release_plan(
            [
                entry("k8s_namespace_isolate", "namespace/shop", 1),
                entry("alb_drain", "arn:tg/web", 2),
                entry("pipeline_pause", "arn:states/x", 3),
                entry(
                    "asg_capacity",
                    "arn:aws:autoscaling:us-east-1:1:autoScalingGroup:u:autoScalingGroupName/gpu-worker",
                    4,
                ),
            ]
        )
    }
    assert plan["k8s_namespace_isolate"]["k8s_namespace_isolate_namespace"] == "shop"
    assert plan["alb_drain"]["alb_drain_target_groups"] == ["arn:tg/web"]
    assert plan["pipeline_pause"] == {"pipeline_pause_state": "resumed"}
    assert plan["asg_capacity"] == {"asg_capacity_state": "restored", "asg_capacity_name": "gpu-worker"}


def test_a_step_no_role_releases_is_left_for_a_person():
    (group,) = release_plan([entry("hand_made", "x", 1)])
    assert group["role"] is None and "release them by hand" in group["manual"]


def test_only_the_steps_asked_and_unknown_steps_named():
    entries = [entry("waf_block", "a", 1), entry("deploy_freeze", "p", 2)]
    assert [g["step"] for g in release_plan(entries, ["waf_block"])] == ["waf_block"]
    with pytest.raises(AnsibleFilterError, match=r"unknown steps \['waf_blok'\]"):
        release_plan(entries, ["waf_blok"])
    with pytest.raises(AnsibleFilterError, match="not a containment entry"):
        release_plan([{"resource": "x"}])
    with pytest.raises(AnsibleFilterError, match="expects the containments lookup's list"):
        release_plan("waf_block")


def test_every_releaser_names_a_role_on_disk():
    roles = REPO / "roles"
    for step in RELEASERS:
        spec = (roles / step / "meta" / "argument_specs.yml").read_text()
        state_var, _value = RELEASERS[step]["state"]
        assert state_var in spec, step
        if RELEASERS[step].get("resource_var"):
            assert RELEASERS[step]["resource_var"] in spec, step
        assert f"{step}_timeline" in spec, step
