# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: eks_token
short_description: A bearer token (or a whole kubeconfig) for an EKS cluster from boto3 credentials, without the AWS CLI
version_added: 0.1.0
author:
  - firebreak.runbooks maintainers (@firebreak)
description:
  - Produces the token C(aws eks get-token) produces - C(k8s-aws-v1.) followed by the base64url (unpadded) presigned
    STS C(GetCallerIdentity) URL whose signature covers the header C(x-k8s-aws-id) set to the cluster name, valid
    60 seconds for signing and accepted by EKS for about 15 minutes - from the usual boto3 credentials (environment,
    profile, instance profile, AWX credential). Making the token needs no network call.
  - With O(output=kubeconfig), also calls EKS C(DescribeCluster) for the API endpoint and CA and returns an in-memory
    kubeconfig that kubernetes.core's modules and this collection's accept as C(kubeconfig) (see the example).
  - With O(output=connection), returns C(host), C(api_key) (the token), C(ca_data) and C(expiration).
  - The token expires; evaluate the lookup again (for example per play) in long incidents.
options:
  _terms:
    description: The EKS cluster name.
    required: true
  output:
    description: What to return.
    type: str
    choices: [token, kubeconfig, connection]
    default: token
  retry_budget:
    description:
      - Seconds the EKS C(DescribeCluster) call may spend retrying throttling and transient errors before the lookup
        fails naming the call, the AWS error code and the cluster.
    type: int
    default: 60
extends_documentation_fragment:
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
"""

EXAMPLES = r"""
# In a play: module_defaults for group/firebreak.runbooks.k8s (and group/kubernetes.core.k8s) with
# kubeconfig: "{{ eks_kubeconfig }}", where the play's vars define eks_kubeconfig as below (evaluated when used).
- name: Roll the api back on EKS from a jump host with only boto3 credentials
  firebreak.runbooks.k8s_rollout_undo:
    kubeconfig: "{{ lookup('firebreak.runbooks.eks_token', 'shop-prod', output='kubeconfig', region='eu-west-1') }}"
    namespace: shop
    name: api

- name: Just the token, as aws eks get-token prints it
  ansible.builtin.debug:
    msg: "{{ lookup('firebreak.runbooks.eks_token', 'shop-prod', region='eu-west-1') | length }}"
"""

RETURN = r"""
_raw:
  description:
    - With O(output=token), the bearer token. With O(output=kubeconfig), a kubeconfig dict (cluster endpoint, CA
      data, token). With O(output=connection), a dict with C(host), C(api_key), C(ca_data), C(expiration).
  type: raw
"""

try:
    import botocore
except ImportError:  # AWSLookupBase reports the missing SDK
    botocore = None

from ansible.errors import AnsibleLookupError
from ansible_collections.amazon.aws.plugins.plugin_utils.lookup import AWSLookupBase
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.eks_auth import get_token, kubeconfig
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller, StepAWSError, client_config


class LookupModule(AWSLookupBase):
    def run(self, terms, variables=None, **kwargs):
        super().run(terms, variables, **kwargs)
        output = self.get_option("output")
        if output not in ("token", "kubeconfig", "connection"):
            raise AnsibleLookupError(f"output must be token, kubeconfig or connection, got {output!r}")
        if not terms:
            raise AnsibleLookupError("eks_token needs the EKS cluster name")
        results = []
        for cluster in terms:
            try:
                issued = get_token(self.client("sts"), cluster)
            except ValueError as e:
                raise AnsibleLookupError(str(e)) from None
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                raise AnsibleLookupError(
                    f"cannot sign an STS GetCallerIdentity URL for EKS cluster {cluster!r}: {e}"
                ) from None
            if output == "token":
                results.append(issued["token"])
                continue
            budget = self.get_option("retry_budget")
            eks = self.client("eks", config=client_config(budget))
            try:
                described = Caller(budget)(eks, "describe_cluster", f"EKS cluster {cluster!r}", name=cluster)["cluster"]
            except StepAWSError as e:
                raise AnsibleLookupError(str(e)) from None
            endpoint = described.get("endpoint")
            ca_data = (described.get("certificateAuthority") or {}).get("data")
            if not endpoint:
                status = described.get("status")
                raise AnsibleLookupError(f"EKS cluster {cluster!r} has no API endpoint yet (status {status})")
            if output == "kubeconfig":
                results.append(kubeconfig(cluster, endpoint, ca_data, issued["token"]))
            else:
                results.append(
                    {
                        "host": endpoint,
                        "api_key": issued["token"],
                        "ca_data": ca_data,
                        "expiration": issued["expiration"],
                    }
                )
        return results
