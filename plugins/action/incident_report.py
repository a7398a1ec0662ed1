# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side work of ``firebreak.runbooks.incident_report``: verify a timeline, write report.md."""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.evidence import (
    EvidenceInputError,
    validate_bucket_name,
)
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
    render_report,
    verify_timeline,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller, StepAWSError

ARGUMENT_SPEC = {
    "timeline": {"type": "path", "required": True},
    "dest": {"type": "path"},
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

        timeline = os.path.abspath(os.path.expanduser(args["timeline"]))
        dest = args.get("dest") or os.path.join(os.path.dirname(timeline), "report.md")
        dest = os.path.abspath(os.path.expanduser(dest))
        if _same_file(dest, timeline):
            raise AnsibleActionFail(
                f"dest {dest} is the timeline itself (through a symbolic link or another path); "
                "refusing to overwrite the incident record: give another incident_report_dest"
            )

        try:
            records = verify_timeline(timeline)
        except TimelineVerifyError as exc:
            result.update(
                failed=True,
                msg=f"timeline verification failed: {exc}",
                timeline=timeline,
                bad_line=exc.line,
                bad_seq=exc.seq,
                verified=False,
            )
            return result
        except TimelineError as exc:
            result.update(failed=True, msg=str(exc), timeline=timeline, verified=False)
            return result

        try:
            seals = self._seals(args, records)
        except (SealError, StepAWSError) as exc:
            result.update(failed=True, msg=f"cannot read the seals: {exc}", timeline=timeline, verified=False)
            return result
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

        report = render_report(records, timeline, seals=seals)
        data = report.encode("utf-8")
        try:
            with open(dest, "rb") as fh:
                current = fh.read()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise AnsibleActionFail(f"{dest}: cannot read the existing report: {exc.strerror or exc}") from None

        changed = current != data
        if changed and not self._task.check_mode:
            try:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                fd, tmp_path = tempfile.mkstemp(prefix=".report-", suffix=".md", dir=os.path.dirname(dest))
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.chmod(tmp_path, 0o644)
                    os.replace(tmp_path, dest)
                except BaseException:
                    if os.path.exists(tmp_path):
                        os.unlink(tmp_path)
                    raise
            except OSError as exc:
                raise AnsibleActionFail(f"{dest}: cannot write the report: {exc.strerror or exc}") from None

        incident_ids = sorted({r["incident_id"] for r in records if r.get("incident_id")})
        result.update(
            changed=changed,
            verified=True,
            timeline=timeline,
            dest=dest,
            records=len(records),
            last_seq=records[-1]["seq"],
            last_hash=records[-1]["hash"],
            incident_ids=incident_ids,
            seals_checked=len(seals),
            msg=f"timeline verified ({len(records)} records, last hash {records[-1]['hash']}); "
            f"report {dest} {'written' if changed else 'unchanged'}",
        )
        if self._task.diff and changed:
            result["diff"] = {
                "before_header": dest,
                "after_header": dest,
                "before": current.decode("utf-8", "replace") if current else "",
                "after": report,
            }
        return result

    @staticmethod
    def _seals(args, records):
        seals = [parse_seal(value, source=f"seals[{i}]") for i, value in enumerate(args["seals"] or [])]
        seals += recorded_seals(records)
        if args.get("seal_bucket"):
            try:
                validate_bucket_name(args["seal_bucket"], "seal_bucket")
            except EvidenceInputError as exc:
                raise SealError(str(exc)) from None
            caller = Caller(args["retry_budget"])
            endpoint = args.get("endpoint_url") or os.environ.get("FIREBREAK_AWS_ENDPOINT_URL")
            s3 = s3_client(endpoint, args.get("region"), args["retry_budget"])
            incident_id = records[0].get("incident_id")
            seals += list_seals(s3, caller, args["seal_bucket"], args["seal_prefix"], incident_id)
        return seals
