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

if __name__ == "__main__":
    sys.exit(main())
