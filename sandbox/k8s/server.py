"""HTTP front of the Kubernetes API test server and :class:`KubeServer`, the handle the sandbox uses."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from . import autoscaler, disruption, events
from . import patch as patches
from .controller import Controllers
from .resources import (
    BY_KIND,
    BY_PATH,
    GROUPS,
    SERVER_VERSION,
    ResourceType,
    api_group,
    api_group_list,
    api_resource_list,
    unknown_selector_fields,
)
from .seed import seed
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import APPLY, JSON_PATCH, MERGE, ApiError, Store, bad_request

DEFAULT_BAD_IMAGE_PATTERN = r":(bad|broken)[^/:]*$"
DEFAULT_CRASH_IMAGE_PATTERN = r":(crash|exit)[^/:]*$"


def _flag(query: dict, name: str) -> str:
    return (query.get(name) or [""])[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "firebreak-kube-apiserver/1.31"
    kube: KubeServer  # set on the subclass made per server

    def log_message(self, format: str, *args) -> None:
        """Quiet: tests read the API, not an access log."""

    # ---------------------------------------------------------------------------------------------- output
    def _send(self, code: int, body: dict | str, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(code)
        for warning in getattr(self, "warnings", ()):
            self.send_header("Warning", f'299 - "{warning}"')
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, exc: ApiError) -> None:
        self._send(exc.code, exc.status())

    def _not_found_path(self) -> None:
        self._send(
            404,
            {**ApiError(404, "NotFound", "the server could not find the requested resource").status(), "details": {}},
        )

    # -------------------------------------------------------------------------------------------- dispatch
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self.warnings: list[str] = []
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = url.path.rstrip("/") or "/"
        try:
            if path.startswith("/sandbox/"):
                return self._control(method, path)
            if method == "GET":
                discovery = self._discovery(path)
                if discovery is not None:
                    return (
                        self._send(200, discovery)
                        if isinstance(discovery, dict)
                        else self._send(200, discovery, "text/plain; charset=utf-8")
                    )
            target = self._route(path)
            if target is None:
                return self._not_found_path()
            self._resource(method, target, query, raw)
        except ApiError as exc:
            self._error(exc)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:
            self._error(ApiError(500, "InternalError", f"Internal error occurred: {exc!r}"))

    def _control(self, method: str, path: str) -> None:
        if path == "/sandbox/healthz" and method == "GET":
            return self._send(200, {"status": "ok", "resourceVersion": str(self.kube.store.rv)})
        if path == "/sandbox/reset" and method == "POST":
            return self._send(200, self.kube.reset())
        self._not_found_path()

    def _discovery(self, path: str) -> dict | str | None:
        if path == "/version":
            return SERVER_VERSION
        if path in ("/healthz", "/livez", "/readyz"):
            return "ok"
        if path == "/api":
            host = f"{self.kube.host}:{self.kube.port}"
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        if path == "/api/v1":
            return api_resource_list("", "v1")
        if path == "/apis":
            return api_group_list()
        parts = path.split("/")[1:]
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in GROUPS:
            return api_group(parts[1])
        if parts[0] == "apis" and len(parts) == 3 and parts[2] in GROUPS.get(parts[1], []):
            return api_resource_list(parts[1], parts[2])
        return None

    @staticmethod
    def _route(path: str) -> tuple[ResourceType, str | None, str | None, str | None] | None:
        """``(type, namespace, name, subresource)`` for a resource path, ``None`` for an unknown one."""
        parts = path.split("/")[1:]
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in BY_PATH:
            namespace, rest = rest[1], rest[2:]
        rtype = BY_PATH.get((group, version, rest[0]))
        if rtype is None or len(rest) > 3:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rtype.subresources:
            return None
        if (rtype.namespaced and name is not None and namespace is None) or (not rtype.namespaced and namespace):
            return None
        return rtype, namespace, name, sub

    # ------------------------------------------------------------------------------------------- resources
    def _manager(self, query: dict) -> str:
        manager = _flag(query, "fieldManager")
        if manager:
            return manager
        agent = self.headers.get("User-Agent") or "unknown"
        return agent.split("/")[0]

    def _resource(self, method: str, target: tuple, query: dict, raw: bytes) -> None:
        rtype, namespace, name, sub = target
        if rtype.group == "events.k8s.io":
            return self._events_v1(method, target, query, raw)
        if rtype.group == "autoscaling" and rtype.version == "v1":
            return self._hpa_v1(method, target, query, raw)
        store = self.kube.store
        dry = _flag(query, "dryRun")
        if dry not in ("", "All"):
            raise bad_request(f"unsupported dry run option '{dry}'")
        dry_run = dry == "All"
        manager = self._manager(query)
        ns = namespace or ""

        def body() -> dict:
            try:
                text = raw.decode("utf-8")
                if (self.headers.get("Content-Type") or "").startswith("application/yaml"):
                    decoded = yaml.safe_load(text)
                else:
                    decoded = json.loads(text)
            except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
                raise bad_request(f"the body of the request was in an unknown format: {exc}") from exc
            if rtype.kind == "NetworkPolicy" and method in ("POST", "PUT") and isinstance(decoded, dict):
                # fieldValidation: Strict rejects unknown fields; Warn (the default) and Ignore drop them
                unknown = unknown_selector_fields(decoded)
                validation = _flag(query, "fieldValidation") or "Warn"
                if unknown and validation == "Strict":
                    raise bad_request(
                        "strict decoding error: " + ", ".join(f'unknown field "{field}"' for field in unknown)
                    )
                if validation == "Warn":
                    self.warnings.extend(f'unknown field \\"{field}\\"' for field in unknown)
            return decoded

        if name is None:
            if method == "GET":
                if _flag(query, "watch") in ("true", "1"):
                    return self._watch(rtype, namespace, query)
                limit = _flag(query, "limit")
                listed = store.list(
                    rtype,
                    namespace,
                    _flag(query, "labelSelector"),
                    _flag(query, "fieldSelector"),
                    int(limit) if limit.isdigit() else None,
                    _flag(query, "continue") or None,
                )
                return self._send(200, listed)
            if method == "POST":
                if rtype.namespaced and namespace is None:
                    raise ApiError(
                        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                    )
                return self._send(201, store.create(rtype, namespace, body(), dry_run, manager))
            if method == "DELETE":
                options = body() if raw else {}
                return self._send(
                    200,
                    store.delete_collection(
                        rtype, namespace, _flag(query, "labelSelector"), _flag(query, "fieldSelector"), options, dry_run
                    ),
                )
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

        if sub == "scale":
            if method == "GET":
                return self._send(200, store.get_scale(rtype, ns, name))
            if method == "PUT":
                return self._send(200, store.set_scale(rtype, ns, name, body(), dry_run, manager))
            if method == "PATCH":
                content_type = (self.headers.get("Content-Type") or "").split(";")[0]
                return self._send(200, store.patch_scale(rtype, ns, name, raw, content_type, dry_run, manager))
        elif sub == "log" and method == "GET":
            return self._send(200, self._pod_log(store.get(rtype, ns, name), query), "text/plain")
        elif sub == "eviction" and method == "POST":
            return self._send(201, disruption.evict(store, ns, name, body(), dry_run))
        elif sub == "finalize" and method == "PUT":
            return self._send(200, store.update(rtype, ns, name, body(), dry_run, manager, subresource="finalize"))
        elif method == "GET":
            return self._send(200, store.get(rtype, ns, name))
        elif method == "PUT":
            return self._send(200, store.update(rtype, ns, name, body(), dry_run, manager, subresource=sub or ""))
        elif method == "PATCH":
            content_type = self.headers.get("Content-Type") or ""
            force = _flag(query, "force") in ("true", "1")
            if content_type.startswith("application/apply-patch"):
                manager = _flag(query, "fieldManager")  # apply has no default manager
            code, obj = store.patch(rtype, ns, name, raw, content_type, dry_run, manager, force, sub or "")
            return self._send(code, obj)
        elif method == "DELETE" and sub is None:
            options = body() if raw else {}
            for key in ("propagationPolicy", "gracePeriodSeconds"):
                if _flag(query, key):
                    options[key] = _flag(query, key)
            return self._send(200, store.delete(rtype, ns, name, options, dry_run))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _pod_log(self, pod: dict, query: dict) -> str:
        """The kubelet's answer: log lines (``tailLines``, ``limitBytes``, ``previous``), 400 when waiting to start."""
        try:
            lines = self.kube.controllers.kubelet.log(
                pod, _flag(query, "container"), _flag(query, "previous") in ("true", "1")
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        tail = _flag(query, "tailLines")
        if tail.isdigit():
            lines = lines[-int(tail) :] if int(tail) else []
        text = "".join(line + "\n" for line in lines)
        limit = _flag(query, "limitBytes")
        return text[: int(limit)] if limit.isdigit() else text

    def _events_v1(self, method: str, target: tuple, query: dict, raw: bytes) -> None:
        """``events.k8s.io/v1``: the ``v1`` Events, converted (get, list, watch, create, delete)."""
        _, namespace, name, _ = target
        store, core = self.kube.store, BY_KIND[("v1", "Event")]
        ns = namespace or ""
        query = {**query, "fieldSelector": [events.field_selector(_flag(query, "fieldSelector"))]}
        if name is None and method == "GET":
            if _flag(query, "watch") in ("true", "1"):
                return self._watch(core, namespace, query, events.to_v1beta)
            limit = _flag(query, "limit")
            listed = store.list(
                core,
                namespace,
                _flag(query, "labelSelector"),
                _flag(query, "fieldSelector"),
                int(limit) if limit.isdigit() else None,
                _flag(query, "continue") or None,
            )
            items = []
            for item in listed["items"]:
                converted = events.to_v1beta(item)
                del converted["apiVersion"], converted["kind"]
                items.append(converted)
            return self._send(200, {**listed, "apiVersion": "events.k8s.io/v1", "items": items})
        if name is None and method == "POST" and namespace is not None:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise bad_request(f"the body of the request was in an unknown format: {exc}") from exc
            dry_run = _flag(query, "dryRun") == "All"
            created = store.create(core, namespace, events.to_core(body), dry_run, self._manager(query))
            return self._send(201, events.to_v1beta(created))
        if name is not None and method == "GET":
            return self._send(200, events.to_v1beta(store.get(core, ns, name)))
        if name is not None and method == "DELETE":
            return self._send(200, store.delete(core, ns, name, json.loads(raw) if raw else {}))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _hpa_v1(self, method: str, target: tuple, query: dict, raw: bytes) -> None:
        """``autoscaling/v1`` HPAs: the stored ``autoscaling/v2`` objects converted both ways, as the apiserver does."""
        _, namespace, name, sub = target
        store, v2 = self.kube.store, BY_KIND[("autoscaling/v2", "HorizontalPodAutoscaler")]
        ns = namespace or ""
        dry_run = _flag(query, "dryRun") == "All"
        manager = self._manager(query)

        def body() -> dict:
            try:
                text = raw.decode("utf-8")
                if (self.headers.get("Content-Type") or "").split(";")[0] == APPLY:
                    return yaml.safe_load(text)
                return json.loads(text)
            except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
                raise bad_request(f"the body of the request was in an unknown format: {exc}") from exc

        if name is None and method == "GET":
            if _flag(query, "watch") in ("true", "1"):
                return self._watch(v2, namespace, query, autoscaler.to_v1)
            limit = _flag(query, "limit")
            listed = store.list(
                v2,
                namespace,
                _flag(query, "labelSelector"),
                _flag(query, "fieldSelector"),
                int(limit) if limit.isdigit() else None,
                _flag(query, "continue") or None,
            )
            items = []
            for item in listed["items"]:
                converted = autoscaler.to_v1(item)
                del converted["apiVersion"], converted["kind"]
                items.append(converted)
            return self._send(200, {**listed, "apiVersion": "autoscaling/v1", "items": items})
        if name is None and method == "POST" and namespace is not None:
            created = store.create(v2, namespace, autoscaler.to_v2(body()), dry_run, manager)
            return self._send(201, autoscaler.to_v1(created))
        if name is None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if method == "GET":
            return self._send(200, autoscaler.to_v1(store.get(v2, ns, name)))
        if method == "DELETE" and sub is None:
            return self._send(200, store.delete(v2, ns, name, json.loads(raw) if raw else {}, dry_run))
        if method in ("PUT", "PATCH"):
            with store.lock:
                stored = store.get(v2, ns, name)
                if method == "PUT":
                    new = body()
                else:
                    content_type = (self.headers.get("Content-Type") or "").split(";")[0]
                    current = autoscaler.to_v1(stored)
                    try:
                        if content_type == JSON_PATCH:
                            new = patches.json_patch(current, body())
                        elif content_type == MERGE:
                            new = patches.merge_patch(current, body())
                        else:
                            new = patches.strategic_merge_patch(current, body())
                    except patches.PatchError as exc:
                        raise ApiError(422, "Invalid", str(exc)) from exc
                    new.setdefault("metadata", {})["resourceVersion"] = stored["metadata"]["resourceVersion"]
                converted = autoscaler.to_v2(new, stored)
                if sub == "status":
                    converted["status"] = {**(stored.get("status") or {}), **(new.get("status") or {})}
                    converted["status"].pop("currentCPUUtilizationPercentage", None)
                updated = store.update(v2, ns, name, converted, dry_run, manager, subresource=sub or "")
            return self._send(200, autoscaler.to_v1(updated))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _watch(self, rtype: ResourceType, namespace: str | None, query: dict, convert=None) -> None:
        """A chunked stream of watch events (``ADDED``/``MODIFIED``/``DELETED``) until ``timeoutSeconds``."""
        store = self.kube.store
        try:
            labels_ok = parse_label_selector(_flag(query, "labelSelector"))
            fields_ok = parse_field_selector(_flag(query, "fieldSelector"), rtype.supported_fields)
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        timeout = float(_flag(query, "timeoutSeconds") or 60)
        since = _flag(query, "resourceVersion")
        deadline = time.monotonic() + timeout

        def wanted(obj: dict) -> bool:
            meta = obj["metadata"]
            return (
                (namespace is None or meta.get("namespace") == namespace)
                and labels_ok(meta.get("labels") or {})
                and fields_ok(obj)
            )

        with store.lock:
            if since and since != "0" and store.history and int(since) < store.history[0][0] - 1:
                pending = [
                    (
                        "ERROR",
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "metadata": {},
                            "status": "Failure",
                            "message": f"too old resource version: {since}",
                            "reason": "Expired",
                            "code": 410,
                        },
                    )
                ]
                last = store.rv
            elif since and since != "0":
                last = int(since)
                pending = []
            else:
                pending = [("ADDED", obj) for obj in store.objects[rtype].values() if wanted(obj)]
                last = store.rv
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        while True:
            for event, obj in pending:
                shown = convert(obj) if convert and event != "ERROR" else obj
                chunk(json.dumps({"type": event, "object": shown}).encode() + b"\n")
            if pending and pending[0][0] == "ERROR":
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.kube.stopping.is_set():
                break
            with store.lock:
                if store.rv <= last:
                    store.changed.wait(min(remaining, 0.5))
                pending = [
                    (event, obj)
                    for rv, event, etype, obj in list(store.history)
                    if rv > last and etype is rtype and wanted(obj)
                ]
                last = max(last, store.rv)
        chunk(b"")


class KubeServer:
    """The Kubernetes API test server: an in-process apiserver stand-in with a Deployment controller.

    ``bad_image_pattern`` (a regex searched in each container image) makes pods never become ready;
    ``crash_image_pattern`` makes containers exit and crash-loop (``crash_backoff`` is the first back-off);
    ``rollout_delay`` is how long a new pod takes to become ready, so rollouts take honest time.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        bad_image_pattern: str = DEFAULT_BAD_IMAGE_PATTERN,
        rollout_delay: float = 0.3,
        namespace_delete_delay: float = 0.2,
        crash_image_pattern: str = DEFAULT_CRASH_IMAGE_PATTERN,
        crash_backoff: float = 0.5,
    ):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the Kubernetes API test server listens on loopback only")
        self.host, self.port = host, port
        self.store = Store()
        self.controllers = Controllers(
            self.store, bad_image_pattern, rollout_delay, namespace_delete_delay, crash_image_pattern, crash_backoff
        )
        self.stopping = threading.Event()
        self.manifest: dict = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ fault knobs
    @property
    def bad_image_pattern(self) -> str:
        return self.controllers.bad_image.pattern

    @bad_image_pattern.setter
    def bad_image_pattern(self, pattern: str) -> None:
        self.controllers.bad_image = re.compile(pattern)

    @property
    def crash_image_pattern(self) -> str:
        return self.controllers.crash_image.pattern

    @crash_image_pattern.setter
    def crash_image_pattern(self, pattern: str) -> None:
        self.controllers.crash_image = re.compile(pattern)

    @property
    def crash_backoff(self) -> float:
        return self.controllers.crash_backoff

    @crash_backoff.setter
    def crash_backoff(self, seconds: float) -> None:
        self.controllers.crash_backoff = seconds

    @property
    def hpa_sync_period(self) -> float:
        """How often the HorizontalPodAutoscaler controller syncs each HPA (a real one: 15 s)."""
        return self.controllers.hpa_sync_period

    @hpa_sync_period.setter
    def hpa_sync_period(self, seconds: float) -> None:
        self.controllers.hpa_sync_period = seconds

    def set_cpu_utilization(self, namespace: str, target: str, percent: int | None) -> None:
        """What the resource metrics API answers for a scale target's pods (CPU, % of requests); None: nothing."""
        with self.store.lock:
            if percent is None:
                self.controllers.cpu_utilization.pop((namespace, target), None)
            else:
                self.controllers.cpu_utilization[(namespace, target)] = percent
            self.store.wakeup.set()

    @property
    def rollout_delay(self) -> float:
        return self.controllers.rollout_delay

    @rollout_delay.setter
    def rollout_delay(self, seconds: float) -> None:
        self.controllers.rollout_delay = seconds

    # ---------------------------------------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        """Listen, start the controllers, seed; returns the base URL once requests are served."""
        handler = type("KubeHandler", (_Handler,), {"kube": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="k8s-apiserver", daemon=True)
        self._thread.start()
        self.controllers.start()
        self.reset()
        return self.url

    def stop(self) -> None:
        self.stopping.set()
        self.controllers.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def reset(self) -> dict:
        """Wipe every object, then :meth:`seed`."""
        with self.store.lock:
            self.store.clear()
            self.controllers.reset()
            return self.seed()

    def seed(self) -> dict:
        """Create the seed objects with their rollouts completed; returns the manifest."""
        self.manifest = seed(self.store, self.controllers)
        return self.manifest

    def write_kubeconfig(self, path: str | Path) -> str:
        """A kubeconfig for this server (context ``sandbox``, namespace ``default``, a static token)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox", "user": {"token": "sandbox-token"}}],
            "contexts": [
                {"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox", "namespace": "default"}}
            ],
            "current-context": "sandbox",
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return str(path)

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.02):
        """Poll ``predicate()`` until it returns something truthy (for tests); raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            time.sleep(interval)


__all__ = ["DEFAULT_BAD_IMAGE_PATTERN", "DEFAULT_CRASH_IMAGE_PATTERN", "KubeServer"]
