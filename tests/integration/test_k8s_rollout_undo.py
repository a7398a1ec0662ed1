"""k8s_rollout_undo against the Kubernetes API test server: drill-style, state read back from the API.

Every test asserts what the server holds afterwards (pod template, revisions, ReplicaSets, annotations),
not only what the module said.
"""

from __future__ import annotations

import pytest

from tests.integration.k8s_api import (
    APPS,
    JSON_OUTPUT,
    call,
    deploy_bad,
    deployment,
    get,
    image,
    patch,
    replicasets,
    result_of,
    set_image,
    wait_for,
)
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

UNDO = "tests/integration/playbooks/k8s/undo.yml"


def undo(run_playbook, check=False, diff=False, **options):
    extra = {f"k8s_{key}": value for key, value in options.items()}
    run = run_playbook(UNDO, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run, "Roll back")


def snapshot(box, namespace="shop", name="api") -> dict:
    d = deployment(box, namespace, name)
    return {"template": d["spec"]["template"], "annotations": d["metadata"].get("annotations"), "spec": d["spec"]}


def test_drill_bad_image_stuck_then_undo_completes_on_the_good_image_and_rerun_is_a_no_op(kube, run_playbook):
    stuck = deploy_bad(kube)
    assert image(stuck) == "registry.local/api:bad-2.3.0"
    assert stuck["status"].get("unavailableReplicas", 0) > 0 or stuck["status"]["replicas"] != 2

    run, result = undo(run_playbook)
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert (result["from_revision"], result["to_revision"]) == (4, 3)
    assert result["from_images"] == ["api=registry.local/api:bad-2.3.0"]
    assert result["to_images"] == ["api=registry.local/api:2.2.0"]
    assert result["rollout"]["state"] == "done"
    assert result["after"]["revision"] == 5 and result["after"]["ready"] == 2

    api = deployment(kube, "shop", "api")
    assert image(api) == "registry.local/api:2.2.0"
    assert "pod-template-hash" not in api["spec"]["template"]["metadata"]["labels"]
    assert api["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"
    assert api["metadata"]["annotations"]["firebreak.io/rolled-back-from"] == "4"
    assert api["metadata"]["annotations"]["firebreak.io/rolled-back-to"] == "3"
    assert api["status"]["availableReplicas"] == 2 and "unavailableReplicas" not in api["status"]
    assert [c["reason"] for c in api["status"]["conditions"] if c["type"] == "Progressing"] == [
        "NewReplicaSetAvailable"
    ]
    by_revision = replicasets(kube, "shop", api["metadata"]["uid"])
    assert sorted(by_revision) == [1, 2, 4, 5]
    assert by_revision[4]["spec"]["replicas"] == 0  # the bad ReplicaSet is scaled away

    again, second = undo(run_playbook)
    assert again.returncode == 0, again.output
    assert second["changed"] is False
    assert "already rolled back" in second["msg"]
    api = deployment(kube, "shop", "api")
    assert image(api) == "registry.local/api:2.2.0"
    assert api["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"


def test_two_workloads_sharing_label_values_the_owned_replicaset_is_chosen(kube, run_playbook):
    """front-canary's selector (app=front, track=canary) overlaps front's (app=front); its ReplicaSets
    carry the same revision numbers. Only ownership (uid) tells them apart."""
    canary = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "front-canary", "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "front", "track": "canary"}},
            "template": {
                "metadata": {"labels": {"app": "front", "track": "canary"}},
                "spec": {"containers": [{"name": "front", "image": "registry.local/front-canary:9.0.0"}]},
            },
        },
    }
    call(kube, "POST", f"{APPS}/shop/deployments", canary)
    for tag in ("9.1.0", "9.2.0"):
        set_image(kube, "shop", "front-canary", f"registry.local/front-canary:{tag}")
        wait_for(
            lambda t=tag: (
                deployment(kube, "shop", "front-canary").get("status", {}).get("updatedReplicas") == 1
                and image(deployment(kube, "shop", "front-canary")).endswith(t)
            ),
            what="canary rollout",
        )

    run, result = undo(run_playbook, name="front")
    assert run.returncode == 0, run.output
    assert result["to_images"] == ["front=registry.local/front:1.1.0"]
    front = deployment(kube, "shop", "front")
    assert image(front) == "registry.local/front:1.1.0"
    assert front["spec"]["template"]["metadata"]["labels"] == {"app": "front", "tier": "web"}
    assert image(deployment(kube, "shop", "front-canary")) == "registry.local/front-canary:9.2.0"


def test_deployment_annotations_survive_and_change_cause_follows_the_revision(kube, run_playbook):
    patch(
        kube,
        f"{APPS}/shop/deployments/api",
        {"metadata": {"annotations": {"team.example.com/owner": "payments", "kubernetes.io/change-cause": "2.2.0"}}},
        "application/merge-patch+json",
    )
    wait_for(
        lambda: (
            replicasets(kube, "shop", deployment(kube, "shop", "api")["metadata"]["uid"])[3]["metadata"][
                "annotations"
            ].get("kubernetes.io/change-cause")
            == "2.2.0"
        ),
        what="the controller to copy the change-cause onto revision 3",
    )
    deploy_bad(kube, annotations={"kubernetes.io/change-cause": "deploy bad-2.3.0"})
    run, result = undo(run_playbook)
    assert run.returncode == 0, run.output
    annotations = deployment(kube, "shop", "api")["metadata"]["annotations"]
    assert annotations["team.example.com/owner"] == "payments"
    assert annotations["firebreak.io/rolled-back-to"] == "3"
    assert annotations["kubernetes.io/change-cause"] == "2.2.0"
    assert result["revisions"][-1]["change_cause"] == "deploy bad-2.3.0"


def test_to_revision_goes_further_back(kube, run_playbook):
    run, result = undo(run_playbook, to_revision=1)
    assert run.returncode == 0, run.output
    assert (result["from_revision"], result["to_revision"]) == (3, 1)
    api = deployment(kube, "shop", "api")
    assert image(api) == "registry.local/api:2.0.0"
    assert api["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"


def test_history_with_a_gap_goes_to_the_highest_revision_below_current(kube, run_playbook):
    deploy_bad(kube)
    uid = deployment(kube, "shop", "api")["metadata"]["uid"]
    gone = replicasets(kube, "shop", uid)[3]["metadata"]["name"]
    call(kube, "DELETE", f"{APPS}/shop/replicasets/{gone}")
    assert sorted(replicasets(kube, "shop", uid)) == [1, 2, 4]

    run, result = undo(run_playbook)
    assert run.returncode == 0, run.output
    assert (result["from_revision"], result["to_revision"]) == (4, 2)
    assert image(deployment(kube, "shop", "api")) == "registry.local/api:2.1.0"


def test_check_mode_reports_the_template_diff_and_changes_nothing(kube, run_playbook):
    deploy_bad(kube)
    before = snapshot(kube)
    run, result = undo(run_playbook, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would roll back" in result["msg"]
    diff = result["diff"]
    assert diff["before"]["template"]["spec"]["containers"][0]["image"] == "registry.local/api:bad-2.3.0"
    assert diff["after"]["template"]["spec"]["containers"][0]["image"] == "registry.local/api:2.2.0"
    assert snapshot(kube) == before


def test_wait_fails_clearly_with_the_pods_waiting_reasons(kube, run_playbook):
    """Rolling back to a revision that is itself bad: the wait fails naming ProgressDeadlineExceeded or the
    timeout, with the bad pods' waiting reason."""
    set_image(kube, "shop", "api", "registry.local/api:broken-2.2.1", progressDeadlineSeconds=600)
    wait_for(
        lambda: deployment(kube, "shop", "api")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    )
    set_image(kube, "shop", "api", "registry.local/api:2.4.0")
    wait_for(
        lambda: (
            deployment(kube, "shop", "api")["status"].get("updatedReplicas") == 2
            and "unavailableReplicas" not in deployment(kube, "shop", "api")["status"]
        ),
        what="2.4.0 rollout",
    )
    run, result = undo(run_playbook, wait_timeout=3)
    assert run.returncode != 0
    assert result["failed"] is True and result["changed"] is True
    assert "did not complete within 3s" in result["msg"]
    assert "ImagePullBackOff" in result["msg"] or "ErrImagePull" in result["msg"]
    assert image(deployment(kube, "shop", "api")) == "registry.local/api:broken-2.2.1"


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"namespace": "nope"}, "namespace 'nope' does not exist"),
        ({"name": "nope"}, "Deployment 'nope' not found in namespace 'shop'"),
        ({"kind": "Job"}, "Job"),
        ({"to_revision": 99}, "revision 99 not found; revisions: 1, 2, 3"),
        ({"to_revision": 0}, "to_revision must be a revision number >= 1, got 0"),
    ],
)
def test_bad_input_names_the_value_and_changes_nothing(kube, run_playbook, options, message):
    before = snapshot(kube)
    run, result = undo(run_playbook, **options)
    assert run.returncode != 0
    assert message in result["msg"], result["msg"]
    assert snapshot(kube) == before


def test_no_earlier_revision_is_refused_listing_revisions(kube, run_playbook):
    solo = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "solo", "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "solo"}},
            "template": {
                "metadata": {"labels": {"app": "solo"}},
                "spec": {"containers": [{"name": "solo", "image": "registry.local/solo:1.0.0"}]},
            },
        },
    }
    call(kube, "POST", f"{APPS}/shop/deployments", solo)
    wait_for(lambda: get(kube, f"{APPS}/shop/deployments/solo")["metadata"].get("annotations"), what="solo revision")
    run, result = undo(run_playbook, name="solo")
    assert run.returncode != 0
    assert "Deployment 'solo': no revision earlier than the current revision 1" in result["msg"]
    assert "revisions: 1" in result["msg"]
    assert image(deployment(kube, "shop", "solo")) == "registry.local/solo:1.0.0"


def test_paused_deployment_is_refused(kube, run_playbook):
    deploy_bad(kube)
    patch(kube, f"{APPS}/shop/deployments/api", {"spec": {"paused": True}}, "application/merge-patch+json")
    before = snapshot(kube)
    run, result = undo(run_playbook)
    assert run.returncode != 0
    assert "Deployment 'api' is paused" in result["msg"]
    assert "revisions: 1, 2, 3, 4" in result["msg"]
    assert snapshot(kube) == before


# -- StatefulSets and DaemonSets: history in ControllerRevisions ----------------------------------------------


def statefulset(box, name="queue") -> dict:
    return get(box, f"{APPS}/shop/statefulsets/{name}")


def create_statefulset(box, images=("registry.local/queue:1.0.0", "registry.local/queue:1.1.0")):
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "queue", "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "serviceName": "queue",
            "selector": {"matchLabels": {"app": "queue"}},
            "template": {
                "metadata": {"labels": {"app": "queue"}},
                "spec": {"containers": [{"name": "queue", "image": images[0]}]},
            },
        },
    }
    call(box, "POST", f"{APPS}/shop/statefulsets", sts)
    for img in images:
        set_image(box, "shop", "queue", img, kind="statefulsets")
        wait_for(lambda i=img: sts_done(statefulset(box)) and image(statefulset(box)) == i, what=f"queue on {img}")


def sts_done(obj) -> bool:
    status = obj.get("status") or {}
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"]
        and status.get("readyReplicas") == obj["spec"]["replicas"]
        and status.get("currentRevision") == status.get("updateRevision")
    )


def test_statefulset_bad_image_stuck_then_undo_completes_and_rerun_is_a_no_op(kube, run_playbook):
    create_statefulset(kube)
    set_image(kube, "shop", "queue", "registry.local/queue:bad-1.2.0", kind="statefulsets")
    wait_for(
        lambda: any(
            p["spec"]["containers"][0]["image"] == "registry.local/queue:bad-1.2.0"
            for p in get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dqueue")["items"]
        ),
        what="a queue pod on the bad image",
    )

    run, result = undo(run_playbook, kind="StatefulSet", name="queue")
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["to_images"] == ["queue=registry.local/queue:1.1.0"]
    assert result["from_images"] == ["queue=registry.local/queue:bad-1.2.0"]
    assert result["rollout"]["state"] == "done"
    sts = statefulset(kube)
    assert image(sts) == "registry.local/queue:1.1.0" and sts_done(sts)
    pods = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dqueue")["items"]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"registry.local/queue:1.1.0"}
    assert result["deleted_pods"] == ["queue-1"]  # the forced rollback: the stuck pod of the bad revision
    assert sts["metadata"]["annotations"]["firebreak.io/rolled-back-to"] == str(result["to_revision"])

    again, second = undo(run_playbook, kind="StatefulSet", name="queue")
    assert again.returncode == 0, again.output
    assert second["changed"] is False
    assert image(statefulset(kube)) == "registry.local/queue:1.1.0"


def test_statefulset_check_mode_and_to_revision(kube, run_playbook):
    create_statefulset(kube)
    before = statefulset(kube)["spec"]
    run, result = undo(run_playbook, check=True, diff=True, kind="StatefulSet", name="queue")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["to_images"] == ["queue=registry.local/queue:1.0.0"]
    assert statefulset(kube)["spec"] == before
    run, result = undo(run_playbook, kind="StatefulSet", name="queue", to_revision=99)
    assert run.returncode != 0 and "revision 99 not found; revisions: 1, 2" in result["msg"]


def test_daemonset_bad_image_then_undo_and_rerun(kube, run_playbook):
    path = f"{APPS.replace('/namespaces', '')}/namespaces/kube-system/daemonsets/fluentd"
    set_image(kube, "kube-system", "fluentd", "registry.local/fluentd:bad-1.17.0", kind="daemonsets")
    wait_for(lambda: image(get(kube, path)) == "registry.local/fluentd:bad-1.17.0", what="bad fluentd")

    run, result = undo(run_playbook, kind="DaemonSet", namespace="kube-system", name="fluentd")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["to_images"] == ["fluentd=registry.local/fluentd:1.16.5"]
    ds = get(kube, path)
    assert image(ds) == "registry.local/fluentd:1.16.5"
    assert (
        ds["status"]["updatedNumberScheduled"]
        == ds["status"]["desiredNumberScheduled"]
        == ds["status"]["numberAvailable"]
    )

    again, second = undo(run_playbook, kind="DaemonSet", namespace="kube-system", name="fluentd")
    assert again.returncode == 0 and second["changed"] is False
    assert image(get(kube, path)) == "registry.local/fluentd:1.16.5"
