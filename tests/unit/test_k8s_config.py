"""ConfigMap/Secret snapshot and rollback decisions (plugins/module_utils/k8s/config.py), without a cluster."""

from __future__ import annotations

import json
import os
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import config as c


def test_references_cover_volumes_projected_env_envfrom_and_pull_secrets():
    spec = {
        "volumes": [
            {"name": "a", "configMap": {"name": "cm-vol"}},
            {"name": "b", "secret": {"secretName": "s-vol"}},
            {
                "name": "c",
                "projected": {"sources": [{"configMap": {"name": "cm-proj"}}, {"secret": {"name": "s-proj"}}]},
            },
        ],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s-from"}}]}],
        "containers": [
            {
                "name": "x",
                "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "cm-from"}}],
            }
        ],
        "imagePullSecrets": [{"name": "regcred"}],
    }
    assert c.references(spec) == {
        ("ConfigMap", "cm-vol"),
        ("Secret", "s-vol"),
        ("ConfigMap", "cm-proj"),
        ("Secret", "s-proj"),
        ("Secret", "s-from"),
        ("ConfigMap", "cm-env"),
        ("ConfigMap", "cm-from"),
        ("Secret", "regcred"),
    }
    workloads = [("Deployment", {"metadata": {"name": "api"}, "spec": {"template": {"spec": spec}}})]
    assert c.workloads_using(workloads, "ConfigMap", "cm-env") == [("Deployment", "api")]
    assert c.workloads_using(workloads, "Secret", "cm-env") == []


def test_last_applied_folds_secret_string_data():
    applied = {"kind": "Secret", "stringData": {"password": "pw"}, "data": {"user": "dQ=="}}
    obj = {"metadata": {"annotations": {c.LAST_APPLIED: json.dumps(applied)}}}
    assert c.last_applied_content("Secret", obj) == {"data": {"user": "dQ==", "password": "cHc="}, "binaryData": {}}
    assert c.last_applied_content("ConfigMap", {"metadata": {}}) is None
    assert c.last_applied_content("ConfigMap", {"metadata": {"annotations": {c.LAST_APPLIED: "not json"}}}) is None


def test_restore_ops_test_then_set_and_remove():
    ops = c.restore_ops(
        {"data": {"a": "2", "b": "x"}, "binaryData": {"z": "AA=="}}, {"data": {"a": "1"}, "binaryData": {}}
    )
    assert ops == [
        {"op": "test", "path": "/data", "value": {"a": "2", "b": "x"}},
        {"op": "add", "path": "/data", "value": {"a": "1"}},
        {"op": "test", "path": "/binaryData", "value": {"z": "AA=="}},
        {"op": "remove", "path": "/binaryData"},
    ]
    assert c.restore_ops({"data": {"a": "1"}}, {"data": {"a": "1"}}) == []


def test_digests_never_show_values():
    shown = c.digests("Secret", {"data": {"password": "c2VjcmV0"}})
    assert list(shown) == ["password"] and "c2VjcmV0" not in json.dumps(shown)


def test_snapshots_written_0600_found_oldest_first_and_checked(tmp_path):
    obj = {"kind": "ConfigMap", "metadata": {"name": "flags", "namespace": "shop", "uid": "u"}, "data": {"a": "1"}}
    late = c.write_snapshot(str(tmp_path), c.snapshot_document(obj, "2026-11-24T13:05:00Z"))
    early = c.write_snapshot(str(tmp_path), c.snapshot_document(dict(obj, data={"a": "0"}), "2026-11-24T13:00:00Z"))
    assert oct(os.stat(early).st_mode)[-3:] == "600"
    assert c.find_snapshots(str(tmp_path), "ConfigMap", "shop", "flags") == [early, late]
    assert c.read_snapshot(early, "ConfigMap", "shop", "flags")["data"] == {"a": "0"}
    with pytest.raises(ValueError, match="is of ConfigMap shop/flags, not Secret shop/flags"):
        c.read_snapshot(early, "Secret", "shop", "flags")
