# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident timeline: record format, hash chain, redaction, locked append, verification.

Pure Python (standard library only) so the callback, the ``incident_report`` action and the
tests share one implementation::

    from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import append_record

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
import os

from ansible_collections.firebreak.runbooks.plugins.module_utils.record.redaction import (
    NO_LOG_DETAILS,
    find_secrets,
    to_plain,
)

ZERO_HASH = "0" * 64

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

# Fields a record may carry besides ``FIELDS``: ``run_id`` (the playbook run that wrote it, the same in
# its ``playbook_start`` and ``playbook_end``) and ``truncated`` (which fields were cut to their cap, with
# their original size).
OPTIONAL_FIELDS = ("run_id", "truncated")

# Size caps.  The writer cuts a field to its cap and says so in ``truncated``; the verifier refuses a
# record over any cap (no writer of this collection produces one), so both agree on what a record is.
DETAILS_MAX_BYTES = 64 * 1024  # ``details`` without its kept keys (``KEPT_DETAIL_KEYS``)
CONTAINMENT_MAX_BYTES = 512 * 1024  # ``containment`` + ``release``: kept whole, a release needs all of it
MSG_MAX_CHARS = 8 * 1024
TEXT_MAX_CHARS = 1024  # playbook, play, task, role, action, host, run_id
OPERATOR_MAX_BYTES = 2 * 1024
RECORD_MAX_BYTES = 1024 * 1024  # the whole line
TEXT_FIELDS = ("playbook", "play", "task", "role", "action", "host", "run_id")
KEPT_DETAIL_KEYS = ("containment", "release", "step_kind")

# How far back ``read_last_line`` reads in one step, and at most (a line over the record cap is damage).
_TAIL_CHUNK = 16 * 1024
_TAIL_MAX = RECORD_MAX_BYTES + 1


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


def default_path(incident_id, environ=None):
    """Where the timeline callback writes an incident's timeline without an explicit path: ``FIREBREAK_TIMELINE``,
    else ``<FIREBREAK_INCIDENTS_DIR, else incidents>/<incident_id>/timeline.jsonl`` (ansible-runner and ansible-rulebook
    runs set FIREBREAK_INCIDENTS_DIR: a relative ``incidents`` would be their temporary working directory)."""
    environ = os.environ if environ is None else environ
    if environ.get("FIREBREAK_TIMELINE"):
        return environ["FIREBREAK_TIMELINE"]
    return os.path.join(environ.get("FIREBREAK_INCIDENTS_DIR") or "incidents", str(incident_id), "timeline.jsonl")


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
    unknown = set(fields) - set(FIELDS) - set(OPTIONAL_FIELDS)
    if unknown:
        raise ValueError("unknown timeline fields: {}".format(", ".join(sorted(unknown))))
    rec = dict.fromkeys(FIELDS)
    rec.update(fields)
    return rec


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


def result_details(result, no_log=False, max_bytes=DETAILS_MAX_BYTES, extra_secrets=(), task_args=None):
    """``details`` for a task result: redacted, without Ansible internals, capped in size.

    Secrets are looked for in the task's arguments (``task_args``) and in the result, and masked
    wherever they appear.  Returns ``(details, secrets)`` where ``secrets`` are the secret values found,
    so the caller can mask them in the task name and ``msg`` too.
    """
    if no_log or not isinstance(result, dict) or result.get("_ansible_no_log") is True:
        return (dict(NO_LOG_DETAILS) if no_log or isinstance(result, dict) else None), []
    secrets = find_secrets(task_args, result)
    extra = [x for x in extra_secrets or () if isinstance(x, str) and len(x) >= 3]
    if extra:
        secrets = sorted(set(secrets) | set(extra), key=len, reverse=True)
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
    """``details`` if it serialises within its caps, else a shrunken copy marked ``truncated``.

    ``containment`` and ``release`` entries (what a containment changed, needed whole to release it)
    are kept apart from the rest, up to ``CONTAINMENT_MAX_BYTES``; everything else shares ``max_bytes``.
    """
    if details is None:
        return None
    if not isinstance(details, dict):
        return _cap_value(details, max_bytes)
    kept = {k: details[k] for k in KEPT_DETAIL_KEYS if k in details}
    rest = {k: v for k, v in details.items() if k not in kept}
    if kept and _size(kept) > CONTAINMENT_MAX_BYTES:
        rest.update(kept)  # too large to keep whole: shrunk with the rest, and marked
        kept = {}
    rest = _cap_value(rest, max_bytes)
    if not kept:
        return rest
    return dict(rest, **kept)


def _cap_value(details, max_bytes):
    size = _size(details)
    if size <= max_bytes:
        return details
    for max_str, max_list in ((8192, 200), (2048, 50), (512, 20), (128, 5)):
        shrunk = _shrink(details, max_str, max_list)
        if isinstance(shrunk, dict):
            shrunk = dict(shrunk, truncated=True, original_bytes=size)
        if _size(shrunk) <= max_bytes:
            return shrunk
    preview = canonical_json(details).encode("utf-8")[: max_bytes // 4].decode("utf-8", "ignore")
    return {"truncated": True, "original_bytes": size, "preview": preview}


def _cut(text, limit):
    return text[:limit] + f"... [truncated: {len(text) - limit} more characters]"


def cap_record(rec):
    """Cut every field of ``rec`` to its cap (in place), recording what was cut in ``truncated``."""
    cut = dict(rec.get("truncated") or {})
    for field in TEXT_FIELDS:
        value = rec.get(field)
        if isinstance(value, str) and len(value) > TEXT_MAX_CHARS:
            cut[field] = len(value)
            rec[field] = _cut(value, TEXT_MAX_CHARS)
    msg = rec.get("msg")
    if isinstance(msg, str) and len(msg) > MSG_MAX_CHARS:
        cut["msg"] = len(msg)
        rec["msg"] = _cut(msg, MSG_MAX_CHARS)
    if rec.get("operator") is not None and _size(rec["operator"]) > OPERATOR_MAX_BYTES:
        cut["operator"] = _size(rec["operator"])
        rec["operator"] = _shrink(rec["operator"], 256, 8)
    if rec.get("details") is not None and _details_size(rec["details"]) > DETAILS_MAX_BYTES:
        before = _size(rec["details"])
        rec["details"] = cap_size(rec["details"])
        if _size(rec["details"]) != before:
            cut["details"] = before
    if cut:
        rec["truncated"] = cut
    return rec


def _details_size(details):
    if isinstance(details, dict):
        return _size({k: v for k, v in details.items() if k not in KEPT_DETAIL_KEYS})
    return _size(details)


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
            buf = buf[nl + 1 :]
            break
        if len(buf) > _TAIL_MAX:
            break
    if len(buf) > RECORD_MAX_BYTES:
        raise TimelineError(
            f"the last line is longer than the {RECORD_MAX_BYTES}-byte record cap, so no writer of this "
            "collection wrote it (damage or tampering); refusing to extend the timeline "
            "(run playbooks/incident_report.yml to locate the damage)"
        )
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


# a cut field ends with "... [truncated: N more characters]": allow for the marker
_MARKER_SLACK = 64


def over_caps(rec, raw=None):
    """The name of the first field of ``rec`` over its size cap (``"record"`` for the whole line), or None."""
    if raw is not None and len(raw) > RECORD_MAX_BYTES:
        return "record"
    for field in TEXT_FIELDS:
        if isinstance(rec.get(field), str) and len(rec[field]) > TEXT_MAX_CHARS + _MARKER_SLACK:
            return field
    if isinstance(rec.get("msg"), str) and len(rec["msg"]) > MSG_MAX_CHARS + _MARKER_SLACK:
        return "msg"
    details = rec.get("details")
    if details is not None:
        if _details_size(details) > DETAILS_MAX_BYTES + _MARKER_SLACK:
            return "details"
        if isinstance(details, dict):
            kept = {k: details[k] for k in KEPT_DETAIL_KEYS if k in details}
            if kept and _size(kept) > CONTAINMENT_MAX_BYTES:
                return "details.containment"
    if rec.get("operator") is not None and _size(rec["operator"]) > OPERATOR_MAX_BYTES + _MARKER_SLACK:
        return "operator"
    return None


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
    extra = sorted(set(rec) - set(FIELDS) - set(OPTIONAL_FIELDS))
    if extra:
        fail("unexpected field(s) {}".format(", ".join(extra)))
    over = over_caps(rec, raw)
    if over:
        fail(f"{over}: over its size cap, so not written by this collection's writer (damage or tampering)")
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


def _settled_lines(fh):
    """The lines of ``fh`` up to its size as seen under a shared ``flock``: what a writer had finished when the read
    began.  A writer appends under the exclusive lock, and a reader without it could meet a record half copied into
    the file (a page of it visible, the rest not yet) and report a torn last line that is not there; the records
    appended after this point are left for the next read."""
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
        try:
            end = os.fstat(fh.fileno()).st_size
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError:
        end = None
    pos = 0
    for raw in fh:
        if end is not None:
            if pos >= end:
                return
            raw = raw[: end - pos]
        pos += len(raw)
        yield raw


def iter_verified(path):
    """Yield the records of ``path`` in order, verifying the chain as it goes (the records written when the read
    began: a concurrent writer's record is either whole or not there)."""
    with _open_for_read(path) as fh:
        expected_prev = ZERO_HASH
        lineno = 0
        for lineno, raw in enumerate(_settled_lines(fh), start=1):
            # a final line without newline is an interrupted write or an edit (reported below)
            raw_line = raw[:-1] if raw.endswith(b"\n") else raw
            if not raw_line.strip():
                raise TimelineVerifyError(
                    f"{path} line {lineno}: seq {lineno}: empty line", path=path, line=lineno, seq=lineno
                )
            if len(raw_line) > RECORD_MAX_BYTES:
                raise TimelineVerifyError(
                    f"{path} line {lineno}: seq {lineno}: record: over its size cap ({len(raw_line)} bytes > "
                    f"{RECORD_MAX_BYTES}), so not written by this collection's writer (damage or tampering)",
                    path=path,
                    line=lineno,
                    seq=lineno,
                )
            try:
                rec = parse_line(raw_line, path, lineno)
            except TimelineVerifyError as exc:
                if not raw.endswith(b"\n"):
                    raise TimelineVerifyError(
                        f"{path} line {lineno}: seq {lineno}: the last line is incomplete and not terminated by a "
                        "newline (an interrupted write?)",
                        path=path,
                        line=lineno,
                        seq=lineno,
                    ) from None
                raise exc from None
            # a final record that lost only its newline (a copy) is still a complete, verified record;
            # the writer restores the newline before it appends
            check_record(rec, raw_line, path, lineno, lineno, expected_prev)
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
    """Open ``path`` for appending, never through a symbolic link (a dangling link would create a file
    elsewhere; a link to another incident's timeline would mix two incidents)."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise TimelineError(f"{path}: cannot create directory {parent}: {exc.strerror or exc}") from None
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o640)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            target = os.readlink(path) if os.path.islink(path) else "?"
            raise TimelineError(
                f"{path}: is a symbolic link (to {target}); refusing to follow it. Give the real timeline file "
                "(option path / FIREBREAK_TIMELINE), or remove the link"
            ) from None
        raise TimelineError(f"{path}: cannot open timeline for writing: {exc.strerror or exc}") from None
    if not _is_regular(fd):
        os.close(fd)
        raise TimelineError(f"{path}: is not a regular file; refusing to write the timeline there")
    return fd


def _is_regular(fd):
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def read_first_line(fd):
    """The first line of the open file ``fd`` (without its newline), read in chunks up to the record cap."""
    buf = b""
    pos = 0
    while len(buf) <= _TAIL_MAX:
        chunk = os.pread(fd, _TAIL_CHUNK, pos)
        if not chunk:
            return buf or None
        nl = chunk.find(b"\n")
        if nl != -1:
            return buf + chunk[:nl]
        buf += chunk
        pos += len(chunk)
    raise TimelineError(f"the first line is longer than the {RECORD_MAX_BYTES}-byte record cap")


def timeline_incident(path_or_fd, path=None):
    """The incident id of a timeline's first record (``None`` for an empty or missing file)."""
    if isinstance(path_or_fd, int):
        raw, shown = read_first_line(path_or_fd), path
    else:
        shown = path_or_fd
        try:
            fd = os.open(path_or_fd, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            raw = read_first_line(fd)
        finally:
            os.close(fd)
    if not raw:
        return None
    try:
        first = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TimelineError(f"{shown}: the first line is not valid JSON; this is not an intact timeline") from None
    return first.get("incident_id") if isinstance(first, dict) else None


def last_record(path_or_fd, path=None):
    """The last record of a timeline (checked: valid JSON, its own hash right), or ``None``."""
    if isinstance(path_or_fd, int):
        shown = path
        try:
            raw, _ = read_last_line(path_or_fd)
        except TimelineError as exc:
            raise TimelineError(f"{shown}: {exc}") from None
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
            f"{shown}: the last line is not valid JSON (a torn write, or a copy that lost the end of the file); "
            "refusing to extend a damaged timeline (run playbooks/incident_report.yml to locate the damage)"
        ) from None
    if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int) or rec.get("hash") != record_hash(rec):
        raise TimelineError(
            "{}: seq {}: the last record does not match its hash; refusing to extend a damaged timeline".format(
                shown, rec.get("seq") if isinstance(rec, dict) else "?"
            )
        )
    return rec


def append_record(path, record, expect_incident=None, durable=None):
    """Append ``record`` to the timeline at ``path`` and return the record as written.

    Under an exclusive ``flock`` on the file: read the last record (from the tail), set ``seq``,
    ``prev_hash``, ``ts`` (when not given) and ``hash``, cut every field to its cap, write one line,
    flush and ``fsync``.  Concurrent writers (several ``ansible-playbook`` runs, threads) serialise on the
    lock and the chain stays valid.

    All or nothing: a write that fails part-way (a full disk) is truncated back to the previous end
    before the error is raised, so the file always ends on a complete record.  A last record that lost
    only its newline (a copy) gets it back first; any other damaged tail is refused.  The file is never
    opened through a symbolic link; with ``expect_incident`` an existing file whose first record belongs
    to another incident is refused.  Raises ``TimelineError`` (naming ``path``) on any failure.

    ``durable`` (a ``record.durable.DurableTimeline``): the record is also written through to the incident's
    durable copy in S3, by a conditional write of its sequence number, before it is appended here; a
    writer that finds the number taken (another job of the incident) first copies the records it lacks from
    the bucket into this file and takes the next number.  A failed write-through never fails the append:
    the record is kept here, and a ``note`` saying that the durable copy is incomplete follows it (once per
    failure); the records the bucket lacks are copied there when it answers again (docs/timeline.md).
    """
    rec = new_record(**{k: v for k, v in record.items() if k in FIELDS or k in OPTIONAL_FIELDS})
    fd = _open_for_append(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise TimelineError(f"{path}: cannot lock timeline: {exc.strerror or exc}") from None
        state = _tail_state(fd, path, expect_incident)
        if durable is not None and durable.active():
            return _append_durably(fd, path, rec, state, durable)
        return _append_here(fd, path, rec, state)
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class _Tail:
    """Where the locked file ends: its size, its last record, whether that record lost its newline."""

    def __init__(self, end, prev, lost_newline):
        self.end = end
        self.prev = prev
        self.lost_newline = lost_newline

    @property
    def seq(self):
        return self.prev["seq"] if self.prev else 0

    @property
    def hash(self):
        return self.prev["hash"] if self.prev else ZERO_HASH


def _tail_state(fd, path, expect_incident=None):
    try:
        end = os.fstat(fd).st_size
        prev = last_record(fd, path)
        lost_newline = end > 0 and os.pread(fd, 1, end - 1) != b"\n"
        owner = timeline_incident(fd, path) if expect_incident and end else None
    except OSError as exc:
        raise TimelineError(f"{path}: cannot read timeline: {exc.strerror or exc}") from None
    if owner is not None and owner != expect_incident:
        raise TimelineError(
            f"{path}: this timeline belongs to incident {owner!r} (its first record), not {expect_incident!r}; "
            "refusing to mix two incidents in one file. Check the incident id, or give this incident its "
            "own timeline (option path / FIREBREAK_TIMELINE)"
        )
    return _Tail(end, prev, lost_newline)


def _build(template, tail):
    """The record ``template`` as the next one after ``tail``: ``(record, line_bytes_with_newline)``."""
    rec = dict(template)
    rec["seq"] = tail.seq + 1
    rec["prev_hash"] = tail.hash
    if not rec.get("ts"):
        rec["ts"] = utc_timestamp()
    elif tail.prev and isinstance(tail.prev.get("ts"), str) and str(rec["ts"]) < tail.prev["ts"]:
        # a record of work done earlier in the same task (the frame's declaration, docs/frame.md) keeps its own
        # time, but never one before the file's last record: ts does not go backwards within the file
        rec["ts"] = tail.prev["ts"]
    rec.pop("hash", None)
    try:
        canonical_json(rec)
    except (TypeError, ValueError):
        rec = to_plain(rec, drop_internal=False)
    cap_record(rec)
    line = canonical_json(rec)
    rec["hash"] = hashlib.sha256(line.encode("utf-8")).hexdigest()
    return rec, (canonical_json(rec) + "\n").encode("utf-8")


def _write_line(fd, path, tail, data, rec):
    """Append one record's line after ``tail`` (restoring a lost newline first); the new tail."""
    if tail.lost_newline:
        data = b"\n" + data
    _write_all_or_nothing(fd, path, data, tail.end, rec["seq"])
    return _Tail(tail.end + len(data), rec, False)


def _append_here(fd, path, template, tail):
    rec, data = _build(template, tail)
    _write_line(fd, path, tail, data, rec)
    return rec


def _append_durably(fd, path, template, tail, durable):
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record.durable import DurableError

    try:
        durable.check_bucket()
        if not durable.synced:
            tail = _reconcile(fd, path, tail, durable)
            durable.synced = True
        for _attempt in range(durable.max_conflicts + 1):
            rec, data = _build(template, tail)
            if durable.put(rec["seq"], data):
                durable.recovered()
                _write_line(fd, path, tail, data, rec)
                return rec
            # another writer holds this number: take what it wrote, then try the next one
            tail = _pull(fd, path, tail, durable)
        raise DurableError(
            f"{durable.location}: lost the next sequence number to other writers {durable.max_conflicts + 1} "
            "times in a row"
        )
    except DurableError as exc:
        durable.fail(exc)
        tail = _tail_state(fd, path)  # records copied in before the failure are part of the file now
        rec, data = _build(template, tail)
        tail = _write_line(fd, path, tail, data, rec)
        if not durable.noted:
            note = dict(
                template,
                event="note",
                task=None,
                role=None,
                action=None,
                host=None,
                changed=False,
                ts=None,
                msg=f"the durable copy of this timeline ({durable.location}) is incomplete from seq {rec['seq']}: "
                f"{exc}. The records are kept in this file; they are copied to the bucket when it answers again "
                "(keep this file until then: an AWX job's container is thrown away when the job ends)",
                details={
                    "kind": "status",
                    "durable": {"kept": False, "location": durable.location, "from_seq": rec["seq"]},
                },
            )
            note.pop("truncated", None)
            built, data = _build(note, tail)
            _write_line(fd, path, tail, data, built)
            durable.noted = True
            durable.warnings.append(built["msg"])
        return rec


def _pull(fd, path, tail, durable):
    """Append to the local file the records the durable copy holds after ``tail``, each checked to continue
    the chain; the new tail."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record.durable import DurableFork

    try:
        stored = durable.read_after(tail.seq, tail.hash, _check_stored)
    except TimelineVerifyError as exc:
        raise DurableFork(
            f"{exc}: the durable copy does not continue this file's chain (seq {tail.seq}, hash {tail.hash[:12]}...); "
            "the two copies have forked"
        ) from None
    for raw, rec in stored:
        tail = _write_line(fd, path, tail, raw + b"\n", rec)
    return tail


def _check_stored(rec, raw, where, seq, expected_prev):
    check_record(rec, raw, where, 1, seq, expected_prev)


def _reconcile(fd, path, tail, durable):
    """Bring the local file and the durable copy level once per process: copy in what the bucket holds
    beyond the file (the next job of the incident, in an empty container), copy out what the file holds
    beyond the bucket (records kept here while the bucket did not answer)."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record.durable import DurableFork

    head = durable.head()
    if head >= tail.seq and tail.seq:
        stored = durable.get(tail.seq)
        if stored is not None and stored.rstrip(b"\n") != canonical_json(tail.prev).encode("utf-8"):
            raise DurableFork(
                f"{durable.uri(tail.seq)} holds another record than {path} at seq {tail.seq}: the local file and "
                "the durable copy have forked"
            )
    if head > tail.seq:
        return _pull(fd, path, tail, durable)
    if head < tail.seq:
        lines = list(_local_lines_after(fd, max(head - 1, 0)))
        if head:
            stored = durable.get(head)
            if stored is None or stored.rstrip(b"\n") != lines[0]:
                raise DurableFork(
                    f"{durable.uri(head)} holds another record than {path} at seq {head}: the local file and the "
                    "durable copy have forked"
                )
            lines = lines[1:]
        for raw in lines:
            seq = json.loads(raw.decode("utf-8"))["seq"]
            if not durable.put(seq, raw + b"\n"):
                stored = durable.get(seq)
                if stored is None or stored.rstrip(b"\n") != raw:
                    raise DurableFork(
                        f"{durable.uri(seq)} holds another record than {path} at seq {seq}: the local file and "
                        "the durable copy have forked"
                    )
    return tail


def _local_lines_after(fd, seq):
    """The raw lines (without newline) of the local file after its ``seq``-th line."""
    with os.fdopen(os.dup(fd), "rb") as fh:
        fh.seek(0)
        for number, raw in enumerate(fh, start=1):
            if number > seq:
                yield raw.rstrip(b"\n")


def _write_all_or_nothing(fd, path, data, end, seq):
    """Write ``data`` at the end of ``fd`` and fsync; on failure truncate back to ``end`` and raise."""
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except OSError as exc:
        why = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        try:
            os.ftruncate(fd, end)
            os.fsync(fd)
        except OSError as undo:
            raise TimelineError(
                f"{path}: {why} while appending seq {seq}, and the partial write could not be undone "
                f"({undo.strerror or undo}): the file may end in a torn line; truncate it to {end} bytes "
                "once there is space"
            ) from None
        raise TimelineError(
            f"{path}: {why} while appending seq {seq}; the partial write was undone (the file still ends on "
            f"seq {seq - 1}), free space and run again"
        ) from None


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
MITIGATION = "mitigation"
RECOVERY = "recovery"
EVIDENCE = "evidence"
VERIFICATION = "verification"
STEP_KINDS = (CONTAINMENT, MITIGATION, RECOVERY, EVIDENCE, VERIFICATION)


def result_step_kind(details):
    """The ``step_kind`` a step module put in its result (``details`` of a task record), or of the first
    loop item that has one.  A record written before step results carried it counts as containment
    when it holds a ``containment`` entry; anything else is ``None`` (not a step)."""
    items = _result_items(details)
    for item in items:
        if item.get("step_kind") in STEP_KINDS:
            return item["step_kind"]
    if any(_entries(item.get("containment")) for item in items):
        return CONTAINMENT
    return None


def record_step_kind(rec):
    """The step kind of a timeline record (``None`` for anything but a step's task record)."""
    if not isinstance(rec, dict) or not str(rec.get("event", "")).startswith("task_"):
        return None
    return result_step_kind(rec.get("details"))
