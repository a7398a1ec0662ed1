# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident timeline: record format, hash chain, redaction, locked append, verification.

Pure Python (standard library only) so the callback, the ``incident_report`` action and the
tests share one implementation::

    from ansible_collections.firebreak.runbooks.plugins.module_utils.timeline import append_record

A timeline is a JSON Lines file.  Every line is one record (see ``FIELDS``) written in canonical
form, ``json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` encoded as
UTF-8.  ``hash`` is the SHA-256 hex digest of the canonical form of the record without ``hash``;
``prev_hash`` is the previous line's ``hash`` (64 zeros for the first record); ``seq`` counts
1, 2, 3, ... across every run that appended to the file.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import math
import os
import re

ZERO_HASH = "0" * 64
MASK = "********"
NO_LOG_DETAILS = {"censored": "no_log: true was set for this task; its arguments and result are not recorded"}

# Every record carries exactly these fields (null where a field does not apply).
FIELDS = (
    "seq",
    "ts",
    "incident_id",
    "event",
    "playbook",
    "play",
    "task",
    "role",
    "action",
    "host",
    "check_mode",
    "changed",
    "msg",
    "details",
    "operator",
    "prev_hash",
    "hash",
)

EVENTS = (
    "playbook_start",
    "play_start",
    "task_ok",
    "task_changed",
    "task_failed",
    "task_skipped",
    "host_unreachable",
    "note",
    "playbook_end",
)

# Size cap for ``details`` (serialised, in bytes).
DETAILS_MAX_BYTES = 64 * 1024

# How far back ``read_tail`` is willing to look for the start of the last line.
_TAIL_CHUNK = 16 * 1024
_TAIL_MAX = 16 * 1024 * 1024


class TimelineError(Exception):
    """The timeline cannot be read, verified or written. The message names the file."""


class TimelineVerifyError(TimelineError):
    """The chain is broken. ``line`` and ``seq`` locate the first bad record."""

    def __init__(self, message, path=None, line=None, seq=None):
        super().__init__(message)
        self.path = path
        self.line = line
        self.seq = seq


# --------------------------------------------------------------------------------------------
# canonical form and hash
# --------------------------------------------------------------------------------------------


def canonical_json(record):
    """The canonical text of ``record`` (keys sorted, no whitespace, UTF-8 characters kept)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(record):
    """SHA-256 hex digest of the canonical form of ``record`` without its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def utc_timestamp(now=None):
    """UTC ISO 8601 with milliseconds and ``Z``, e.g. ``2025-12-27T14:00:00.123Z``."""
    now = now or datetime.datetime.now(datetime.UTC)
    return now.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(ts):
    """Parse a record ``ts`` back into an aware datetime (``None`` when it cannot be parsed)."""
    if not isinstance(ts, str):
        return None
    try:
        return datetime.datetime.fromisoformat(ts)
    except ValueError:
        return None


def new_record(**fields):
    """A record with every field of ``FIELDS`` present (``None`` unless given)."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError("unknown timeline fields: {}".format(", ".join(sorted(unknown))))
    rec = dict.fromkeys(FIELDS)
    rec.update(fields)
    return rec


# --------------------------------------------------------------------------------------------
# plain JSON values and redaction
# --------------------------------------------------------------------------------------------

# Words that make a key look secret, compared against the key lower-cased with every
# non-alphanumeric character removed (so ``aws_secret_access_key``, ``SecretAccessKey``,
# ``x-auth-token`` and ``Private Key`` all match).
SECRET_KEY_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "privatekey",
    "accesskeysecret",
    "session",
    "apikey",
    "authorization",
    "cookie",
)
# Keys that contain a secret word but name or describe the secret rather than hold it; a
# responder needs to see WHICH key, secret or session was acted on.  Matched against the end
# of the normalised key.  ``AccessKeyId`` never contains a secret word, so it is never masked.
SAFE_KEY_SUFFIXES = (
    "id",
    "ids",
    "arn",
    "arns",
    "name",
    "names",
    "time",
    "date",
    "expiration",
    "expiry",
    "count",
    "length",
    "type",
    "enabled",
    "versionstage",
    "versionstages",
    "rotationrules",
    "policy",
    "duration",
    "durationseconds",
    "lastused",
    "required",
)
# ... except these, which are secrets whatever their suffix says.
ALWAYS_SECRET_KEYS = frozenset(("sessionid", "sessiontoken", "tokenid", "sessioncookie"))

_NORMALISE = re.compile(r"[^a-z0-9]")
_SAFE_SUFFIX_NAMES = frozenset(SAFE_KEY_SUFFIXES)


def _normalise_key(key):
    return _NORMALISE.sub("", str(key).lower())


def is_secret_key(key):
    """True when the values under ``key`` must be masked."""
    norm = _normalise_key(key)
    if not norm:
        return False
    if norm in ALWAYS_SECRET_KEYS:
        return True
    if not any(word in norm for word in SECRET_KEY_WORDS):
        return False
    # names and descriptions of a secret stay visible: SecretId, SecretArn, RoleSessionName, TokenIssueTime
    return not any(norm.endswith(suffix) and norm != suffix for suffix in _SAFE_SUFFIX_NAMES)


# ``password=hunter2``, ``"token": "abc"``, ``SecretAccessKey: abc`` in free text.
# Linear time on long text: a key starts at a word boundary (lookbehind), has at most 64 characters
# around the secret word, and the trailing part never backtracks (possessive quantifier).
_TEXT_SECRET = re.compile(
    r"""(?ix)
    (?P<key>["']?(?<![A-Za-z0-9_.\-])[A-Za-z0-9_.\-]{0,64}
        (?:password|passwd|passphrase|secret|token|private[_\-\s]?key|session|api[_\-]?key|authorization)
        [A-Za-z0-9_.\-]{0,64}+["']?)
    (?P<sep>\s*[:=]\s*|\s+)
    (?P<quote>["']?)
    (?P<value>(?:bearer\s+|basic\s+)?[^\s"',;}\]]+)
    """
)


# an argv element naming a secret whose value is the next element: --password, {token:, "secret":
_ARG_FLAG = re.compile(r"""^[-{\s"']*([A-Za-z0-9_.\-]+?)["']?\s*[:=]?$""")


def _mask_text_match(match):
    if not is_secret_key(match.group("key").strip("\"'")):
        return match.group(0)
    sep = match.group("sep")
    value = match.group("value")
    # "token abc" is too loose to act on unless the value looks like a credential
    if not sep.strip() and not match.group("quote") and (len(value) < 16 or value.isalpha()):
        return match.group(0)
    return match.group("key") + sep + match.group("quote") + MASK


def scrub_text(text, secrets=()):
    """Mask known secret values and ``key=value`` style secrets inside free text."""
    if not text:
        return text
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return _TEXT_SECRET.sub(_mask_text_match, text)


def _leaf_strings(value, out):
    if isinstance(value, dict):
        for v in value.values():
            _leaf_strings(v, out)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _leaf_strings(v, out)
    elif isinstance(value, bytes):
        out.add(value.decode("utf-8", "replace"))
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        out.add(str(value))


def collect_secrets(value, min_length=4):
    """Every string found under a secret-looking key of ``value`` (recursively)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if is_secret_key(k):
                    _leaf_strings(v, found)
                else:
                    walk(v)
        elif isinstance(node, (list, tuple, set, frozenset)):
            for v in node:
                walk(v)

    walk(value)
    # longest first so that a secret containing another is replaced whole
    return sorted((s for s in found if len(s) >= min_length), key=len, reverse=True)


def _plain_str(value):
    text = str.__str__(value) if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def to_plain(value, secrets=(), drop_internal=True, _depth=0):
    """A JSON-safe copy of ``value`` with secrets masked.

    * values under secret-looking keys become ``MASK`` (``None`` and ``""`` stay as they are);
    * a dict carrying ``_ansible_no_log: true`` is replaced by a censored marker;
    * ``_ansible_*`` keys are dropped (``drop_internal``);
    * strings have the ``secrets`` values and ``key=value`` secrets masked;
    * anything else (datetimes, bytes, Ansible's tagged types) becomes plain JSON.
    """
    if _depth > 64:
        return "<nested too deep>"
    if isinstance(value, dict):
        if value.get("_ansible_no_log") is True:
            return dict(NO_LOG_DETAILS)
        out = {}
        for k, v in value.items():
            key = _plain_str(k)
            if drop_internal and key.startswith("_ansible_"):
                continue
            if is_secret_key(key) and v is not None and v != "" and not isinstance(v, bool):
                out[key] = MASK
            else:
                out[key] = to_plain(v, secrets, drop_internal, _depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        out = []
        mask_next = False
        for item in items:
            if mask_next and isinstance(item, (str, bytes, int, float)) and not isinstance(item, bool):
                out.append(MASK)
            else:
                out.append(to_plain(item, secrets, drop_internal, _depth + 1))
            # argv-style lists: ["--password", "x"], ["{token:", "x"]
            flag = _ARG_FLAG.match(item) if isinstance(item, str) and len(item) <= 128 else None
            mask_next = bool(flag) and is_secret_key(flag.group(1))
        return out
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return float(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return scrub_text(_plain_str(value), secrets)


def redact(value, extra_secrets=()):
    """Mask every secret in ``value``: the values of secret-looking keys wherever they appear,
    and the same values (plus ``key=value`` secrets) inside free text."""
    secrets = collect_secrets(value)
    if extra_secrets:
        secrets = sorted(set(secrets) | {s for s in extra_secrets if s and len(s) >= 4}, key=len, reverse=True)
    return to_plain(value, secrets)


# Keys of a task result that are Ansible's own bookkeeping, or repeated elsewhere in the record.
RESULT_DROP_KEYS = frozenset(
    (
        "invocation",
        "stdout_lines",
        "stderr_lines",
        "deprecations",
        "changed",
        "failed",
        "skipped",
        "unreachable",
        "msg",
        "skip_reason",
        "false_condition",
        "include_args",
        "module_args",
    )
)
ITEM_DROP_KEYS = frozenset(("invocation", "stdout_lines", "stderr_lines", "deprecations"))


def result_details(result, no_log=False, max_bytes=DETAILS_MAX_BYTES, extra_secrets=()):
    """``details`` for a task result: redacted, without Ansible internals, capped in size.

    Returns ``(details, secrets)`` where ``secrets`` are the secret values found, so the caller
    can scrub them from ``msg`` too.
    """
    if no_log or not isinstance(result, dict) or result.get("_ansible_no_log") is True:
        return (dict(NO_LOG_DETAILS) if no_log or isinstance(result, dict) else None), []
    secrets = collect_secrets(result)
    if extra_secrets:
        secrets = sorted(set(secrets) | {s for s in extra_secrets if s and len(s) >= 4}, key=len, reverse=True)
    kept = {}
    for key, value in result.items():
        if key in RESULT_DROP_KEYS or str(key).startswith("_ansible_"):
            continue
        if key == "exception" and value == "(traceback unavailable)":
            continue
        if key == "results" and isinstance(value, list):
            value = [
                {k: v for k, v in item.items() if k not in ITEM_DROP_KEYS} if isinstance(item, dict) else item
                for item in value
            ]
        kept[key] = value
    if not kept:
        return None, secrets
    return cap_size(to_plain(kept, secrets), max_bytes), secrets


def _shrink(value, max_str, max_list):
    if isinstance(value, dict):
        return {k: _shrink(v, max_str, max_list) for k, v in value.items()}
    if isinstance(value, list):
        out = [_shrink(v, max_str, max_list) for v in value[:max_list]]
        if len(value) > max_list:
            out.append(f"... {len(value) - max_list} more items truncated")
        return out
    if isinstance(value, str) and len(value) > max_str:
        return value[:max_str] + f"... [{len(value) - max_str} characters truncated]"
    return value


def _size(value):
    return len(canonical_json(value).encode("utf-8"))


def cap_size(details, max_bytes=DETAILS_MAX_BYTES):
    """``details`` if it serialises within ``max_bytes``, else a shrunken copy marked ``truncated``."""
    if details is None:
        return None
    size = _size(details)
    if size <= max_bytes:
        return details
    for max_str, max_list in ((8192, 200), (2048, 50), (512, 20), (128, 5)):
        shrunk = _shrink(details, max_str, max_list)
        if isinstance(shrunk, dict):
            shrunk = dict(shrunk, truncated=True, original_bytes=size)
        if _size(shrunk) <= max_bytes:
            return shrunk
    preview = canonical_json(details)[: max_bytes // 2]
    return {"truncated": True, "original_bytes": size, "preview": preview}


# --------------------------------------------------------------------------------------------
# reading: the last record (cheaply) and the whole file (verified)
# --------------------------------------------------------------------------------------------


def read_last_line(fd):
    """``(line_bytes, line_number_or_None)`` of the last line of the open file ``fd``.

    Reads backwards from the end in chunks, so appending to a long timeline stays cheap.
    Returns ``(None, None)`` for an empty file.  The returned line excludes its newline; if the
    file does not end with a newline the partial last line is returned as it is.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return None, None
    end = size
    # ignore one trailing newline
    if os.pread(fd, 1, size - 1) == b"\n":
        end = size - 1
    buf = b""
    pos = end
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        nl = buf.rfind(b"\n")
        if nl != -1:
            return buf[nl + 1 :], None
        if len(buf) > _TAIL_MAX:
            raise TimelineError(f"last line is longer than {_TAIL_MAX} bytes")
    return buf, None


def parse_line(raw, path, lineno):
    """Decode one line into a record dict, or raise ``TimelineVerifyError``."""
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TimelineVerifyError(f"{path} line {lineno}: not valid JSON ({exc})", path=path, line=lineno) from None
    if not isinstance(rec, dict):
        raise TimelineVerifyError(f"{path} line {lineno}: not a JSON object", path=path, line=lineno)
    return rec


def check_record(rec, raw, path, lineno, expected_seq, expected_prev):
    """Check one parsed record against its position in the chain; raise ``TimelineVerifyError``."""

    def fail(problem):
        raise TimelineVerifyError(
            f"{path} line {lineno}: seq {expected_seq}: {problem}", path=path, line=lineno, seq=expected_seq
        )

    seq = rec.get("seq")
    if seq != expected_seq or isinstance(seq, bool):
        fail(f"found seq {seq!r}, expected {expected_seq} (a record is missing, duplicated or out of order)")
    missing = [f for f in FIELDS if f not in rec]
    if missing:
        fail("missing field(s) {}".format(", ".join(missing)))
    extra = sorted(set(rec) - set(FIELDS))
    if extra:
        fail("unexpected field(s) {}".format(", ".join(extra)))
    if rec.get("prev_hash") != expected_prev:
        fail(
            "prev_hash {!r} does not match the hash of the previous record ({})".format(
                rec.get("prev_hash"), expected_prev
            )
        )
    if rec.get("hash") != record_hash(rec):
        fail("hash does not match the record's content (the record was modified)")
    if raw is not None and raw != canonical_json(rec).encode("utf-8"):
        fail("line is not in canonical form (the line was modified)")
    if rec.get("event") not in EVENTS:
        fail("unknown event {!r}".format(rec.get("event")))


def _open_for_read(path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise TimelineError(f"{path}: timeline file not found") from None
    except IsADirectoryError:
        raise TimelineError(f"{path}: is a directory, not a timeline file") from None
    except OSError as exc:
        raise TimelineError(f"{path}: cannot read timeline: {exc.strerror or exc}") from None


def iter_verified(path):
    """Yield the records of ``path`` in order, verifying the chain as it goes."""
    with _open_for_read(path) as fh:
        expected_prev = ZERO_HASH
        lineno = 0
        for lineno, raw in enumerate(fh, start=1):
            # a final line without newline is an interrupted write or an edit (reported below)
            raw_line = raw[:-1] if raw.endswith(b"\n") else raw
            if not raw_line.strip():
                raise TimelineVerifyError(
                    f"{path} line {lineno}: seq {lineno}: empty line", path=path, line=lineno, seq=lineno
                )
            rec = parse_line(raw_line, path, lineno)
            check_record(rec, raw_line, path, lineno, lineno, expected_prev)
            if not raw.endswith(b"\n"):
                raise TimelineVerifyError(
                    f"{path} line {lineno}: seq {lineno}: line is not terminated by a newline (interrupted write?)",
                    path=path,
                    line=lineno,
                    seq=lineno,
                )
            expected_prev = rec["hash"]
            yield rec
        if lineno == 0:
            raise TimelineError(f"{path}: timeline file is empty")


def verify_timeline(path):
    """All records of ``path``, verified; raises ``TimelineError``/``TimelineVerifyError``."""
    return list(iter_verified(path))


def load_records(path):
    """Alias of ``verify_timeline`` (the records are only ever handed out verified)."""
    return verify_timeline(path)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _open_for_append(path):
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise TimelineError(f"{path}: cannot create directory {parent}: {exc.strerror or exc}") from None
    try:
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o640)
    except OSError as exc:
        raise TimelineError(f"{path}: cannot open timeline for writing: {exc.strerror or exc}") from None


def last_record(path_or_fd, path=None):
    """The last record of a timeline (checked: valid JSON, its own hash right), or ``None``."""
    if isinstance(path_or_fd, int):
        raw, _ = read_last_line(path_or_fd)
        shown = path
    else:
        shown = path_or_fd
        try:
            fd = os.open(path_or_fd, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            raw, _ = read_last_line(fd)
        finally:
            os.close(fd)
    if raw is None:
        return None
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TimelineError(
            f"{shown}: the last line is not valid JSON; refusing to extend a damaged timeline "
            "(run playbooks/incident_report.yml to locate the damage)"
        ) from None
    if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int) or rec.get("hash") != record_hash(rec):
        raise TimelineError(
            "{}: seq {}: the last record does not match its hash; refusing to extend a damaged timeline".format(
                shown, rec.get("seq") if isinstance(rec, dict) else "?"
            )
        )
    return rec


def append_record(path, record):
    """Append ``record`` to the timeline at ``path`` and return the record as written.

    Under an exclusive ``flock`` on the file: read the last record (from the tail), set ``seq``,
    ``prev_hash``, ``ts`` (when not given) and ``hash``, write one line, flush and ``fsync``.
    Concurrent writers (several ``ansible-playbook`` runs, threads) serialise on the lock and
    the chain stays valid.  Raises ``TimelineError`` (naming ``path``) on any failure.
    """
    rec = new_record(**{k: v for k, v in record.items() if k in FIELDS})
    fd = _open_for_append(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise TimelineError(f"{path}: cannot lock timeline: {exc.strerror or exc}") from None
        try:
            prev = last_record(fd, path)
        except OSError as exc:
            raise TimelineError(f"{path}: cannot read timeline: {exc.strerror or exc}") from None
        rec["seq"] = prev["seq"] + 1 if prev else 1
        rec["prev_hash"] = prev["hash"] if prev else ZERO_HASH
        if not rec.get("ts"):
            rec["ts"] = utc_timestamp()
        rec.pop("hash", None)
        try:
            line = canonical_json(rec)
        except (TypeError, ValueError):
            rec = to_plain(rec, drop_internal=False)
            line = canonical_json(rec)
        rec["hash"] = hashlib.sha256(line.encode("utf-8")).hexdigest()
        data = (canonical_json(rec) + "\n").encode("utf-8")
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise TimelineError(f"{path}: no space left on device while appending seq {rec['seq']}") from None
            raise TimelineError(f"{path}: cannot write seq {rec['seq']}: {exc.strerror or exc}") from None
        return rec
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --------------------------------------------------------------------------------------------
# containments: what containment steps changed, and what has been released since
# --------------------------------------------------------------------------------------------


def _entries(value):
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _result_items(details):
    """The result dicts of a task record's details: the result itself, and each loop item's."""
    if not isinstance(details, dict):
        return []
    items = [details]
    if isinstance(details.get("results"), list):
        items += [r for r in details["results"] if isinstance(r, dict)]
    return items


def open_containments(records, incident_id, steps=None, resource=None):
    """The containment entries of ``incident_id`` not yet released, oldest first.

    A containment is a ``containment`` entry (or list) in the details of a changed, non-check-mode
    task record; it is released once a later record's ``release`` entry lists its ``id`` under
    ``releases``.  Failed tasks count too when they report ``changed`` (a step that failed after
    containing something still contained it).  Each returned entry gets ``seq`` and ``host``.
    """
    found = {}
    released = set()
    for rec in records:
        if rec.get("check_mode") or not str(rec.get("event", "")).startswith("task_"):
            continue
        for item in _result_items(rec.get("details")):
            for entry in _entries(item.get("release")):
                released.update(str(i) for i in entry.get("releases") or [])
            if not rec.get("changed"):
                continue
            for entry in _entries(item.get("containment")):
                if not entry.get("id") or entry.get("incident_id") != incident_id:
                    continue
                if steps and entry.get("step") not in steps:
                    continue
                if resource and entry.get("resource") != resource:
                    continue
                found.setdefault(str(entry["id"]), dict(entry, seq=rec.get("seq"), host=rec.get("host")))
    return [entry for key, entry in found.items() if key not in released]


# --------------------------------------------------------------------------------------------
# step classification (used by the report for time to containment / recovery)
# --------------------------------------------------------------------------------------------

CONTAINMENT = "containment"
RECOVERY = "recovery"

# Keyed by role name (short name; a FQCN role such as firebreak.runbooks.waf_block is looked up
# by its last component too).  Add a role here when it is added to roles/.
ROLE_KINDS = {
    # recovery
    "ecs_rollback": RECOVERY,
    "eks_rollout_undo": RECOVERY,
    "aurora_failover": RECOVERY,
    "rds_instance_failover": RECOVERY,
    "pitr_restore": RECOVERY,
    "s3_version_restore": RECOVERY,
    "lambda_alias_rollback": RECOVERY,
    "k8s_rolling_restart": RECOVERY,
    "scale_out": RECOVERY,
    # containment
    "iam_key_disable": CONTAINMENT,
    "waf_block": CONTAINMENT,
    "nacl_block": CONTAINMENT,
    "ec2_isolate": CONTAINMENT,
    "k8s_namespace_isolate": CONTAINMENT,
    "pipeline_pause": CONTAINMENT,
    "secret_rotate": CONTAINMENT,
    "alb_drain": CONTAINMENT,
}

# Keyed by module FQCN, for steps run as a bare module task outside the roles.
ACTION_KINDS = {
    "firebreak.runbooks.ecs_service_rollback": RECOVERY,
}


def classify_step(role=None, action=None):
    """``"containment"``, ``"recovery"`` or ``None`` for a task of ``role`` running ``action``."""
    if action and action in ACTION_KINDS:
        return ACTION_KINDS[action]
    if role:
        name = str(role)
        if name in ROLE_KINDS:
            return ROLE_KINDS[name]
        short = name.rsplit(".", 1)[-1]
        if short in ROLE_KINDS:
            return ROLE_KINDS[short]
    return None


def record_step_kind(rec):
    """The step kind of a timeline record (``None`` for anything but a task record)."""
    if not isinstance(rec, dict) or not str(rec.get("event", "")).startswith("task_"):
        return None
    return classify_step(rec.get("role"), rec.get("action"))


# --------------------------------------------------------------------------------------------
# the post-incident report (Markdown), rendered from verified records
# --------------------------------------------------------------------------------------------

_REPORT_JSON_MAX = 6000
_TIMELINE_MSG_MAX = 160


def format_duration(seconds):
    """``2 hours 15 minutes``, ``3 minutes 5 seconds``, ``12 seconds``, ``0.4 seconds``."""
    if seconds is None:
        return "unknown"
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f} seconds"
    seconds = round(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    for value, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")):
        if value:
            parts.append(f"{value} {unit}{'' if value == 1 else 's'}")
    if days or hours:
        parts = parts[:2]  # "2 hours 15 minutes" as in the post-mortem template
    return " ".join(parts) or "0 seconds"


def _clock(ts):
    dt = parse_timestamp(ts)
    return dt.strftime("%H:%M:%S") if dt else "??:??:??"


def _one_line(text, limit=_TIMELINE_MSG_MAX):
    if text is None:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fence(text, lang=""):
    text = str(text)
    fence = "```"
    while fence in text:
        fence += "`"
    return "{}{}\n{}\n{}".format(fence, lang, text.rstrip("\n"), fence)


def _json_block(value, limit=_REPORT_JSON_MAX):
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[:limit] + f"\n... ({len(text) - limit} more characters in the timeline record)"
    return _fence(text, "json")


def _md(text):
    """Escape the characters that would change Markdown inline rendering."""
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", str(text)) if text is not None else ""


def _code(text):
    """An inline code span (no escaping inside; longer backtick fences when needed)."""
    text = " ".join(str(text).split()) if text is not None else ""
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _operator_label(op):
    if not isinstance(op, dict):
        return str(op) if op else "unknown"
    user = op.get("user") or "unknown"
    if op.get("source") == "awx":
        label = "{} (AWX job {}".format(user, op.get("job_id") if op.get("job_id") is not None else "?")
        if op.get("job_template"):
            label += ", template {}".format(op["job_template"])
        return label + ")"
    return "{} ({})".format(user, op.get("source") or "local")


def _runs(records):
    """Group records into playbook runs: (start_record, end_record_or_None, [records])."""
    runs = []
    open_runs = {}
    for rec in records:
        key = (json.dumps(rec.get("operator"), sort_keys=True), rec.get("playbook"))
        if rec.get("event") == "playbook_start":
            run = {"start": rec, "end": None, "records": [rec]}
            runs.append(run)
            open_runs[key] = run
            continue
        run = open_runs.get(key)
        if run is None:
            continue
        run["records"].append(rec)
        if rec.get("event") == "playbook_end":
            run["end"] = rec
            del open_runs[key]
    return runs


def _diff_text(before, after):
    import difflib

    def lines(value):
        if isinstance(value, str):
            return value.splitlines()
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str).splitlines()

    return "\n".join(difflib.unified_diff(lines(before), lines(after), "before", "after", lineterm=""))


def _render_action(rec):
    out = []
    title = rec.get("task") or rec.get("action") or "task"
    out.append("### seq {} — {} UTC — {}".format(rec.get("seq"), _clock(rec.get("ts")), _md(title)))
    kind = record_step_kind(rec)
    facts = [
        "host `{}`".format(rec.get("host")) if rec.get("host") else None,
        "action `{}`".format(rec.get("action")) if rec.get("action") else None,
        "role `{}`".format(rec.get("role")) if rec.get("role") else None,
        f"step: **{kind}**" if kind else None,
        "**check mode — nothing was changed**" if rec.get("check_mode") else None,
        "**failed**" if rec.get("event") == "task_failed" else None,
        "by {}".format(_md(_operator_label(rec.get("operator")))),
    ]
    out.append("- " + " · ".join(f for f in facts if f))
    if rec.get("msg"):
        out.append("- Message: {}".format(_md(_one_line(rec.get("msg"), 500))))
    details = rec.get("details") if isinstance(rec.get("details"), dict) else {}
    shown = False
    if "before" in details or "after" in details:
        out.append("")
        out.append("Before:")
        out.append("")
        out.append(_json_block(details.get("before")))
        out.append("")
        out.append("After:")
        out.append("")
        out.append(_json_block(details.get("after")))
        shown = True
    diffs = details.get("diff")
    if diffs and not shown:
        for diff in diffs if isinstance(diffs, list) else [diffs]:
            if not isinstance(diff, dict):
                continue
            if "prepared" in diff:
                out.append("")
                out.append(_fence(diff["prepared"], "diff"))
                shown = True
            elif "before" in diff or "after" in diff:
                text = _diff_text(diff.get("before", ""), diff.get("after", ""))
                if text:
                    out.append("")
                    out.append(_fence(text, "diff"))
                    shown = True
    rest = {k: v for k, v in details.items() if k not in ("before", "after", "diff")}
    if rest:
        out.append("")
        out.append("Result:" if shown else "Result (no before/after recorded):")
        out.append("")
        out.append(_json_block(rest))
    elif not shown:
        out.append("- No before/after recorded.")
    out.append("")
    return out


def step_times(records):
    """``{"containment": rec_or_None, "recovery": rec_or_None}``: the first changed, non-check
    containment and recovery task records."""
    found = {CONTAINMENT: None, RECOVERY: None}
    for rec in records:
        if rec.get("event") not in ("task_changed", "task_failed") or not rec.get("changed") or rec.get("check_mode"):
            continue
        kind = record_step_kind(rec)
        if kind in found and found[kind] is None:
            found[kind] = rec
    return found


def render_report(records, path, last_hash=None):
    """The post-incident report (Markdown) for verified ``records`` of the timeline ``path``."""
    if not records:
        raise TimelineError(f"{path}: no records to report on")
    first, last = records[0], records[-1]
    t0, t1 = parse_timestamp(first.get("ts")), parse_timestamp(last.get("ts"))
    duration = (t1 - t0).total_seconds() if t0 and t1 else None
    incident_ids = []
    for rec in records:
        if rec.get("incident_id") and rec["incident_id"] not in incident_ids:
            incident_ids.append(rec["incident_id"])
    operators = []
    for rec in records:
        label = _operator_label(rec.get("operator"))
        if rec.get("operator") and label not in operators:
            operators.append(label)
    runs = _runs(records)
    tasks = [r for r in records if str(r.get("event", "")).startswith("task_") or r.get("event") == "host_unreachable"]
    failed = [r for r in records if r.get("event") == "task_failed"]
    failed_ignored = [r for r in failed if isinstance(r.get("details"), dict) and r["details"].get("ignore_errors")]
    unreachable = [r for r in records if r.get("event") == "host_unreachable"]
    changed = [r for r in records if r.get("changed") and str(r.get("event", "")).startswith("task_")]
    notes = [r for r in records if r.get("event") == "note"]
    severity = None
    for rec in notes:
        if isinstance(rec.get("details"), dict) and rec["details"].get("severity"):
            severity = rec["details"]["severity"]
    times = step_times(records)

    playbooks = {}
    for run in runs:
        name = run["start"].get("playbook") or "?"
        entry = playbooks.setdefault(name, {"runs": 0, "check": 0, "failed": 0, "unfinished": 0})
        entry["runs"] += 1
        if run["start"].get("check_mode"):
            entry["check"] += 1
        if run["end"] is None:
            entry["unfinished"] += 1
        elif isinstance(run["end"].get("details"), dict) and run["end"]["details"].get("outcome") == "failed":
            entry["failed"] += 1

    def since_start(rec):
        dt = parse_timestamp(rec.get("ts"))
        return format_duration((dt - t0).total_seconds()) if dt and t0 else "unknown"

    title_id = ", ".join(incident_ids) or "unknown incident"
    out = [f"# Post-incident report: {_md(title_id)}", ""]
    out.append(
        f"Rendered by `firebreak.runbooks.incident_report` from {_code(path)} ({len(records)} records, hash chain "
        "verified). Sections marked _to be completed_ are for the post-mortem meeting."
    )
    out.append("")

    # ---- Summary
    out += ["## Incident Summary", ""]
    d0 = t0.strftime("%Y-%m-%d") if t0 else "unknown"
    d1 = t1.strftime("%Y-%m-%d") if t1 else d0
    out.append(f"- **Incident**: {_md(title_id)}")
    out.append("- **Date**: %s" % (d0 if d0 == d1 else f"{d0} to {d1}"))
    out.append(
        "- **Duration**: {} (first event {} UTC to last event {} UTC)".format(
            format_duration(duration), _clock(first.get("ts")), _clock(last.get("ts"))
        )
    )
    out.append("- **Severity**: %s" % (_md(severity) if severity else "_to be completed_"))
    out.append("- **Impact**: _to be completed_")
    out.append("- **Root Cause**: _to be completed (see below)_")
    out.append("- **Operators**: %s" % (", ".join(_md(o) for o in operators) or "unknown"))
    out.append(f"- **Playbooks run**: {len(runs)} run(s)")
    for name, entry in sorted(playbooks.items()):
        flags = []
        if entry["check"]:
            flags.append(f"**{entry['check']} check-mode only (changed nothing)**")
        if entry["failed"]:
            flags.append(f"{entry['failed']} with failures")
        if entry["unfinished"]:
            flags.append(f"{entry['unfinished']} without a recorded end (interrupted or stopped)")
        out.append(f"  - {_code(name)}: {entry['runs']} run(s)" + ((" — " + ", ".join(flags)) if flags else ""))
    outcome = f"{len(tasks)} task result(s), {len(changed)} changed, {len(failed)} failed"
    if failed_ignored:
        outcome += f" ({len(failed_ignored)} ignored)"
    outcome += f", {len(unreachable)} host(s) unreachable"
    if any(e["check"] for e in playbooks.values()):
        outcome += "; check-mode runs are flagged above and count neither as containment nor as recovery"
    out.append(f"- **Outcome**: {outcome}")
    for kind, label in ((CONTAINMENT, "Time to containment"), (RECOVERY, "Time to recovery")):
        rec = times[kind]
        out.append("- **{}**: {}".format(label, since_start(rec) if rec else "not reached"))
    out.append("")

    # ---- Timeline
    out += ["## Timeline", "", "All times UTC; `#` is the record's seq.", ""]
    lines = []
    day = None
    for rec in records:
        dt = parse_timestamp(rec.get("ts"))
        if dt and dt.strftime("%Y-%m-%d") != day:
            day = dt.strftime("%Y-%m-%d")
            lines.append(f"--- {day} ---")
        event = rec.get("event")
        parts = []
        if event == "playbook_start":
            parts.append("{} started by {}".format(rec.get("playbook"), _operator_label(rec.get("operator"))))
            if rec.get("check_mode"):
                parts.append("(check mode)")
        elif event == "playbook_end":
            parts.append(_one_line(rec.get("msg")))
        elif event == "play_start":
            parts.append("play: {}".format(rec.get("play")))
        elif event == "note":
            kind = rec["details"].get("kind") if isinstance(rec.get("details"), dict) else None
            parts.append("{}: {}".format(kind or "note", _one_line(rec.get("msg"))))
        else:
            host = "[{}]".format(rec.get("host")) if rec.get("host") else ""
            parts.append("{} {}".format(host, rec.get("task") or rec.get("action") or ""))
            if rec.get("check_mode"):
                parts.append("(check mode)")
            if rec.get("msg"):
                parts.append("- " + _one_line(rec.get("msg")))
        lines.append(
            "{} UTC - #{} {} {}".format(
                _clock(rec.get("ts")), rec.get("seq"), event, " ".join(p for p in parts if p).strip()
            )
        )
    out.append(_fence("\n".join(lines)))
    out.append("")

    # ---- Actions
    out += ["## Actions", ""]
    if changed:
        out.append("Every task that reported a change, with its before/after state as recorded.")
        out.append("")
        for rec in changed:
            out += _render_action(rec)
    else:
        out.append("No task reported a change.")
        out.append("")

    # ---- Notes
    out += ["## Notes, Decisions and Communications", ""]
    if notes:
        for rec in notes:
            det = rec.get("details") if isinstance(rec.get("details"), dict) else {}
            extra = [x for x in (det.get("severity"), ("to " + det["audience"]) if det.get("audience") else None) if x]
            out.append(
                "- {} UTC — **{}**{}: {} — {}".format(
                    _clock(rec.get("ts")),
                    _md(det.get("kind") or "note"),
                    (" ({})".format(_md(", ".join(extra)))) if extra else "",
                    _md(rec.get("msg") or ""),
                    _md(_operator_label(rec.get("operator"))),
                )
            )
    else:
        out.append(
            "No notes were recorded (add them with `playbooks/incident_note.yml` or the "
            "`firebreak.runbooks.incident_note` module)."
        )
    out.append("")

    # ---- Time to containment / recovery
    out += ["## Time to Containment and Recovery", ""]
    out.append(
        "Measured from the first event ({} UTC) to the first changed, non-check-mode task of a "
        "containment or recovery step.".format(_clock(first.get("ts")))
    )
    out.append("")
    out.append("| Milestone | Time | After | Step |")
    out.append("|---|---|---|---|")
    for kind, label in ((CONTAINMENT, "Containment"), (RECOVERY, "Recovery")):
        rec = times[kind]
        if rec:
            step = "seq {}: {} ({}{}) on {}".format(
                rec.get("seq"),
                _md(rec.get("task") or ""),
                _md(rec.get("role") or ""),
                (", " if rec.get("role") else "") + _md(rec.get("action") or ""),
                _md(rec.get("host") or "-"),
            )
            out.append("| {} | {} UTC | {} | {} |".format(label, _clock(rec.get("ts")), since_start(rec), step))
        else:
            out.append(f"| {label} | not reached | - | - |")
    out.append("")

    # ---- Follow-ups
    out += ["## Follow-ups", ""]
    out += ["### Root Cause", "", "_To be completed._", ""]
    out += ["### Contributing Factors", "", "1. _To be completed._", ""]
    out += ["### What Went Well", ""]
    if times[CONTAINMENT]:
        out.append(f"- Containment reached {since_start(times[CONTAINMENT])} after the first event.")
    if times[RECOVERY]:
        out.append(f"- Recovery reached {since_start(times[RECOVERY])} after the first event.")
    out += ["- _To be completed._", ""]
    out += ["### What Didn't Go Well", ""]
    for rec in failed:
        out.append(
            "- seq {}: {} failed on {}{}: {}".format(
                rec.get("seq"),
                _code(rec.get("task") or rec.get("action") or "task"),
                _md(rec.get("host") or "-"),
                " (ignored)" if rec in failed_ignored else "",
                _md(_one_line(rec.get("msg"), 300)),
            )
        )
    for rec in unreachable:
        out.append(
            "- seq {}: host {} unreachable: {}".format(
                rec.get("seq"), _md(rec.get("host")), _md(_one_line(rec.get("msg")))
            )
        )
    out += ["- _To be completed._", ""]
    out += ["### Action Items", ""]
    for rec in failed:
        task = _code(rec.get("task") or rec.get("action") or "task")
        out.append(
            f"- [ ] Find out why {task} failed (seq {rec.get('seq')}) and fix the runbook or the system "
            "[Owner: TBD] [Due: YYYY-MM-DD]"
        )
    for rec in changed:
        if record_step_kind(rec) == CONTAINMENT and not rec.get("check_mode"):
            out.append(
                "- [ ] Release the containment applied at seq {} ({} on {}) when it is safe "
                "[Owner: TBD] [Due: YYYY-MM-DD]".format(
                    rec.get("seq"), _code(rec.get("task") or rec.get("action")), _md(rec.get("host") or "-")
                )
            )
    out.append("- [ ] _Action item_ [Owner: TBD] [Due: YYYY-MM-DD]")
    out.append("")

    # ---- Chain verification
    out += ["## Timeline Verification", ""]
    out.append(f"- **File**: {_code(path)}")
    out.append(
        f"- **Records**: {len(records)} (seq {first.get('seq')} to {last.get('seq')}), "
        "every `prev_hash` link and `hash` verified"
    )
    out.append("- **First hash**: `{}`".format(first.get("hash")))
    out.append("- **Last hash**: `%s`" % (last_hash or last.get("hash")))
    out.append("")
    out.append(
        "Re-verify at any time with {}; a record changed, removed or inserted after this report fails "
        "verification at its seq.".format(
            _code(f"ansible-playbook playbooks/incident_report.yml -e incident_timeline={path}")
        )
    )
    out.append("")
    return "\n".join(out)
