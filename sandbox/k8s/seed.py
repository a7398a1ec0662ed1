"""Seed objects: the shop (front, api) and batch (worker) namespaces of the seeds' EKS architecture."""

from __future__ import annotations

import base64
import copy

from .controller import DEPLOYMENT, HASH_LABEL, REPLICASET, REVISION, Controllers
from .resources import BY_KIND
from .store import Store

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# name, namespace, labels, replicas, container port, image history (oldest first)
DEPLOYMENTS = (
    (
        "front",
        "shop",
        {"app": "front", "tier": "web"},
        3,
        8080,
        ("registry.local/front:1.0.0", "registry.local/front:1.1.0", "registry.local/front:1.2.0"),
    ),
    (
        "api",
        "shop",
        {"app": "api", "tier": "backend"},
        2,
        8000,
        ("registry.local/api:2.0.0", "registry.local/api:2.1.0", "registry.local/api:2.2.0"),
    ),
    (
        "worker",
        "batch",
        {"app": "worker", "tier": "batch"},
        1,
        9000,
        ("registry.local/worker:3.3.0", "registry.local/worker:3.4.0"),
    ),
)


def _deployment(name: str, namespace: str, labels: dict, replicas: int, port: int, image: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": labels["app"]}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"name": "http", "containerPort": port}],
                            "env": [{"name": "LOG_LEVEL", "value": "info"}],
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 5},
                        }
                    ]
                },
            },
        },
    }


def _create(store: Store, kind: str, obj: dict, api_version: str = "v1") -> dict:
    rtype = BY_KIND[(api_version, kind)]
    obj = {"apiVersion": api_version, "kind": kind, **obj}
    return store.create(rtype, obj["metadata"].get("namespace"), obj, manager="firebreak-seed")


def seed(store: Store, controllers: Controllers) -> dict:
    """Create the seed objects and roll every Deployment through its image history at once.

    The controllers run synchronously in ``instant`` mode (pods ready on creation), so the history is the
    real controller's (revisions, ReplicaSets, revision annotations) and seeding takes milliseconds.
    """
    manifest: dict = {"namespaces": [], "deployments": {}, "services": [], "configmaps": [], "secrets": []}
    with store.lock:
        controllers.instant = True
        try:
            for ns in (*SYSTEM_NAMESPACES, "shop", "batch"):
                _create(store, "Namespace", {"metadata": {"name": ns}})
            manifest["namespaces"] = ["shop", "batch"]
            node = {
                "metadata": {"name": "sandbox-node-1", "labels": {"kubernetes.io/hostname": "sandbox-node-1"}},
                "spec": {},
            }
            _create(store, "Node", node)
            controllers.converge(rounds=5)
            for name, namespace, labels, replicas, port, images in DEPLOYMENTS:
                _create(store, "Deployment", _deployment(name, namespace, labels, replicas, port, images[0]), "apps/v1")
                controllers.converge(rounds=200)
                for image in images[1:]:
                    current = copy.deepcopy(store.lookup(DEPLOYMENT, namespace, name))
                    current["spec"]["template"]["spec"]["containers"][0]["image"] = image
                    store.update(DEPLOYMENT, namespace, name, current, manager="firebreak-seed")
                    controllers.converge(rounds=200)
                deployment = store.lookup(DEPLOYMENT, namespace, name)
                replicasets = {
                    rs["metadata"]["annotations"][REVISION]: {
                        "name": rs["metadata"]["name"],
                        "image": rs["spec"]["template"]["spec"]["containers"][0]["image"],
                        "pod_template_hash": rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL],
                    }
                    for rs in store.objects[REPLICASET].values()
                    if rs["metadata"]["namespace"] == namespace
                    and rs["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]
                }
                manifest["deployments"][f"{namespace}/{name}"] = {
                    "namespace": namespace,
                    "name": name,
                    "uid": deployment["metadata"]["uid"],
                    "labels": dict(labels),
                    "replicas": replicas,
                    "image": images[-1],
                    "images": list(images),
                    "revision": int(deployment["metadata"]["annotations"][REVISION]),
                    "replicasets": replicasets,
                }
                _create(
                    store,
                    "Service",
                    {
                        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                        "spec": {
                            "selector": {"app": labels["app"]},
                            "ports": [{"name": "http", "port": 80, "targetPort": port}],
                        },
                    },
                )
                manifest["services"].append(f"{namespace}/{name}")
            _create(
                store,
                "ConfigMap",
                {
                    "metadata": {"name": "shop-config", "namespace": "shop", "labels": {"app": "shop"}},
                    "data": {"API_URL": "http://api.shop.svc.cluster.local", "FEATURE_CHECKOUT_V2": "true"},
                },
            )
            _create(
                store,
                "ConfigMap",
                {
                    "metadata": {"name": "worker-config", "namespace": "batch", "labels": {"app": "worker"}},
                    "data": {"QUEUE": "batch-jobs", "CONCURRENCY": "4"},
                },
            )
            manifest["configmaps"] = ["shop/shop-config", "batch/worker-config"]
            _create(
                store,
                "Secret",
                {
                    "metadata": {"name": "api-db", "namespace": "shop", "labels": {"app": "api"}},
                    "type": "Opaque",
                    "data": {
                        k: base64.b64encode(v.encode()).decode()
                        for k, v in {"username": "shop", "password": "sandbox-password"}.items()
                    },
                },
            )
            manifest["secrets"] = ["shop/api-db"]
            controllers.converge(rounds=20)
        finally:
            controllers.instant = False
    return manifest
