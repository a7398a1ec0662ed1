"""Pure decisions of the Kubernetes rollout steps (plugins/module_utils/k8s/rollout.py), without a cluster."""

from __future__ import annotations

import datetime
import sys

import pytest

from sandbox import REPO_ROOT

# firebreak.runbooks resolves through the committed collections/ symlink (as ansible.cfg does).
if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import rollout as r

UID = "uid-api"


def rs(revision, img, uid=UID, labels=None, annotations=None, hash_="h"):
    labels = dict(labels or {"app": "api"}, **{r.HASH_LABEL: f"{hash_}{revision}"})
    return {
        "metadata": {
            "name": f"api-{hash_}{revision}",
            "annotations": {r.REVISION: str(revision), **(annotations or {})},
            "ownerReferences": [{"uid": uid, "controller": True}],
        },
        "spec": {
            "replicas": 0,
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "api", "image": img}]}},
        },
    }


def deployment(img="registry.local/api:bad", revision=4, annotations=None, paused=False):
    return {
        "metadata": {"uid": UID, "name": "api", "annotations": {r.REVISION: str(revision), **(annotations or {})}},
        "spec": {
            "paused": paused,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": img}]},
            },
        },
    }


def history():
    return r.deployment_history(
        deployment(),
        [rs(1, "a:1"), rs(2, "a:2"), rs(4, "registry.local/api:bad"), rs(2, "other:2", uid="uid-other")],
    )


def test_history_keeps_only_owned_replicasets_matching_the_full_selector():
    found = r.deployment_history(
        deployment(),
        [
            rs(1, "a:1"),
            rs(2, "b:2", uid="uid-other"),  # another owner, same labels
            rs(3, "c:3", labels={"app": "web"}),  # owned but does not match the selector
            {"metadata": {"name": "x", "ownerReferences": [{"uid": UID, "controller": True}]}, "spec": {}},
        ],
    )
    assert [(e["revision"], e["images"]) for e in found] == [(1, ["api=a:1"])]
    assert r.HASH_LABEL not in found[0]["template"]["metadata"]["labels"]


def test_selector_string_and_matching():
    selector = {
        "matchLabels": {"app": "api"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "backend"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert r.selector_string(selector) == "app=api,tier in (backend,web),!canary"
    assert r.selector_matches(selector, {"app": "api", "tier": "web"})
    assert not r.selector_matches(selector, {"app": "api", "tier": "web", "canary": "1"})
    assert not r.selector_matches({}, {"app": "api"})


def test_previous_is_the_highest_below_current_across_a_gap():
    hist = history()
    current = r.current_entry("Deployment", deployment(), hist)
    assert current["revision"] == 4
    decision = r.decide_undo("Deployment", "api", hist, current)
    assert decision["changed"] and decision["target"]["revision"] == 2


def test_to_revision_unknown_lists_revisions():
    hist = history()
    current = r.current_entry("Deployment", deployment(), hist)
    with pytest.raises(r.RolloutInputError, match=r"revision 3 not found; revisions: 1, 2, 4"):
        r.decide_undo("Deployment", "api", hist, current, to_revision=3)


def test_to_revision_current_is_no_change():
    hist = history()
    current = r.current_entry("Deployment", deployment(), hist)
    assert r.decide_undo("Deployment", "api", hist, current, to_revision=4)["changed"] is False


def test_no_earlier_revision_refused():
    hist = r.deployment_history(deployment(revision=1, img="a:1"), [rs(1, "a:1")])
    current = r.current_entry("Deployment", deployment(revision=1, img="a:1"), hist)
    with pytest.raises(r.RolloutInputError, match=r"no revision earlier than the current revision 1.*revisions: 1"):
        r.decide_undo("Deployment", "api", hist, current)


def test_known_good_pins_the_target_and_never_flips_back_to_the_bad_revision():
    """After the incident's undo the good template runs as revision 5 (its ReplicaSet reused), the bad one stays
    revision 4. Without the rollback annotations the previous revision would be the bad 4; pinned, nothing changes."""
    good = rs(5, "a:2", hash_="g")
    hist = r.deployment_history(
        deployment(img="a:2", revision=5), [rs(1, "a:1"), rs(4, "registry.local/api:bad"), good]
    )
    current = r.current_entry("Deployment", deployment(img="a:2", revision=5), hist)
    assert r.decide_undo("Deployment", "api", hist, current)["target"]["revision"] == 4  # what the pin prevents
    decision = r.decide_undo("Deployment", "api", hist, current, known_good="g5")
    assert decision["changed"] is False and "known-good revision of this incident" in decision["reason"]


def test_known_good_running_under_a_restart_is_no_change_and_elsewhere_rolls_back_to_it():
    restarted = rs(6, "a:2", hash_="r")  # the good images, restarted since (another template hash)
    hist = r.deployment_history(
        deployment(img="a:2", revision=6), [rs(4, "registry.local/api:bad"), rs(5, "a:2", hash_="g"), restarted]
    )
    current = r.current_entry("Deployment", deployment(img="a:2", revision=6), hist)
    assert r.decide_undo("Deployment", "api", hist, current, known_good="g5")["changed"] is False
    bad = r.deployment_history(
        deployment(revision=7), [rs(5, "a:2", hash_="g"), rs(7, "registry.local/api:bad"), rs(6, "a:9")]
    )
    current = r.current_entry("Deployment", deployment(revision=7), bad)
    decision = r.decide_undo("Deployment", "api", bad, current, known_good="g5")
    assert decision["changed"] and decision["target"]["revision"] == 5  # not 6, the previous one
    with pytest.raises(r.RolloutInputError, match=r"known-good revision \(hash gone\) is no longer in the history"):
        r.decide_undo("Deployment", "api", bad, current, known_good="gone")


def test_paused_refused_only_when_a_change_is_needed():
    hist = history()
    current = r.current_entry("Deployment", deployment(), hist)
    with pytest.raises(r.RolloutInputError, match="is paused"):
        r.decide_undo("Deployment", "api", hist, current, paused=True)
    assert not r.decide_undo("Deployment", "api", hist, current, to_revision=4, paused=True)["changed"]


def test_recorded_rollback_is_not_repeated():
    hist = history()
    current = r.current_entry("Deployment", deployment(), hist)
    marker = r.read_marker(r.marker_annotations(5, current, "2026-11-24T13:00:00Z"))
    decision = r.decide_undo("Deployment", "api", hist, current, marker=marker)
    assert decision["changed"] is False and "already rolled back" in decision["reason"]
    # to_revision overrides the record
    assert r.decide_undo("Deployment", "api", hist, current, to_revision=1, marker=marker)["changed"]


def test_undo_patch_replaces_the_template_only_and_keeps_annotations():
    d = deployment(annotations={"team/owner": "payments", r.CHANGE_CAUSE: "bad"})
    target = history()[1]
    ops = r.undo_patch(d, target, {"firebreak.io/rolled-back-to": "2"}, r.stale_annotations("Deployment", d, target))
    assert ops[0] == {"op": "test", "path": "/spec/template", "value": d["spec"]["template"]}
    assert ops[1]["op"] == "replace" and ops[1]["path"] == "/spec/template"
    assert r.HASH_LABEL not in ops[1]["value"]["metadata"]["labels"]
    assert {"op": "add", "path": "/metadata/annotations/firebreak.io~1rolled-back-to", "value": "2"} in ops
    assert {"op": "remove", "path": "/metadata/annotations/kubernetes.io~1change-cause"} in ops
    assert not any(op["path"] == "/metadata/annotations" and op["op"] == "replace" for op in ops)


def test_copied_annotations_follow_kubectl_skip_list():
    target = {"annotations": {r.REVISION: "2", r.CHANGE_CAUSE: "2.1", r.LAST_APPLIED: "{}", r.MARK_TO: "1"}}
    assert r.copied_annotations("Deployment", target) == {r.CHANGE_CAUSE: "2.1"}
    assert r.copied_annotations("StatefulSet", target) == {}


def _dep_status(**status):
    return {
        "metadata": {"generation": 5},
        "spec": {"replicas": 2, "progressDeadlineSeconds": 600},
        "status": {"observedGeneration": 5, **status},
    }


def test_rollout_status_deployment():
    done = {
        "updatedReplicas": 2,
        "replicas": 2,
        "availableReplicas": 2,
        "readyReplicas": 2,
        "conditions": [{"type": "Progressing", "reason": "NewReplicaSetAvailable"}],
    }
    assert r.rollout_status("Deployment", _dep_status(**done))[0] == "done"
    assert r.rollout_status("Deployment", _dep_status(**dict(done, replicas=3)))[0] == "waiting"
    stale = {"observedGeneration": 4}
    assert r.rollout_status("Deployment", _dep_status(**stale))[1].startswith("waiting for the Deployment spec")
    progressing = [{"type": "Progressing", "reason": "ReplicaSetUpdated"}]
    assert r.rollout_status("Deployment", _dep_status(**dict(done, conditions=progressing)))[0] == "waiting"


def test_rollout_status_progress_deadline_fresh_fails_stale_is_ignored():
    cond = {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "lastUpdateTime": "2026-11-24T13:00:00Z"}
    obj = _dep_status(updatedReplicas=1, replicas=3, conditions=[cond])
    assert r.rollout_status("Deployment", obj)[0] == "failed"
    later = datetime.datetime(2026, 11, 24, 13, 0, 5, tzinfo=datetime.timezone.utc)
    assert r.rollout_status("Deployment", obj, since=later)[0] == "waiting"


def test_rollout_status_statefulset_and_daemonset():
    sts = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 2, "readyReplicas": 3, "currentRevision": "a", "updateRevision": "b"},
    }
    assert r.rollout_status("StatefulSet", sts)[0] == "waiting"
    sts["status"]["currentRevision"] = "b"
    assert r.rollout_status("StatefulSet", sts)[0] == "done"
    ds = {
        "metadata": {"generation": 1},
        "spec": {},
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 2,
            "updatedNumberScheduled": 2,
            "numberAvailable": 1,
        },
    }
    assert r.rollout_status("DaemonSet", ds)[0] == "waiting"
    ds["status"]["numberAvailable"] = 2
    assert r.rollout_status("DaemonSet", ds)[0] == "done"


def test_controller_revision_history_and_current():
    sts = {
        "metadata": {"uid": "s"},
        "spec": {
            "selector": {"matchLabels": {"app": "q"}},
            "template": {"metadata": {"labels": {"app": "q"}}, "spec": {"containers": [{"name": "q", "image": "q:2"}]}},
        },
        "status": {"updateRevision": "q-2"},
    }

    def cr(rev, img, uid="s"):
        return {
            "metadata": {
                "name": f"q-{rev}",
                "labels": {"app": "q", r.CR_HASH_LABEL: f"h{rev}"},
                "ownerReferences": [{"uid": uid, "controller": True}],
            },
            "revision": rev,
            "data": {
                "spec": {
                    "template": {
                        "$patch": "replace",
                        "metadata": {"labels": {"app": "q"}},
                        "spec": {"containers": [{"name": "q", "image": img}]},
                    }
                }
            },
        }

    hist = r.controller_revision_history(sts, [cr(2, "q:2"), cr(1, "q:1"), cr(3, "x:3", uid="other")])
    assert [e["revision"] for e in hist] == [1, 2]
    assert "$patch" not in hist[0]["template"]
    current = r.current_entry("StatefulSet", sts, hist)
    assert current["revision"] == 2
    assert r.decide_undo("StatefulSet", "q", hist, current)["target"]["images"] == ["q=q:1"]


def test_pod_problems_lists_reasons_and_restarts():
    pods = [
        {"metadata": {"name": "ok"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {
            "metadata": {"name": "bad"},
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "api", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ],
            },
        },
    ]
    assert r.pod_problems(pods) == [
        {"name": "bad", "phase": "Running", "reasons": ["api: CrashLoopBackOff"], "restarts": 4}
    ]


def _hpa(min_=2, max_=4):
    return {"metadata": {"name": "api"}, "spec": {"minReplicas": min_, "maxReplicas": max_}}


def test_scale_without_hpa():
    d = r.decide_scale("Deployment shop/api", 2, None, replicas=5)
    assert d["changed"] and d["new"]["replicas"] == 5 and d["previous"] == {"replicas": 2, "hpa": None}
    assert not r.decide_scale("Deployment shop/api", 5, None, replicas=5)["changed"]
    with pytest.raises(ValueError, match="no HorizontalPodAutoscaler targets Deployment shop/api"):
        r.decide_scale("Deployment shop/api", 2, None, min_replicas=3)
    with pytest.raises(ValueError, match="replicas must be >= 0, got -1"):
        r.decide_scale("Deployment shop/api", 2, None, replicas=-1)


def test_scale_through_hpa_raises_min_and_max_and_moves_replicas_into_bounds():
    d = r.decide_scale("Deployment shop/api", 2, _hpa(), replicas=6)
    assert d["new"] == {"replicas": 6, "hpa_min": 6, "hpa_max": 6}
    assert d["previous"]["hpa"] == {"name": "api", "min_replicas": 2, "max_replicas": 4}
    d = r.decide_scale("Deployment shop/api", 4, _hpa(3, 8), min_replicas=2, max_replicas=3)
    assert d["new"] == {"replicas": 3, "hpa_min": 2, "hpa_max": 3}
    assert not r.decide_scale("Deployment shop/api", 3, _hpa(3, 8), min_replicas=3)["changed"]
    with pytest.raises(ValueError, match="max_replicas 2 is below minReplicas 5"):
        r.decide_scale("Deployment shop/api", 3, _hpa(), min_replicas=5, max_replicas=2)
