# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side work of ``firebreak.runbooks.incident_target_session``: assume a fan-out target's role."""

from __future__ import annotations

import datetime
import getpass
import os

from ansible.plugins.action import ActionBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import sts
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller, StepError, client_config

ARGUMENT_SPEC = {
    "role_arn": {"type": "str"},
    "incident_id": {"type": "str"},
    "operator": {"type": "str"},
    "session_name": {"type": "str"},
    "duration_seconds": {"type": "int", "default": 3600},
    "renew_minutes": {"type": "int", "default": 15},
    "external_id": {"type": "str", "no_log": True},
    "account_id": {"type": "str"},
    "cluster": {"type": "str"},
    "region": {"type": "str"},
    "endpoint_url": {"type": "str"},
    "profile": {"type": "str"},
    "hub_role_arn": {"type": "str"},
    "hub_external_id": {"type": "str", "no_log": True},
    "retry_budget": {"type": "int", "default": 60},
}
SESSION_FACT = "firebreak_aws_session"


def operator_of(task_vars):
    user = task_vars.get("awx_user_name") or task_vars.get("tower_user_name")
    if user:
        return str(user)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def sts_client(args, credentials=None):
    import boto3

    if credentials:
        session = boto3.session.Session(
            aws_access_key_id=credentials["access_key"],
            aws_secret_access_key=credentials["secret_key"],
            aws_session_token=credentials["session_token"],
        )
    else:
        session = boto3.session.Session(profile_name=args.get("profile") or None)
    return session.client(
        "sts",
        endpoint_url=args.get("endpoint_url") or None,
        region_name=args.get("region") or None,
        config=client_config(args["retry_budget"]),
    )


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False
    _supports_check_mode = True

    @staticmethod
    def _failed(result, msg, **extra):
        # ``error`` repeats the message: a task run with failed_when=false (the role: no_log hides a failure's
        # message) still tells a failure apart
        return dict(result, failed=True, msg=msg, error=msg, **extra)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = task_vars.get("inventory_hostname")
        role_arn = (args.get("role_arn") or "").strip()
        account = (args.get("account_id") or "").strip() or sts.account_of(role_arn)
        target = {
            "host": host,
            "account_id": account or None,
            "region": args.get("region") or None,
            "cluster": args.get("cluster") or None,
            "role_arn": role_arn or None,
            "session_name": None,
            "assumed_role_arn": None,
            "expiration": None,
            "hub_role_arn": None,
            "renewed": False,
            "reason": None,
        }
        result.update(changed=False, target=target)
        if not role_arn:
            target["reason"] = "no role to assume: the controller's own credentials are used"
            result.update(msg=f"target {host}: {target['reason']}", ansible_facts={SESSION_FACT: {}})
            return result
        incident = args.get("incident_id") or task_vars.get("incident_id") or os.environ.get("FIREBREAK_INCIDENT_ID")
        name = sts.session_name(incident, args.get("operator") or operator_of(task_vars))
        if args.get("session_name"):
            name = sts.session_name(args["session_name"], None, prefix="")
        target["session_name"] = name
        try:
            sts.validate_request(role_arn, args["duration_seconds"], args["renew_minutes"])
            if args.get("account_id") and sts.account_of(role_arn) != args["account_id"]:
                raise sts.SessionInputError(
                    f"role_arn {role_arn} is in account {sts.account_of(role_arn)}, not in the target's account "
                    f"{args['account_id']} (firebreak_aws_account_id): refusing to act on {host} with another "
                    "account's role"
                )
        except sts.SessionInputError as exc:
            return self._failed(result, f"target {host}: {exc}")

        current = task_vars.get(SESSION_FACT)
        now = datetime.datetime.now(datetime.UTC)
        reason = sts.renewal_reason(current, role_arn, name, now, args["renew_minutes"])
        if reason is None:
            target.update(
                expiration=current.get("expiration"),
                assumed_role_arn=current.get("assumed_role_arn"),
                reason=f"kept: at least {args['renew_minutes']} min left",
            )
            result["msg"] = (
                f"target {host}: kept the credentials of {role_arn} as {name} until {target['expiration']} "
                f"(at least {args['renew_minutes']} min left)"
            )
            return result
        hub = (args.get("hub_role_arn") or "").strip()
        duration = args["duration_seconds"]
        try:
            caller = Caller(args["retry_budget"])
            client = sts_client(args)
            if hub:
                # through the hub: the controller's identity may assume only the hub role, which assumes the
                # account's role (role chaining: AWS caps a chained session at one hour)
                sts.validate_request(hub, sts.MIN_DURATION, 0)
                hub_session = sts.assume(client, caller, hub, name, sts.MIN_DURATION, args.get("hub_external_id"))
                client = sts_client(args, hub_session)
                duration = min(duration, sts.CHAINED_MAX_DURATION)
            session = sts.assume(client, caller, role_arn, name, duration, args.get("external_id") or None)
            session["hub_role_arn"] = hub or None
        except sts.SessionInputError as exc:
            return self._failed(result, f"target {host}: hub_role_arn: {exc}")
        except StepError as exc:
            return self._failed(
                result,
                f"target {host}: cannot assume {role_arn}: {exc}",
                aws_operation=getattr(exc, "operation", "AssumeRole"),
                aws_error_code=getattr(exc, "code", None),
            )
        except Exception as exc:  # no credentials, a bad profile: botocore's own errors
            return self._failed(result, f"target {host}: cannot assume {role_arn}: {type(exc).__name__}: {exc}")
        target.update(
            expiration=session["expiration"],
            assumed_role_arn=session["assumed_role_arn"],
            hub_role_arn=hub or None,
            renewed=True,
            reason=reason,
        )
        result.update(
            ansible_facts={SESSION_FACT: session},
            msg=f"target {host}: assumed {role_arn} as {name} until {session['expiration']} ({reason})",
        )
        return result
