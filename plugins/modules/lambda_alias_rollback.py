#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lambda_alias_rollback
short_description: Point a Lambda alias back at the previous published version, verify with GetAlias
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "consider rollback" of a Lambda incident in one call. It reads the alias, decides the
    version to go back to, updates the alias, and verifies with C(GetAlias) that it points there.
  - Without O(version), the target is the highest published version lower than the one the alias points at
    (for an alias on C($LATEST), the highest published version).
  - Weighted routing (C(AdditionalVersionWeights)) is cleared by default (all traffic to the target); with
    O(routing=keep) it is kept, except a weight for the target version itself.
  - The rollback is recorded as the function tag C(firebreak:alias-rollback:<alias>) with the value
    C(from=<version>,to=<version>,at=<time>) (aliases take no tags, and their description belongs to their
    owners). When no O(version) and no O(rollback_from) are given and the alias still points at the recorded
    C(to) version, the module reports no change instead of rolling back a second time.
  - With O(rollback_from), the module only acts while the alias points at that (bad) version.
  - In check mode the module reads the alias and reports the change (with a diff) but changes nothing.
  - Bad input (a function, alias or version that does not exist, no lower published version) fails with a
    message naming the value, before anything is changed.
options:
  function_name:
    description:
      - Name or ARN of the function.
    type: str
    required: true
  alias:
    description:
      - Name of the alias to roll back.
    type: str
    required: true
  version:
    description:
      - The published version to point the alias at. It must exist.
      - When omitted, the highest published version lower than the alias's current version.
    type: str
  rollback_from:
    description:
      - The bad version. When set and the alias does not point at it, nothing is changed.
    type: str
  routing:
    description:
      - What to do with the alias's weighted routing.
      - V(clear) sends all traffic to the target; V(keep) keeps the other versions' weights.
    type: str
    choices: [clear, keep]
    default: clear
  wait:
    description:
      - After the update, read the alias back (C(GetAlias)) until it points at the target with the routing
        asked, and fail if it does not within O(wait_timeout).
      - With V(false) the alias is read back once, and the step fails at once if it does not point at the target.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds.
    type: int
    default: 60
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - moto (the sandbox) never changes an alias's C(RevisionId); the update is therefore not made conditional
    on it there, but is on AWS (C(RevisionId) from the C(GetAlias) read).
seealso:
  - module: amazon.aws.lambda_alias
"""

EXAMPLES = r"""
- name: Point the live alias back at the previous version
  firebreak.runbooks.lambda_alias_rollback:
    function_name: thumbnailer
    alias: live

- name: Roll back only while the alias still serves the bad version 7, keeping canary weights
  firebreak.runbooks.lambda_alias_rollback:
    function_name: thumbnailer
    alias: live
    rollback_from: "7"
    routing: keep
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "rolled back alias live of thumbnailer from 2 to 1 (previous published version); verified"
function_arn:
  description: The function's unqualified ARN.
  returned: always
  type: str
  sample: arn:aws:lambda:us-east-1:123456789012:function:thumbnailer
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
alias_arn:
  description: The alias ARN.
  returned: always
  type: str
  sample: arn:aws:lambda:us-east-1:123456789012:function:thumbnailer:live
target_version:
  description: The version the alias points at (or would, in check mode) after the step.
  returned: always
  type: str
  sample: "1"
before:
  description: The alias before the step.
  returned: always
  type: dict
  contains:
    function_version:
      description: The version the alias pointed at.
      returned: always
      type: str
      sample: "2"
    routing:
      description: Additional version weights.
      returned: always
      type: dict
      sample: {"3": 0.1}
after:
  description: The alias after the step, read back with GetAlias (predicted in check mode).
  returned: always
  type: dict
  contains:
    function_version:
      description: The version the alias points at.
      returned: always
      type: str
      sample: "1"
    routing:
      description: Additional version weights.
      returned: always
      type: dict
      sample: {}
rollback:
  description: The rollback recorded on the function (its C(firebreak:alias-rollback:<alias>) tag), if any.
  returned: always
  type: dict
  contains:
    from:
      description: The version rolled back from.
      returned: when a rollback is recorded
      type: str
      sample: "2"
    to:
      description: The version rolled back to.
      returned: when a rollback is recorded
      type: str
      sample: "1"
    at:
      description: When (UTC, ISO 8601).
      returned: when a rollback is recorded
      type: str
      sample: "2026-11-24T14:03:07Z"
    recorded:
      description: Whether the record is on the function (false if tagging failed; see warnings).
      returned: always
      type: bool
      sample: true
diff:
  description: The alias before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"function_version": "2", "routing": {}}, "after": {"function_version": "1", "routing": {}}}
"""

import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import awslambda
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    iso_utc,
    run_aws_step,
    utc_now,
)

ARGUMENT_SPEC = dict(
    function_name=dict(type="str", required=True),
    alias=dict(type="str", required=True),
    version=dict(type="str"),
    rollback_from=dict(type="str"),
    routing=dict(type="str", choices=["clear", "keep"], default="clear"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=60),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)


def run(module, result=None):
    params = module.params
    function, alias_name = params["function_name"], params["alias"]
    for option in ("version", "rollback_from"):
        value = params[option]
        if value is not None and not (awslambda.VERSION_RE.match(value) or value == "$LATEST"):
            raise awslambda.LambdaInputError(f"{option} {value!r} is not a version number (or $LATEST)")
    if params["version"] == "$LATEST":
        raise awslambda.LambdaInputError("version '$LATEST' is not a published version: give a version number")
    if params["wait_timeout"] < 0:
        raise awslambda.LambdaInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")

    caller = Caller(params["retry_budget"])
    client = aws_client(module, "lambda")
    configuration = awslambda.get_function(caller, client, function)
    function_arn = configuration["FunctionArn"].split(":function:")[0] + ":function:" + configuration["FunctionName"]
    alias = awslambda.get_alias(caller, client, function, alias_name)
    before = awslambda.alias_state(alias)
    tags = awslambda.list_tags(caller, client, function_arn)
    record = awslambda.read_record(tags, alias_name)

    if params["version"] is not None:
        awslambda.get_version(caller, client, function, params["version"])

    def published():
        return awslambda.published_versions(awslambda.list_versions(caller, client, function))

    needs_listing = params["version"] is None and not (
        (params["rollback_from"] is not None and params["rollback_from"] != alias["FunctionVersion"])
        or (params["rollback_from"] is None and record and record.get("to") == alias["FunctionVersion"])
    )
    decision = awslambda.decide_alias_rollback(
        alias,
        target=params["version"],
        rollback_from=params["rollback_from"],
        record=record,
        routing=params["routing"],
        published=published() if needs_listing else (),
    )
    target = decision["target"]
    result = {
        "changed": decision["changed"],
        "function_arn": function_arn,
        "alias_arn": alias.get("AliasArn"),
        "target_version": target,
        "before": before,
        "rollback": dict(record or {}, recorded=bool(record)),
    }
    predicted = {"function_version": target, "routing": decision["routing"]}
    if module._diff:
        result["diff"] = {"before": before, "after": predicted}
    name = f"alias {alias_name} of {configuration['FunctionName']}"
    if module.check_mode or not decision["changed"]:
        result["after"] = predicted if decision["changed"] else before
        verb = "check mode: would roll back" if decision["changed"] else "no change to"
        sep = " " if decision["changed"] else ": "
        result["msg"] = f"{verb} {name}{sep}{decision['reason']}"
        return result

    at = iso_utc(utc_now())
    tag = {
        awslambda.RECORD_TAG.format(alias=alias_name): awslambda.record_value(before["function_version"], target, at)
    }
    if params["incident_id"]:
        tag["firebreak:incident"] = params["incident_id"]
    try:
        awslambda.tag_function(caller, client, function_arn, tag)
        result["rollback"] = {"from": before["function_version"], "to": target, "at": at, "recorded": True}
    except StepAWSError as err:
        module.warn(f"could not record the rollback on the function ({err}); a re-run could roll back further")
        result["rollback"] = {"from": before["function_version"], "to": target, "at": at, "recorded": False}
    update = {
        "FunctionName": function,
        "Name": alias_name,
        "FunctionVersion": target,
        "RoutingConfig": {"AdditionalVersionWeights": decision["routing"]},
    }
    if alias.get("RevisionId"):
        update["RevisionId"] = alias["RevisionId"]
    answer = caller(client, "update_alias", name, **update)
    result["after"] = awslambda.alias_state(answer)
    try:
        return finish(module, caller, client, result, decision, predicted, name)
    except (StepAWSError, awslambda.LambdaInputError) as err:
        # The alias was updated: report it with the failure so the record shows the change.
        module.fail_json(msg=f"{name} was updated, but reading it back failed: {err}", **dict(result, changed=True))


def finish(module, caller, client, result, decision, predicted, name):
    params = module.params
    function, alias_name, target = params["function_name"], params["alias"], decision["target"]
    after = result["after"]
    outcome = decision["reason"]
    # Read back always: without O(wait) once, with it until the alias reads as asked or the time is up.
    deadline = time.monotonic() + (params["wait_timeout"] if params["wait"] else 0)
    while True:
        after = awslambda.alias_state(awslambda.get_alias(caller, client, function, alias_name))
        if after == predicted:
            outcome += "; verified"
            break
        if time.monotonic() >= deadline:
            module.fail_json(
                msg=f"{name} points at {after['function_version']} with routing {after['routing']} after the "
                f"update, not {target} with {decision['routing']}",
                **dict(result, after=after),
            )
        time.sleep(1)
    result["after"] = after
    result["msg"] = f"rolled back {name} {outcome}"
    return result


def main():
    run_aws_step(run, "mitigation", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
