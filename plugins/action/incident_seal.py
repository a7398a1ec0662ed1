# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side work of ``firebreak.runbooks.incident_seal``: seal the timeline's chain head."""

from __future__ import annotations

import getpass
import json
import os

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.evidence import (
    EvidenceInputError,
    validate_bucket_name,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.seal import (
    DEFAULT_PREFIX,
    SealError,
    make_seal,
    put_seal,
    s3_client,
    seal_key,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import (
    TimelineError,
    default_path,
    verify_timeline,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller, StepAWSError

ARGUMENT_SPEC = {
    "timeline": {"type": "path"},
    "incident_id": {"type": "str"},
    "bucket": {"type": "str"},
    "prefix": {"type": "str", "default": DEFAULT_PREFIX},
    "retention_days": {"type": "int", "default": 365},
    "retention_mode": {"type": "str", "default": "COMPLIANCE", "choices": ["COMPLIANCE", "GOVERNANCE"]},
    "endpoint_url": {"type": "str"},
    "region": {"type": "str"},
    "retry_budget": {"type": "int", "default": 60},
}


def resolve_timeline(timeline, incident_id):
    """The timeline path: given, else ``FIREBREAK_TIMELINE``, else ``<incidents dir>/<incident_id>/timeline.jsonl``
    (``FIREBREAK_INCIDENTS_DIR``, default ``incidents``: where the timeline callback writes)."""
    path = timeline or os.environ.get("FIREBREAK_TIMELINE")
    if not path:
        if not incident_id:
            raise TimelineError(
                "no timeline: give timeline=PATH, or incident_id (-e incident_id=...), or FIREBREAK_TIMELINE"
            )
        path = default_path(incident_id)
    return os.path.abspath(os.path.expanduser(path))


def operator(task_vars):
    user = task_vars.get("awx_user_name") or task_vars.get("tower_user_name")
    job = task_vars.get("awx_job_id", task_vars.get("tower_job_id"))
    if user or job is not None:
        return {"user": str(user) if user else None, "source": "awx", "job_id": str(job) if job is not None else None}
    try:
        return {"user": getpass.getuser(), "source": "local"}
    except (KeyError, OSError):
        return {"user": str(os.getuid()), "source": "local"}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        incident_id = args.get("incident_id") or task_vars.get("incident_id") or os.environ.get("FIREBREAK_INCIDENT_ID")
        try:
            timeline = resolve_timeline(args.get("timeline"), incident_id)
            records = verify_timeline(timeline)
        except TimelineError as exc:
            return dict(result, failed=True, msg=f"cannot seal: {exc}")
        seal = make_seal(records, operator(task_vars))
        if incident_id and seal["incident_id"] != incident_id:
            return dict(
                result,
                failed=True,
                msg=f"cannot seal: {timeline} is the timeline of incident {seal['incident_id']!r}, not {incident_id!r}",
            )
        line = "SEAL " + json.dumps(seal, sort_keys=True)
        result.update(changed=False, seal=seal, timeline=timeline, seal_line=line, stored=None)
        bucket = args.get("bucket")
        if bucket:
            try:
                validate_bucket_name(bucket, "bucket")
            except EvidenceInputError as exc:
                return dict(result, failed=True, msg=f"the seal was not stored ({line}): {exc}")
            key = seal_key(args["prefix"], seal["incident_id"], seal["seq"], seal["hash"])
            where = f"s3://{bucket}/{key}"
            if self._task.check_mode:
                result.update(stored={"uri": where, "version_id": None, "check_mode": True})
            else:
                caller = Caller(args["retry_budget"])
                endpoint = args.get("endpoint_url") or os.environ.get("FIREBREAK_AWS_ENDPOINT_URL")
                try:
                    s3 = s3_client(endpoint, args.get("region"), args["retry_budget"])
                    key, version, written = put_seal(
                        s3, caller, bucket, args["prefix"], seal, args["retention_days"], args["retention_mode"]
                    )
                except (StepAWSError, SealError) as exc:
                    return dict(result, failed=True, msg=f"the seal was not stored ({line}): {exc}")
                result.update(
                    stored={
                        "written": written,
                        "uri": where,
                        "version_id": version,
                        "retention_mode": args["retention_mode"],
                        "retention_days": args["retention_days"],
                    },
                )
        # the seal line as it is, unescaped, so it can be copied from a terminal or an AWX job's output
        Display().display(line)
        result["msg"] = (
            f"{line}\nsealed {timeline} at seq {seal['seq']}"
            + (
                f"; {'would store' if self._task.check_mode else 'stored'} at {result['stored']['uri']} under "
                f"{args['retention_mode']} Object Lock"
                if bucket
                else ""
            )
            + " (keep this line: incident_report.yml -e incident_seals=... checks the timeline against it)"
        )
        return result
