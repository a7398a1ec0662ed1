#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iam_credential_quarantine
short_description: Quarantine IAM users and roles (keys off, issued credentials revoked); release exactly that
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Containment step "disable the compromised credentials", in one call, for one or many users and roles.
  - For each user it deactivates the given access keys, or all active keys. Keys are never deleted (they are
    evidence). Each key's last use (service, region, date) is recorded first.
  - Deactivating a key does not end temporary credentials already issued with it. With O(revoke_issued=true)
    the module puts an inline policy that denies everything to requests whose C(aws:TokenIssueTime) is earlier
    than now, on users and on roles (a misused role or IRSA role). This is what the console's "Revoke active
    sessions" does for roles.
  - Optionally attaches an AWS managed quarantine policy (O(quarantine_policy)).
  - Lists each user's MFA devices and login profile for the report. Tags each principal with the incident id.
  - Refuses to quarantine the identity the runbook itself runs as (C(sts:GetCallerIdentity)), which would lock
    the responder out mid-incident, unless O(force=true).
  - Every principal is read and every input checked before the first change. An unknown user, role or key fails
    with a message naming it and nothing changed. Principals are handled concurrently (O(max_workers)).
  - With O(state=released) it undoes exactly the O(containments) entries. It reactivates only the keys the
    incident deactivated and removes only the policies it added. A key someone re-enabled or deleted meanwhile
    is left alone and reported in RV(left_alone).
  - Before it changes a principal it records claims in the containment ledger (O(claims_bucket) or O(claims_dir)),
    one per key it wants off (deactivated now or already inactive) and for the quarantine policy. A release leaves
    a key or policy another unreleased incident still claims (RV(kept) says for whom); the last claimant's release
    undoes it. A principal deleted meanwhile is reported in RV(gone), its entries recorded as released, and the
    release goes on with the other principals.
  - Check mode reads, decides and reports (with a diff) and changes nothing.
options:
  users:
    description:
      - IAM user names to quarantine.
    type: list
    elements: str
    aliases: [user]
    default: []
  roles:
    description:
      - IAM role names whose issued credentials to revoke (roles have no access keys).
    type: list
    elements: str
    aliases: [role]
    default: []
  access_key_ids:
    description:
      - The keys to deactivate (only with exactly one user). Empty means every active key of each user.
    type: list
    elements: str
    default: []
  revoke_issued:
    description:
      - Put the inline policy C(firebreak-revoke-issued-<incident>) denying everything to credentials issued
        before now.
    type: bool
    default: true
  quarantine_policy:
    description:
      - A managed policy to attach as well, by ARN or AWS managed policy name.
      - V(auto) picks C(AWSCompromisedKeyQuarantineV2), else C(AWSDenyAll), whichever exists.
      - Empty attaches nothing.
    type: str
    default: ""
  force:
    description:
      - Quarantine the identity the module runs as anyway.
    type: bool
    default: false
  max_workers:
    description:
      - How many principals to read and change at the same time.
    type: int
    default: 8
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
  - O(incident_id) is required with O(state=contained) outside check mode.
  - The incident tags stay on the principals after a release, as a record.
  - moto (the sandbox) never evaluates policies and lets inactive keys authenticate. The tests check the
    resulting state (key status, policy documents), not the effect.
seealso:
  - module: amazon.aws.iam_access_key
"""

EXAMPLES = r"""
- name: Quarantine the compromised CI user
  firebreak.runbooks.iam_credential_quarantine:
    user: ci-deployer
    quarantine_policy: auto
    incident_id: INC-2041
  register: quarantine

- name: Revoke credentials already issued to a misused IRSA role
  firebreak.runbooks.iam_credential_quarantine:
    role: batch-irsa
    incident_id: INC-2041

- name: Release what the incident quarantined
  firebreak.runbooks.iam_credential_quarantine:
    state: released
    containments: >-
      {{ lookup('firebreak.runbooks.containments', 'iam_key_disable', incident_id='INC-2041', wantlist=True) }}
    incident_id: INC-2041
"""

RETURN = r"""
msg:
  description: What was done.
  returned: always
  type: str
  sample: "quarantined user ci-deployer: deactivated 1 key, added firebreak-revoke-issued-INC-2041"
caller_arn:
  description: The identity the module ran as (never quarantined unless O(force=true)).
  returned: with O(state=contained)
  type: str
  sample: arn:aws:sts::123456789012:assumed-role/responder/alice
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
resource: {description: What the failed call was about., returned: on an AWS error, type: str}
attempts: {description: How many attempts the failed call made., returned: on an AWS error, type: int}
quarantine_policy_arn:
  description: The managed policy attached (or that would be), if any.
  returned: with O(state=contained)
  type: str
  sample: arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2
principals:
  description: One report per principal.
  returned: always
  type: list
  elements: dict
  contains:
    type:
      description: V(user) or V(role).
      returned: always
      type: str
      sample: user
    name:
      description: User or role name.
      returned: always
      type: str
      sample: ci-deployer
    arn:
      description: ARN.
      returned: always
      type: str
      sample: arn:aws:iam::123456789012:user/ci-deployer
    changed:
      description: Whether this principal was changed.
      returned: always
      type: bool
      sample: true
    keys:
      description:
        - Each access key with C(access_key_id), C(status_before), C(status_after) and C(last_used)
          (C(service), C(region), C(date)).
      returned: with O(state=contained)
      type: list
      elements: dict
      sample: [{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "status_before": "Active", "status_after": "Inactive",
                "last_used": {"service": "s3", "region": "us-east-1", "date": "2026-11-24T02:10:00Z"}}]
    mfa_devices:
      description: MFA devices (C(serial_number), C(enabled_date)).
      returned: with O(state=contained)
      type: list
      elements: dict
      sample: []
    login_profile:
      description: Whether the user has a console password (C(exists), C(created), C(reset_required)); null for roles.
      returned: with O(state=contained)
      type: dict
      sample: {"exists": false}
    deny_policy:
      description: The inline revocation policy, when present after the step.
      returned: with O(state=contained)
      type: str
      sample: firebreak-revoke-issued-INC-2041
before:
  description:
    - Per principal (C(user/NAME), C(role/NAME)), before the step. Each has C(active_keys), C(inactive_keys),
      C(inline_policies) and C(attached_policies) (read only when O(quarantine_policy) is set or on release).
  returned: always
  type: dict
  sample: {"user/ci-deployer": {"active_keys": ["AKIAIOSFODNN7EXAMPLE"], "inactive_keys": [],
           "inline_policies": ["deploy"], "attached_policies": []}}
after:
  description: The same, read back from the API after the step (in check mode, as it would be).
  returned: always
  type: dict
  sample: {"user/ci-deployer": {"active_keys": [], "inactive_keys": ["AKIAIOSFODNN7EXAMPLE"],
           "inline_policies": ["deploy", "firebreak-revoke-issued-INC-2041"], "attached_policies": []}}
containment:
  description:
    - One entry per principal changed, for the incident timeline and the release. C(changed) holds exactly
      C(deactivated) (key ids), C(inline_policies) and C(attached_policies) added. C(last_used) holds each key's
      last use. C(claimed) lists the ledger items the incident claims (C(key:<id>), C(policy:<arn>)). A principal
      whose items were only claimed (already contained by another incident) gets an entry with nothing changed.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "5f1c0e2a9b7d4c31", "step": "iam_key_disable",
            "resource": "arn:aws:iam::123456789012:user/ci-deployer",
            "changed": {"deactivated": ["AKIAIOSFODNN7EXAMPLE"],
                        "inline_policies": ["firebreak-revoke-issued-INC-2041"], "attached_policies": []}}]
release:
  description: One release record per entry undone (C(releases), C(restored), C(left_alone)).
  returned: with O(state=released)
  type: list
  elements: dict
  sample: [{"releases": ["5f1c0e2a9b7d4c31"], "restored": {"reactivated": ["AKIAIOSFODNN7EXAMPLE"]}, "left_alone": {}}]
left_alone:
  description:
    - With O(state=released), per principal, what was found changed by someone else and not touched
      (C(keys_already_active), C(keys_deleted), C(inline_policies_already_removed), C(policies_already_detached)),
      C(principal_deleted), and C(kept_for_others).
  returned: with O(state=released)
  type: dict
  sample: {"user/ci-deployer": {"keys_already_active": ["AKIAIOSFODNN7EXAMPLE"]}}
kept:
  description:
    - With O(state=released), per principal, the items left contained because another unreleased incident still
      claims them, with who (also in RV(left_alone) as C(kept_for_others)).
  returned: with O(state=released)
  type: dict
  sample: {"user/ci-deployer": {"key:AKIAIOSFODNN7EXAMPLE": ["INC-2042"]}}
gone:
  description: Principals (ARNs) deleted meanwhile; their entries were recorded as released (C(gone=true)).
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
ignored_entries:
  description: Ids of O(containments) entries ignored (another step, incident or principal).
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
diff:
  description: RV(before) and RV(after), with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {}, "after": {}}
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import iam
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.iam import IAMInputError
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

STEP = "iam_key_disable"

ARGUMENT_SPEC = dict(
    users=dict(type="list", elements="str", aliases=["user"], default=[]),
    roles=dict(type="list", elements="str", aliases=["role"], default=[]),
    access_key_ids=dict(type="list", elements="str", default=[], no_log=False),
    revoke_issued=dict(type="bool", default=True),
    quarantine_policy=dict(type="str", default=""),
    force=dict(type="bool", default=False),
    max_workers=dict(type="int", default=8),
    **ledger.CONTAINMENT_OPTIONS,
    **ledger.CLAIMS_OPTIONS,
    **step.RETRY_BUDGET_OPTION,
    **step.INCIDENT_OPTION,
)


def state_of(keys, inline, attached):
    return {
        "active_keys": sorted(k for k, s in keys.items() if s == "Active"),
        "inactive_keys": sorted(k for k, s in keys.items() if s != "Active"),
        "inline_policies": sorted(inline),
        "attached_policies": sorted(attached),
    }


def label(kind, name):
    return f"{kind}/{name}"


class Step:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.caller = step.Caller(module.params["retry_budget"])
        self.iam = step.aws_client(module, "iam", pool=module.params["max_workers"])
        self._ledger = None

    @property
    def ledger(self):
        if self._ledger is None:
            self._ledger = ledger.for_module(self.module, self.caller)
        return self._ledger

    def bookkeeping(self, record):
        ledger.bookkeeping(self.module, "the principals were changed", record)

    def pool_map(self, fn, items):
        """``fn`` over ``items`` on a thread pool; results in order; the first exception re-raised after all ran."""
        workers = max(1, min(self.params["max_workers"], len(items) or 1))
        if workers == 1:
            outcomes = []
            for item in items:
                try:
                    outcomes.append((fn(item), None))
                except Exception as err:  # collected, re-raised by the caller
                    outcomes.append((None, err))
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(fn, item) for item in items]
                outcomes = []
                for future in futures:
                    try:
                        outcomes.append((future.result(), None))
                    except Exception as err:  # collected, re-raised by the caller
                        outcomes.append((None, err))
        return outcomes

    def principals(self):
        targets = [("user", name) for name in dict.fromkeys(self.params["users"])]
        targets += [("role", name) for name in dict.fromkeys(self.params["roles"])]
        return targets

    # -- contained --------------------------------------------------------------------------------
    def validate_contained(self, targets):
        params = self.params
        if not targets:
            raise IAMInputError("nothing to quarantine: give users (user) and/or roles (role)")
        for kind, name in targets:
            if not str(name).strip():
                raise IAMInputError(f"an empty {kind} name was given")
        if params["access_key_ids"] and (len(params["users"]) != 1 or params["roles"]):
            raise IAMInputError("access_key_ids may only be given with exactly one user")
        if not 1 <= params["max_workers"] <= 64:
            raise IAMInputError(f"max_workers must be between 1 and 64, got {params['max_workers']}")
        if not params["incident_id"] and not self.module.check_mode:
            raise IAMInputError("incident_id is required with state=contained (the release needs it)")

    def refuse_self(self, targets):
        sts = step.aws_client(self.module, "sts")
        arn = self.caller(sts, "get_caller_identity", "the runbook's own identity").get("Arn")
        kind, name = iam.caller_principal(arn)
        if (kind, name) in targets and not self.params["force"]:
            raise IAMInputError(
                f"refusing to quarantine {kind} {name!r}: it is the identity this runbook runs as ({arn}); that would "
                "lock the responder out mid-incident. Run as another identity, or set force=true"
            )
        return arn

    def resolve_quarantine(self):
        value = (self.params["quarantine_policy"] or "").strip()
        if not value:
            return None
        candidates = iam.QUARANTINE_AUTO if value.lower() == "auto" else (value,)
        for candidate in candidates:
            arn = iam.quarantine_arn(candidate)
            try:
                self.caller(self.iam, "get_policy", f"policy {arn!r}", PolicyArn=arn)
                return arn
            except step.StepAWSError as err:
                if err.code not in (iam.NOT_FOUND, "InvalidInput", "ValidationError"):
                    raise
        if value.lower() == "auto":
            raise IAMInputError(
                f"quarantine_policy auto: none of {', '.join(iam.QUARANTINE_AUTO)} exists in this account"
            )
        raise IAMInputError(f"quarantine_policy {value!r} does not exist")

    def read(self, target):
        kind, name = target
        principal = iam.Principal(self.caller, self.iam, kind, name)
        described = principal.describe()
        keys = principal.access_keys()
        return {
            "principal": principal,
            "arn": described["Arn"],
            "keys": keys,
            "last_used": {key: principal.last_used(key) for key in keys},
            "inline": principal.inline_policies(),
            # only needed to attach a quarantine policy (one call per principal saved otherwise)
            "attached": principal.attached_policies() if self.params["quarantine_policy"] else [],
            "mfa_devices": principal.mfa_devices(),
            "login_profile": principal.login_profile(),
        }

    def contained(self):
        params = self.params
        targets = self.principals()
        self.validate_contained(targets)
        caller_arn = self.refuse_self(targets)
        quarantine = self.resolve_quarantine()
        now = step.utc_now()
        deny_name = iam.deny_policy_name(params["incident_id"]) if params["revoke_issued"] else None

        reads = self.pool_map(self.read, targets)
        problems = [str(err) for _, err in reads if isinstance(err, IAMInputError)]
        if problems:
            raise IAMInputError("; ".join(problems) + " (nothing was changed)")
        for _, err in reads:
            if err is not None:
                raise err
        states = [state for state, _ in reads]
        plans = []
        for (kind, name), state in zip(targets, states, strict=True):
            plans.append(
                iam.plan_principal(
                    kind,
                    name,
                    state["keys"],
                    params["access_key_ids"],
                    state["inline"],
                    state["attached"],
                    deny_name,
                    quarantine,
                )
            )

        claims = [
            iam.claim_items(kind, state["keys"], params["access_key_ids"], plan, quarantine)
            for (kind, _name), state, plan in zip(targets, states, plans, strict=True)
        ]
        new_claims = [0] * len(targets)
        if not self.module.check_mode:
            # the claims first: another incident's release must see them before the principals are changed
            for index, (state, items) in enumerate(zip(states, claims, strict=True)):
                new_claims[index] = self.ledger.claim(params["incident_id"], STEP, state["arn"], items)

        def act(index):
            state, plan = states[index], plans[index]
            principal = state["principal"]
            if not any(plan.values()):
                return
            for policy in plan["put_inline"]:
                principal.put_inline(policy, iam.deny_policy_document(now))
            for key in plan["deactivate"]:
                principal.set_key_status(key, "Inactive")
            for arn in plan["attach"]:
                principal.attach(arn)
            try:
                principal.tag(step.incident_tags(params["incident_id"], STEP))
            except step.StepAWSError as err:
                self.module.warn(f"{principal.what} is quarantined, but tagging it failed: {err}")
            changed_here = iam.changed_items({"deactivated": plan["deactivate"], "attached_policies": plan["attach"]})
            if changed_here:
                self.bookkeeping(
                    lambda: self.ledger.mark_added(params["incident_id"], STEP, state["arn"], changed_here)
                )
            # read back what the role verifies (the keys and policies as the API answers now)
            read_back = {"keys": principal.access_keys(), "inline": principal.inline_policies()}
            if plan["attach"]:
                read_back["attached"] = principal.attached_policies()
            return read_back

        failures = []
        read_backs = [None] * len(targets)
        if not self.module.check_mode:
            for index, (read_back, err) in enumerate(self.pool_map(act, list(range(len(targets))))):
                if err is not None:
                    failures.append((index, err))
                read_backs[index] = read_back

        result = {
            "caller_arn": caller_arn,
            "quarantine_policy_arn": quarantine,
            "principals": [],
            "before": {},
            "after": {},
            "containment": [],
        }
        failed_indexes = {index for index, _ in failures}
        for index, ((kind, name), state, plan) in enumerate(zip(targets, states, plans, strict=True)):
            done = index not in failed_indexes
            keys_after = dict(state["keys"])
            if done:
                keys_after.update({key: "Inactive" for key in plan["deactivate"]})
            inline_after = state["inline"] + (plan["put_inline"] if done else [])
            attached_after = state["attached"] + (plan["attach"] if done else [])
            if read_backs[index]:
                keys_after = read_backs[index]["keys"]
                inline_after = read_backs[index]["inline"]
                attached_after = read_backs[index].get("attached", attached_after)
            key = label(kind, name)
            result["before"][key] = state_of(state["keys"], state["inline"], state["attached"])
            result["after"][key] = state_of(keys_after, inline_after, attached_after)
            changed = done and (any(plan.values()) or bool(new_claims[index]))
            result["principals"].append(
                {
                    "type": kind,
                    "name": name,
                    "arn": state["arn"],
                    "changed": changed,
                    "keys": [
                        {
                            "access_key_id": key_id,
                            "status_before": status,
                            "status_after": keys_after.get(key_id),
                            "last_used": state["last_used"][key_id],
                        }
                        for key_id, status in sorted(state["keys"].items())
                    ],
                    "mfa_devices": state["mfa_devices"],
                    "login_profile": state["login_profile"],
                    "deny_policy": deny_name if deny_name and deny_name in inline_after else None,
                }
            )
            if changed:
                result["containment"].append(
                    step.containment_entry(
                        params["incident_id"],
                        STEP,
                        state["arn"],
                        {
                            "deactivated": plan["deactivate"],
                            "inline_policies": plan["put_inline"],
                            "attached_policies": plan["attach"],
                        },
                        principal_type=kind,
                        principal_name=name,
                        last_used={k: state["last_used"][k] for k in plan["deactivate"]},
                        revoked_issued_before=step.iso_utc(now.replace(microsecond=0)) if plan["put_inline"] else None,
                        claimed=claims[index],
                    )
                )
        result["changed"] = any(p["changed"] for p in result["principals"])
        summary = []
        for principal, plan, claimed in zip(result["principals"], plans, claims, strict=True):
            if principal["changed"]:
                parts = [] if any(plan.values()) else [f"claimed {len(claimed)} item(s) another incident contains"]
                if plan["deactivate"]:
                    parts.append(f"deactivated {len(plan['deactivate'])} key(s)")
                if plan["put_inline"]:
                    parts.append(f"added {plan['put_inline'][0]}")
                if plan["attach"]:
                    parts.append(f"attached {plan['attach'][0].rsplit('/', 1)[-1]}")
                summary.append(f"{principal['type']} {principal['name']}: {', '.join(parts)}")
        prefix = "check mode: would quarantine" if self.module.check_mode else "quarantined"
        if summary:
            shown = "; ".join(summary[:5]) + (f"; and {len(summary) - 5} more" if len(summary) > 5 else "")
            result["msg"] = f"{prefix} {shown}"
        else:
            result["msg"] = f"no change: {len(targets)} principal(s) already quarantined"
        if failures:
            index, err = failures[0]
            message = f"quarantining {len(failures)} of {len(targets)} principal(s) failed; first: {err}"
            extra = err.result() if isinstance(err, step.StepAWSError) else {}
            # the partial result (what was quarantined before the failure), the call's keys, then this message
            # (``result`` has a ``msg`` of its own: passing both as keywords was a TypeError, no contract keys)
            self.module.fail_json(**{**result, **extra, "msg": message})
        return result

    # -- released ---------------------------------------------------------------------------------
    def released(self):
        params = self.params
        incident = params["incident_id"]
        named = set(self.principals())
        entries = [e for e in params["containments"] if isinstance(e, dict)]
        mine, ignored = [], []
        for entry in entries:
            target = (entry.get("principal_type"), entry.get("principal_name"))
            if (
                entry.get("step") != STEP
                or (incident and entry.get("incident_id") != incident)
                or target[0] not in ("user", "role")
                or not target[1]
                or (named and target not in named)
            ):
                ignored.append(entry.get("id"))
                continue
            if not isinstance(entry.get("changed"), dict):
                raise IAMInputError(
                    f"containment {entry.get('id')!r} has no changed mapping: not an iam_key_disable entry"
                )
            mine.append(entry)

        def release(entry):
            kind, name = entry["principal_type"], entry["principal_name"]
            owner = incident or entry.get("incident_id")
            ours = iam.changed_items(entry["changed"])
            claimed = list(dict.fromkeys(list(entry.get("claimed") or []) + ours))
            principal = iam.Principal(self.caller, self.iam, kind, name)
            try:
                principal.describe()
            except IAMInputError:
                if not self.module.check_mode and entry.get("resource"):
                    self.bookkeeping(lambda: self.ledger.drop(owner, entry["resource"], claimed))
                return entry, None, {"principal_deleted": True}, {}, {}
            # what no other unreleased incident still claims (the ledger); the rest is kept, for whom is said
            selection = (
                self.ledger.select(owner, entry["resource"], claimed, ours)
                if entry.get("resource")
                else {"remove": ours, "kept": {}}
            )
            keys = principal.access_keys()
            inline, attached = principal.inline_policies(), principal.attached_policies()
            plan, left = iam.plan_release(iam.releasable(entry["changed"], selection["remove"]), keys, inline, attached)
            if selection["kept"]:
                left["kept_for_others"] = selection["kept"]
            before = state_of(keys, inline, attached)
            if not self.module.check_mode:
                for key in plan["reactivate"]:
                    principal.set_key_status(key, "Active")
                for policy in plan["delete_inline"]:
                    principal.delete_inline(policy)
                for arn in plan["detach"]:
                    principal.detach(arn)
                if entry.get("resource"):
                    self.bookkeeping(
                        lambda: self.ledger.settle(owner, entry["resource"], claimed, removed=selection["remove"])
                    )
                # read back: what the role verifies
                keys_after = principal.access_keys()
                inline_after, attached_after = principal.inline_policies(), principal.attached_policies()
            else:
                keys_after = dict(keys, **{k: "Active" for k in plan["reactivate"]})
                inline_after = [p for p in inline if p not in plan["delete_inline"]]
                attached_after = [a for a in attached if a not in plan["detach"]]
            after = state_of(keys_after, inline_after, attached_after)
            return entry, plan, left, before, after

        outcomes = self.pool_map(release, mine)
        for _, err in outcomes:
            if err is not None:
                raise err
        result = {
            "changed": False,
            "principals": [],
            "before": {},
            "after": {},
            "left_alone": {},
            "kept": {},
            "gone": [],
            "release": [],
            "ignored_entries": ignored,
        }
        restored_count = 0
        for (entry, plan, left, before, after), _ in outcomes:
            key = label(entry["principal_type"], entry["principal_name"])
            changed = bool(plan and any(plan.values()))
            restored_count += changed
            result["changed"] |= changed
            if before:
                result["before"].setdefault(key, before)
                result["after"][key] = after
            if left:
                result["left_alone"][key] = left
            if left.get("kept_for_others"):
                result["kept"][key] = left["kept_for_others"]
            gone = bool(left.get("principal_deleted"))
            if gone:
                result["gone"].append(entry.get("resource") or key)
            result["principals"].append(
                {
                    "type": entry["principal_type"],
                    "name": entry["principal_name"],
                    "arn": entry.get("resource"),
                    "changed": changed,
                }
            )
            restored = {}
            if plan:
                restored = {
                    "reactivated": plan["reactivate"],
                    "inline_policies_removed": plan["delete_inline"],
                    "policies_detached": plan["detach"],
                }
            result["release"].append(
                step.release_entry(
                    incident or entry.get("incident_id"),
                    STEP,
                    entry.get("resource"),
                    released_ids=[entry["id"]] if entry.get("id") else [],
                    restored=restored,
                    left_alone=left,
                    **({"gone": True} if gone else {}),
                )
            )
        prefix = "check mode: would release" if self.module.check_mode else "released"
        if not mine:
            result["msg"] = "nothing to release: no iam_key_disable containment of this incident"
        else:
            result["msg"] = f"{prefix} {len(mine)} containment(s), {restored_count} principal(s) restored"
            meanwhile = sorted(
                k for k, v in result["left_alone"].items() if set(v) - {"kept_for_others", "principal_deleted"}
            )
            if meanwhile:
                result["msg"] += f"; left alone changes made meanwhile on {', '.join(meanwhile)}"
            for key, kept in sorted(result["kept"].items()):
                shown = "; ".join(f"{item} for {', '.join(who)}" for item, who in kept.items())
                result["msg"] += f"; kept on {key}: {shown} (still claimed)"
            if result["gone"]:
                result["msg"] += f"; gone (recorded as released): {', '.join(result['gone'])}"
        return result


def run(module, result):
    runner = Step(module)
    return runner.contained() if module.params["state"] == "contained" else runner.released()


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
