#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_freeze
short_description: Freeze deploys during an incident (CodePipeline stage transitions and an SSM flag), and lift it
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - The seeds' "pause deploys while investigating" (Challenge 04, section 2) and "freeze non-critical deploys (pause
    app pipeline)" (Challenge 01, section 2).
  - With O(state=contained), disables the inbound transitions of the stages of the named CodePipeline pipelines (by
    default every stage but the first) with a reason naming the incident, tags the pipelines, and writes a freeze
    flag (JSON with C(frozen), C(incident_id), C(reason), C(since)) to the SSM parameter O(parameter), which any
    pipeline (GitHub Actions, per the seeds) can check before deploying.
  - With O(state=released), undoes exactly the given O(containments) entries. It re-enables a transition only while
    it is still disabled with this incident's reason, and restores the parameter (its previous value, or deletes it
    when there was none) only while it still holds the version this incident wrote. Anything someone changed
    meanwhile is left alone and reported.
  - Before it freezes, it records a claim per stage in the containment ledger (O(claims_bucket) or O(claims_dir)),
    including stages already frozen by another incident. A release leaves a stage another unreleased incident still
    claims frozen (RV(kept) says for whom); the last claimant's release lifts it. A pipeline deleted meanwhile is
    reported in RV(gone) and the release goes on with the rest. The SSM flag is not in the ledger yet.
  - One module call reads, decides, acts and reads back. A re-run changes nothing. In check mode nothing is changed.
    Unknown pipelines or stages fail naming the value before anything is changed.
options:
  pipelines:
    description:
      - Names of the CodePipeline pipelines to freeze. May be empty to only set the flag.
    type: list
    elements: str
    default: []
  stages:
    description:
      - Stages whose inbound transition is disabled, in every pipeline. Empty means every stage but the first.
    type: list
    elements: str
    default: []
  parameter:
    description:
      - The SSM parameter holding the freeze flag. Empty means no flag.
      - Checked as AWS documents parameter names before anything is changed, and refused naming the value and the
        rule broken. Only C(a-zA-Z0-9_.-) and C(/) between levels; a name with a C(/) fully qualified (a leading
        C(/)); at most 15 levels and 1011 characters; not beginning with C(aws) or C(ssm) (case-insensitive); no
        C(.), C(..) or empty path segment.
    type: str
    default: /firebreak/deploy-freeze
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.CONTAINMENT
  - firebreak.runbooks.step.ATTRIBUTES
  - firebreak.runbooks.step.CLAIMS
notes:
  - O(incident_id) is required with O(state=contained) (except in check mode).
  - A disabled transition lets the current stage's execution finish; the next stage does not start until enabled.
  - The flag only stops pipelines that check it; see the step's documentation for a GitHub Actions check.
  - A SecureString parameter is refused (its previous value would have to be recorded).
"""

EXAMPLES = r"""
- name: Freeze deploys of the app pipeline and set the flag
  firebreak.runbooks.deploy_freeze:
    pipelines: [app-deploy]
    incident_id: INC-2041

- name: Lift the freeze after the incident
  firebreak.runbooks.deploy_freeze:
    state: released
    incident_id: INC-2041
    containments: >-
      {{ lookup('firebreak.runbooks.containments', 'deploy_freeze', incident_id='INC-2041', wantlist=True) }}
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "froze app-deploy (Build, Deploy); flag /firebreak/deploy-freeze set"
before:
  description: Inbound transitions per pipeline and stage, and the flag parameter, before the step.
  returned: always
  type: dict
  sample: {"pipelines": {"app-deploy": {"Deploy": {"enabled": true, "reason": null}}}, "parameter": null}
after:
  description: The same after the step (read back), or in check mode the predicted state.
  returned: always
  type: dict
  sample: {"pipelines": {"app-deploy": {"Deploy": {"enabled": false, "reason": "Deploy freeze for incident INC-2041"}}}}
containment:
  description:
    - With O(state=contained), one entry per pipeline changed (C(kind=pipeline), C(changed.disabled_transitions),
      C(changed.reason), C(changed.tags_added)) and one for the flag (C(kind=parameter), C(changed.previous) -
      C(null) when it did not exist - and C(changed.written_version)).
  returned: always
  type: list
  elements: dict
  sample:
    - incident_id: INC-2041
      step: deploy_freeze
      kind: parameter
      resource: /firebreak/deploy-freeze
      changed: {"previous": null, "written_version": 1}
      at: "2026-11-24T13:30:00Z"
      id: 0123456789abcdef
release:
  description:
    - With O(state=released), C(releases) (entry ids), C(restored) (C(enabled) transitions per pipeline, C(parameter)
      restored, deleted or untouched) and C(left_alone).
  returned: when state is released
  type: list
  elements: dict
  sample:
    - releases: [0123456789abcdef]
      restored: {"enabled": {"app-deploy": ["Deploy"]}, "parameter": "deleted"}
      left_alone: {}
kept:
  description: With O(state=released), C(pipeline/stage) left frozen because other unreleased incidents claim it.
  returned: when state is released
  type: dict
  sample: {"app-deploy/Deploy": ["INC-2042"]}
not_lifted:
  description: With O(state=released), C(pipeline/stage) transitions this release enabled that do not read back enabled.
  returned: when state is released
  type: list
  elements: str
  sample: []
gone:
  description: With O(state=released), pipelines that no longer exist (their entries are recorded as released).
  returned: when state is released
  type: list
  elements: str
  sample: []
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
diff:
  description: Before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"parameter": null}, "after": {"parameter": {"frozen": true}}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import deploy_freeze as df
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

ARGUMENT_SPEC = dict(
    **ledger.CONTAINMENT_OPTIONS,
    pipelines=dict(type="list", elements="str", default=[]),
    stages=dict(type="list", elements="str", default=[]),
    parameter=dict(type="str", default=df.DEFAULT_PARAMETER),
    **step.INCIDENT_OPTION,
    **step.RETRY_BUDGET_OPTION,
    **ledger.CLAIMS_OPTIONS,
)


def bookkeeping(module, record):
    ledger.bookkeeping(module, "the pipelines were changed", record)


def read_pipeline(caller, cp, name):
    try:
        declared = caller(cp, "get_pipeline", f"pipeline {name!r}", name=name)
    except step.StepAWSError as err:
        if err.code == "PipelineNotFoundException":
            raise df.DeployFreezeError(f"CodePipeline pipeline {name!r} does not exist") from None
        raise
    state = caller(cp, "get_pipeline_state", f"pipeline {name!r}", name=name)
    stages = [s["name"] for s in (declared.get("pipeline") or {}).get("stages") or []]
    arn = (declared.get("metadata") or {}).get("pipelineArn")
    return {"stages": stages, "arn": arn, "inbound": df.inbound_states(state)}


def _flag_view(parameter):
    if parameter is None:
        return None
    return {"value": parameter["value"], "version": parameter["version"]}


def contain(module, caller, clients, result):
    params = module.params
    incident_id = params["incident_id"] or "check-mode"
    reason = df.freeze_reason(incident_id)
    plans = {}
    for name in params["pipelines"]:
        info = read_pipeline(caller, clients("codepipeline"), name)
        wanted = df.stages_to_freeze(info["stages"], params["stages"])
        info["freeze"] = [s for s in wanted if info["inbound"].get(s, {"enabled": True})["enabled"]]
        info["claimed"] = df.stage_items(wanted)
        tags = {}
        if info["arn"]:
            answer = caller(
                clients("codepipeline"), "list_tags_for_resource", f"pipeline {name!r}", resourceArn=info["arn"]
            )
            current = {t["key"]: t["value"] for t in answer.get("tags") or []}
            tags = {k: v for k, v in step.incident_tags(incident_id, df.STEP).items() if current.get(k) != v}
        info["tags_added"] = tags
        plans[name] = info
    parameter = df.read_parameter(caller, clients("ssm"), params["parameter"]) if params["parameter"] else None
    if parameter is not None and parameter["type"] == "SecureString":
        raise df.DeployFreezeError(f"SSM parameter {params['parameter']!r} is a SecureString: choose another parameter")
    write_flag = bool(params["parameter"]) and not (parameter and df.is_frozen_by(parameter["value"], incident_id))

    result["before"] = {
        "pipelines": {n: p["inbound"] for n, p in plans.items()},
        "parameter": _flag_view(parameter),
    }
    predicted_pipelines = {
        n: dict(p["inbound"], **{s: {"enabled": False, "reason": reason} for s in p["freeze"]})
        for n, p in plans.items()
    }
    new_claims = {}
    if not module.check_mode and params["incident_id"]:
        # the claims first: another incident's release must see them before the stages are frozen
        book = clients("ledger")
        for name, plan in plans.items():
            new_claims[name] = book.claim(params["incident_id"], df.STEP, plan["arn"] or name, plan["claimed"])
        if params["parameter"]:
            book.claim(params["incident_id"], df.STEP, params["parameter"], [df.FLAG_ITEM])
    changed = write_flag or any(p["freeze"] or p["tags_added"] or new_claims.get(n) for n, p in plans.items())
    result["changed"] = changed
    summary = (
        "; ".join(f"{n} ({', '.join(p['freeze']) or 'already frozen'})" for n, p in plans.items()) or "no pipeline"
    )
    flag = f"flag {params['parameter']} set" if write_flag else "flag unchanged"
    if module.check_mode or not changed:
        result["after"] = (
            {"pipelines": predicted_pipelines, "parameter": result["before"]["parameter"]}
            if module.check_mode
            else result["before"]
        )
        result["msg"] = (
            f"check mode: would freeze {summary}; {flag}"
            if module.check_mode
            else "no change: already frozen for this incident"
        )
        return result

    entries = []
    cp = clients("codepipeline") if plans else None
    for name, plan in plans.items():
        for stage in plan["freeze"]:
            caller(
                cp,
                "disable_stage_transition",
                f"pipeline {name!r} stage {stage!r}",
                pipelineName=name,
                stageName=stage,
                transitionType="Inbound",
                reason=reason,
            )
        if plan["tags_added"]:
            caller(
                cp,
                "tag_resource",
                f"pipeline {name!r}",
                resourceArn=plan["arn"],
                tags=[{"key": k, "value": v} for k, v in plan["tags_added"].items()],
            )
        if plan["freeze"]:
            bookkeeping(
                module,
                lambda resource=plan["arn"] or name, stages=plan["freeze"]: clients("ledger").mark_added(
                    params["incident_id"], df.STEP, resource, df.stage_items(stages)
                ),
            )
        if plan["freeze"] or plan["tags_added"] or new_claims.get(name):
            entries.append(
                step.containment_entry(
                    params["incident_id"],
                    df.STEP,
                    name,
                    {"disabled_transitions": plan["freeze"], "reason": reason, "tags_added": plan["tags_added"]},
                    kind="pipeline",
                    pipeline_arn=plan["arn"],
                    claimed=plan["claimed"],
                )
            )
    after_parameter = parameter
    if write_flag:
        ssm = clients("ssm")
        value = df.flag_value(params["incident_id"], reason, step.iso_utc(step.utc_now()))
        answer = caller(
            ssm,
            "put_parameter",
            f"SSM parameter {params['parameter']!r}",
            Name=params["parameter"],
            Value=value,
            Type="String",
            Overwrite=True,
            Description="deploy freeze flag (firebreak.runbooks deploy_freeze)",
        )
        written = answer.get("Version")
        previous = None if parameter is None else {"value": parameter["value"], "version": parameter["version"]}
        entries.append(
            step.containment_entry(
                params["incident_id"],
                df.STEP,
                params["parameter"],
                {"previous": previous, "written_version": written},
                kind="parameter",
            )
        )
        after_parameter = df.read_parameter(caller, ssm, params["parameter"])
        bookkeeping(
            module,
            lambda: clients("ledger").mark_added(params["incident_id"], df.STEP, params["parameter"], [df.FLAG_ITEM]),
        )
    result["containment"] = entries
    after = {"pipelines": {}, "parameter": _flag_view(after_parameter)}
    for name in plans:
        after["pipelines"][name] = df.inbound_states(caller(cp, "get_pipeline_state", f"pipeline {name!r}", name=name))
    result["after"] = after
    not_frozen = [
        f"{n}/{s}"
        for n, p in plans.items()
        for s in p["freeze"]
        if after["pipelines"][n].get(s, {}).get("enabled", True)
    ]
    if not_frozen:
        raise df.DeployFreezeError(f"transitions still enabled after disabling them: {not_frozen}")
    result["msg"] = f"froze {summary}; {flag}"
    return result


def _left_alone_text(left_alone):
    """``; left alone: name (why), ...``, or nothing when nothing was left alone."""
    if not left_alone:
        return ""
    return "; left alone: " + ", ".join(f"{name} ({why})" for name, why in sorted(left_alone.items()))


def release(module, caller, clients, result):
    params = module.params
    pipeline_entries, parameter_entries = df.entries_by_kind(params["containments"])
    left_alone, enable = {}, {}
    before_pipelines = {}
    gone, kept, settle = [], {}, []
    owner = params["incident_id"]
    for entry in pipeline_entries:
        name = entry["resource"]
        ours = df.stage_items(entry["changed"].get("disabled_transitions") or [])
        claimed = list(dict.fromkeys(list(entry.get("claimed") or []) + ours))
        resource = entry.get("pipeline_arn") or name
        try:
            info = read_pipeline(caller, clients("codepipeline"), name)
        except df.DeployFreezeError:
            left_alone[name] = "the pipeline no longer exists"
            gone.append(name)
            if owner and not module.check_mode:
                bookkeeping(module, lambda r=resource, c=claimed: clients("ledger").drop(owner, r, c))
            continue
        before_pipelines[name] = info["inbound"]
        # what no other unreleased incident still claims (the ledger); the rest is kept, for whom is said
        selection = clients("ledger").select(owner, resource, claimed, ours) if owner else {"remove": ours, "kept": {}}
        lift = [item[len("stage:") :] for item in selection["remove"] if item.startswith("stage:")]
        inherited = [item[len("stage:") :] for item in selection["remove"] if item not in ours]
        for item, who in selection["kept"].items():
            kept[f"{name}/{item[len('stage:') :]}"] = who
            left_alone[f"{name}/{item[len('stage:') :]}"] = f"still claimed by {', '.join(who)}: left frozen"
        settle.append((resource, claimed, selection["remove"]))
        stages, left = df.decide_pipeline_release(entry, info["inbound"], lift, inherited)
        for stage in stages:
            if stage not in enable.get(name, []):
                enable.setdefault(name, []).append(stage)
        left_alone.update({f"{name}/{stage}": why for stage, why in left.items() if stage not in enable.get(name, [])})
        entry["_arn"] = info["arn"]
    names = sorted({e["resource"] for e in parameter_entries})
    parameter_actions = {}
    before_parameter = {}
    for name in names:
        mine = [e for e in parameter_entries if e["resource"] == name]
        current = df.read_parameter(caller, clients("ssm"), name)
        before_parameter[name] = _flag_view(current)
        claimants = None
        if owner:
            selection = clients("ledger").select(owner, name, [df.FLAG_ITEM], [df.FLAG_ITEM])
            settle.append((name, [df.FLAG_ITEM], selection["remove"]))
            if selection["kept"]:
                who = selection["kept"][df.FLAG_ITEM]
                kept[name] = who
                left_alone[name] = f"still claimed by {', '.join(who)}: left set"
                continue
            claimants = [c for c in clients("ledger").claimants(name, df.FLAG_ITEM) if c != owner]
        action, detail = df.decide_parameter_release(mine, current, claimants)
        if action == "leave":
            left_alone[name] = detail
        else:
            parameter_actions[name] = (action, detail)
    result["before"] = {"pipelines": before_pipelines, "parameter": before_parameter}
    changed = bool(enable or parameter_actions)
    result["changed"] = changed
    restored = {
        "enabled": enable,
        "parameter": {n: ("deleted" if a == "delete" else "restored") for n, (a, _d) in parameter_actions.items()},
    }
    ids = [e.get("id") for e in pipeline_entries + parameter_entries if e.get("id")]
    result["kept"] = kept
    result["gone"] = gone
    result["release"] = [
        step.release_entry(
            params["incident_id"],
            df.STEP,
            "deploy-freeze",
            ids,
            restored,
            left_alone,
            **({"gone": gone} if gone else {}),
        )
    ]

    def settle_claims():
        if owner and not module.check_mode:
            for resource, claimed, removed in settle:
                bookkeeping(module, lambda r=resource, c=claimed, d=removed: clients("ledger").settle(owner, r, c, d))

    result["not_lifted"] = []
    if module.check_mode or not changed:
        settle_claims()
        result["after"] = result["before"]
        result["msg"] = (
            "check mode: would lift " if module.check_mode else "nothing to lift: "
        ) + f"{restored}{_left_alone_text(left_alone)}"
        return result
    cp = clients("codepipeline") if enable else None
    for name, stages in enable.items():
        for stage in stages:
            caller(
                cp,
                "enable_stage_transition",
                f"pipeline {name!r} stage {stage!r}",
                pipelineName=name,
                stageName=stage,
                transitionType="Inbound",
            )
    for entry in pipeline_entries:
        keys = list((entry["changed"].get("tags_added") or {}))
        if keys and entry.get("_arn") and entry["resource"] in before_pipelines:
            caller(
                clients("codepipeline"),
                "untag_resource",
                f"pipeline {entry['resource']!r}",
                resourceArn=entry["_arn"],
                tagKeys=keys,
            )
    for name, (action, previous) in parameter_actions.items():
        ssm = clients("ssm")
        if action == "delete":
            caller(ssm, "delete_parameter", f"SSM parameter {name!r}", Name=name)
        else:
            caller(
                ssm,
                "put_parameter",
                f"SSM parameter {name!r}",
                Name=name,
                Value=previous["value"],
                Type="String",
                Overwrite=True,
            )
    after = {"pipelines": {}, "parameter": {}}
    for name in before_pipelines:
        after["pipelines"][name] = df.inbound_states(
            caller(clients("codepipeline"), "get_pipeline_state", f"pipeline {name!r}", name=name)
        )
    for name in names:
        after["parameter"][name] = _flag_view(df.read_parameter(caller, clients("ssm"), name))
    settle_claims()
    result["after"] = after
    result["not_lifted"] = [
        f"{n}/{stage}"
        for n, stages in enable.items()
        for stage in stages
        if not after["pipelines"].get(n, {}).get(stage, {}).get("enabled")
    ]
    result["msg"] = f"lifted the freeze: {restored}{_left_alone_text(left_alone)}"
    for entry in pipeline_entries:
        entry.pop("_arn", None)
    return result


def run(module, result):
    params = module.params
    df.validate(params["pipelines"], params["stages"], params["parameter"])
    if params["state"] == "contained":
        if not params["pipelines"] and not params["parameter"]:
            raise df.DeployFreezeError("nothing to freeze: give pipelines and/or parameter")
        if not params["incident_id"] and not module.check_mode:
            raise df.DeployFreezeError("incident_id is required to freeze (it names the reason, the flag and the tags)")
    else:
        df.entries_by_kind(params["containments"])
    result.update(changed=False)
    caller = step.Caller(params["retry_budget"])
    cache = {}

    def clients(service):
        if service not in cache:
            if service == "ledger":
                cache[service] = ledger.for_module(module, caller, clients)
            else:
                cache[service] = step.aws_client(module, service)
        return cache[service]

    result = (
        contain(module, caller, clients, result)
        if params["state"] == "contained"
        else release(module, caller, clients, result)
    )
    return result


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
