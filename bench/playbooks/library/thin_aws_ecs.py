# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark floor (not part of the collection): the ECS step modules' AWS calls in the framework every step module
must use (AnsibleAWSModule and its ``module.client``), and nothing else.

Beside ``thin_ecs`` (AnsibleModule + boto3) it splits a step's distance from the plain floor into what the framework
costs (this floor against ``thin_ecs``) and what the step's own work costs (the step against this floor).
It keeps ``module.client``, which makes a boto3 session per client; the steps make theirs through
``step.aws_client`` (one session per module run), so a step can come out faster than this floor.
"""

from __future__ import annotations

from ansible.module_utils.thin_ecs_calls import ARGUMENT_SPEC, make_calls
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC)
    make_calls(module.params, module.client("ecs"), lambda: module.client("elbv2"))
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
