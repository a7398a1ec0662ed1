# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark floor (not part of the collection): the ECS step modules' AWS calls, in the same order, and nothing else.

AnsibleModule + boto3, no retries, no decisions beyond what the calls need, no docs. The calls are in
``bench/playbooks/module_utils/thin_ecs_calls.py``; ``bench/ecs.py`` checks in the fault proxy's log that they are
the same as the step's.
"""

from __future__ import annotations

import boto3
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.thin_ecs_calls import ARGUMENT_SPEC, make_calls


def main():
    module = AnsibleModule(argument_spec=dict(ARGUMENT_SPEC, region=dict(type="str"), endpoint_url=dict(type="str")))
    p = module.params
    ecs = boto3.client("ecs", region_name=p["region"], endpoint_url=p["endpoint_url"])
    make_calls(p, ecs, lambda: boto3.client("elbv2", region_name=p["region"], endpoint_url=p["endpoint_url"]))
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
