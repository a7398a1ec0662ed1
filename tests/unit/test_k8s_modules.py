"""Module wiring of the Kubernetes steps with a fake API (no cluster): what is reported when a wait fails after a
change, and that check mode makes no write."""

from __future__ import annotations

import copy
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import common as k8s_common
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import rollout as r
from ansible_collections.firebreak.runbooks.plugins.modules import k8s_rollout_undo

UID = "uid-api"


def _rs(revision, image):
    return {
        "metadata": {
            "name": f"api-h{revision}",
            "uid": f"rs{revision}",
            "annotations": {r.REVISION: str(revision)},
            "ownerReferences": [{"uid": UID, "controller": True}],
        },
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "api", r.HASH_LABEL: f"h{revision}"}},
                "spec": {"containers": [{"name": "api", "image": image}]},
            }
        },
    }


class FakeKube:
    def __init__(self):
        self.writes = []
        self.deployment = {
            "metadata": {
                "name": "api",
                "namespace": "shop",
                "uid": UID,
                "generation": 4,
                "annotations": {r.REVISION: "2"},
            },
            "spec": {
                "replicas": 2,
                "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "api", "image": "bad"}]},
                },
            },
            "status": {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 1},
        }
        self.replicasets = [_rs(1, "good"), _rs(2, "bad")]

    def namespace(self, name):
        return {"metadata": {"name": name}}

    def get(self, kind, namespace, name, missing_ok=False):
        return copy.deepcopy(self.deployment)

    def list(self, kind, namespace=None, label_selector=None, field_selector=None, limit=None):
        if kind == "ReplicaSet":
            return copy.deepcopy(self.replicasets)
        pod = {
            "metadata": {"name": "api-h1-x"},
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {"name": "api", "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}
                ],
            },
        }
        return [pod]

    def patch(self, kind, namespace, name, body, content_type=None, subresource=None, dry_run=False):
        self.writes.append(body)
        self.deployment["metadata"]["generation"] = 5
        return copy.deepcopy(self.deployment)


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = {
            "kind": "Deployment",
            "namespace": "shop",
            "name": "api",
            "to_revision": None,
            "delete_stuck_pods": True,
            "wait": True,
            "wait_timeout": 0,
            **params,
        }
        self.check_mode = check_mode
        self._diff = True


@pytest.fixture
def fake(monkeypatch):
    kube = FakeKube()
    monkeypatch.setattr(k8s_common.Kube, "from_module", classmethod(lambda cls, module: kube))
    monkeypatch.setattr(k8s_rollout_undo.Kube, "from_module", classmethod(lambda cls, module: kube))
    return kube


def test_a_wait_that_times_out_after_the_patch_reports_the_change_and_the_pods(fake):
    with pytest.raises(k8s_common.K8sWaitTimeout) as err:
        k8s_rollout_undo.run(FakeModule())
    assert err.value.result["changed"] is True
    assert err.value.result["to_images"] == ["api=good"]
    assert "did not complete within 0s" in err.value.message
    assert "api-h1-x: api: ImagePullBackOff" in err.value.message
    assert len(fake.writes) == 1 and fake.writes[0][0]["op"] == "test"


def test_check_mode_makes_no_write_and_returns_the_template_diff(fake):
    result = k8s_rollout_undo.run(FakeModule(check_mode=True))
    assert result["changed"] is True and fake.writes == []
    assert result["diff"]["after"]["template"]["spec"]["containers"][0]["image"] == "good"
    assert r.HASH_LABEL not in result["diff"]["after"]["template"]["metadata"]["labels"]
