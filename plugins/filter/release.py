# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter for the release_containment role: the order and the role variables of releasing an incident's open
containments (``release_plan``). Controller-side and pure."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# step (role) -> how its role releases: the role's state variable and value, and whether the role releases one
# resource per call (then the variable naming it, and how the recorded resource becomes its value) or every entry of
# the incident at once.
RELEASERS = {
    "waf_block": {"state": ("waf_block_state", "released"), "resource_var": "waf_block_ip_set"},
    "waf_rate_limit": {"state": ("waf_rate_limit_state", "released"), "resource_var": "waf_rate_limit_web_acl"},
    "ec2_isolate": {"state": ("ec2_isolate_state", "released"), "resource_var": "ec2_isolate_instance"},
    "s3_public_block": {"state": ("s3_public_block_state", "released"), "resource_var": "s3_public_block_bucket"},
    "s3_write_freeze": {"state": ("s3_write_freeze_state", "released"), "resource_var": "s3_write_freeze_bucket"},
    "alb_drain": {"state": ("alb_drain_state", "released"), "resource_var": "alb_drain_target_groups", "as_list": True},
    "k8s_namespace_isolate": {
        "state": ("k8s_namespace_isolate_state", "released"),
        "resource_var": "k8s_namespace_isolate_namespace",
        "strip": "namespace/",
    },
    "k8s_node_drain": {
        "state": ("k8s_node_drain_state", "released"),
        "resource_var": "k8s_node_drain_node",
        "strip": "node/",
    },
    "asg_capacity": {
        "state": ("asg_capacity_state", "restored"),
        "resource_var": "asg_capacity_name",
        "after": "autoScalingGroupName/",
    },
    "nacl_block": {"state": ("nacl_block_state", "released")},
    "iam_key_disable": {"state": ("iam_key_disable_state", "released")},
    "deploy_freeze": {"state": ("deploy_freeze_state", "released")},
    "pipeline_pause": {"state": ("pipeline_pause_state", "resumed")},
}
STEPS = tuple(sorted(RELEASERS))


def _seq(entry):
    try:
        return int(entry.get("seq") or 0)
    except (TypeError, ValueError):
        return 0


def release_plan(entries, steps=None):
    """Group ``entries`` (the containments lookup's answer) into releases, newest containment first.

    Each item: ``step``, ``resource`` (empty for a role that releases the incident's entries of its step at once),
    ``entries`` (how many), ``last_seq``, ``role`` (null when no role can release it) and ``vars`` (the role's
    variables for the release), plus ``manual`` saying why when it is left for a person.
    """
    if not isinstance(entries, list):
        raise AnsibleFilterError(f"release_plan expects the containments lookup's list, got {type(entries).__name__}")
    wanted = None
    if steps:
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise AnsibleFilterError(f"release_plan: steps must be a list of step names, got {steps!r:.200}")
        unknown = sorted(set(steps) - set(RELEASERS))
        if unknown:
            raise AnsibleFilterError(f"release_plan: unknown steps {unknown}; the steps that release are {list(STEPS)}")
        wanted = set(steps)
    groups = {}
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("step"):
            raise AnsibleFilterError(f"release_plan: not a containment entry: {str(entry)[:200]!r}")
        step = str(entry["step"])
        if wanted is not None and step not in wanted:
            continue
        releaser = RELEASERS.get(step)
        resource = str(entry.get("resource") or "") if releaser is None or releaser.get("resource_var") else ""
        key = (step, resource)
        group = groups.setdefault(key, {"step": step, "resource": resource, "entries": 0, "last_seq": 0})
        group["entries"] += 1
        group["last_seq"] = max(group["last_seq"], _seq(entry))
    plan = []
    for (step, resource), group in groups.items():
        releaser = RELEASERS.get(step)
        if releaser is None:
            group.update(role=None, vars={}, manual=f"no role releases {step} entries; release them by hand")
        else:
            state_var, state_value = releaser["state"]
            role_vars = {state_var: state_value}
            if releaser.get("resource_var"):
                value = resource
                if releaser.get("strip") and value.startswith(releaser["strip"]):
                    value = value[len(releaser["strip"]) :]
                if releaser.get("after") and releaser["after"] in value:
                    value = value.split(releaser["after"], 1)[1]
                role_vars[releaser["resource_var"]] = [value] if releaser.get("as_list") else value
            group.update(role=step, vars=role_vars, manual=None)
        plan.append(group)
    plan.sort(key=lambda g: (-g["last_seq"], g["step"], g["resource"]))
    return plan


class FilterModule:
    def filters(self):
        return {"release_plan": release_plan}
