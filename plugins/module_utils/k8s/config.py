# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""ConfigMap/Secret snapshots and rollback: pure functions (no API calls), unit-tested without a cluster.

Snapshots are written by ``k8s_triage_info`` into the incident's evidence directory, one JSON file per
object and capture: ``<evidence_dir>/k8s/<namespace>/<kind>-<name>-<YYYYmmddTHHMMSSZ>.json`` (mode 0600),
holding the object's ``data`` and ``binaryData`` exactly as the API returns them (Secret values
base64-encoded, restorable). Results and the timeline only ever show keys and SHA-256 digests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
RESTORED_FROM = "firebreak.io/restored-from"
RESTORED_AT = "firebreak.io/restored-at"
CONFIG_KINDS = ("ConfigMap", "Secret")
SNAPSHOT_RE = re.compile(r"^(?P<kind>ConfigMap|Secret)-(?P<name>.+)-(?P<ts>\d{8}T\d{6}Z)\.json$")


def content(obj: dict) -> dict:
    """``{"data": ..., "binaryData": ...}`` of a ConfigMap or Secret (absent fields as empty maps)."""
    return {"data": dict(obj.get("data") or {}), "binaryData": dict(obj.get("binaryData") or {})}


def fold_string_data(kind: str, config: dict) -> dict:
    """A Secret's ``stringData`` folded into base64 ``data`` (as the apiserver does on write)."""
    config = dict(config)
    if kind == "Secret" and config.get("stringData"):
        data = dict(config.get("data") or {})
        for key, value in config["stringData"].items():
            data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
        config["data"] = data
        config.pop("stringData")
    return config


def digests(kind: str, cont: dict) -> dict:
    """What may be shown of a content: per key, a SHA-256 digest (prefix) of the value; for a
    ConfigMap's ``data`` the value itself is NOT shown either (it may hold credentials by mistake)."""
    shown = {}
    for field in ("data", "binaryData"):
        for key, value in sorted((cont.get(field) or {}).items()):
            shown[key] = "sha256:" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:16]
    return shown


def last_applied_content(kind: str, obj: dict) -> dict | None:
    """The content recorded by ``kubectl apply`` in ``last-applied-configuration``, or None."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        applied = json.loads(text)
    except ValueError:
        return None
    if not isinstance(applied, dict):
        return None
    return content(fold_string_data(kind, applied))


def snapshot_document(obj: dict, captured_at: str, incident_id: str | None = None) -> dict:
    meta = obj.get("metadata") or {}
    return {
        "kind": obj.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
        "captured_at": captured_at,
        "incident_id": incident_id,
        **content(obj),
    }


def snapshot_dir(evidence_dir: str, namespace: str) -> str:
    return os.path.join(evidence_dir, "k8s", namespace)


def snapshot_filename(kind: str, name: str, captured_at: str) -> str:
    stamp = captured_at.replace("-", "").replace(":", "")
    return f"{kind}-{name}-{stamp}.json"


def write_snapshot(evidence_dir: str, doc: dict) -> str:
    """Write a snapshot file (mode 0600, never following a symlink at the file); returns its path."""
    directory = snapshot_dir(evidence_dir, doc["namespace"])
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, snapshot_filename(doc["kind"], doc["name"], doc["captured_at"]))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, sort_keys=True, indent=1)
    os.chmod(path, 0o600)
    return path


def find_snapshots(evidence_dir: str, kind: str, namespace: str, name: str) -> list[str]:
    """Snapshot files of this object, oldest capture first."""
    directory = snapshot_dir(evidence_dir, namespace)
    if not os.path.isdir(directory):
        return []
    found = []
    for entry in os.listdir(directory):
        match = SNAPSHOT_RE.match(entry)
        if match and match.group("kind") == kind and match.group("name") == name:
            found.append((match.group("ts"), os.path.join(directory, entry)))
    return [path for _, path in sorted(found)]


def read_snapshot(path: str, kind: str, namespace: str, name: str) -> dict:
    """The content of a snapshot file; ``ValueError`` naming the file if it is not one of this object."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read snapshot {path}: {e}") from None
    if (doc.get("kind"), doc.get("namespace"), doc.get("name")) != (kind, namespace, name):
        got = f"{doc.get('kind')} {doc.get('namespace')}/{doc.get('name')}"
        raise ValueError(f"snapshot {path} is of {got}, not {kind} {namespace}/{name}")
    return {"data": dict(doc.get("data") or {}), "binaryData": dict(doc.get("binaryData") or {})}


def restore_ops(current: dict, target: dict) -> list[dict]:
    """A JSON patch that sets ``data``/``binaryData`` to ``target``, guarded by a test of the current content."""
    ops = []
    for field in ("data", "binaryData"):
        now, want = current.get(field) or {}, target.get(field) or {}
        if now == want:
            continue
        if now:
            ops.append({"op": "test", "path": f"/{field}", "value": now})
        if want:
            ops.append({"op": "add", "path": f"/{field}", "value": want})
        else:
            ops.append({"op": "remove", "path": f"/{field}"})
    return ops


def references(pod_spec: dict) -> set[tuple[str, str]]:
    """``{("ConfigMap"|"Secret", name)}`` a pod spec uses: volumes (incl. projected), env and envFrom."""
    refs = set()
    for volume in pod_spec.get("volumes") or []:
        if (volume.get("configMap") or {}).get("name"):
            refs.add(("ConfigMap", volume["configMap"]["name"]))
        if (volume.get("secret") or {}).get("secretName"):
            refs.add(("Secret", volume["secret"]["secretName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (source.get("configMap") or {}).get("name"):
                refs.add(("ConfigMap", source["configMap"]["name"]))
            if (source.get("secret") or {}).get("name"):
                refs.add(("Secret", source["secret"]["name"]))
    for container in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            if (source.get("configMapKeyRef") or {}).get("name"):
                refs.add(("ConfigMap", source["configMapKeyRef"]["name"]))
            if (source.get("secretKeyRef") or {}).get("name"):
                refs.add(("Secret", source["secretKeyRef"]["name"]))
        for env_from in container.get("envFrom") or []:
            if (env_from.get("configMapRef") or {}).get("name"):
                refs.add(("ConfigMap", env_from["configMapRef"]["name"]))
            if (env_from.get("secretRef") or {}).get("name"):
                refs.add(("Secret", env_from["secretRef"]["name"]))
    for secret in pod_spec.get("imagePullSecrets") or []:
        if secret.get("name"):
            refs.add(("Secret", secret["name"]))
    return refs


def workloads_using(workloads: list[tuple[str, dict]], kind: str, name: str) -> list[tuple[str, str]]:
    """``[(workload kind, name)]`` whose pod template uses ConfigMap/Secret ``name``, sorted."""
    found = []
    for wkind, obj in workloads:
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        if (kind, name) in references(spec):
            found.append((wkind, obj["metadata"]["name"]))
    return sorted(found)
