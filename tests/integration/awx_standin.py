"""A local stand-in of the AWX API: just what the awx.awx modules of awx/load.yml call, every request recorded.

No AWX can run here. The stand-in answers as AWX 24 does where the modules look: lists with filters
(``?name=``, ``?identifier=``, ``or__id``/``or__name``) answering ``count``/``next``/``results``, POST creates
(201, with ``id``, ``url``, ``type`` and ``related``), PATCH updates, a job template's or workflow's
``survey_spec/``, a node's ``create_approval_template/`` and its ``success_nodes/``/``failure_nodes/``/
``always_nodes/`` associations (204), ``unified_job_templates`` across both template kinds, ``ping``. It
sends the ``X-API-Product-*`` headers the modules check and refuses any request without the bearer token.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API = "/api/v2/"
ASSOCIATIONS = {
    "success_nodes",
    "failure_nodes",
    "always_nodes",
    "credentials",
    "labels",
    "instance_groups",
    "notification_templates_started",
    "notification_templates_success",
    "notification_templates_error",
    "notification_templates_approvals",
}
# AWX's survey question types and the Python type a non-empty default must have (awx/api/views JobTemplateSurveySpec).
QUESTION_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str}
QUESTION_TYPES |= {"integer": int, "float": float}
TYPES = {"inventories": "inventory", "workflow_approval_templates": "workflow_approval_template"}


class Recorded:
    """What a stand-in holds and received, as JSON-able data; the tests query it (also after the server stopped)."""

    def __init__(self, state: dict | None = None):
        state = state or {}
        self.token: str = state.get("token", "standin-token")
        self.url: str = state.get("url", "")
        self.requests: list[dict] = state.get("requests", [])
        self.objects: dict[str, dict[int, dict]] = {
            collection: {int(k): v for k, v in items.items()} for collection, items in state.get("objects", {}).items()
        }
        self.surveys: dict[str, dict] = state.get("surveys", {})
        self.links: dict[str, list[int]] = state.get("links", {})

    def state(self) -> dict:
        keys = ("token", "url", "requests", "objects", "surveys", "links")
        return json.loads(json.dumps({key: getattr(self, key) for key in keys}))

    def find(self, collection: str, **fields) -> list[dict]:
        return [o for o in self.objects.get(collection, {}).values() if all(o.get(k) == v for k, v in fields.items())]

    def one(self, collection: str, **fields) -> dict:
        found = self.find(collection, **fields)
        assert len(found) == 1, f"{collection} {fields}: {len(found)} objects"
        return found[0]

    def linked(self, collection: str, obj_id: int, relation: str) -> list[int]:
        return self.links.get(f"{collection}/{obj_id}/{relation}", [])

    def sent(self, method: str, path_part: str = "") -> list[dict]:
        return [r for r in self.requests if r["method"] == method and path_part in r["path"]]


class AWXStandIn(Recorded):
    def __init__(self, token: str = "standin-token"):  # noqa: S107 - a loopback test double's dummy token
        super().__init__({"token": token, "objects": {"organizations": {}}})
        self._next = 1
        self._lock = threading.Lock()
        self._create("organizations", {"name": "Default"})
        self.requests.clear()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # -- the model ----------------------------------------------------------------------------------------
    def _create(self, collection: str, data: dict) -> dict:
        obj_id = self._next
        self._next += 1
        url = f"{API}{collection}/{obj_id}/"
        obj = {**data, "id": obj_id, "url": url, "type": TYPES.get(collection, collection.rstrip("s"))}
        obj["related"] = {"survey_spec": url + "survey_spec/"} | {name: url + name + "/" for name in ASSOCIATIONS}
        if obj.get("unified_job_template"):
            obj["related"]["unified_job_template"] = self._url_of(obj["unified_job_template"])
        self.objects.setdefault(collection, {})[obj_id] = obj
        return obj

    def _url_of(self, obj_id: int) -> str | None:
        for collection, items in self.objects.items():
            if obj_id in items:
                return f"{API}{collection}/{obj_id}/"
        return None

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-API-Product-Name", "AWX")
                self.send_header("X-API-Product-Version", "24.6.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str):
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                query = dict(parse_qsl(split.query, keep_blank_values=True))
                with standin._lock:
                    auth = self.headers.get("Authorization")
                    record = {"method": method, "path": split.path, "query": query, "body": body, "auth": auth}
                    record["t"] = time.monotonic()
                    standin.requests.append(record)
                    if self.headers.get("Authorization") != f"Bearer {standin.token}":
                        return self._reply(401, {"detail": "Authentication credentials were not provided."})
                    status, reply = standin.route(method, split.path, query, body)
                self._reply(status, reply)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_DELETE(self):
                self._handle("DELETE")

        return Handler

    def route(self, method: str, path: str, query: dict, body):
        if path in ("/api/", "/api/v2/"):
            return 200, {"current_version": API}
        if not path.startswith(API):
            return 404, {"detail": "Not found."}
        parts = [p for p in path[len(API) :].split("/") if p]
        if parts == ["ping"]:
            return 200, {"version": "24.6.1", "active_node": "standin"}
        collection = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return 200, self._list(collection, query)
            if method == "POST":
                return 201, self._create(collection, body or {})
        obj_id = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        obj = self.objects.get(collection, {}).get(obj_id)
        if obj is None:
            return 404, {"detail": "Not found."}
        if len(parts) == 2:
            if method == "GET":
                return 200, obj
            if method == "PATCH":
                obj.update(body or {})
                return 200, obj
            if method == "DELETE":
                del self.objects[collection][obj_id]
                return 204, None
        sub = parts[2]
        if sub == "survey_spec":
            if method == "GET":
                return 200, self.surveys.get(obj["url"], {})
            if method == "POST":
                error = survey_error(body)
                if error:
                    return 400, {"error": error}
                self.surveys[obj["url"]] = body
                return 200, None
            if method == "DELETE":
                self.surveys.pop(obj["url"], None)
                return 200, None
        if sub == "create_approval_template" and method == "POST":
            approval = self._create("workflow_approval_templates", body or {})
            obj["unified_job_template"] = approval["id"]
            obj["related"]["unified_job_template"] = approval["url"]
            return 201, approval
        if sub in ASSOCIATIONS:
            key = f"{collection}/{obj_id}/{sub}"
            if method == "GET":
                ids = self.links.get(key, [])
                return 200, {"count": len(ids), "next": None, "previous": None, "results": [{"id": i} for i in ids]}
            if method == "POST":
                ids = self.links.setdefault(key, [])
                if body.get("disassociate"):
                    ids.remove(body["id"])
                elif body["id"] not in ids:
                    ids.append(body["id"])
                return 204, None
        return 405, {"detail": f"Method {method} not allowed."}

    def _list(self, collection: str, query: dict) -> dict:
        if collection == "unified_job_templates":
            kinds = ("job_templates", "workflow_job_templates")
            items = [obj for kind in kinds for obj in self.objects.get(kind, {}).values()]
        else:
            items = list(self.objects.get(collection, {}).values())
        either = {k[4:]: v for k, v in query.items() if k.startswith("or__")}
        exact = {k: v for k, v in query.items() if not k.startswith("or__") and k not in ("page", "page_size")}

        def match(obj: dict) -> bool:
            if any(str(obj.get(k)) != v for k, v in exact.items()):
                return False
            return not either or any(str(obj.get(k)) == v for k, v in either.items())

        found = [o for o in items if match(o)]
        return {"count": len(found), "next": None, "previous": None, "results": found}


def survey_error(spec) -> str | None:
    """What AWX's survey_spec POST refuses (checked as AWX 24 checks it), or None."""
    if not isinstance(spec, dict):
        return "the survey spec is not a JSON object"
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(spec.get(field), kind):
            return f"field {field!r} missing or not a {kind.__name__}"
    if not spec["spec"]:
        return "'spec' doesn't contain any items"
    seen = set()
    for idx, q in enumerate(spec["spec"]):
        for field, kind in (("type", str), ("question_name", str), ("variable", str), ("required", bool)):
            if not isinstance(q.get(field), kind):
                return f"question {idx}: {field!r} missing or not a {kind.__name__}"
        if q["variable"] in seen:
            return f"question {idx}: variable {q['variable']!r} duplicated"
        seen.add(q["variable"])
        if q["type"] not in QUESTION_TYPES:
            return f"question {idx}: type {q['type']!r} is not an AWX question type"
        default = q.get("default", "")
        if default != "" and (isinstance(default, bool) or not isinstance(default, QUESTION_TYPES[q["type"]])):
            return f"question {idx}: default {default!r} is not a {QUESTION_TYPES[q['type']].__name__}"
        for bound in ("min", "max"):
            if q.get(bound) is not None and not isinstance(q[bound], int):
                return f"question {idx}: {bound} is not an integer"
        if q["type"] in ("multiplechoice", "multiselect"):
            if "choices" not in q:
                return f"question {idx}: a {q['type']} question needs choices"
            choices = q["choices"].splitlines() if isinstance(q["choices"], str) else q["choices"]
            defaults = default.splitlines() if isinstance(default, str) else default
            if q["type"] == "multiplechoice" and len(defaults) > 1:
                return f"question {idx}: a multiplechoice question has one default"
            if any(item not in choices for item in defaults):
                return f"question {idx}: default must be one of the choices"
    return None
