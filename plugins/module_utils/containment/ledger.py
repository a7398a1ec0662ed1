# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The containment ledger: claims that every responder's run sees, and what a release may remove.

A containment entry in an incident's timeline says what *this* incident changed; no other incident's
run reads that timeline.  Two incidents that block the same address, quarantine the same user or
freeze the same pipeline would each undo the other's containment on release.  The ledger is the
shared record that prevents it:

claim
    One object per (resource, item, incident): "incident I needs ``item`` of ``resource`` contained"
    (an address in an IP set or a network ACL, an access key, a stage transition, ...).  A containment
    step writes its claims before it acts, for every item it needs, including items already contained
    by someone else.
added
    One object per (resource, item, incident) whose containment step itself made the change (added the
    address, deactivated the key).  It marks the item as firebreak's to undo: when the incident that added
    it is released while another incident still claims the item, the marker stays, so the last claimant's
    release removes the item although its own step never added it.

A release of incident I removes item X of resource R only when no other incident still claims X and
either I's own entry changed X or an ``added`` marker of X exists (``select``).  Items present before
any containment (or put there by hand) have no marker and are never removed.  ``settle`` then deletes
I's claims, and the markers of the items removed.

Keys: ``<rkey>/<ikey>/<kind>/<incident key>``, each part URL-quoted (a SHA-256 digest when long), so
selection lists one prefix per resource and reads no object body.  Every (resource, item, incident) has
its own key and is created with write-if-absent (S3 ``If-None-Match: *``, ``O_EXCL`` locally): two
responders' runs at once never overwrite or lose each other's claim.  The bodies hold the readable
record (``resource``, ``item``, ``incident_id``, ``step``, ``kind``, ``at``).

Stores: ``S3Store`` (the evidence bucket, under ``firebreak/claims/``; on a versioned bucket a release
leaves the claims' history as noncurrent versions) and ``LocalStore`` (a directory beside the incident
timelines, ``<incidents>/.claims``).
"""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import json
import os
import urllib.parse

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    StepAWSError,
    StepError,
    aws_client,
    iso_utc,
    utc_now,
)

CLAIM = "claim"
ADDED = "added"
S3_PREFIX = "firebreak/claims/"
LOCAL_DIRNAME = ".claims"
MAX_WORKERS = 16
_PART_MAX = 150

CLAIMS_OPTIONS = {
    "claims_bucket": {"type": "str"},
    "claims_dir": {"type": "path"},
}

# What a containment step is asked to do, and what it undoes (doc fragment firebreak.runbooks.step.CONTAINMENT).
# A step whose states have other names (isolated, paused) keeps its own ``state`` and takes ``containments``.
CONTAINMENT_OPTIONS = {
    "state": {"type": "str", "choices": ["contained", "released"], "default": "contained"},
    "containments": {"type": "list", "elements": "dict", "default": []},
}


class LedgerError(StepError):
    """The claim store cannot be read or written (names the store and the key).

    ``cause``: the ``StepAWSError`` of the S3 call that failed, whose keys (``aws_operation``, ``aws_error_code``,
    ``resource``, ``attempts``) the step's failure then carries, as the step contract asks of a failed call."""

    def __init__(self, message, cause=None):
        super().__init__(message)
        self.cause = cause

    def fail_result(self):
        return self.cause.fail_result() if self.cause is not None else {}


def part(value):
    """A key component for ``value``: URL-quoted, or ``sha256-<hex>`` when that is long."""
    quoted = urllib.parse.quote(str(value), safe="")
    if len(quoted) <= _PART_MAX and quoted not in (".", ".."):
        return quoted
    return "sha256-" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()


def unpart(key):
    return urllib.parse.unquote(key)


def default_dir(environ=None):
    """The local claim directory: ``FIREBREAK_CLAIMS_DIR``; else ``.claims`` beside the incident directories
    (the parent of the directory of ``FIREBREAK_TIMELINE``); else ``.claims`` in ``FIREBREAK_INCIDENTS_DIR`` (where the
    timeline callback writes), else ``incidents/.claims``."""
    environ = os.environ if environ is None else environ
    if environ.get("FIREBREAK_CLAIMS_DIR"):
        return os.path.abspath(os.path.expanduser(environ["FIREBREAK_CLAIMS_DIR"]))
    timeline = environ.get("FIREBREAK_TIMELINE")
    if timeline:
        incident_dir = os.path.dirname(os.path.abspath(os.path.expanduser(timeline)))
        return os.path.join(os.path.dirname(incident_dir), LOCAL_DIRNAME)
    return os.path.abspath(os.path.join(environ.get("FIREBREAK_INCIDENTS_DIR") or "incidents", LOCAL_DIRNAME))


# --------------------------------------------------------------------------------------------------
# Stores
# --------------------------------------------------------------------------------------------------


class LocalStore:
    """Claims as files under ``root`` (created on first write)."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.where = f"claim directory {self.root}"

    def _path(self, key):
        return os.path.join(self.root, *key.split("/"))

    def create(self, key, body):
        """Write ``body`` at ``key`` unless it exists; True when written."""
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise LedgerError(f"cannot write claim {key} in {self.where}: {exc.strerror}") from None
        try:
            os.write(fd, body.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def list(self, prefix):
        """Keys under ``prefix`` (a directory path ending in ``/``)."""
        top = self._path(prefix.rstrip("/"))
        keys = []
        for dirpath, _dirs, files in os.walk(top):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            keys.extend(f"{rel}/{name}" for name in files)
        return sorted(keys)

    def delete(self, key):
        try:
            os.unlink(self._path(key))
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise LedgerError(f"cannot delete claim {key} in {self.where}: {exc.strerror}") from None


class S3Store:
    """Claims as objects under ``prefix`` in ``bucket``; every call through ``caller`` (bounded retries)."""

    def __init__(self, caller, client, bucket, prefix=S3_PREFIX):
        self.caller = caller
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.where = f"claim store s3://{bucket}/{prefix}"

    def create(self, key, body):
        try:
            self.caller(
                self.client,
                "put_object",
                f"claim s3://{self.bucket}/{self.prefix}{key}",
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=body.encode("utf-8"),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except StepAWSError as err:
            if err.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def list(self, prefix):
        keys = []
        pages = self.caller.paginate(
            self.client,
            "list_objects_v2",
            f"claims s3://{self.bucket}/{self.prefix}{prefix}",
            token_in="ContinuationToken",  # noqa: S106 - a listing token, not a password
            token_out="NextContinuationToken",  # noqa: S106
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
        )
        for page in pages:
            keys.extend(obj["Key"][len(self.prefix) :] for obj in page.get("Contents") or [])
        return sorted(keys)

    def delete(self, key):
        self.caller(
            self.client,
            "delete_object",
            f"claim s3://{self.bucket}/{self.prefix}{key}",
            Bucket=self.bucket,
            Key=self.prefix + key,
        )


def store_for(module, caller, client_factory=None):
    """The store the module's ``claims_bucket``/``claims_dir`` options name (``claims_bucket`` wins).

    ``client_factory(service)`` makes the S3 client (the step's own, so the endpoint and credentials
    are the step's)."""
    params = module.params
    if params.get("claims_bucket"):
        if client_factory is None:
            raise LedgerError("claims_bucket needs an AWS client")
        return S3Store(caller, client_factory("s3"), params["claims_bucket"])
    return LocalStore(params.get("claims_dir") or default_dir())


def for_module(module, caller, client_factory=None):
    """The ledger of a step module's claim store (its ``claims_bucket``/``claims_dir`` options); the S3 client,
    when the store needs one, is made by ``client_factory`` (by default the step's own ``aws_client``)."""
    if client_factory is None:

        def client_factory(service):
            return aws_client(module, service)

    return Ledger(store_for(module, caller, client_factory))


def bookkeeping(module, what, record):
    """Claim bookkeeping after a change: ``record()`` failing is a warning naming ``what`` was changed; the change
    stands (it was made and read back), and only the claim store is behind."""
    try:
        record()
    except (LedgerError, StepAWSError) as err:
        module.warn(f"{what}, but the claim store was not updated: {err}")


# --------------------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------------------


def _each(fn, items, workers=MAX_WORKERS):
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


class Ledger:
    def __init__(self, store):
        self.store = store

    @property
    def where(self):
        return self.store.where

    @staticmethod
    def key(resource, item, kind, incident_id):
        return f"{part(resource)}/{part(item)}/{kind}/{part(incident_id)}"

    def _body(self, resource, item, kind, incident_id, step):
        record = {
            "resource": resource,
            "item": item,
            "kind": kind,
            "incident_id": incident_id,
            "step": step,
            "at": iso_utc(utc_now()),
        }
        return json.dumps(record, sort_keys=True)

    def _write(self, resource, items, kind, incident_id, step):
        def one(item):
            try:
                return self.store.create(
                    self.key(resource, item, kind, incident_id), self._body(resource, item, kind, incident_id, step)
                )
            except StepAWSError as err:
                raise LedgerError(
                    f"cannot record the {kind} of {item!r} on {resource!r} in {self.where}: {err}", err
                ) from None

        return sum(1 for written in _each(one, items) if written)

    def claim(self, incident_id, step, resource, items):
        """Record that ``incident_id`` needs ``items`` of ``resource`` contained; returns how many were new."""
        return self._write(resource, items, CLAIM, incident_id, step)

    def mark_added(self, incident_id, step, resource, items):
        """Record that ``incident_id``'s step itself contained ``items`` (so firebreak undoes them)."""
        return self._write(resource, items, ADDED, incident_id, step)

    def state(self, resource):
        """``{item key: {"claim": {incident key}, "added": {incident key}}}`` for ``resource``."""
        try:
            keys = self.store.list(part(resource) + "/")
        except StepAWSError as err:
            raise LedgerError(f"cannot list the claims on {resource!r} in {self.where}: {err}", err) from None
        found = {}
        for key in keys:
            pieces = key.split("/")
            if len(pieces) != 4 or pieces[2] not in (CLAIM, ADDED):
                continue
            found.setdefault(pieces[1], {CLAIM: set(), ADDED: set()})[pieces[2]].add(pieces[3])
        return found

    def select(self, incident_id, resource, items, changed_by_us=()):
        """What a release of ``incident_id`` may undo on ``resource``.

        ``items``: every item the incident claims there; ``changed_by_us``: those its own entries changed.
        Returns ``{"remove": [...], "kept": {item: [other incident ids]}}``: an item is removed when no other
        incident claims it and either this incident changed it or an ``added`` marker says some containment
        did; it is kept (for whom) while another incident still claims it; anything else (never contained
        by firebreak) is in neither."""
        state = self.state(resource)
        me = part(incident_id)
        ours = set(changed_by_us)
        remove, kept = [], {}
        for item in dict.fromkeys(list(items) + list(changed_by_us)):
            entry = state.get(part(item), {CLAIM: set(), ADDED: set()})
            others = sorted(unpart(key) for key in entry[CLAIM] - {me})
            if others:
                kept[item] = others
            elif item in ours or entry[ADDED]:
                remove.append(item)
        return {"remove": remove, "kept": kept}

    def claimants(self, resource, item):
        """The incident ids that claim ``item`` of ``resource`` now."""
        entry = self.state(resource).get(part(item), {CLAIM: set()})
        return sorted(unpart(key) for key in entry[CLAIM])

    def settle(self, incident_id, resource, items, removed=()):
        """After a release: delete this incident's claims on ``items`` and every ``added`` marker of the
        items ``removed``.  The incident's own markers of items kept for others stay (the last claimant's
        release removes those items)."""
        state = self.state(resource)
        keys = [self.key(resource, item, CLAIM, incident_id) for item in items]
        for item in removed:
            keys.extend(
                f"{part(resource)}/{part(item)}/{ADDED}/{who}" for who in state.get(part(item), {}).get(ADDED, ())
            )
        self._delete(keys, resource)

    def drop(self, incident_id, resource, items):
        """The resource is gone: delete this incident's claims and markers on it."""
        keys = [self.key(resource, item, kind, incident_id) for item in items for kind in (CLAIM, ADDED)]
        self._delete(keys, resource)

    def _delete(self, keys, resource):
        def one(key):
            try:
                self.store.delete(key)
            except StepAWSError as err:
                raise LedgerError(f"cannot delete claim {key} on {resource!r} in {self.where}: {err}", err) from None

        _each(one, dict.fromkeys(keys))
