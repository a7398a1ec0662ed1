"""Seed objects: the shop (front, api) and batch (worker) namespaces of the seeds' EKS architecture."""

from __future__ import annotations

import base64
import copy
import zlib

from .controller import DEPLOYMENT, HASH_LABEL, REPLICASET, REVISION, Controllers
from .resources import BY_KIND
from .store import Store, now_iso

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


NODE_ZONES = ("eu-west-1a", "eu-west-1b")


def node(name: str, address: str, zone: str, ready: bool = True) -> dict:
    """A Node as an EKS managed node group's kubelet registers it, with ``Ready`` and the pressure conditions."""
    ts = now_iso()

    def cond(ctype: str, status: str, reason: str, message: str) -> dict:
        return {
            "type": ctype,
            "status": status,
            "lastHeartbeatTime": ts,
            "lastTransitionTime": ts,
            "reason": reason,
            "message": message,
        }

    resources = {"cpu": "2", "memory": "8023512Ki", "pods": "29", "ephemeral-storage": "20959212Ki"}
    return {
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "m5.large",
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/nodegroup": "sandbox-ng",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/i-0{zlib.crc32(name.encode()):08x}{zlib.crc32(zone.encode()):08x}"},
        "status": {
            "conditions": [
                cond(
                    "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
                ),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")
                if ready
                else cond("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."),
            ],
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.20",
                "kernelVersion": "6.1.102-111.182.amzn2023.x86_64",
                "kubeProxyVersion": "v1.31.0-eks-a737599",
                "kubeletVersion": "v1.31.0-eks-a737599",
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023.5.20240819",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


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


FLUENTD_IMAGES = ("registry.local/fluentd:1.16.2", "registry.local/fluentd:1.16.5")


def _seed_daemonset(store: Store, controllers: Controllers) -> dict:
    """DaemonSet ``kube-system/fluentd`` (the seed's log aggregation), rolled through two revisions."""
    rtype = BY_KIND[("apps/v1", "DaemonSet")]
    labels = {"app": "fluentd", "tier": "logging"}
    definition = {
        "metadata": {"name": "fluentd", "namespace": "kube-system", "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": {"app": "fluentd"}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "fluentd", "image": FLUENTD_IMAGES[0]}]},
            },
        },
    }
    _create(store, "DaemonSet", definition, "apps/v1")
    controllers.converge(rounds=200)
    current = copy.deepcopy(store.lookup(rtype, "kube-system", "fluentd"))
    current["spec"]["template"]["spec"]["containers"][0]["image"] = FLUENTD_IMAGES[1]
    store.update(rtype, "kube-system", "fluentd", current, manager="firebreak-seed")
    controllers.converge(rounds=200)
    uid = store.lookup(rtype, "kube-system", "fluentd")["metadata"]["uid"]
    revisions = {
        str(cr["revision"]): {
            "name": cr["metadata"]["name"],
            "image": cr["data"]["spec"]["template"]["spec"]["containers"][0]["image"],
        }
        for cr in store.objects[BY_KIND[("apps/v1", "ControllerRevision")]].values()
        if cr["metadata"]["ownerReferences"][0]["uid"] == uid
    }
    return {
        "namespace": "kube-system",
        "name": "fluentd",
        "uid": uid,
        "images": list(FLUENTD_IMAGES),
        "revisions": revisions,
    }


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
            for index, zone in enumerate(NODE_ZONES, start=1):
                _create(store, "Node", node(f"sandbox-node-{index}", f"10.0.{index}.10", zone))
            manifest["nodes"] = [f"sandbox-node-{index}" for index in range(1, len(NODE_ZONES) + 1)]
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
            manifest["daemonsets"] = {"kube-system/fluentd": _seed_daemonset(store, controllers)}
            controllers.converge(rounds=20)
        finally:
            controllers.instant = False
    return manifest
