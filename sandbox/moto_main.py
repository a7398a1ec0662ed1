"""Run moto's server for the sandbox (``python -m sandbox.moto_main -H 127.0.0.1 -p PORT``).

Same server as ``moto_server``, with one speed-up: with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true`` moto
loads its 1,500+ AWS managed policies into an IAM backend for every partition (aws, aws-cn,
aws-us-gov, aws-iso, aws-iso-b, aws-eusc) after each ``/moto-api/reset``, about a second in all.
The sandbox lives in the ``aws`` partition (us-east-1), so only that partition gets them; AWSDenyAll
and the other managed policies are there as before.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    sys.exit(main())
