"""Run moto's server for the sandbox (``python -m sandbox.moto_main -H 127.0.0.1 -p PORT``).

Same server as ``moto_server``, with one speed-up: with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true`` moto
loads its 1,500+ AWS managed policies into an IAM backend for every partition (aws, aws-cn,
aws-us-gov, aws-iso, aws-iso-b, aws-eusc) after each ``/moto-api/reset``, about a second in all.
The sandbox lives in the ``aws`` partition (us-east-1), so only that partition gets them; AWSDenyAll
and the other managed policies are there as before.
"""

from __future__ import annotations

import sys

from moto.iam import models as iam_models
from moto.server import main

_load_all_partitions = iam_models.IAMBackend._init_aws_policies


def _init_aws_policies(self):
    # For IAM, moto passes the partition as the backend's region name.
    if self.region_name != "aws":
        return []
    return _load_all_partitions(self)


iam_models.IAMBackend._init_aws_policies = _init_aws_policies


# EC2 fidelity (docs/steps/ec2_isolate.md): on AWS every network interface has its own security
# groups, and an instance's SecurityGroups are those of its primary interface.  moto 5.2.5 reports an
# attached interface's groups as its own PLUS the instance's launch groups, so an interface moved to a
# quarantine group still showed its old group.  Report each interface's own groups, and keep the
# instance's groups equal to its primary interface's when that interface changes.
from moto.ec2.models import elastic_network_interfaces as eni_models  # noqa: E402

eni_models.NetworkInterface.group_set = property(lambda self: self._group_set)
_modify_eni = eni_models.NetworkInterfaceBackend.modify_network_interface_attribute


def _modify_network_interface_attribute(self, eni_id, group_ids, *args, **kwargs):
    _modify_eni(self, eni_id, group_ids, *args, **kwargs)
    eni = self.get_network_interface(eni_id)
    if group_ids and eni.instance is not None and getattr(eni, "device_index", None) in (0, "0"):
        eni.instance.security_groups = list(eni._group_set)


eni_models.NetworkInterfaceBackend.modify_network_interface_attribute = _modify_network_interface_attribute

if __name__ == "__main__":
    sys.exit(main())
