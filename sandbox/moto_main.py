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

# S3 listing cost (bench/results.md, s3_restore): moto 5.2.5's ListObjectVersions deep-copies every
# version of the whole bucket on every page (each copy re-reads and re-buffers the object's body) so
# that it can set ``is_latest`` on the copies.  With 15,000 versions a page took 13 s, where AWS
# answers a page in well under a second.  A shallow copy of each version gives the same answer (only
# ``is_latest`` is written, on the copy; the body buffer is shared read-only).
import copy as _copy  # noqa: E402

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


class _S3ListingCopy:
    """Stands in for the ``copy`` module inside ``moto.s3.models``: the one ``deepcopy`` there copies
    a key's list of versions for ListObjectVersions; everything else is the real ``copy``."""

    copy = staticmethod(_copy.copy)

    @staticmethod
    def deepcopy(value, memo=None):
        versions = (s3_models.FakeKey, s3_models.FakeDeleteMarker)
        if isinstance(value, list) and all(isinstance(item, versions) for item in value):
            return [_shallow_version(item) for item in value]
        return _copy.deepcopy(value, memo)


s3_models.copy = _S3ListingCopy()

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

# One INFO line per request in moto.log repeats the fault proxy's request log (GET /_fault/log) at a
# cost of a formatted, flushed write per call; warnings and errors still go to moto.log.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
