# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side work of ``firebreak.runbooks.incident_report``: verify a timeline, write report.md and .json."""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.evidence import (
    EvidenceInputError,
    validate_bucket_name,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import durable as dur
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import report as rpt
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.seal import (
    DEFAULT_PREFIX,
    SealError,
    check_seals,
    list_seals,
    parse_seal,
    s3_client,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import (
    TimelineError,
    TimelineVerifyError,
    check_record,
    default_path,
    verify_timeline,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller, StepAWSError

ARGUMENT_SPEC = {
    "timeline": {"type": "path"},
    "incident_id": {"type": "str"},
    "durable": {"type": "bool", "default": True},
    "durable_prefix": {"type": "str", "default": dur.DEFAULT_PREFIX},
    "dest": {"type": "path"},
    "json_dest": {"type": "path"},
    "review_policy": {"type": "dict", "default": {}},
    "review_holidays": {"type": "list", "elements": "str", "default": []},
    "chart_max_actions": {"type": "int", "default": rpt.CHART_MAX_ACTIONS},
    "seals": {"type": "list", "elements": "raw", "default": []},
    "seal_bucket": {"type": "str"},
    "seal_prefix": {"type": "str", "default": DEFAULT_PREFIX},
    "endpoint_url": {"type": "str"},
    "region": {"type": "str"},
    "retry_budget": {"type": "int", "default": 60},
}


def recorded_seals(records):
    """Seals the timeline itself recorded (incident_seal results): they must hold for the records before them."""
    found = []
    for rec in records:
        details = rec.get("details")
        if rec.get("check_mode") or rec.get("event") not in ("task_ok", "task_changed"):
            continue
        if isinstance(details, dict) and isinstance(details.get("seal"), dict):
            try:
                found.append(parse_seal(details["seal"], source=f"recorded at seq {rec['seq']}"))
            except SealError:
                continue
    return found


def json_path(dest):
    """``report.json`` beside ``report.md`` (``INC-1.md`` -> ``INC-1.json``; any other name gets ``.json`` added)."""
    root, ext = os.path.splitext(dest)
    return (root if ext.lower() == ".md" else dest) + ".json"


def summary(facts):
    """The few facts a job's artifacts carry (AWX: set_stats in playbooks/incident_report.yml)."""
    return {
        "incident_id": facts["incident_id"],
        "title": facts["title"],
        "severity": facts["severity"],
        "status": facts["status"],
        "resolved": facts["resolved"],
        "clocks": {name: clock["seconds"] for name, clock in facts["clocks"].items()},
        "review_due": facts["review"]["due"],
        "failed_targets": facts["failed_targets"],
        "open_containments": len(facts["containments"]["open"]),
        "communications_not_delivered": facts["communications_not_delivered"],
    }


def _same_file(dest, timeline):
    """True when writing ``dest`` would overwrite ``timeline`` (same path, same real path, same inode)."""
    if dest == timeline or os.path.realpath(dest) == os.path.realpath(timeline):
        return True
    try:
        return os.path.samefile(dest, timeline)
    except OSError:
        return False


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)

        if not args.get("timeline") and not args.get("incident_id"):
            raise AnsibleActionFail(
                "Give the timeline: -e incident_timeline=PATH, or -e incident_id=... (its durable copy in the "
                "evidence bucket, or incidents/<incident_id>/timeline.jsonl)"
            )
        timeline = os.path.abspath(os.path.expanduser(args.get("timeline") or default_path(args["incident_id"])))
        dest = args.get("dest") or os.path.join(os.path.dirname(timeline), "report.md")
        dest = os.path.abspath(os.path.expanduser(dest))
        if _same_file(dest, timeline):
            raise AnsibleActionFail(
                f"dest {dest} is the timeline itself (through a symbolic link or another path); "
                "refusing to overwrite the incident record: give another incident_report_dest"
            )
        json_dest = args.get("json_dest") or json_path(dest)
        json_dest = os.path.abspath(os.path.expanduser(json_dest))
        if _same_file(json_dest, timeline) or json_dest == dest:
            raise AnsibleActionFail(
                f"json_dest {json_dest} is the timeline or the Markdown report; give another incident_report_json_dest"
            )

        # The timeline is read before the seals are listed: another responder of the incident may append and seal
        # in between, so a listed seal can cover records this read has not seen. The timeline only grows, so a
        # second read (after the listing) holds every record a listed seal covers; a seal beyond it is a removal.
        earlier, listed = None, None
        while True:
            read = self._records(args, timeline, result)
            if read is None:
                return result
            records, durable = read
            if earlier is not None and [r["hash"] for r in records[: len(earlier)]] != [r["hash"] for r in earlier]:
                result.update(
                    failed=True,
                    msg=f"timeline verification failed: {timeline} changed while it was read, and not by appending "
                    f"(its first {len(earlier)} records differ from the first read's)",
                    timeline=timeline,
                    verified=False,
                )
                return result
            try:
                seals, listed = self._seals(args, records, listed)
            except (SealError, StepAWSError) as exc:
                result.update(failed=True, msg=f"cannot read the seals: {exc}", timeline=timeline, verified=False)
                return result
            if earlier is None and any(seal["seq"] > len(records) for seal in seals):
                earlier = records
                continue
            break
        problems = check_seals(records, seals, incident_id=records[0].get("incident_id"))
        if problems:
            result.update(
                failed=True,
                msg="timeline verification failed against its seals: " + "; ".join(problems),
                timeline=timeline,
                verified=False,
                seals_checked=len(seals),
            )
            return result

        try:
            policy = rpt.review_policy(args["review_policy"] or None)
            holidays = rpt.review_holidays(args["review_holidays"])
            if args["chart_max_actions"] < 0:
                raise rpt.ReportInputError(f"chart_max_actions={args['chart_max_actions']}: give 0 or more")
        except rpt.ReportInputError as exc:
            result.update(failed=True, msg=f"incident_report: {exc}", timeline=timeline, verified=True)
            return result
        report, report_json, facts = rpt.render(
            records,
            timeline,
            durable=durable,
            seals=seals,
            review=policy,
            holidays=holidays,
            chart_max=args["chart_max_actions"],
        )
        outputs = [(dest, report), (json_dest, report_json)]
        current = {path: self._read(path) for path, _text in outputs}
        changed_paths = [path for path, text in outputs if current[path] != text.encode("utf-8")]
        if changed_paths and not self._task.check_mode:
            for path, text in outputs:
                if path in changed_paths:
                    self._write(path, text.encode("utf-8"))
        changed = bool(changed_paths)

        incident_ids = sorted({r["incident_id"] for r in records if r.get("incident_id")})
        result.update(
            changed=changed,
            verified=True,
            timeline=timeline,
            dest=dest,
            json_dest=json_dest,
            records=len(records),
            last_seq=records[-1]["seq"],
            last_hash=records[-1]["hash"],
            incident_ids=incident_ids,
            seals_checked=len(seals),
            durable=durable,
            summary=summary(facts),
            msg=f"timeline verified ({len(records)} records, last hash {records[-1]['hash']}"
            + (
                f"; read from its durable copy {durable['location']}"
                if durable and durable["used"]
                else (
                    f"; durable copy {durable['location']} "
                    + ("complete" if durable["complete"] else f"INCOMPLETE: {durable['records']} of {len(records)}")
                    if durable
                    else ""
                )
            )
            + f"); report {dest} and {os.path.basename(json_dest)} {'written' if changed else 'unchanged'}",
        )
        if self._task.diff and dest in changed_paths:
            before = current[dest]
            result["diff"] = {
                "before_header": dest,
                "after_header": dest,
                "before": before.decode("utf-8", "replace") if before else "",
                "after": report,
            }
        return result

    @staticmethod
    def _absent(timeline, args):
        """True when the local timeline file does not exist and its durable copy can stand in for it."""
        return not os.path.lexists(timeline) and bool(args.get("seal_bucket")) and args["durable"]

    @staticmethod
    def _durable(args, timeline, records):
        """``(records, durable)``: the records to report on and what the durable copy holds.

        The durable copy (the evidence bucket's ``<prefix>/<incident_id>/``) is read and verified as one chain
        from seq 1.  It and the local file must agree on every record both hold (else they forked, and the
        report names the first seq where they differ); the longer one is reported on, so a job whose container
        lost the file, or holds only its own part of the incident, reports on the whole chain."""
        bucket = args.get("seal_bucket")
        if not bucket or not args["durable"]:
            return records, None
        incident_id = args.get("incident_id") or (records[0].get("incident_id") if records else None)
        if not incident_id:
            raise TimelineError(f"{timeline}: timeline file not found (and no incident_id to find its durable copy)")
        try:
            validate_bucket_name(bucket, "seal_bucket")
        except EvidenceInputError as exc:
            raise dur.DurableError(str(exc)) from None
        endpoint = args.get("endpoint_url") or os.environ.get("FIREBREAK_AWS_ENDPOINT_URL")
        copy = dur.DurableTimeline(
            s3_client(endpoint, args.get("region"), args["retry_budget"]),
            bucket,
            incident_id,
            prefix=args["durable_prefix"],
            caller=Caller(args["retry_budget"]),
        )

        def check(rec, raw, where, seq, expected_prev):
            check_record(rec, raw, where, 1, seq, expected_prev)

        stored = dur.read_durable_records(copy, check)
        local = records or []
        for mine, theirs in zip(local, stored, strict=False):
            if mine["hash"] != theirs["hash"]:
                raise dur.DurableFork(
                    f"{timeline} and {copy.uri(mine['seq'])} hold different records at seq {mine['seq']} (hash "
                    f"{mine['hash'][:12]}... here, {theirs['hash'][:12]}... in the bucket): the two copies forked"
                )
        if not stored and not local:
            raise TimelineError(f"{timeline}: timeline file not found, and {copy.location} holds no record")
        used = len(stored) > len(local)
        chosen = stored if used else local
        gap = [
            rec["seq"]
            for rec in chosen
            if rec.get("event") == "note"
            and isinstance(rec.get("details"), dict)
            and isinstance(rec["details"].get("durable"), dict)
            and rec["details"]["durable"].get("kept") is False
        ]
        return chosen, {
            "location": copy.location,
            "records": len(stored),
            "expected": len(chosen),
            "complete": len(stored) == len(chosen),
            "used": used,
            "gap_from": (len(stored) + 1) if len(stored) < len(chosen) else None,
            "gap_notes": gap,
        }

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AnsibleActionFail(f"{path}: cannot read the existing report: {exc.strerror or exc}") from None

    @staticmethod
    def _write(path, data):
        """Write ``data`` to ``path`` atomically (a temporary file in the same directory, fsynced, renamed)."""
        suffix = os.path.splitext(path)[1] or ".tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(prefix=".report-", suffix=suffix, dir=os.path.dirname(path))
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp_path, 0o644)
                os.replace(tmp_path, path)
            except BaseException:
                if os.path.exists(tmp_path):
                    os.unlink(tmp_path)
                raise
        except OSError as exc:
            raise AnsibleActionFail(f"{path}: cannot write the report: {exc.strerror or exc}") from None

    @staticmethod
    def _seals(args, records, listed=None):
        """``(seals, listed)``: every seal to check (given, recorded in ``records``, in the seal bucket) and those
        from the bucket, listed once (``listed``: the earlier listing, not listed again)."""
        seals = [parse_seal(value, source=f"seals[{i}]") for i, value in enumerate(args["seals"] or [])]
        seals += recorded_seals(records)
        if args.get("seal_bucket") and listed is None:
            try:
                validate_bucket_name(args["seal_bucket"], "seal_bucket")
            except EvidenceInputError as exc:
                raise SealError(str(exc)) from None
            caller = Caller(args["retry_budget"])
            endpoint = args.get("endpoint_url") or os.environ.get("FIREBREAK_AWS_ENDPOINT_URL")
            s3 = s3_client(endpoint, args.get("region"), args["retry_budget"])
            incident_id = records[0].get("incident_id")
            listed = list_seals(s3, caller, args["seal_bucket"], args["seal_prefix"], incident_id)
        return seals + (listed or []), listed

    def _records(self, args, timeline, result):
        """``(records, durable)`` verified (the local file, and its durable copy when asked); None with ``result``
        failed when the timeline does not verify."""
        try:
            records = None if self._absent(timeline, args) else verify_timeline(timeline)
        except TimelineVerifyError as exc:
            result.update(
                failed=True,
                msg=f"timeline verification failed: {exc}",
                timeline=timeline,
                bad_line=exc.line,
                bad_seq=exc.seq,
                verified=False,
            )
            return None
        except TimelineError as exc:
            result.update(failed=True, msg=str(exc), timeline=timeline, verified=False)
            return None
        try:
            return self._durable(args, timeline, records)
        except (dur.DurableError, StepAWSError, TimelineError) as exc:
            result.update(
                failed=True, msg=f"the durable copy of the timeline: {exc}", timeline=timeline, verified=False
            )
            return None
