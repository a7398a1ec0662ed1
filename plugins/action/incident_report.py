# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side work of ``firebreak.runbooks.incident_report``: verify a timeline, write report.md."""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.timeline import (
    TimelineError,
    TimelineVerifyError,
    render_report,
    verify_timeline,
)

ARGUMENT_SPEC = {
    "timeline": {"type": "path", "required": True},
    "dest": {"type": "path"},
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

        report = render_report(records, timeline)
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
