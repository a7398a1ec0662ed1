#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lambda_limits_raise
short_description: Raise a Lambda function's memory, timeout or reserved concurrency, recording the old values
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the steps "increase memory allocation" and "increase timeout duration" of a Lambda incident in one
    call, and raises reserved concurrency for a function throttled by its own reservation. It reads the function,
    decides, updates, waits until the update is applied and reads the values back.
  - A raise refuses a value lower than the current one (naming it) unless O(force=true). Setting a reserved
    concurrency on a function that has none caps it, so that needs O(force=true) too.
  - The old values are returned in RV(changes) (C(old) and C(new) per limit); pass them back as O(previous)
    with O(state=restored) to put the old values back. A restore only resets a limit that still has the value
    the raise set; one changed by someone else meanwhile is left alone and reported in RV(left_alone).
  - A re-run with the same values reports no change. In check mode nothing is changed.
options:
  function_name:
    description:
      - Name or ARN of the function.
    type: str
    required: true
  state:
    description:
      - V(raised) sets the values given; V(restored) puts back the old values of O(previous).
    type: str
    choices: [raised, restored]
    default: raised
  memory_size:
    description:
      - Memory in MB (128-10240). Ignored with O(state=restored).
    type: int
  timeout:
    description:
      - Timeout in seconds (1-900). Ignored with O(state=restored).
    type: int
  reserved_concurrency:
    description:
      - Reserved concurrent executions. Ignored with O(state=restored).
    type: int
  force:
    description:
      - Allow a value lower than the current one (and a reservation on an unreserved function).
    type: bool
    default: false
  previous:
    description:
      - "With O(state=restored), the RV(changes) of the raise to undo: C({limit: {old: ..., new: ...}})."
      - C(old) of C(null) for C(reserved_concurrency) means "no reservation" (the reservation is deleted).
    type: dict
  wait:
    description:
      - Wait until the configuration update is applied (C(LastUpdateStatus) not C(InProgress)) and read the
        values back.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds.
    type: int
    default: 120
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - moto (the sandbox) applies configuration updates at once (C(LastUpdateStatus) is C(Successful)); on AWS the
    module waits for it.
seealso:
  - module: amazon.aws.lambda
"""

EXAMPLES = r"""
- name: Give the ingest function more memory and time
  firebreak.runbooks.lambda_limits_raise:
    function_name: prowler-ingest
    memory_size: 1024
    timeout: 120
  register: raised

- name: After the incident, put the old values back
  firebreak.runbooks.lambda_limits_raise:
    function_name: prowler-ingest
    state: restored
    previous: "{{ raised.changes }}"
"""

RETURN = r"""
msg:
  description: What was done.
  returned: always
  type: str
  sample: "raised prowler-ingest: memory_size 128 -> 1024, timeout 3 -> 120"
function_arn:
  description: The function's unqualified ARN.
  returned: always
  type: str
  sample: arn:aws:lambda:us-east-1:123456789012:function:prowler-ingest
before:
  description: The limits before the step (C(memory_size), C(timeout), C(reserved_concurrency); null = none).
  returned: always
  type: dict
  sample: {"memory_size": 128, "timeout": 3, "reserved_concurrency": null}
after:
  description: The limits after the step (read back; predicted in check mode).
  returned: always
  type: dict
  sample: {"memory_size": 1024, "timeout": 120, "reserved_concurrency": null}
changes:
  description: Each limit changed, with its C(old) and C(new) value. Pass it as O(previous) to restore.
  returned: always
  type: dict
  sample: {"memory_size": {"old": 128, "new": 1024}}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
left_alone:
  description: With O(state=restored), limits not restored because someone changed them meanwhile (C(current),
    C(expected) and C(old)).
  returned: always
  type: dict
  sample: {}
diff:
  description: The limits before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"memory_size": 128}, "after": {"memory_size": 1024}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import awslambda
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    function_name=dict(type="str", required=True),
    state=dict(type="str", choices=["raised", "restored"], default="raised"),
    memory_size=dict(type="int"),
    timeout=dict(type="int"),
    reserved_concurrency=dict(type="int"),
    force=dict(type="bool", default=False),
    previous=dict(type="dict"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=120),
    **RETRY_BUDGET_OPTION,
)


def restore_plan(previous, current):
    """``(wanted, left_alone)`` for a restore: reset a limit only if it still has the raised value."""
    wanted, left_alone = {}, {}
    for name, change in (previous or {}).items():
        if name not in awslambda.LIMITS or not isinstance(change, dict) or "old" not in change or "new" not in change:
            raise awslambda.LambdaInputError(
                f"previous[{name!r}] must be {{old, new}} for one of {', '.join(awslambda.LIMITS)}, got {change!r}"
            )
        if current.get(name) == change["new"]:
            old = change["old"]
            wanted[name] = -1 if (name == "reserved_concurrency" and old is None) else old
        elif current.get(name) != change["old"]:
            left_alone[name] = {"current": current.get(name), "expected": change["new"], "old": change["old"]}
    return wanted, left_alone


def run(module, result=None):
    params = module.params
    function = params["function_name"]
    restoring = params["state"] == "restored"
    if restoring and not params["previous"]:
        raise awslambda.LambdaInputError("state=restored needs previous (the changes returned by the raise)")
    wanted = {name: params[name] for name in awslambda.LIMITS if params[name] is not None}
    if not restoring:
        if not wanted:
            raise awslambda.LambdaInputError("give at least one of memory_size, timeout, reserved_concurrency")
        awslambda.validate_limits(wanted)
    if params["wait_timeout"] < 0:
        raise awslambda.LambdaInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")

    caller = Caller(params["retry_budget"])
    client = aws_client(module, "lambda")
    configuration = awslambda.get_function(caller, client, function)
    name = configuration["FunctionName"]
    arn = configuration["FunctionArn"]
    before = awslambda.limits_of(configuration, awslambda.get_concurrency(caller, client, function))
    left_alone = {}
    if restoring:
        wanted, left_alone = restore_plan(params["previous"], before)
    decision = awslambda.decide_limits(before, wanted, force=params["force"], restore=restoring)
    if decision["refused"]:
        refused = ", ".join(f"{k} {new} (now {old})" for k, (old, new) in decision["refused"].items())
        raise awslambda.LambdaInputError(
            f"refusing to lower {name}: {refused}; this step raises limits (set force=true to lower, or to put a "
            "reservation on an unreserved function, which caps it)"
        )
    changes = {k: {"old": old, "new": new} for k, (old, new) in decision["changes"].items()}
    predicted = dict(before, **{k: v["new"] for k, v in changes.items()})
    result = {
        "changed": bool(changes),
        "function_arn": arn,
        "before": before,
        "changes": changes,
        "left_alone": left_alone,
    }
    if module._diff:
        result["diff"] = {"before": {k: before[k] for k in changes}, "after": {k: v["new"] for k, v in changes.items()}}
    verb = "restored" if restoring else "raised"
    summary = ", ".join(f"{k} {v['old']} -> {v['new']}" for k, v in changes.items()) or "nothing to change"
    if left_alone:
        summary += "; left alone (changed meanwhile): " + ", ".join(sorted(left_alone))
    if module.check_mode or not changes:
        result["after"] = predicted
        prefix = f"check mode: would have {verb}" if changes and module.check_mode else f"{verb} (no change)"
        result["msg"] = f"{prefix} {name}: {summary}"
        return result

    made = []
    try:
        update = {}
        if "memory_size" in changes:
            update["MemorySize"] = changes["memory_size"]["new"]
        if "timeout" in changes:
            update["Timeout"] = changes["timeout"]["new"]
        if update:
            caller(client, "update_function_configuration", f"function {name!r}", FunctionName=function, **update)
            made.append("UpdateFunctionConfiguration")
        if "reserved_concurrency" in changes:
            new = changes["reserved_concurrency"]["new"]
            if new is None:
                caller(client, "delete_function_concurrency", f"function {name!r}", FunctionName=function)
                made.append("DeleteFunctionConcurrency")
            else:
                caller(
                    client,
                    "put_function_concurrency",
                    f"function {name!r}",
                    FunctionName=function,
                    ReservedConcurrentExecutions=new,
                )
                made.append("PutFunctionConcurrency")
        if params["wait"]:
            configuration = awslambda.wait_updated(caller, client, function, params["wait_timeout"])
        else:
            configuration = awslambda.get_function(caller, client, function)
        after = awslambda.limits_of(configuration, awslambda.get_concurrency(caller, client, function))
    except StepAWSError as err:
        what = f"{verb} {name} partly ({', '.join(made)} done)" if made else f"nothing {verb} on {name}"
        module.fail_json(msg=f"{what}: {err}", **err.result(), **dict(result, changed=bool(made), after=predicted))
    except awslambda.LambdaInputError as err:
        module.fail_json(msg=f"{verb} {name}: {err}", **dict(result, changed=bool(made), after=predicted))
    result["after"] = after
    wrong = {k: after[k] for k, v in changes.items() if after[k] != v["new"]}
    if wrong:
        module.fail_json(msg=f"{name} reads back {wrong} after the update, not {predicted}", **result)
    result["msg"] = f"{verb} {name}: {summary}"
    return result


def main():
    run_aws_step(run, "mitigation", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
