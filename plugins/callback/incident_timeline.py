# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: incident_timeline
type: notification
short_description: Record every playbook event in a tamper-evident incident timeline
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Appends one JSON object per event (playbook and play start, every task result per host, notes,
    playbook end) to the incident's timeline file, a JSON Lines file shared by every run of the incident.
  - Each record carries C(seq), a UTC timestamp, the incident id, the operator (the OS user, or AWX's job user
    and job id), the redacted result in C(details), and a SHA-256 hash chain (C(prev_hash), C(hash)) so that
    any edit, insertion or removal is detected by C(playbooks/incident_report.yml).
  - Secrets are not recorded. A C(no_log) task contributes neither arguments nor result; values under keys
    that look secret (password, secret, token, private key, session, ...) are masked everywhere.
  - Records are appended under an exclusive lock, flushed and fsynced, so concurrent runs and forks writing
    one timeline lose nothing. A timeline that cannot be written stops the run with a non-zero exit code.
  - Tasks running M(firebreak.runbooks.incident_note) are recorded as C(note) events.
  - A play that sets the variable C(firebreak_timeline_skip=true) is not recorded (the report playbook uses it
    so that reporting on a timeline never appends to it).
  - This is a notification callback; it runs beside any stdout callback, AWX's included. Enable it with
    C(callbacks_enabled = firebreak.runbooks.incident_timeline).
requirements:
  - enable in configuration (C(callbacks_enabled))
  - a POSIX system (C(fcntl.flock))
options:
  path:
    description:
      - The timeline file. Parent directories are created.
      - Defaults to C(<incidents_dir>/<incident_id>/timeline.jsonl).
    type: path
    env:
      - name: FIREBREAK_TIMELINE
    ini:
      - section: callback_incident_timeline
        key: path
  incidents_dir:
    description:
      - The directory of the incidents, for the default O(path).
      - Relative to the current directory. Runs that start elsewhere (ansible-runner, hence ansible-rulebook,
        runs playbooks in a temporary directory) must set it to an absolute path.
    type: path
    default: incidents
    env:
      - name: FIREBREAK_INCIDENTS_DIR
    ini:
      - section: callback_incident_timeline
        key: incidents_dir
    version_added: 0.1.0
  incident_id:
    description:
      - The incident id recorded in every record (and used in the default O(path)).
      - The extra variable C(incident_id) takes precedence over this option.
      - When neither is set, an id such as C(INC-20251227-140000-1a2b) is generated and printed.
    type: str
    env:
      - name: FIREBREAK_INCIDENT_ID
    ini:
      - section: callback_incident_timeline
        key: incident_id
  durable:
    description:
      - Keep the timeline in the evidence bucket as well. The bucket is the variable C(firebreak_evidence_bucket)
        (from the extra vars or the inventory's C(localhost)), else the environment variable
        C(FIREBREAK_EVIDENCE_BUCKET).
      - Every record is written through to C(s3://<bucket>/firebreak/timelines/<incident_id>/<seq>.json) as the
        run goes, by a conditional write, and a run whose local file lacks records (the next AWX job, in an
        empty container) continues the chain from there.
      - A failed write-through does not stop the run; the timeline notes it, and the records are copied when
        the bucket answers again.
      - Set to false to keep the timeline in the local file only.
    type: bool
    default: true
    env:
      - name: FIREBREAK_TIMELINE_DURABLE
    ini:
      - section: callback_incident_timeline
        key: durable
    version_added: 0.1.0
notes:
  - The record format, the hash chain and how to verify it are described in C(docs/timeline.md).
"""

import datetime
import getpass
import os
import secrets
import threading
import unicodedata

from ansible import context
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.callback import CallbackBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import durable as durable_copy
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.redaction import scrub_text, to_plain
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import (
    TimelineError,
    append_record,
    new_record,
    result_details,
)

try:
    from ansible.utils.vars import load_extra_vars
except ImportError:  # pragma: no cover
    load_extra_vars = None

NOTE_ACTIONS = frozenset(("firebreak.runbooks.incident_note", "incident_note"))
SKIP_VAR = "firebreak_timeline_skip"
# A fan-out target's identity in ``details.target`` (docs/frame.md, Fan-out): the host fact ``firebreak_target``
# (role aws_target_session), else these inventory host variables.
TARGET_KEYS = ("account_id", "region", "cluster", "session_name")
TARGET_VARS = {
    "account_id": "firebreak_aws_account_id",
    "region": "firebreak_aws_region",
    "cluster": "firebreak_eks_cluster",
}
# The id names a directory in the default path: no separators, no "..", nothing invisible.
INCIDENT_ID_MAX_CHARS = 128
INCIDENT_ID_MAX_BYTES = 255  # NAME_MAX: one directory name
INCIDENT_ID_HELP = (
    "pass the incident id with -e incident_id=INC-2026-042 (or export FIREBREAK_INCIDENT_ID=INC-2026-042); "
    "to open a new incident, leave both unset and one is generated"
)
# Exit status when the timeline cannot be written (ansible-playbook's own generic error status).
EXIT_TIMELINE_UNWRITABLE = 1


def incident_id_problem(value):
    """Why ``value`` cannot be an incident id (it names a directory), or None when it can."""
    if value is None or not str(value).strip():
        return "is empty (an unset shell variable?); refusing to start a new incident silently"
    text = str(value).strip()
    if text in (".", "..") or "/" in text or "\\" in text:
        return "names a directory: no '/', '\\', '.' or '..'"
    bad = [
        ch for ch in text if not ch.isprintable() or unicodedata.category(ch) in ("Cf", "Cc", "Co", "Cs", "Zl", "Zp")
    ]
    if bad:
        names = ", ".join(sorted({f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}" for ch in bad}))
        return f"contains invisible or bidirectional-control characters ({names})"
    if len(text) > INCIDENT_ID_MAX_CHARS or len(text.encode("utf-8")) > INCIDENT_ID_MAX_BYTES:
        return (
            f"is too long ({len(text)} characters, {len(text.encode('utf-8'))} bytes): at most "
            f"{INCIDENT_ID_MAX_CHARS} characters and {INCIDENT_ID_MAX_BYTES} bytes, as it names a directory"
        )
    return None


class TimelineStop(SystemExit):
    """Stops ansible-playbook when the timeline cannot be written.

    ``TaskQueueManager.send_callback`` turns every ``Exception`` raised by a callback into a warning
    and carries on, which would leave a silent gap in the incident record.  ``SystemExit`` is not an
    ``Exception``: it passes through the strategy, the task queue manager (whose ``finally`` blocks
    still stop the workers) and ``CLI.cli_executor``, and the interpreter exits with status 1 after
    printing the message.
    """


def _boolish(value):
    try:
        return boolean(value, strict=False)
    except (TypeError, ValueError):
        return False


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "firebreak.runbooks.incident_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._path = None
        self._incident_id = None
        self._operator = None
        self._extra_vars = None
        self._playbook = None
        self._play = None
        self._play_check_mode = None
        self._skip_run = False
        self._skip_play = False
        self._stopped = None
        self._unrecorded = []
        self._run_id = None
        self._targets = {}
        self._durable = None

    # ------------------------------------------------------------------ setup

    def _load_extra_vars(self, loader=None):
        if self._extra_vars is None:
            extra = {}
            if load_extra_vars is not None and loader is not None:
                try:
                    extra = dict(load_extra_vars(loader))
                except Exception as exc:  # an unreadable -e file already fails the run elsewhere
                    self._display.vvv(f"incident_timeline: could not read extra vars: {exc}")
            self._extra_vars = extra
        return self._extra_vars

    def _resolve_incident_id(self, extra):
        if self._incident_id:
            return self._incident_id
        # an extra var or an environment variable that is present but empty is an error (an unset shell
        # variable), never a reason to open a new incident
        if "incident_id" in extra:
            value, source = extra.get("incident_id"), "extra var incident_id"
        elif "FIREBREAK_INCIDENT_ID" in os.environ:
            value, source = os.environ["FIREBREAK_INCIDENT_ID"], "FIREBREAK_INCIDENT_ID"
        else:
            value, source = self.get_option("incident_id"), "[callback_incident_timeline] incident_id"
            if value in (None, ""):
                now = datetime.datetime.now(datetime.UTC)
                value = f"INC-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
                self._display.display(
                    f"incident_timeline: no incident_id given, generated {value} "
                    f"(pass -e incident_id={value} to add later runs to this incident)",
                    stderr=True,
                )
                source = "generated"
        problem = incident_id_problem(value)
        if problem:
            self._stop(f"incident id {value!r} (from {source}) {problem}: {INCIDENT_ID_HELP}", path=self._path)
        self._incident_id = str(value).strip()
        return self._incident_id

    def _resolve_operator(self, extra):
        user = extra.get("awx_user_name") or extra.get("tower_user_name")
        job_id = extra.get("awx_job_id", extra.get("tower_job_id"))
        if user or job_id is not None:
            op = {"user": str(user) if user else None, "source": "awx"}
            op["job_id"] = job_id if isinstance(job_id, int) else (str(job_id) if job_id is not None else None)
            template = extra.get("awx_job_template_name") or extra.get("tower_job_template_name")
            op["job_template"] = str(template) if template else None
            return to_plain(op)
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return {"user": user, "source": "local"}

    def _resolve_path(self):
        path = self.get_option("path")
        if not path:
            incident_dir = os.path.join(self.get_option("incidents_dir") or "incidents", self._incident_id)
            if os.path.islink(incident_dir):
                self._stop(
                    f"{os.path.abspath(incident_dir)} is a symbolic link (to {os.readlink(incident_dir)}); refusing "
                    "to follow it: the timeline would be written outside incidents/ or into another incident"
                )
            path = os.path.join(incident_dir, "timeline.jsonl")
        return os.path.abspath(os.path.expanduser(str(path)))

    @staticmethod
    def _playbook_name(playbook):
        name = getattr(playbook, "_file_name", None)
        if not name:
            return None
        name = str(name)
        try:
            rel = os.path.relpath(os.path.abspath(name))
            if not rel.startswith(".."):
                return rel
        except ValueError:
            pass
        return name

    # ------------------------------------------------------------------ writing

    def _stop(self, problem, path=None, unrecorded=None, defer=False):
        where = path or self._path or "(timeline path not resolved)"
        if where not in problem:
            problem = f"{where}: {problem}"
        if unrecorded:
            self._unrecorded.append(unrecorded)
        self._stopped = f"[ERROR]: incident_timeline: cannot write the incident timeline: {problem}\n"
        if not defer and threading.current_thread() is threading.main_thread():
            raise TimelineStop(self._stop_message())
        # A task result (several hosts' results of one task arrive one after the other), or a callback run
        # off the main thread, where SystemExit would only end the thread: report now, keep collecting
        # what cannot be recorded, and stop at the next task's start (or the end of the run), naming every
        # unrecorded result.  No further task starts before that.
        self._display.error(
            f"incident_timeline: cannot write the incident timeline: {problem}; stopping before the next task"
        )

    def _stop_message(self):
        message = self._stopped
        if self._unrecorded:
            message += "Not recorded ({}): {}. Add them by hand (playbooks/incident_note.yml) once fixed.\n".format(
                len(self._unrecorded), "; ".join(self._unrecorded)
            )
        return message + (
            "Stopping the run: a silent gap in the incident record is worse than a stop. "
            "Fix the timeline (option path / FIREBREAK_TIMELINE) and run again."
        )

    def _raise_if_stopped(self):
        if self._stopped and threading.current_thread() is threading.main_thread():
            raise TimelineStop(self._stop_message())

    def _write(self, defer=False, **fields):
        if self._stopped:
            if not defer and threading.current_thread() is threading.main_thread():
                raise TimelineStop(self._stop_message())
            self._unrecorded.append(self._describe(fields))
            return None
        if self._skip_run or self._path is None:
            return None
        rec = new_record(
            incident_id=self._incident_id,
            operator=self._operator,
            playbook=self._playbook,
            run_id=self._run_id,
            **fields,
        )
        try:
            with self._lock:
                written = append_record(self._path, rec, expect_incident=self._incident_id, durable=self._durable)
                self._durable_warnings()
                return written
        except TimelineError as exc:
            self._stop(str(exc), unrecorded=self._describe(rec), defer=defer)
        except Exception as exc:  # anything else is a gap in the record too
            self._stop(f"{type(exc).__name__}: {exc}", unrecorded=self._describe(rec), defer=defer)
        return None

    def _durable_warnings(self):
        if self._durable is not None and self._durable.warnings:
            for message in self._durable.warnings:
                self._display.warning(f"incident_timeline: {message}")
            del self._durable.warnings[:]

    # ------------------------------------------------------------------ the durable copy

    def _setup_durable(self, playbook, extra):
        """The write-through to the evidence bucket, when one is configured (docs/timeline.md, Durable copy)."""
        if not _boolish(self.get_option("durable")):
            return None
        settings = self._controller_vars(
            playbook,
            extra,
            (
                "firebreak_evidence_bucket",
                "firebreak_aws_endpoint_url",
                "firebreak_aws_region",
                "firebreak_require_local_endpoints",
                "firebreak_seal_retention_days",
            ),
        )
        bucket = settings.get("firebreak_evidence_bucket")
        if bucket is None:
            bucket = os.environ.get("FIREBREAK_EVIDENCE_BUCKET")
        bucket = str(bucket or "").strip()
        if not bucket:
            return None
        endpoint = str(settings.get("firebreak_aws_endpoint_url") or os.environ.get("FIREBREAK_AWS_ENDPOINT_URL") or "")
        region = str(settings.get("firebreak_aws_region") or os.environ.get("AWS_REGION") or "") or None
        try:
            days = int(settings.get("firebreak_seal_retention_days") or 365)
        except (TypeError, ValueError):
            days = 365
        if _boolish(settings.get("firebreak_require_local_endpoints")) and not durable_copy.is_local_endpoint(endpoint):
            # a configuration that forbids the bucket, not a failed write: said once, nothing noted in the timeline
            self._display.warning(
                f"incident_timeline: the timeline is kept in {self._path or 'the local file'} only, not in the "
                f"evidence bucket {bucket!r}: the inventory requires local endpoints "
                f"(firebreak_require_local_endpoints) but the AWS endpoint is {endpoint!r} "
                "(start the sandbox, or set -e firebreak_evidence_bucket='')"
            )
            return None
        return durable_copy.open_durable(bucket, self._incident_id, endpoint, region, days)

    def _controller_vars(self, playbook, extra, names):
        """``names`` from the extra vars, else from the inventory variables of ``localhost`` (templated), as the
        first play sees them.  Anything that cannot be read is left out."""
        found = {name: extra[name] for name in names if name in extra}
        missing = [name for name in names if name not in found]
        if not missing:
            return found
        try:
            from ansible.template import Templar

            plays = list(playbook.get_plays())
            play = plays[0]
            manager = play._variable_manager
            host = manager._inventory.get_host("localhost")
            variables = manager.get_vars(play=play, host=host, include_hostvars=False)
            templar = Templar(loader=playbook._loader, variables=variables)
            for name in missing:
                if name in variables:
                    found[name] = templar.template(variables[name])
        except Exception as exc:  # a variable that cannot be templated here: the bucket is then not used
            self._display.vvv(f"incident_timeline: could not read the inventory's variables: {exc}")
        return found

    @staticmethod
    def _describe(rec):
        what = rec.get("event") or "event"
        if rec.get("task"):
            what += f" of task {rec['task']!r}"
        if rec.get("host"):
            what += f" on {rec['host']}"
        if rec.get("changed"):
            what += " (changed)"
        return what

    # ------------------------------------------------------------------ playbook and play

    def v2_playbook_on_start(self, playbook):
        self._raise_if_stopped()
        plays = list(playbook.get_plays())
        self._skip_run = bool(plays) and all(_boolish((p.vars or {}).get(SKIP_VAR)) for p in plays)
        if self._skip_run:
            self._display.vv(f"incident_timeline: every play sets {SKIP_VAR}, not recording this run")
            return
        extra = self._load_extra_vars(getattr(playbook, "_loader", None))
        try:
            self._path = self._path or self._configured_path()
            self._resolve_incident_id(extra)
            self._path = self._resolve_path()
            self._operator = self._resolve_operator(extra)
            if self._durable is None:
                try:
                    self._durable = self._setup_durable(playbook, extra)
                except Exception as exc:  # the durable copy is never a reason to stop: said, and the file kept
                    self._display.warning(
                        f"incident_timeline: the timeline is kept in the local file only, not in the evidence "
                        f"bucket: {type(exc).__name__}: {exc}"
                    )
        except TimelineStop:
            raise
        except Exception as exc:  # stop rather than run unrecorded
            self._stop(f"{type(exc).__name__}: {exc}")
        self._playbook = self._playbook_name(playbook)
        self._run_id = f"{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%S}-{os.getpid()}-{secrets.token_hex(4)}"
        self._display.v(
            f"incident_timeline: incident {self._incident_id} -> {self._path}"
            + (f" and {self._durable.location}" if self._durable is not None else "")
        )
        cli = context.CLIARGS
        details = {
            "check": bool(cli.get("check")),
            "diff": bool(cli.get("diff")),
            "limit": cli.get("subset") or None,
            "tags": [t for t in cli.get("tags") or () if t != "all"] or None,
            "skip_tags": list(cli.get("skip_tags") or ()) or None,
            "extra_vars": sorted(str(k) for k in extra) or None,
        }
        self._write(
            event="playbook_start",
            check_mode=bool(cli.get("check")),
            msg="playbook %s started" % (self._playbook or "?"),
            details=to_plain(details),
        )

    def _configured_path(self):
        # the configured path is known before the incident id (used in error messages)
        path = self.get_option("path")
        return os.path.abspath(os.path.expanduser(str(path))) if path else None

    def v2_playbook_on_play_start(self, play):
        self._raise_if_stopped()
        self._play = play.get_name() or None
        self._skip_play = _boolish((play.vars or {}).get(SKIP_VAR))
        check_mode = play.check_mode if isinstance(play.check_mode, bool) else None
        if check_mode is None:
            check_mode = bool(context.CLIARGS.get("check"))
        self._play_check_mode = check_mode
        if self._skip_play:
            return
        hosts = play.hosts
        if isinstance(hosts, (list, tuple)):
            hosts = [str(h) for h in hosts]
        self._write(
            event="play_start",
            play=self._play,
            check_mode=check_mode,
            msg="play %s started" % (self._play or "?"),
            details=to_plain({"hosts": hosts, "strategy": getattr(play, "strategy", None)}),
        )

    def v2_playbook_on_stats(self, stats):
        self._raise_if_stopped()
        if self._skip_run:
            return
        hosts = sorted(stats.processed.keys())
        summary = {h: stats.summarize(h) for h in hosts}
        totals = {}
        for counts in summary.values():
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
        failed_hosts = sorted(h for h, c in summary.items() if c.get("failures") or c.get("unreachable"))
        counts = " ".join(
            f"{label}={totals.get(key, 0)}"
            for label, key in (
                ("ok", "ok"),
                ("changed", "changed"),
                ("failed", "failures"),
                ("unreachable", "unreachable"),
                ("skipped", "skipped"),
            )
        )
        msg = f"playbook {self._playbook or '?'} ended: {len(hosts)} host(s), {counts}"
        self._write(
            event="playbook_end",
            check_mode=bool(context.CLIARGS.get("check")),
            changed=bool(totals.get("changed")),
            msg=msg,
            details=to_plain(
                {"outcome": "failed" if failed_hosts else "ok", "failed_hosts": failed_hosts, "stats": summary}
            ),
        )
        self._play = None
        if self._durable is not None and self._durable.failed is not None:
            self._display.warning(
                f"incident_timeline: the durable copy {self._durable.location} is incomplete ({self._durable.failed}); "
                f"the whole timeline is in {self._path}: keep that file until a later run has copied it"
            )

    # ------------------------------------------------------------------ tasks

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._raise_if_stopped()

    def v2_playbook_on_handler_task_start(self, task):
        self._raise_if_stopped()

    @staticmethod
    def _action(task):
        resolved = getattr(task, "_resolved_action", None)
        if resolved:
            return str(resolved)
        action = getattr(task, "action", None)
        if action and "{{" not in str(action) and "{%" not in str(action):
            try:
                resolved = task.resolved_action
            except Exception:  # fall back to the action as written
                resolved = None
        return str(resolved or action) if (resolved or action) else None

    @staticmethod
    def _role(task):
        role = getattr(task, "_role", None)
        if role is None:
            return None
        try:
            return role.get_name()
        except Exception:  # fall back to the role's plain name
            return getattr(role, "_role_name", None)

    def _task_record(self, event, result, ignore_errors=False):
        if self._skip_run or self._skip_play:
            return
        task = result.task
        fields = result.task_fields or {}
        res = result.result if isinstance(result.result, dict) else {}

        # core censors a no_log result before callbacks see it, but not task.args: check every source
        no_log = fields.get("no_log") is True or task.no_log is True or res.get("_ansible_no_log") is True

        before = res.get("timeline_before")
        if isinstance(before, list):
            # the incident frame's work done inside this task before the step (plugins/plugin_utils/frame.py): each
            # entry is written as the record its own task would have written, at the time it ran, before the
            # step's record; the facts it set are the frame's, not the step's result
            res = {k: v for k, v in res.items() if k not in ("timeline_before", "ansible_facts")}
            if not no_log:
                self._frame_records(before, result, fields, task)

        check_mode = fields.get("check_mode")
        if not isinstance(check_mode, bool):
            check_mode = task.check_mode if isinstance(task.check_mode, bool) else self._play_check_mode

        action = self._action(task)
        changed = bool(res.get("changed")) if event in ("ok", "failed") else False

        name = self._raw_name(task) if no_log else fields.get("name")
        if not no_log and (not isinstance(name, str) or not name):
            name = task.name or None
        if not name and action:
            name = action.rsplit(".", 1)[-1]  # as Ansible shows an unnamed task: TASK [debug]
        if name is not None:
            name = str(name)

        # a value known to be secret anywhere in the task (its arguments, its result) is masked everywhere
        # in the record: a password passed as an argument and echoed in stdout, a token in the name
        task_args = None if no_log else self._task_args(task)
        details, found = result_details(res, no_log=no_log, task_args=task_args)
        msg = None
        if not no_log:
            msg = res.get("msg")
            if event == "failed" and not msg:
                msg = res.get("stderr") or res.get("module_stderr") or res.get("reason")
            if event == "skipped" and not msg:
                msg = res.get("skip_reason") or (
                    "conditional result was false: {}".format(res["false_condition"])
                    if res.get("false_condition")
                    else None
                )
            if msg is not None and not isinstance(msg, str):
                msg = to_plain(msg, found)
                msg = msg if isinstance(msg, str) else str(msg)
            msg = scrub_text(msg, found) if msg else msg
        elif event == "failed":
            msg = "failed (output hidden: no_log)"
        if name:
            name = scrub_text(name, found)

        looped = None
        if event == "ok":
            if action in NOTE_ACTIONS and not no_log:
                event_name = "note"
                note = res.get("note") if isinstance(res.get("note"), dict) else {}
                msg = scrub_text(str(note.get("msg") or res.get("msg") or ""), found) or None
                details = to_plain(note, found) if note else details
                # a note task with a loop: one note record per item, as each note alone would be (not one
                # record "All items completed" holding the notes in its details)
                items = res.get("results") if not note and isinstance(res.get("results"), list) else []
                looped = [r["note"] for r in items if isinstance(r, dict) and isinstance(r.get("note"), dict)] or None
            else:
                event_name = "task_changed" if changed else "task_ok"
        elif event == "failed":
            event_name = "task_failed"
            if ignore_errors:
                details = dict(details or {}, ignore_errors=True)
        elif event == "skipped":
            event_name = "task_skipped"
        else:
            event_name = "host_unreachable"

        host = result.host.get_name() if result.host is not None else None
        target = self._target(host, result.host, res, no_log)
        if target:
            details = dict(details or {}, target=target)
        records = [(msg, details)]
        if looped:
            records = [
                (
                    scrub_text(str(note.get("msg") or ""), found) or None,
                    dict(to_plain(note, found), **({"target": target} if target else {})),
                )
                for note in looped
            ]
        for msg, details in records:
            self._write(
                defer=True,
                event=event_name,
                play=self._play,
                task=name,
                role=self._role(task),
                action=action,
                host=host,
                check_mode=bool(check_mode),
                changed=changed,
                msg=msg,
                details=details,
            )

    def _frame_records(self, entries, result, fields, task):
        """The records of the frame's controller-side work done inside ``task`` (``timeline_before``)."""
        check_mode = fields.get("check_mode")
        if not isinstance(check_mode, bool):
            check_mode = task.check_mode if isinstance(task.check_mode, bool) else self._play_check_mode
        host = result.host.get_name() if result.host is not None else None
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("result"), dict):
                continue
            res = entry["result"]
            action = str(entry.get("action") or "") or None
            details, found = result_details(res)
            msg = res.get("msg")
            msg = scrub_text(str(msg), found) if msg else None
            if res.get("failed"):
                event_name = "task_failed"
            elif action in NOTE_ACTIONS and isinstance(res.get("note"), dict):
                event_name = "note"
                msg = scrub_text(str(res["note"].get("msg") or msg or ""), found) or None
                details = to_plain(res["note"], found)
            else:
                event_name = "task_changed" if res.get("changed") else "task_ok"
            target = self._target(host, result.host, res, False)
            if target:
                details = dict(details or {}, target=target)
            ts = entry.get("ts")
            self._write(
                defer=True,
                event=event_name,
                ts=ts if isinstance(ts, str) and ts else None,
                play=self._play,
                task=scrub_text(str(entry["task"]), found) if entry.get("task") else None,
                role=str(entry["role"]) if entry.get("role") else None,
                action=action,
                host=host,
                check_mode=bool(check_mode),
                changed=bool(res.get("changed")),
                msg=msg,
                details=details,
            )

    def _target(self, name, host, res, no_log):
        """What the fan-out target of a record is beyond its inventory host: account, region, cluster.

        From the host fact ``firebreak_target`` once a task set it (role ``aws_target_session``), else from the
        host's inventory variables ``firebreak_aws_account_id``, ``firebreak_aws_region`` and
        ``firebreak_eks_cluster`` when they are plain values.  None when nothing is known (a single-target
        inventory such as ``inventories/sandbox``): the record is then exactly what it was before fan-out.
        """
        if name is None:
            return None
        facts = res.get("ansible_facts") if not no_log else None
        fact = facts.get("firebreak_target") if isinstance(facts, dict) else None
        if isinstance(fact, dict):
            self._targets[name] = to_plain(
                {key: fact.get(key) for key in TARGET_KEYS if isinstance(fact.get(key), (str, int)) and fact.get(key)}
            )
        if name not in self._targets:
            known = {}
            hostvars = getattr(host, "vars", None)
            if isinstance(hostvars, dict):
                for key, var in TARGET_VARS.items():
                    value = hostvars.get(var)
                    if isinstance(value, (str, int)) and str(value).strip() and "{" not in str(value):
                        known[key] = str(value).strip()
            self._targets[name] = to_plain(known)
        return self._targets[name] or None

    @staticmethod
    def _raw_name(task):
        """A ``no_log`` task's name as written, before templating: its variables may hold the secrets."""
        ds = getattr(task, "_ds", None)
        raw = ds.get("name") if isinstance(ds, dict) else None
        if isinstance(raw, str) and raw.strip():
            return str.__str__(raw) if "{{" in raw or "{%" in raw else scrub_text(str.__str__(raw))
        return None

    @staticmethod
    def _task_args(task):
        args = getattr(task, "args", None)
        if not isinstance(args, dict):
            return None
        return {k: v for k, v in args.items() if not str(k).startswith("_ansible_")}

    def v2_runner_on_ok(self, result):
        self._task_record("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task_record("failed", result, ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._task_record("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._task_record("unreachable", result)
