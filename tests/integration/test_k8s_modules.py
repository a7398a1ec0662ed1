"""kubernetes.core 6.2 modules, unmodified, against the Kubernetes API test server (real ansible-playbook runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from sandbox.k8s_server import KubeServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = KubeServer()
    srv.start()
    workdir = tmp_path_factory.mktemp("k8s-modules")
    srv.kubeconfig = srv.write_kubeconfig(workdir / "kubeconfig")
    srv.tmpdir = workdir / "tmp"  # the kubernetes client caches discovery here: one per server run
    srv.tmpdir.mkdir()
    yield srv
    srv.stop()


@pytest.fixture
def kube(server):
    server.reset()
    return server


def playbook(server, tmp_path, tasks: str) -> subprocess.CompletedProcess:
    """Run one small play on localhost with ``tasks`` (YAML) and return the finished process."""
    path = tmp_path / "play.yml"
    path.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    ")
    )
    # A config of our own: these tests are about the API server, not the repository's callback or inventory.
    # (ANSIBLE_CALLBACKS_ENABLED='' does not work: ansible-core 2.19 reads it as [''] and fails to start.)
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\nretry_files_enabled = false\ninterpreter_python = auto_silent\n")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(config),
        "K8S_AUTH_KUBECONFIG": server.kubeconfig,
        "TMPDIR": str(server.tmpdir),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    for key in ("KUBECONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_INVENTORY"):
        env.pop(key, None)
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def get(server, path):
    with urllib.request.urlopen(server.url + path, timeout=10) as resp:
        return json.loads(resp.read())


def test_k8s_create_patch_info_scale_delete(kube, tmp_path):
    run = playbook(
        kube,
        tmp_path,
        """
        - name: Create a Deployment (check mode is a server-side dry run)
          kubernetes.core.k8s:
            state: present
            definition: &web
              apiVersion: apps/v1
              kind: Deployment
              metadata: {name: web, namespace: shop, labels: {app: web}}
              spec:
                replicas: 2
                selector: {matchLabels: {app: web}}
                template:
                  metadata: {labels: {app: web}}
                  spec: {containers: [{name: web, image: "registry.local/web:1.0.0"}]}
          check_mode: true
          register: dry
        - name: Nothing was stored by the dry run
          kubernetes.core.k8s_info: {kind: Deployment, namespace: shop, name: web}
          register: after_dry
        - name: Create it and wait
          kubernetes.core.k8s: {state: present, definition: *web, wait: true, wait_timeout: 20, wait_sleep: 1}
          register: created
        - name: The same definition again changes nothing
          kubernetes.core.k8s: {state: present, definition: *web}
          register: again
        - name: Patch the image (strategic merge) and wait for the rollout
          kubernetes.core.k8s:
            state: patched
            kind: Deployment
            namespace: shop
            name: web
            definition:
              spec: {template: {spec: {containers: [{name: web, image: "registry.local/web:1.1.0"}]}}}
            wait: true
            wait_timeout: 20
            wait_sleep: 1
          register: patched
        - name: Wait for Available with k8s_info, listing by label and field selectors
          kubernetes.core.k8s_info:
            kind: Deployment
            namespace: shop
            label_selectors: [app=web]
            field_selectors: [metadata.name=web]
            wait: true
            wait_condition: {type: Available, status: "True"}
            wait_timeout: 20
            wait_sleep: 1
          register: info
        - name: Scale front to 5 and wait
          kubernetes.core.k8s_scale:
            kind: Deployment
            namespace: shop
            name: front
            replicas: 5
            wait: true
            wait_timeout: 20
            wait_sleep: 1
          register: scaled
        - name: Delete web and wait until it is gone
          kubernetes.core.k8s:
            {state: absent, kind: Deployment, namespace: shop, name: web, wait: true, wait_timeout: 20, wait_sleep: 1}
          register: deleted
        - ansible.builtin.assert:
            that:
              - dry is changed
              - after_dry.resources == []
              - created is changed
              - created.result.status.availableReplicas == 2
              - again is not changed
              - patched is changed
              - patched.result.metadata.annotations['deployment.kubernetes.io/revision'] == '2'
              - info.resources | length == 1
              - (info.resources[0].status.conditions | selectattr('type', 'eq', 'Available') | first).status == 'True'
              - scaled is changed
              - scaled.result.status.availableReplicas == 5
              - deleted is changed
    """,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    front = get(kube, "/apis/apps/v1/namespaces/shop/deployments/front")
    assert front["spec"]["replicas"] == 5 and front["status"]["availableReplicas"] == 5
    assert get(kube, "/apis/apps/v1/namespaces/shop/deployments?labelSelector=app%3Dweb")["items"] == []


def test_client_side_and_server_side_apply(kube, tmp_path):
    run = playbook(
        kube,
        tmp_path,
        """
        - name: Client-side apply (last-applied-configuration, merge patch)
          kubernetes.core.k8s:
            apply: true
            definition: &cm
              {apiVersion: v1, kind: ConfigMap, metadata: {name: flags, namespace: shop}, data: {checkout: "off"}}
          register: applied
          loop: [1, 2]
        - name: Server-side apply
          kubernetes.core.k8s:
            apply: true
            definition: {<<: *cm, metadata: {name: ssa, namespace: shop}}
            server_side_apply: {field_manager: firebreak, force_conflicts: true}
          register: ssa
          loop: [1, 2]
        - ansible.builtin.assert:
            that:
              - applied.results[0] is changed
              - applied.results[1] is not changed
              - ssa.results[0] is changed
              - ssa.results[1] is not changed
    """,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    flags = get(kube, "/api/v1/namespaces/shop/configmaps/flags")
    assert "kubectl.kubernetes.io/last-applied-configuration" in flags["metadata"]["annotations"]
    ssa = get(kube, "/api/v1/namespaces/shop/configmaps/ssa")
    assert ssa["data"] == {"checkout": "off"}
    assert {(m["manager"], m["operation"]) for m in ssa["metadata"]["managedFields"]} == {("firebreak", "Apply")}


def test_bad_deploy_then_rollback(kube, tmp_path):
    run = playbook(
        kube,
        tmp_path,
        """
        - name: Deploy a bad image and wait (the rollout never completes)
          kubernetes.core.k8s:
            state: patched
            kind: Deployment
            namespace: shop
            name: api
            definition:
              spec: {template: {spec: {containers: [{name: api, image: "registry.local/api:bad-2.3.0"}]}}}
            wait: true
            wait_timeout: 3
            wait_sleep: 1
          register: bad
          ignore_errors: true
        - name: Roll back to the previous revision
          kubernetes.core.k8s_rollback: {api_version: apps/v1, kind: Deployment, name: api, namespace: shop}
          register: rollback
        - name: Wait until the rollback has rolled out
          kubernetes.core.k8s_info:
            kind: Deployment
            namespace: shop
            name: api
            wait: true
            wait_timeout: 20
            wait_sleep: 1
          register: recovered
        - ansible.builtin.assert:
            that:
              - bad is failed
              - rollback is changed
              - recovered.resources[0].spec.template.spec.containers[0].image == 'registry.local/api:2.2.0'
              - recovered.resources[0].status.availableReplicas == 2
    """,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "timed out" in run.stdout.lower()  # the failed wait on the bad image
    api = get(kube, "/apis/apps/v1/namespaces/shop/deployments/api")
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/api:2.2.0"
    assert api["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"  # 3 reused as max+1
    replicasets = get(kube, "/apis/apps/v1/namespaces/shop/replicasets?labelSelector=app%3Dapi")["items"]
    by_revision = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs for rs in replicasets}
    assert sorted(by_revision) == ["1", "2", "4", "5"]
    assert by_revision["5"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "3"
    assert by_revision["4"]["spec"]["replicas"] == 0  # the bad ReplicaSet is scaled away
    assert "unavailableReplicas" not in api["status"]


def test_k8s_rollback_shared_label_key_is_rejected(kube, tmp_path):
    """k8s_rollback lists ReplicaSets by label KEY only: rolling back front picks api's revision 2.

    The real apiserver answers 422 (front's selector does not match api's template); so do we, and front
    stays as it was.
    """
    run = playbook(
        kube,
        tmp_path,
        """
        - name: Roll back front
          kubernetes.core.k8s_rollback: {api_version: apps/v1, kind: Deployment, name: front, namespace: shop}
    """,
    )
    assert run.returncode != 0
    assert "422" in run.stdout and "does not match template" in run.stdout
    front = get(kube, "/apis/apps/v1/namespaces/shop/deployments/front")
    assert front["spec"]["template"]["metadata"]["labels"] == {"app": "front", "tier": "web"}
    assert front["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/front:1.2.0"
    assert front["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_statefulset_and_daemonset_wait_and_scale(kube, tmp_path):
    """kubernetes.core's ``k8s`` with ``wait`` (statefulset_ready / daemonset_ready) and ``k8s_scale`` on a
    StatefulSet (its ``scale`` subresource), a stuck StatefulSet rollout timing out as on a real cluster."""
    run = playbook(
        kube,
        tmp_path,
        """
        - name: Create a StatefulSet and wait until all its pods are ready
          kubernetes.core.k8s:
            state: present
            wait: true
            wait_timeout: 30
            wait_sleep: 1
            definition:
              apiVersion: apps/v1
              kind: StatefulSet
              metadata: {name: cache, namespace: shop}
              spec:
                serviceName: cache
                replicas: 2
                selector: {matchLabels: {app: cache}}
                template:
                  metadata: {labels: {app: cache}}
                  spec: {containers: [{name: cache, image: "registry.local/cache:7.2.4"}]}
          register: sts
        - name: Create a DaemonSet and wait until it runs on every node
          kubernetes.core.k8s:
            state: present
            wait: true
            wait_timeout: 30
            wait_sleep: 1
            definition:
              apiVersion: apps/v1
              kind: DaemonSet
              metadata: {name: node-agent, namespace: shop}
              spec:
                selector: {matchLabels: {app: node-agent}}
                template:
                  metadata: {labels: {app: node-agent}}
                  spec: {containers: [{name: agent, image: "registry.local/agent:1.0.0"}]}
          register: ds
        - name: Scale the StatefulSet to 3 and wait
          kubernetes.core.k8s_scale:
            api_version: apps/v1
            kind: StatefulSet
            namespace: shop
            name: cache
            replicas: 3
            wait: true
            wait_timeout: 30
            wait_sleep: 1
          register: scaled
        - name: A bad image never becomes ready (the wait times out)
          kubernetes.core.k8s:
            state: patched
            kind: StatefulSet
            namespace: shop
            name: cache
            definition:
              spec: {template: {spec: {containers: [{name: cache, image: "registry.local/cache:bad-7.2.5"}]}}}
            wait: true
            wait_timeout: 3
            wait_sleep: 1
          register: bad
          ignore_errors: true
        - name: Update the DaemonSet and wait for the rollout
          kubernetes.core.k8s:
            state: patched
            kind: DaemonSet
            namespace: shop
            name: node-agent
            definition:
              spec: {template: {spec: {containers: [{name: agent, image: "registry.local/agent:1.1.0"}]}}}
            wait: true
            wait_timeout: 30
            wait_sleep: 1
          register: ds_updated
        - ansible.builtin.assert:
            that:
              - sts is changed
              - sts.result.status.readyReplicas == 2
              - sts.result.status.currentRevision == sts.result.status.updateRevision
              - ds.result.status.desiredNumberScheduled == 2
              - ds.result.status.numberReady == 2
              - scaled is changed
              - scaled.result.status.readyReplicas == 3
              - bad is failed
              - ds_updated.result.status.updatedNumberScheduled == 2
    """,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sts = get(kube, "/apis/apps/v1/namespaces/shop/statefulsets/cache")
    assert sts["spec"]["replicas"] == 3 and sts["status"]["updatedReplicas"] == 1
    assert sts["status"]["currentRevision"] != sts["status"]["updateRevision"]
    pods = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dnode-agent")["items"]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"registry.local/agent:1.1.0"}
    assert len(pods) == 2
