"""Run moto's server for the sandbox (``python -m sandbox.moto_main -H 127.0.0.1 -p PORT``).

Same server as ``moto_server``, with one speed-up: with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true`` moto
loads its 1,500+ AWS managed policies into an IAM backend for every partition (aws, aws-cn,
aws-us-gov, aws-iso, aws-iso-b, aws-eusc) after each ``/moto-api/reset``, about a second in all.
The sandbox lives in the ``aws`` partition (us-east-1), so only that partition gets them; AWSDenyAll
and the other managed policies are there as before.
"""

from __future__ import annotations

import json
import sys

from moto.iam import models as iam_models
from moto.server import main

_load_all_partitions = iam_models.IAMBackend._init_aws_policies


def _init_aws_policies(self):
    # For IAM, moto passes the partition as the backend's region name.
    if self.region_name != "aws":
        return []
    return _load_all_partitions(self)


iam_models.IAMBackend._init_aws_policies = _init_aws_policies


# EC2 fidelity (docs/steps/ec2_isolate.md): on AWS every network interface has its own security
# groups, and an instance's SecurityGroups are those of its primary interface.  moto 5.2.5 reports an
# attached interface's groups as its own PLUS the instance's launch groups, so an interface moved to a
# quarantine group still showed its old group.  Report each interface's own groups, and keep the
# instance's groups equal to its primary interface's when that interface changes.
from moto.ec2.models import elastic_network_interfaces as eni_models  # noqa: E402

eni_models.NetworkInterface.group_set = property(lambda self: self._group_set)
_modify_eni = eni_models.NetworkInterfaceBackend.modify_network_interface_attribute


def _modify_network_interface_attribute(self, eni_id, group_ids, *args, **kwargs):
    _modify_eni(self, eni_id, group_ids, *args, **kwargs)
    eni = self.get_network_interface(eni_id)
    if group_ids and eni.instance is not None and getattr(eni, "device_index", None) in (0, "0"):
        eni.instance.security_groups = list(eni._group_set)


eni_models.NetworkInterfaceBackend.modify_network_interface_attribute = _modify_network_interface_attribute

# EC2 fidelity (docs/sandbox.md): network ACLs answer a missing ACL or entry as AWS does.  moto 5.2.5
# answers DescribeNetworkAcls for a missing id with InvalidRouteTableID.NotFound (AWS:
# InvalidNetworkAclID.NotFound), a missing entry in Delete/ReplaceNetworkAclEntry with a 500 (AWS:
# InvalidNetworkAclEntry.NotFound), and ReplaceNetworkAclAssociation with a missing ACL removes the
# subnet's association before failing (AWS changes nothing; a missing association is
# InvalidAssociationID.NotFound).  Validate first, as AWS does, then let moto act.
from moto.ec2 import exceptions as ec2_errors  # noqa: E402
from moto.ec2.models import network_acls as nacl_models  # noqa: E402


class _NetworkAclNotFound(ec2_errors.EC2ClientError):
    def __init__(self, network_acl_id):
        super().__init__("InvalidNetworkAclID.NotFound", f"The networkAcl ID '{network_acl_id}' does not exist")


class _NetworkAclEntryNotFound(ec2_errors.EC2ClientError):
    def __init__(self, rule_number, egress):
        direction = "egress" if str(egress).lower() == "true" else "ingress"
        super().__init__("InvalidNetworkAclEntry.NotFound", f"no {direction} entry with number {rule_number}")


def _network_acl(self, network_acl_id):
    found = self.network_acls.get(network_acl_id)
    if found is None:
        raise _NetworkAclNotFound(network_acl_id)
    return found


_describe_network_acls = nacl_models.NetworkAclBackend.describe_network_acls
_delete_network_acl_entry = nacl_models.NetworkAclBackend.delete_network_acl_entry
_replace_network_acl_association = nacl_models.NetworkAclBackend.replace_network_acl_association


def _describe_network_acls_as_aws(self, network_acl_ids=None, filters=None):
    for network_acl_id in network_acl_ids or []:
        _network_acl(self, network_acl_id)
    return _describe_network_acls(self, network_acl_ids, filters)


def _delete_network_acl_entry_as_aws(self, network_acl_id, rule_number, egress):
    found = _network_acl(self, network_acl_id)
    if not any(e.egress == egress and str(e.rule_number) == str(rule_number) for e in found.network_acl_entries):
        raise _NetworkAclEntryNotFound(rule_number, egress)
    return _delete_network_acl_entry(self, network_acl_id, rule_number, egress)


def _replace_network_acl_association_as_aws(self, association_id, network_acl_id):
    _network_acl(self, network_acl_id)
    if not any(association_id in acl._associations for acl in self.network_acls.values()):
        raise ec2_errors.InvalidAssociationIdError(association_id)
    return _replace_network_acl_association(self, association_id, network_acl_id)


nacl_models.NetworkAclBackend.get_network_acl = _network_acl
nacl_models.NetworkAclBackend.describe_network_acls = _describe_network_acls_as_aws
nacl_models.NetworkAclBackend.delete_network_acl_entry = _delete_network_acl_entry_as_aws  # and so Replace
nacl_models.NetworkAclBackend.replace_network_acl_association = _replace_network_acl_association_as_aws

# S3 listing cost (bench/results.md, s3_restore): moto 5.2.5's ListObjectVersions deep-copies every
# version of the whole bucket on every page (each copy re-reads and re-buffers the object's body) and
# sorts them all, so that it can set ``is_latest`` on the copies.  With 15,000 versions a page took
# 13 s, where AWS answers a page in well under a second, and every page cost the whole bucket.
# ``_list_object_versions`` below is moto's own loop, unchanged, fed lazily: names in order from the
# key marker (or the prefix) on, each name's versions newest first as shallow views (only
# ``is_latest`` is written, on the view; the body buffer is shared read-only), and it stops once past
# the prefix.  A page now costs its own versions.
import bisect  # noqa: E402

from moto.core.utils import unix_time_millis  # noqa: E402
from moto.s3 import models as s3_models  # noqa: E402


class _ListedKey(s3_models.FakeKey):
    """A listing's view of a stored version.  A FakeKey closes its body buffer when it is garbage
    collected; the view shares the stored version's buffer, so it must never close it."""

    __module__ = "moto.s3.models"  # moto's model registry files each model class under its service

    def __del__(self) -> None:
        pass


def _shallow_version(version):
    clone = object.__new__(_ListedKey if isinstance(version, s3_models.FakeKey) else type(version))
    clone.__dict__.update(version.__dict__)
    return clone


def _versions_in_order(bucket, start):
    """Every version of every name >= ``start``, by name, newest first within a name (moto's order:
    a stable sort on (name, -last modified), so same-millisecond versions keep their stored order)."""
    names = sorted(dict(bucket.keys))
    for name in names[bisect.bisect_left(names, start) :] if start else names:
        stored = bucket.keys.getlist(name, [])
        yield from sorted(
            (_shallow_version(version) for version in stored), key=lambda r: -unix_time_millis(r.last_modified)
        )


def _list_object_versions(self, bucket_name, delimiter=None, key_marker=None, max_keys=1000, prefix="",
                          version_id_marker=None):  # fmt: skip
    # moto 5.2.5's S3Backend.list_object_versions, with its version list made lazy (see above).  Names
    # below the key marker were only ever skipped; without a key marker, names below the prefix were
    # only ever filtered out; past the prefix's range no name can match.
    bucket = self.get_bucket(bucket_name)
    prefix = prefix or ""
    common_prefixes: set = set()
    requested_versions: list = []
    delete_markers: list = []
    next_key_marker = None
    next_version_id_marker = None
    last_name = None
    skip_versions = True
    last_item_added = None
    for version in _versions_in_order(bucket, key_marker if key_marker is not None else prefix):
        name = version.name
        version.is_latest = name != last_name
        if version.is_latest:
            last_name = name
        if skip_versions:
            if key_marker is None:
                skip_versions = False
            elif not version_id_marker:
                skip_versions = version.name < key_marker
                continue
            elif version.name == key_marker and version.version_id == version_id_marker:
                skip_versions = False
                continue
            else:
                continue
        if not name.startswith(prefix):
            if name > prefix:
                break
            continue
        is_common_prefix = False
        if delimiter and delimiter in name[len(prefix) :]:
            end_of_delimiter = len(prefix) + name[len(prefix) :].index(delimiter) + len(delimiter)
            prefix_including_delimiter = name[0:end_of_delimiter]
            if prefix_including_delimiter == key_marker:
                continue
            common_prefixes.add(prefix_including_delimiter)
            name = prefix_including_delimiter
            is_common_prefix = True
        elif last_item_added:
            name = last_item_added.name
        if max_keys is not None and len(requested_versions) + len(delete_markers) + len(common_prefixes) >= max_keys:
            next_key_marker = name
            if is_common_prefix:
                next_version_id_marker = None
            elif last_item_added is not None:
                next_version_id_marker = last_item_added.version_id
            else:
                next_version_id_marker = None
            break
        if not is_common_prefix:
            last_item_added = version
            if not isinstance(version, s3_models.FakeKey):
                delete_markers.append(version)
            else:
                requested_versions.append(version)
    return requested_versions, sorted(common_prefixes), delete_markers, next_key_marker, next_version_id_marker


moto_list_object_versions = s3_models.S3Backend.list_object_versions  # the original, for tests/unit
s3_models.S3Backend.list_object_versions = _list_object_versions

# Request dispatch cost (bench/results.md, iam_quarantine): for every request moto 5.2.5 lists its own
# package directory (a listdir and ~150 isdir calls) and then tries its few hundred URL patterns, all
# under one server-wide lock, before the request reaches a backend.  Under 16 concurrent clients that
# lock was where moto's threads spent most of their time.  The directory does not change while the
# server runs and a host always maps to the same backend: compute each once.
import logging  # noqa: E402

from moto import backends as moto_backends  # noqa: E402
from moto.moto_server import werkzeug_app  # noqa: E402

_MOTO_MODULES = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: _MOTO_MODULES
_backend_for_host = werkzeug_app.DomainDispatcherApplication.get_backend_for_host


def _cached_backend_for_host(self, host):
    cache = self.__dict__.setdefault("_firebreak_backends", {})  # called under the dispatcher's lock
    if host not in cache:
        cache[host] = _backend_for_host(self, host)
    return cache[host]


werkzeug_app.DomainDispatcherApplication.get_backend_for_host = _cached_backend_for_host

# ... and then lists every method of the backend's response class (``inspect.getmembers``) to check that
# the action exists.  Classes do not change while the server runs: list each class's methods once.
from moto.core import responses as moto_responses  # noqa: E402

_method_names_from_class = moto_responses.method_names_from_class
_METHOD_NAMES: dict = {}


def _cached_method_names(clazz):
    names = _METHOD_NAMES.get(clazz)
    if names is None:
        names = _METHOD_NAMES[clazz] = frozenset(_method_names_from_class(clazz))
    return names


moto_responses.method_names_from_class = _cached_method_names

# Response timestamps: moto's serializer reads back every timestamp it writes (a string such as
# ``2026-11-24T09:30:00.000Z`` for S3) through botocore's ``parse_to_aware_datetime``, which hands it to
# ``dateutil.parser.parse``: 6% of moto's time on a CopyObject.  Read that one shape directly.
import datetime as _datetime  # noqa: E402
import re as _re  # noqa: E402

from dateutil.tz import tzutc as _tzutc  # noqa: E402
from moto.core import serialize as moto_serialize  # noqa: E402

_parse_to_aware_datetime = moto_serialize.parse_to_aware_datetime
_ISO_UTC = _re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z$")


def _fast_aware_datetime(value):
    match = _ISO_UTC.match(value) if isinstance(value, str) else None
    if match:
        fields = [int(part) for part in match.groups()[:6]]
        try:
            return _datetime.datetime(*fields, int((match.group(7) or "0").ljust(6, "0")), tzinfo=_tzutc())
        except ValueError:
            pass
    return _parse_to_aware_datetime(value)


moto_serialize.parse_to_aware_datetime = _fast_aware_datetime

# One INFO line per request in moto.log repeats the fault proxy's request log (GET /_fault/log) at a
# cost of a formatted, flushed write per call; warnings and errors still go to moto.log.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


# Keep-alive.  Werkzeug's development server answers every request with ``Connection: close`` (it
# cannot tell where an unread request body ends), so every call cost a TCP connection and a new server
# thread, on both sides: the fault proxy reconnected to moto for each request it forwarded.  AWS keeps
# connections open, and so do botocore and the proxy.  This handler keeps a connection open when it
# can tell where the request ended (a ``Content-Length`` body, which it drains if moto left part of
# it unread) and the answer was exactly as long as it said; otherwise it closes, as before.
import selectors as _selectors  # noqa: E402
import types as _types  # noqa: E402

from moto import server as moto_server  # noqa: E402
from werkzeug import serving as werkzeug_serving  # noqa: E402

MAX_DRAIN = 10_000_000_000  # as werkzeug's own drain: a larger unread body closes the connection instead


class _NoDrainSelector:
    """Werkzeug's handler reads whatever the client sends after the answer and throws it away (safe
    only when every connection closes); on a kept-alive connection that is the next request."""

    def __init__(self, *args, **kwargs):
        pass

    def register(self, *args, **kwargs):
        pass

    def select(self, timeout=None):
        return []

    def close(self):
        pass


werkzeug_serving.selectors = _types.SimpleNamespace(DefaultSelector=_NoDrainSelector, EVENT_READ=_selectors.EVENT_READ)


class _BodyReader:
    """``wsgi.input`` for a ``Content-Length`` body: reads at most that many bytes."""

    def __init__(self, stream, length):
        self._stream = stream
        self.remaining = length

    def read(self, size=-1):
        return self._take(self._stream.read, size)

    def readline(self, size=-1):
        return self._take(self._stream.readline, size)

    def _take(self, reader, size):
        if self.remaining <= 0:
            return b""
        data = reader(self.remaining if size is None or size < 0 else min(size, self.remaining))
        self.remaining = self.remaining - len(data) if data else 0
        return data

    def __iter__(self):
        return iter(self.readline, b"")


class _CountingWriter:
    def __init__(self, stream):
        self._stream = stream
        self.count = 0

    def write(self, data):
        self.count += len(data)
        return self._stream.write(data)

    def flush(self):
        return self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _KeepAliveHandler(moto_server.MotoRequestHandler):
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    # Per request, set in run_wsgi; these defaults cover an answer made before it (``send_error`` for a
    # malformed request line), which closes the connection as http.server does.
    _body = None
    _declared = None
    _body_start = None
    _status = 0

    def setup(self):
        super().setup()
        self.wfile = _CountingWriter(self.wfile)

    def make_environ(self):
        environ = super().make_environ()
        self._body = None
        if not environ.get("wsgi.input_terminated"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length >= 0:
                self._body = environ["wsgi.input"] = _BodyReader(self.rfile, length)
        return environ

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def send_header(self, keyword, value):
        lowered = keyword.lower()
        if lowered == "content-length":
            self._declared = int(value) if str(value).isdigit() else None
        elif lowered == "transfer-encoding":
            self._declared = "chunked"
        elif lowered == "connection" and value.lower() == "close" and self._body is not None:
            return  # werkzeug's blanket close; decided after the answer instead
        super().send_header(keyword, value)

    def end_headers(self):
        super().end_headers()
        self._body_start = self.wfile.count

    def run_wsgi(self):
        self._body = None
        self._declared = None
        self._body_start = None
        self._status = 0
        super().run_wsgi()
        if self.close_connection:
            return
        if self._body is None:
            self.close_connection = True
            return
        sent = None if self._body_start is None else self.wfile.count - self._body_start
        if self.command == "HEAD" or self._status in (204, 304) or 100 <= self._status < 200:
            expected = 0  # no body, whatever the headers say
        else:
            expected = self._declared
        if expected != "chunked" and (expected is None or sent != expected):
            self.close_connection = True  # the client cannot tell where this answer ends
            return
        if self._body.remaining > MAX_DRAIN:
            self.close_connection = True
            return
        while self._body.remaining > 0:
            if not self._body.read(65536):
                self.close_connection = True
                return


moto_server.MotoRequestHandler = _KeepAliveHandler


# ECS and ELBv2 fidelity (issue 16 part 2, issue 20 part 5; docs/sandbox.md, "ECS services that fail").
# moto 5.2.5 runs whatever image a task definition names: a service on a revision that could never
# start reports its tasks running, its deployment COMPLETED and its targets healthy.  The sandbox
# follows its Kubernetes server's image convention (docs/sandbox-kubernetes.md): a tag that starts
# with ``bad`` or ``broken`` is never pulled, one that starts with ``crash`` or ``exit`` exits.  A
# service whose current revision has such an essential container keeps launching tasks that stop
# (stoppedReason ``CannotPullContainerError: ...`` / ``Essential container in task exited``, stopCode
# ``TaskFailedToStart`` / ``EssentialContainerExited``), its PRIMARY deployment counts them in
# ``failedTasks`` and goes FAILED once the circuit breaker (when on) reaches its threshold
# (0.5 x desired, at least 3, at most 200), its events say so, and the targets of its target groups
# are unhealthy (``Target.FailedHealthChecks``) until the service is on a revision that runs.
import copy as _copy  # noqa: E402
import math as _math  # noqa: E402
import os as _os  # noqa: E402
import threading as _threading  # noqa: E402
import time as _time  # noqa: E402

from moto.core.utils import utcnow  # noqa: E402
from moto.ecs import models as ecs_models  # noqa: E402
from moto.elbv2 import models as elbv2_models  # noqa: E402
from moto.moto_api._internal import mock_random as _mock_random  # noqa: E402

BAD_IMAGE = _re.compile(r":(bad|broken)[^/:]*$")
CRASH_IMAGE = _re.compile(r":(crash|exit)[^/:]*$")
# How often ECS launches replacement tasks for a failing deployment (AWS: seconds to minutes, with
# back-off); each round launches ``desiredCount`` tasks that all stop.
ECS_RETRY_SECONDS = float(_os.environ.get("FIREBREAK_ECS_RETRY_SECONDS", "0.5"))
MAX_STOPPED_TASKS = 100  # kept per service (AWS keeps stopped tasks visible for about an hour)
# moto's server answers each request on its own thread: bringing a service up to now (new deployment, rounds of
# stopped tasks, events) is one step under this lock, so two requests at once neither launch a round twice nor walk
# the cluster's tasks while another request adds to them ("dictionary changed size during iteration", a 500).
_ECS_LOCK = _threading.RLock()
UNABLE_TO_START = (
    "(service {service}) is unable to consistently start tasks successfully. For more information, "
    "see the Troubleshooting section of the Amazon ECS Developer Guide."
)


def _image_fault(backend, task_definition_ref):
    """``("pull", image)``, ``("crash", image)`` or ``None`` for the revision's essential containers."""
    if not task_definition_ref:
        return None
    try:
        task_definition = backend.describe_task_definition(task_definition_ref)
    except Exception:  # an unknown revision is moto's business, not a fault
        return None
    for container in task_definition.container_definitions or []:
        if container.get("essential", True) is False:
            continue
        image = str(container.get("image") or "")
        if BAD_IMAGE.search(image):
            return ("pull", image, container.get("name"), task_definition)
        if CRASH_IMAGE.search(image):
            return ("crash", image, container.get("name"), task_definition)
    return None


def _event(service, message):
    service.events.insert(0, {"id": str(_mock_random.uuid4()), "createdAt": utcnow(), "message": message})
    del service.events[100:]  # DescribeServices shows the latest 100 events


def _circuit_breaker(service):
    config = getattr(service, "deployment_configuration", None) or {}
    breaker = config.get("deploymentCircuitBreaker") or config.get("deployment_circuit_breaker") or {}
    return bool(breaker.get("enable"))


def _threshold(desired):
    return min(max(_math.ceil(0.5 * desired), 3), 200)


def _new_deployment(backend, service):
    """A task definition change (or a forced deployment): a new PRIMARY deployment replaces the old."""
    state = service.__dict__.setdefault("_firebreak", {})
    deployment_id = f"ecs-svc/{_mock_random.randint(0, 32**12)}"
    now = utcnow()
    fault = _image_fault(backend, service.task_definition)
    previous = service.deployments[0] if service.deployments else {}
    deployment = {
        **previous,
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": service.task_definition,
        "desiredCount": service.desired_count,
        "createdAt": now,
        "updatedAt": now,
        "failedTasks": 0,
    }
    service.deployments = [deployment]
    state.update(td=service.task_definition, deployment=deployment, fault=fault, started=_time.monotonic(), rounds=0)
    if fault is None:
        # A revision that runs: done at once, as moto's MOTO_ECS_SERVICE_RUNNING makes a new service.
        try:
            runs = int(_os.environ.get("MOTO_ECS_SERVICE_RUNNING", "0")) > 0
        except ValueError:
            runs = False
        running = service.desired_count if runs else 0
        done = running >= service.desired_count
        progress = "completed" if done else "in progress"
        deployment.update(runningCount=running, pendingCount=service.desired_count - running,
                          rolloutState="COMPLETED" if done else "IN_PROGRESS",
                          rolloutStateReason=f"ECS deployment {deployment_id} {progress}.")  # fmt: skip
        service.running_count, service.pending_count = running, service.desired_count - running
        if not done:
            return
        if running:
            _event(service, f"(service {service.name}) has started {running} tasks: "
                   + " ".join(f"(task {_mock_random.uuid4().hex})" for _ in range(running)) + ".")  # fmt: skip
        _event(service, f"(service {service.name}) (deployment {deployment_id}) deployment completed.")
        _event(service, f"(service {service.name}) has reached a steady state.")
    else:
        _advance(backend, service)


def _stopped_task(backend, service, fault, deployment):
    kind, image, container_name, task_definition = fault
    cluster = backend._get_cluster(service.cluster_name)
    # moto would create an awsvpc task's network interface (and fails on its DNS name in server mode);
    # a stopped Fargate task's interface is gone anyway: build the task without one, then describe the
    # attachment as ECS does once the task has stopped.
    shape = _copy.copy(task_definition)
    shape.network_mode = "bridge"
    task = ecs_models.Task(
        cluster, shape, None, None, backend, group=f"service:{service.name}",
        launch_type=service.launch_type or "FARGATE", started_by=deployment["id"],
        platform_version=service.platform_version,
    )  # fmt: skip
    network = (service.network_configuration or {}).get("awsvpcConfiguration")
    if network:
        task.network_configuration = service.network_configuration
        subnet = {"name": "subnetId", "value": network["subnets"][0]}
        task.attachments = [
            {
                "id": str(_mock_random.uuid4()),
                "type": "ElasticNetworkInterface",
                "status": "DELETED",
                "details": [subnet],
            }
        ]
    now = utcnow()
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.created_at = now
    task.stopping_at = now
    task.stopped_at = now
    task.execution_stopped_at = now
    for container in task.containers:
        container.last_status = "STOPPED"
        container.name = container_name
        container.image = image
    if kind == "pull":
        task.stop_code = "TaskFailedToStart"
        task.stopped_reason = (
            f"CannotPullContainerError: pull image manifest has been retried 7 time(s): "
            f"failed to resolve ref {image}: {image}: not found"
        )
        for container in task.containers:
            container.reason = task.stopped_reason
    else:
        task.stop_code = "EssentialContainerExited"
        task.stopped_reason = "Essential container in task exited"
        task.started_at = now
        for container in task.containers:
            container.exit_code = 1
            container.exitCode = 1
    tasks = backend.tasks.setdefault(service.cluster_name, {})
    tasks[task.task_arn] = task
    # the service's own stopped tasks, oldest first (not a walk over every task of the cluster per task)
    kept = service.__dict__.setdefault("_firebreak", {}).setdefault("stopped", [])
    kept.append(task.task_arn)
    dropped = max(0, len(kept) - MAX_STOPPED_TASKS)
    for arn in kept[:dropped]:
        tasks.pop(arn, None)
    del kept[:dropped]
    return task


def _advance(backend, service):
    """Bring a failing deployment up to now: one round of ``desiredCount`` stopped tasks per retry period."""
    state = service.__dict__.get("_firebreak")
    if not state or state.get("fault") is None or not service.deployments:
        return
    deployment = service.deployments[0]
    if deployment.get("rolloutState") == "FAILED":
        return  # the circuit breaker stopped launching tasks
    due = 1 + int((_time.monotonic() - state["started"]) / ECS_RETRY_SECONDS)
    desired = service.desired_count
    threshold = _threshold(desired)
    kept_rounds = max(1, _math.ceil(MAX_STOPPED_TASKS / desired)) if desired > 0 else 1
    while state["rounds"] < due and desired > 0:
        state["rounds"] += 1
        if due - state["rounds"] >= kept_rounds:
            # a round this catch-up drops again before it answers (only the last MAX_STOPPED_TASKS are kept):
            # counted and in the events, its tasks not built (a service failing for minutes cost seconds per call)
            ids = [str(_mock_random.uuid4()) for _ in range(desired)]
        else:
            ids = [_stopped_task(backend, service, state["fault"], deployment).id for _ in range(desired)]
        _event(service, f"(service {service.name}) has started {desired} tasks: "
               + " ".join(f"(task {task_id})" for task_id in ids) + ".")  # fmt: skip
        before = deployment.get("failedTasks", 0)
        deployment["failedTasks"] = before + desired
        if before < threshold <= deployment["failedTasks"]:
            _event(service, UNABLE_TO_START.format(service=service.name))
            if _circuit_breaker(service):
                deployment["rolloutState"] = "FAILED"
                deployment["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
                _event(service, f"(service {service.name}) (deployment {deployment['id']}) deployment failed: "
                       "tasks failed to start.")  # fmt: skip
                break
    if deployment.get("rolloutState") != "FAILED":
        deployment["rolloutState"] = "IN_PROGRESS"
        deployment["rolloutStateReason"] = f"ECS deployment {deployment['id']} in progress."
    deployment.update(runningCount=0, pendingCount=desired, desiredCount=desired, updatedAt=utcnow())
    service.running_count, service.pending_count = 0, desired


def _sync(backend, service):
    with _ECS_LOCK:
        _sync_locked(backend, service)


def _sync_locked(backend, service):
    state = service.__dict__.get("_firebreak")
    if state is None:
        # Created by moto: a failing revision starts failing now; a good one is moto's (and
        # MOTO_ECS_SERVICE_RUNNING's) as before.
        service.__dict__["_firebreak"] = {"td": service.task_definition, "fault": None}
        if _image_fault(backend, service.task_definition) is not None:
            _new_deployment(backend, service)
        return
    if state["td"] != service.task_definition:
        _new_deployment(backend, service)
    else:
        _advance(backend, service)


_ecs_create_service = ecs_models.EC2ContainerServiceBackend.create_service
_ecs_update_service = ecs_models.EC2ContainerServiceBackend.update_service
_ecs_describe_services = ecs_models.EC2ContainerServiceBackend.describe_services
_ecs_list_tasks = ecs_models.EC2ContainerServiceBackend.list_tasks


def _create_service(self, *args, **kwargs):
    service = _ecs_create_service(self, *args, **kwargs)
    _sync(self, service)
    return service


def _update_service(self, service_properties):
    forced = bool(service_properties.get("force_new_deployment"))
    with _ECS_LOCK:
        service = _ecs_update_service(self, service_properties)
        state = service.__dict__.get("_firebreak")
        if state is not None and (forced or state["td"] != service.task_definition):
            state["td"] = None  # a new deployment, even of the same revision
        _sync(self, service)
    return service


def _describe_services(self, cluster_str, service_names_or_arns):
    services, failures = _ecs_describe_services(self, cluster_str, service_names_or_arns)
    for service in services:
        _sync(self, service)
    return services, failures


def _list_tasks(self, cluster_str=None, *args, **kwargs):
    for service in list(self.services.values()):
        if cluster_str is None or service.cluster_name == cluster_str.split("/")[-1]:
            _sync(self, service)
    tasks = _ecs_list_tasks(self, cluster_str, *args, **kwargs)
    service_name = kwargs.get("service_name") if "service_name" in kwargs else (args[3] if len(args) > 3 else None)
    if service_name:  # moto ignores serviceName; the sandbox's service tasks carry their group
        name = service_name.split("/")[-1]
        tasks = [t for t in tasks if getattr(t, "group", None) == f"service:{name}"]
    return tasks


ecs_models.EC2ContainerServiceBackend.create_service = _create_service
ecs_models.EC2ContainerServiceBackend.update_service = _update_service
ecs_models.EC2ContainerServiceBackend.describe_services = _describe_services
ecs_models.EC2ContainerServiceBackend.list_tasks = _list_tasks

_elbv2_describe_target_health = elbv2_models.ELBv2Backend.describe_target_health


def _failing_service_for(account_id, region_name, target_group_arn):
    backend = ecs_models.ecs_backends[account_id][region_name]
    for service in list(backend.services.values()):
        if service.status != "ACTIVE":
            continue
        if any(lb.get("targetGroupArn") == target_group_arn for lb in service.load_balancers or []):
            _sync(backend, service)
            state = service.__dict__.get("_firebreak") or {}
            if state.get("fault") is not None:
                return service
    return None


def _describe_target_health(self, target_group_arn, targets):
    answers = _elbv2_describe_target_health(self, target_group_arn, targets)
    if _failing_service_for(self.account_id, self.region_name, target_group_arn) is None:
        return answers
    for answer in answers:
        if answer.status == "healthy":
            answer.status = "unhealthy"
            answer.reason = "Target.FailedHealthChecks"
            answer.description = "Health checks failed"
    return answers


elbv2_models.ELBv2Backend.describe_target_health = _describe_target_health


# WAFv2 fidelity (docs/sandbox.md): UpdateWebACL replaces the whole web ACL, so an empty ``Rules`` list leaves
# it with no rules.  moto 5.2.5 treats an empty list like an absent one and keeps every rule, so removing the
# last rule (a release of the only rate-based rule) silently did nothing.  Apply the empty list.
from moto.wafv2 import models as wafv2_models  # noqa: E402

_update_web_acl = wafv2_models.WAFV2Backend.update_web_acl


def _update_web_acl_as_aws(self, name, _id, default_action, rules, *args, **kwargs):
    token = _update_web_acl(self, name, _id, default_action, rules, *args, **kwargs)
    if rules is not None and not rules:
        self.get_web_acl(None, name, _id).rules = []
    return token


wafv2_models.WAFV2Backend.update_web_acl = _update_web_acl_as_aws


# --------------------------------------------------------------------------------------------------
# Evidence the sandbox must show (aws_triage_info, docs/sandbox.md "Histories"): moto 5.2.5 keeps no alarm
# history it can answer (DescribeAlarmHistory: 500) and records RDS events only for instance and snapshot
# creation, ignoring the time window.  Both follow the AWS API references here.
# --------------------------------------------------------------------------------------------------
from moto.cloudwatch import models as cw_models  # noqa: E402
from moto.cloudwatch import responses as cw_responses  # noqa: E402
from moto.core.responses import ActionResult as _ActionResult  # noqa: E402
from moto.rds import models as rds_models  # noqa: E402


def _aware(value):
    """An aware UTC datetime for a request's time (datetime, epoch seconds or ISO text); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, _datetime.datetime):
        return value.replace(tzinfo=_datetime.UTC) if value.tzinfo is None else value.astimezone(_datetime.UTC)
    if isinstance(value, int | float):
        return _datetime.datetime.fromtimestamp(value, _datetime.UTC)
    text = str(value).strip()
    try:
        return _aware(float(text))
    except ValueError:
        return _aware(_datetime.datetime.fromisoformat(text.replace("Z", "+00:00")))


def _now():
    return _datetime.datetime.now(_datetime.UTC)


def _alarm_history(backend):
    return backend.__dict__.setdefault("_firebreak_alarm_history", [])


def _alarm_config(alarm):
    return {
        "alarmName": alarm.name,
        "namespace": alarm.namespace,
        "metricName": alarm.metric_name,
        "comparisonOperator": alarm.comparison_operator,
        "threshold": alarm.threshold,
        "evaluationPeriods": alarm.evaluation_periods,
        "period": alarm.period,
        "statistic": alarm.statistic,
        "alarmActions": list(alarm.alarm_actions or []),
    }


_put_metric_alarm = cw_models.CloudWatchBackend.put_metric_alarm
_set_alarm_state = cw_models.CloudWatchBackend.set_alarm_state


def _put_metric_alarm_with_history(self, name, *args, **kwargs):
    # AWS records a ConfigurationUpdate item: 'Alarm "name" created' (or updated, with the original).
    original = self.alarms.get(name)
    before = _alarm_config(original) if original is not None else None
    alarm = _put_metric_alarm(self, name, *args, **kwargs)
    if before is None:
        data = {"type": "Create", "version": "1.0", "createdAlarm": _alarm_config(alarm)}
        summary = f'Alarm "{name}" created'
    else:
        data = {"type": "Update", "version": "1.0", "originalAlarm": before, "updatedAlarm": _alarm_config(alarm)}
        summary = f'Alarm "{name}" updated'
    _alarm_history(self).append(
        {
            "AlarmName": name,
            "AlarmType": "CompositeAlarm" if getattr(alarm, "rule", None) else "MetricAlarm",
            "Timestamp": _now(),
            "HistoryItemType": "ConfigurationUpdate",
            "HistorySummary": summary,
            "HistoryData": json.dumps(data),
        }
    )
    return alarm


def _set_alarm_state_with_history(self, alarm_name, reason, reason_data, state_value):
    alarm = self.alarms.get(alarm_name)
    old = (alarm.state_value, alarm.state_reason) if alarm is not None else None
    _set_alarm_state(self, alarm_name, reason, reason_data, state_value)
    if old is None or old[0] == state_value:
        return  # AWS records a StateUpdate only when the state changes
    new_state = {"stateValue": state_value, "stateReason": reason}
    if reason_data:
        new_state["stateReasonData"] = json.loads(reason_data)
    _alarm_history(self).append(
        {
            "AlarmName": alarm_name,
            "AlarmType": "CompositeAlarm" if getattr(alarm, "rule", None) else "MetricAlarm",
            "Timestamp": _now(),
            "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {old[0]} to {state_value}",
            "HistoryData": json.dumps(
                {"version": "1.0", "oldState": {"stateValue": old[0], "stateReason": old[1]}, "newState": new_state}
            ),
        }
    )


def _describe_alarm_history(self):
    """DescribeAlarmHistory per the CloudWatch API reference: AlarmName, AlarmTypes, HistoryItemType,
    StartDate/EndDate, ScanBy (newest first by default), MaxRecords (1-100, default 100) and NextToken."""
    items = list(_alarm_history(self.cloudwatch_backend))
    name = self._get_param("AlarmName")
    if name:
        items = [i for i in items if i["AlarmName"] == name]
    types = self._get_param("AlarmTypes") or []
    if types:
        items = [i for i in items if i["AlarmType"] in types]
    kind = self._get_param("HistoryItemType")
    if kind:
        items = [i for i in items if i["HistoryItemType"] == kind]
    start, end = _aware(self._get_param("StartDate")), _aware(self._get_param("EndDate"))
    items = [i for i in items if (start is None or i["Timestamp"] >= start) and (end is None or i["Timestamp"] <= end)]
    items.sort(key=lambda i: i["Timestamp"], reverse=self._get_param("ScanBy") != "TimestampAscending")
    limit = max(1, min(int(self._get_param("MaxRecords") or 100), 100))
    offset = int(self._get_param("NextToken") or 0)
    page = items[offset : offset + limit]
    result = {"AlarmHistoryItems": page}
    if offset + limit < len(items):
        result["NextToken"] = str(offset + limit)
    return _ActionResult(result)


cw_models.CloudWatchBackend.put_metric_alarm = _put_metric_alarm_with_history
cw_models.CloudWatchBackend.set_alarm_state = _set_alarm_state_with_history
cw_responses.CloudWatchResponse.describe_alarm_history = _describe_alarm_history


# RDS events (the RDS User Guide's event messages): a cluster's creation (RDS-EVENT-0170) and failover
# (RDS-EVENT-0073 or -0072 "Started cross/same AZ failover", RDS-EVENT-0071 "Completed failover"), an
# instance's reboot (RDS-EVENT-0006).  DescribeEvents honours StartTime/EndTime/Duration (default: the
# past hour) and EventCategories, which moto ignores.
rds_models.Event.EVENT_MAP.update(
    {
        "DB_CLUSTER_CREATE": {"Categories": ["creation"], "Message": "DB cluster created"},
        "DB_CLUSTER_FAILOVER_STARTED_CROSS_AZ": {
            "Categories": ["failover"],
            "Message": "Started cross AZ failover to DB instance: {target}",
        },
        "DB_CLUSTER_FAILOVER_STARTED_SAME_AZ": {
            "Categories": ["failover"],
            "Message": "Started same AZ failover to DB instance: {target}",
        },
        "DB_CLUSTER_FAILOVER_COMPLETED": {
            "Categories": ["failover"],
            "Message": "Completed failover to DB instance: {target}",
        },
        "DB_INSTANCE_RESTARTED": {"Categories": ["availability"], "Message": "DB instance restarted"},
    }
)


class _ClusterSource:
    event_source_type = "db-cluster"

    def __init__(self, cluster):
        self.resource_id = cluster.db_cluster_identifier
        self.arn = cluster.db_cluster_arn


def _cluster_event(backend, cluster, event_type, **fields):
    event = rds_models.Event(event_type, _ClusterSource(cluster))
    event.message = event.message.format(**fields)
    backend.events.append(event)


_rds_create_db_cluster = rds_models.RDSBackend.create_db_cluster
_rds_failover_db_cluster = rds_models.RDSBackend.failover_db_cluster
_rds_reboot_db_instance = rds_models.RDSBackend.reboot_db_instance
_rds_describe_events = rds_models.RDSBackend.describe_events


def _create_db_cluster_with_event(self, kwargs):
    cluster = _rds_create_db_cluster(self, kwargs)
    _cluster_event(self, cluster, "DB_CLUSTER_CREATE")
    return cluster


def _failover_db_cluster_with_events(self, db_cluster_identifier, target_db_instance_identifier=None):
    cluster = self.clusters.get(db_cluster_identifier)
    writer = next((m for m in (cluster.members if cluster else []) if m.is_cluster_writer), None)
    result = _rds_failover_db_cluster(self, db_cluster_identifier, target_db_instance_identifier)
    target = next((m for m in result.members if m.is_cluster_writer), None)
    if target is not None:
        same = writer is not None and writer.availability_zone == target.availability_zone
        started = "DB_CLUSTER_FAILOVER_STARTED_SAME_AZ" if same else "DB_CLUSTER_FAILOVER_STARTED_CROSS_AZ"
        _cluster_event(self, result, started, target=target.db_instance_identifier)
        _cluster_event(self, result, "DB_CLUSTER_FAILOVER_COMPLETED", target=target.db_instance_identifier)
    return result


def _reboot_db_instance_with_event(self, db_instance_identifier, *args, **kwargs):
    database = _rds_reboot_db_instance(self, db_instance_identifier, *args, **kwargs)
    database.add_event("DB_INSTANCE_RESTARTED")
    return database


def _describe_events_in_window(self, source_identifier=None, source_type=None, **kwargs):
    events = _rds_describe_events(self, source_identifier=source_identifier, source_type=source_type)
    start, end = _aware(kwargs.get("start_time")), _aware(kwargs.get("end_time"))
    duration = kwargs.get("duration")
    if start is None:
        start = (end or _now()) - _datetime.timedelta(minutes=int(duration or 60))
    end = end or _now()
    categories = set(kwargs.get("event_categories") or [])
    return [
        e for e in events if start <= _aware(e.date) <= end and (not categories or categories & set(e.event_categories))
    ]


rds_models.RDSBackend.create_db_cluster = _create_db_cluster_with_event
rds_models.RDSBackend.failover_db_cluster = _failover_db_cluster_with_events
rds_models.RDSBackend.reboot_db_instance = _reboot_db_instance_with_event
rds_models.RDSBackend.describe_events = _describe_events_in_window

# S3 conditional writes (docs/sandbox.md, "S3 conditional writes"; the timeline's durable copy relies on them,
# docs/timeline.md).  moto 5.2.5 answers PutObject with ``If-None-Match: *`` on an existing key, and with an
# ``If-Match`` ETag that is not the current one, 412 PreconditionFailed, and ``If-Match`` on a missing key 404
# NoSuchKey, as S3 does.  But it checks and then writes as two steps with no lock between them, in a threaded
# server: two writers of one key could both pass the check, where S3 lets exactly one win.  (Measured: 150 rounds
# of 12 writers racing for one key gave one winner every time, because nothing in between releases the GIL; the
# sandbox does not rely on thread timing.)  A conditional PutObject (and CompleteMultipartUpload with
# ``If-None-Match``) now checks and writes under one lock.
import threading as _threading  # noqa: E402

from moto.s3 import responses as s3_responses  # noqa: E402

_S3_CONDITIONAL_WRITE = _threading.Lock()
_s3_put_object = s3_responses.S3Response.put_object


def _put_object_atomically(self):
    if self.headers.get("If-None-Match") is None and self.headers.get("If-Match") is None:
        return _s3_put_object(self)
    with _S3_CONDITIONAL_WRITE:
        return _s3_put_object(self)


s3_responses.S3Response.put_object = _put_object_atomically

# A conditional DeleteObject (``If-Match: <ETag>``, S3's conditional delete) is checked and done under the same lock,
# so a delete of the version a writer just replaced with ``If-Match`` answers 412 as on S3 (the ECS rollback lock
# relies on it, docs/steps/ecs_rollback.md).
_s3_delete_object = s3_responses.S3Response.delete_object


def _delete_object_atomically(self):
    if self.headers.get("If-Match") is None:
        return _s3_delete_object(self)
    with _S3_CONDITIONAL_WRITE:
        return _s3_delete_object(self)


s3_responses.S3Response.delete_object = _delete_object_atomically


if __name__ == "__main__":
    sys.exit(main())
