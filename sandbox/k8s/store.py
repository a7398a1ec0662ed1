"""The object store and the REST semantics of the apiserver: CRUD, patches, apply, dry run, cascade delete."""

from __future__ import annotations

import base64
import copy
import json
import random
import string
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone

import yaml

from . import managed
from . import patch as patches
from .resources import BY_KIND, RESOURCES, Invalid, ResourceType, apply_defaults, validate
from .selectors import SelectorError, label_selector_string, parse_field_selector, parse_label_selector

APPLY = "application/apply-patch+yaml"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (APPLY, STRATEGIC, MERGE, JSON_PATCH)

TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

# Metadata the apiserver owns: a client's PUT or PATCH cannot change it.
_SYSTEM_METADATA = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds")


def now_iso(ts: float | None = None) -> str:
    """RFC 3339 UTC with second precision, as metav1.Time serialises."""
    return datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error the apiserver answers with a ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rtype: ResourceType, name: str) -> dict:
    details = {"name": name, "kind": rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.group_resource} "{name}" not found', _details(rtype, name))


def conflict(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        _details(rtype, name),
    )


def invalid(rtype: ResourceType, name: str, exc: Invalid) -> ApiError:
    kind = f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind
    causes = [{"reason": reason, "message": message, "field": field} for reason, field, message in exc.causes]
    message = f'{kind} "{name}" is invalid: ' + ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    details = {**_details(rtype, name), "kind": rtype.kind, "causes": causes}
    return ApiError(422, "Invalid", message, details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


class Store:
    """All objects, a global resourceVersion counter, and a short history of changes for watches."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects: dict[ResourceType, dict[tuple[str, str], dict]] = {r: {} for r in RESOURCES}
        self.history: deque[tuple[int, str, ResourceType, dict]] = deque(maxlen=10000)
        self.rv = 1000
        self.wakeup = threading.Event()

    # ---------------------------------------------------------------------------------------------- internals
    def clear(self) -> None:
        with self.lock:
            for objects in self.objects.values():
                objects.clear()
            self.history.clear()
            self.rv += 1000

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _emit(self, event: str, rtype: ResourceType, obj: dict) -> None:
        # stored objects are never changed in place (every write stores a new dict), so no copy is needed
        self.history.append((int(obj["metadata"]["resourceVersion"]), event, rtype, obj))
        self.changed.notify_all()
        self.wakeup.set()

    def rtype_of(self, obj: dict) -> ResourceType:
        rtype = BY_KIND.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if rtype is None:
            raise bad_request(f"no kind {obj.get('kind')!r} is registered for version {obj.get('apiVersion')!r}")
        return rtype

    def lookup(self, rtype: ResourceType, namespace: str, name: str) -> dict | None:
        return self.objects[rtype].get((namespace if rtype.namespaced else "", name))

    def write(self, rtype: ResourceType, obj: dict, event: str = "MODIFIED") -> dict:
        """Store ``obj`` with a new resourceVersion (no validation: for controllers and seeding)."""
        meta = obj["metadata"] = {**obj["metadata"], "resourceVersion": self._next_rv()}
        self.objects[rtype][(meta.get("namespace", "") if rtype.namespaced else "", meta["name"])] = obj
        self._emit(event, rtype, obj)
        return obj

    def write_if_changed(self, rtype: ResourceType, old: dict, new: dict) -> dict:
        """Store ``new`` only if it differs from ``old`` (the apiserver does not persist no-op updates)."""
        if _comparable(old) == _comparable(new):
            return old
        return self.write(rtype, new)

    def remove(self, rtype: ResourceType, obj: dict) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if rtype.namespaced else "", meta["name"])
        if self.objects[rtype].pop(key, None) is not None:
            gone = {**obj, "metadata": {**meta, "resourceVersion": self._next_rv()}}
            self._emit("DELETED", rtype, gone)

    def new_object(self, rtype: ResourceType, obj: dict) -> dict:
        """Fill in uid, creationTimestamp and generation of an object being created (not yet stored)."""
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta.pop("resourceVersion", None)
        meta.pop("deletionTimestamp", None)
        if rtype.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        return obj

    def dependents(self, uid: str) -> list[tuple[ResourceType, dict]]:
        return [
            (rtype, obj)
            for rtype, objects in self.objects.items()
            for obj in list(objects.values())
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
        ]

    def cascade(self, obj: dict) -> None:
        """Background garbage collection: delete what ``obj`` owned, recursively."""
        for rtype, child in self.dependents(obj["metadata"]["uid"]):
            self.cascade(child)
            self.remove(rtype, child)

    # ------------------------------------------------------------------------------------------- checks
    def namespace_for_write(self, rtype: ResourceType, namespace: str) -> None:
        if not rtype.namespaced:
            return
        ns_type = RESOURCES[0]
        ns = self.objects[ns_type].get(("", namespace))
        if ns is None:
            raise not_found(ns_type, namespace)
        if ns["status"].get("phase") == "Terminating":
            raise ApiError(
                403,
                "Forbidden",
                f'{rtype.group_resource} "{namespace}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                {"name": namespace, "kind": rtype.plural, **({"group": rtype.group} if rtype.group else {})},
            )

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict:
        with self.lock:
            obj = self.lookup(rtype, namespace, name)
            if obj is None:
                raise not_found(rtype, name)
            return copy.deepcopy(obj)

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict:
        """A ``<Kind>List`` sorted by namespace and name, items without kind/apiVersion as on a real apiserver."""
        try:
            labels_ok = parse_label_selector(label_selector)
            fields_ok = parse_field_selector(field_selector, rtype.supported_fields)
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        with self.lock:
            items = [
                {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
                for key, obj in sorted(self.objects[rtype].items())
                if (namespace is None or key[0] == namespace)
                and labels_ok(obj["metadata"].get("labels") or {})
                and fields_ok(obj)
            ]
            rv = str(self.rv)
        try:
            start = int(base64.b64decode(continue_token).decode()) if continue_token else 0
        except ValueError as exc:
            raise ApiError(410, "Expired", "The provided continue parameter is too old or malformed") from exc
        meta: dict = {"resourceVersion": rv}
        if limit:
            if start + limit < len(items):
                meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
            items = items[start : start + limit]
        return {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version, "metadata": meta, "items": items}

    # -------------------------------------------------------------------------------------------- verbs
    def create(
        self,
        rtype: ResourceType,
        namespace: str | None,
        body: dict,
        dry_run: bool = False,
        manager: str = "",
        operation: str = "Update",
    ) -> dict:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion", rtype.api_version) != rtype.api_version or obj.get("kind", rtype.kind) != rtype.kind:
            raise bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version "
                f"({rtype.api_version})"
            )
        meta = obj.setdefault("metadata", {})
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if rtype.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        with self.lock:
            self.namespace_for_write(rtype, meta.get("namespace", ""))
            if meta.get("name") and self.lookup(rtype, meta.get("namespace", ""), meta["name"]) is not None:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{rtype.group_resource} "{meta["name"]}" already exists',
                    _details(rtype, meta["name"]),
                )
            self.new_object(rtype, obj)
            if rtype.has_status and rtype.kind not in ("Namespace", "Node", "Service"):
                obj["status"] = {}
            if rtype.kind == "Pod":
                obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            if rtype.kind == "Service" and isinstance(obj.get("spec"), dict):
                self._allocate_cluster_ip(obj)
            apply_defaults(rtype, obj)
            if rtype.kind == "Pod":
                error = self.service_account_error(obj, meta.get("name", ""))
                if error:
                    raise ApiError(403, "Forbidden", error, _details(rtype, meta.get("name", "")))
            if rtype.kind == "DaemonSet":  # the DaemonSet strategy's templateGeneration
                meta.setdefault("annotations", {})[TEMPLATE_GENERATION] = "1"
            try:
                validate(rtype, obj)
            except Invalid as exc:
                raise invalid(rtype, meta.get("name", ""), exc) from exc
            if manager:
                self._manage(None, obj, manager, operation, "", body)
            if dry_run:
                return obj
            self.write(rtype, obj, "ADDED")
            if rtype.kind == "Namespace":
                self._namespace_defaults(meta["name"])
            return copy.deepcopy(obj)

    @staticmethod
    def _allocate_cluster_ip(service: dict) -> None:
        """A stable ClusterIP from the uid (headless ``None`` and ExternalName services get none)."""
        spec = service["spec"]
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        if not spec.get("clusterIP"):
            seed = int(service["metadata"]["uid"].replace("-", "")[:8], 16)
            spec["clusterIP"] = f"10.96.{seed % 250}.{(seed >> 8) % 250 + 2}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        service.setdefault("status", {}).setdefault("loadBalancer", {})

    def service_account_error(self, pod: dict, name: str) -> str | None:
        """The ServiceAccount admission plugin: a pod's service account must exist in its namespace."""
        spec = pod.get("spec") or {}
        account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        namespace = pod["metadata"].get("namespace", "")
        if self.lookup(BY_KIND[("v1", "ServiceAccount")], namespace, account) is not None:
            return None
        return (
            f'pods "{name}" is forbidden: error looking up service account {namespace}/{account}: '
            f'serviceaccount "{account}" not found'
        )

    def _namespace_defaults(self, namespace: str) -> None:
        sa_type = BY_KIND[("v1", "ServiceAccount")]
        if self.lookup(sa_type, namespace, "default") is None:
            sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}
            self.write(sa_type, self.new_object(sa_type, sa), "ADDED")

    def update(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: dict,
        dry_run: bool = False,
        manager: str = "",
        subresource: str = "",
        operation: str = "Update",
        applied: dict | None = None,
        taken: set | None = None,
    ) -> dict:
        """PUT (and the last step of every PATCH): optimistic concurrency, status split, generation, no-op."""
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        with self.lock:
            old = self.lookup(rtype, namespace, name)
            if old is None:
                raise not_found(rtype, name)
            meta = body.get("metadata") or {}
            if meta.get("name", name) != name:
                raise bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
                )
            if meta.get("resourceVersion") and meta["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": Precondition failed: '
                    f"UID in precondition: {meta['uid']}, UID in object meta: {old['metadata']['uid']}",
                    _details(rtype, name),
                )
            if subresource in ("status", "finalize"):
                new = copy.deepcopy(old)
                part = "status" if subresource == "status" else "spec"
                new[part] = copy.deepcopy(body.get(part, {}))
            else:
                new = copy.deepcopy(body)
                new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
                new_meta = new.setdefault("metadata", {})
                new_meta["name"] = name
                if rtype.namespaced:
                    new_meta["namespace"] = namespace
                for key in _SYSTEM_METADATA:
                    if key in old["metadata"]:
                        new_meta[key] = old["metadata"][key]
                    else:
                        new_meta.pop(key, None)
                if rtype.has_status:
                    new["status"] = copy.deepcopy(old.get("status", {}))
                elif "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                if rtype.kind == "Namespace":  # finalizers change through the finalize subresource only
                    new["spec"] = copy.deepcopy(old.get("spec", {}))
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            new["metadata"]["managedFields"] = copy.deepcopy(old["metadata"].get("managedFields", []))
            if manager and operation == "Apply":
                self._drop_unapplied(old, new, manager, subresource, applied or {}, taken or set())
            apply_defaults(rtype, new)
            try:
                validate(rtype, new, old)
            except Invalid as exc:
                raise invalid(rtype, name, exc) from exc
            if rtype.generation and (
                new.get("spec") != old.get("spec")
                or (
                    rtype.kind == "Deployment"
                    and new["metadata"].get("annotations") != old["metadata"].get("annotations")
                )
            ):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            if rtype.kind == "DaemonSet":
                generation = int((old["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION) or 1)
                if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
                    generation += 1
                new["metadata"].setdefault("annotations", {})[TEMPLATE_GENERATION] = str(generation)
            if manager:
                self._manage(old, new, manager, operation, subresource, applied, taken)
            if _comparable(old) == _comparable(new) and old["metadata"].get("managedFields") == new["metadata"].get(
                "managedFields"
            ):
                return copy.deepcopy(old)
            if dry_run:
                return new
            self.write(rtype, new)
            return copy.deepcopy(new)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        content_type: str,
        dry_run: bool = False,
        manager: str = "",
        force: bool = False,
        subresource: str = "",
    ) -> tuple[int, dict]:
        """PATCH with any of the four patch types; returns (HTTP code, object). Apply creates when absent."""
        content_type = content_type.split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(PATCH_TYPES)}",
            )
        try:
            text = raw.decode("utf-8")
            body = yaml.safe_load(text) if content_type == APPLY else json.loads(text)
        except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc
        with self.lock:
            if content_type == APPLY:
                if not manager:
                    raise ApiError(
                        422,
                        "Invalid",
                        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
                        "apply patch",
                    )
                if not isinstance(body, dict):
                    raise bad_request("the body of an apply patch must be an object")
                if self.lookup(rtype, namespace, name) is None:
                    if subresource:
                        raise not_found(rtype, name)
                    body.setdefault("metadata", {}).setdefault("name", name)
                    return 201, self.create(rtype, namespace, body, dry_run, manager, operation="Apply")
            current = self.lookup(rtype, namespace, name)
            if current is None:
                raise not_found(rtype, name)
            taken: set = set()
            if content_type == APPLY:
                applied_body = {k: v for k, v in body.items() if k != "status" or subresource == "status"}
                conflicts = self._conflicts(current, applied_body, manager, subresource)
                if conflicts and not force:
                    raise apply_conflict(conflicts)
                taken = {path for _, path in conflicts}
            base = copy.deepcopy(current)
            try:
                if content_type == JSON_PATCH:
                    new = patches.json_patch(base, body)
                elif content_type == MERGE:
                    new = patches.merge_patch(base, body)
                else:
                    if not isinstance(body, dict):
                        raise patches.PatchError("a strategic merge patch must be an object", bad_request=True)
                    if content_type == APPLY:
                        body = {k: v for k, v in body.items() if k != "status" or subresource == "status"}
                    new = patches.strategic_merge_patch(base, body)
            except patches.PatchError as exc:
                if exc.bad_request:
                    raise bad_request(str(exc)) from exc
                raise ApiError(422, "Invalid", str(exc)) from exc
            if not isinstance(new, dict):
                raise bad_request("the patched object is not an object")
            # a PATCH is not a compare-and-swap unless the patch itself carries a resourceVersion
            patched_rv = (new.get("metadata") or {}).get("resourceVersion")
            new.setdefault("metadata", {})["resourceVersion"] = patched_rv or current["metadata"]["resourceVersion"]
            operation = "Apply" if content_type == APPLY else "Update"
            applied = body if isinstance(body, dict) else None
            return 200, self.update(
                rtype,
                namespace,
                name,
                new,
                dry_run,
                manager,
                subresource,
                operation=operation,
                applied=applied,
                taken=taken,
            )

    def delete(
        self, rtype: ResourceType, namespace: str, name: str, options: dict | None = None, dry_run: bool = False
    ) -> dict:
        """DELETE: Status for most kinds, the object for pods and namespaces (which go Terminating first)."""
        options = options or {}
        with self.lock:
            obj = self.lookup(rtype, namespace, name)
            if obj is None:
                raise not_found(rtype, name)
            pre = options.get("preconditions") or {}
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise conflict(rtype, name)
            if rtype.kind == "Namespace":
                terminating = copy.deepcopy(obj)
                terminating["metadata"].setdefault("deletionTimestamp", now_iso())
                terminating["status"]["phase"] = "Terminating"
                if dry_run:
                    return terminating
                return copy.deepcopy(self.write_if_changed(rtype, obj, terminating))
            if dry_run:
                return copy.deepcopy(obj)
            policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
            if policy == "Orphan":
                for child_type, child in self.dependents(obj["metadata"]["uid"]):
                    orphan = copy.deepcopy(child)
                    orphan["metadata"]["ownerReferences"] = [
                        ref for ref in child["metadata"]["ownerReferences"] if ref.get("uid") != obj["metadata"]["uid"]
                    ] or None
                    if orphan["metadata"]["ownerReferences"] is None:
                        del orphan["metadata"]["ownerReferences"]
                    self.write(child_type, orphan)
            else:
                self.cascade(obj)
            self.remove(rtype, obj)
            if rtype.kind == "Pod":
                return copy.deepcopy(obj)
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {**_details(rtype, name), "uid": obj["metadata"]["uid"]},
            }

    def delete_collection(
        self,
        rtype: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        options: dict | None = None,
        dry_run: bool = False,
    ) -> dict:
        with self.lock:
            listed = self.list(rtype, namespace, label_selector, field_selector)
            for item in listed["items"]:
                self.delete(rtype, item["metadata"].get("namespace", ""), item["metadata"]["name"], options, dry_run)
            for item in listed["items"]:
                item["apiVersion"], item["kind"] = rtype.api_version, rtype.kind
            return listed

    # ------------------------------------------------------------------------------------------- scale
    def get_scale(self, rtype: ResourceType, namespace: str, name: str) -> dict:
        obj = self.get(rtype, namespace, name)
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if key in meta
            },
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {
                "replicas": obj.get("status", {}).get("replicas", 0),
                "selector": label_selector_string(obj["spec"].get("selector")),
            },
        }

    def set_scale(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        scale: dict,
        dry_run: bool = False,
        manager: str = "",
    ) -> dict:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(
                rtype,
                name,
                Invalid([("FieldValueInvalid", "spec.replicas", f"Invalid value: {replicas!r}: must be >= 0")]),
            )
        with self.lock:
            obj = self.get(rtype, namespace, name)
            obj["metadata"]["resourceVersion"] = (scale.get("metadata") or {}).get("resourceVersion") or obj[
                "metadata"
            ]["resourceVersion"]
            obj["spec"]["replicas"] = replicas
            new = self.update(rtype, namespace, name, obj, dry_run, manager, subresource="scale", applied=scale)
            result = self.get_scale(rtype, namespace, name)
            if dry_run:
                result["spec"]["replicas"] = new["spec"]["replicas"]
            return result

    def patch_scale(
        self, rtype: ResourceType, namespace: str, name: str, raw: bytes, content_type: str, dry_run: bool, manager: str
    ) -> dict:
        with self.lock:
            current = self.get_scale(rtype, namespace, name)
            try:
                body = json.loads(raw.decode("utf-8")) if content_type != APPLY else yaml.safe_load(raw.decode("utf-8"))
                if content_type == JSON_PATCH:
                    scale = patches.json_patch(current, body)
                elif content_type == MERGE:
                    scale = patches.merge_patch(current, body)
                else:
                    scale = patches.strategic_merge_patch(current, body)
            except (ValueError, yaml.YAMLError) as exc:
                raise bad_request(f"error decoding patch: {exc}") from exc
            except patches.PatchError as exc:
                raise ApiError(  # noqa: B904 - the Status message is the whole story
                    400 if exc.bad_request else 422, "BadRequest" if exc.bad_request else "Invalid", str(exc)
                )
            return self.set_scale(rtype, namespace, name, scale, dry_run, manager)

    # ----------------------------------------------------------------------------------------- managers
    @staticmethod
    def _identity(entry: dict) -> tuple[str, str, str]:
        return entry.get("manager", ""), entry.get("operation", ""), entry.get("subresource", "")

    def _conflicts(self, live: dict, applied: dict, manager: str, subresource: str) -> list[tuple[dict, tuple]]:
        """Fields the apply would change that another manager owns: (their entry, path)."""
        paths = managed.leaves(applied, subresource == "status")
        out = []
        for entry in live["metadata"].get("managedFields") or []:
            if self._identity(entry) == (manager, "Apply", subresource):
                continue
            for path in sorted(paths & managed.from_fields_v1(entry.get("fieldsV1"))):
                if path[-1] == managed.ITEM:
                    continue
                found, value = managed.value_at(live, path)
                if found and managed.value_at(applied, path)[1] != value:
                    out.append((entry, path))
        return out

    def _drop_unapplied(self, old: dict, new: dict, manager: str, subresource: str, applied: dict, taken: set) -> None:
        """Fields this applier applied before, does not apply now, and nobody else owns: removed."""
        status = subresource == "status"
        now_applied = managed.leaves(applied, status)
        before: set = set()
        others: set = set()
        for entry in old["metadata"].get("managedFields") or []:
            fields = managed.from_fields_v1(entry.get("fieldsV1"))
            if self._identity(entry) == (manager, "Apply", subresource):
                before = fields
            else:
                others |= fields - taken
        for path in sorted(before - now_applied - others, key=len, reverse=True):
            managed.remove(new, path)

    def _manage(
        self,
        old: dict | None,
        new: dict,
        manager: str,
        operation: str,
        subresource: str,
        applied: dict | None,
        taken: set | None = None,
    ) -> None:
        """``metadata.managedFields`` after a write: an applier owns what it applied (taking ``taken`` from the
        others), an updater gains the fields it changed and the others lose them."""
        status = subresource == "status"
        identity = (manager, operation, subresource)
        entries = [
            (entry, managed.from_fields_v1(entry.get("fieldsV1")))
            for entry in ((old or {}).get("metadata", {}).get("managedFields") or [])
        ]
        mine_before = next((fields for entry, fields in entries if self._identity(entry) == identity), None)
        if operation == "Apply":
            mine = managed.leaves(applied or {}, status)
            lost = set(taken or ())
        else:
            diff = managed.changed(old, new, status) if old is not None else managed.leaves(new, status)
            mine = {path for path in (mine_before or set()) | diff if managed.value_at(new, path)[0]}
            lost = diff
        result = []
        for entry, fields in entries:
            if self._identity(entry) == identity:
                continue
            kept = {path for path in fields - lost if managed.value_at(new, path)[0]}
            if kept == fields:
                result.append(entry)
            elif kept:
                result.append({**entry, "fieldsV1": managed.to_fields_v1(kept)})
        previous = next((entry for entry, _ in entries if self._identity(entry) == identity), None)
        if mine:
            if previous is not None and mine == mine_before:
                entry = previous
            else:
                entry = {
                    "manager": manager,
                    "operation": operation,
                    "apiVersion": new["apiVersion"],
                    "time": now_iso(),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": managed.to_fields_v1(mine),
                }
                if subresource:
                    entry["subresource"] = subresource
            position = next((i for i, (e, _) in enumerate(entries) if e is previous), len(entries))
            result.insert(min(position, len(result)), entry)
        if result:
            new["metadata"]["managedFields"] = result
        else:
            new["metadata"].pop("managedFields", None)


def apply_conflict(conflicts: list[tuple[dict, tuple]]) -> ApiError:
    """``NewConflictError``: 409 with a FieldManagerConflict cause per field."""

    def who(entry: dict) -> str:
        text = json.dumps(entry.get("manager", ""))
        if entry.get("subresource"):
            text += f" with subresource {json.dumps(entry['subresource'])}"
        if entry.get("operation") == "Update":
            text += f" using {entry.get('apiVersion', '')}"
        return text

    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {who(e)}", "field": managed.path_string(p)}
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        message = f"Apply failed with 1 conflict: conflict with {who(conflicts[0][0])}: {causes[0]['field']}"
    else:
        grouped: dict[str, list[str]] = {}
        for entry, path in conflicts:
            grouped.setdefault(who(entry), []).append(managed.path_string(path))
        lines = []
        for name in sorted(grouped):
            lines.append(f"conflicts with {name}:")
            lines.extend(f"- {field}" for field in grouped[name])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def _comparable(obj: dict) -> dict:
    """An object without the metadata that changes on every write."""
    out = dict(obj)
    out["metadata"] = {
        k: v for k, v in obj.get("metadata", {}).items() if k not in ("resourceVersion", "managedFields")
    }
    return out
