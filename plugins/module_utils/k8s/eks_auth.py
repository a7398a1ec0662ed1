# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""EKS authentication without the AWS CLI: the bearer token of ``aws eks get-token`` and a kubeconfig.

The token is ``k8s-aws-v1.`` + base64url (no padding) of a presigned STS ``GetCallerIdentity`` URL
(GET, SigV4 query signing, ``X-Amz-Expires=60``) whose signature covers the header
``x-k8s-aws-id: <cluster name>`` -- the algorithm of the AWS CLI (``awscli/customizations/eks/get_token.py``)
and aws-iam-authenticator. Making it needs credentials but no network call. EKS accepts it for about
15 minutes; like the CLI, ``expiration`` is reported 14 minutes ahead.
"""

from __future__ import annotations

import base64
import datetime

K8S_AWS_ID_HEADER = "x-k8s-aws-id"
TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the token format's prefix, not a secret
URL_TIMEOUT = 60
TOKEN_LIFETIME = datetime.timedelta(minutes=14)


def _retrieve_k8s_aws_id(params, context, **kwargs):
    if K8S_AWS_ID_HEADER in params:
        context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)


def _inject_k8s_aws_id_header(request, **kwargs):
    if K8S_AWS_ID_HEADER in request.context:
        request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]


def register_handlers(sts_client):
    """Make ``GetCallerIdentity`` carry (and sign) the ``x-k8s-aws-id`` header, as the AWS CLI does."""
    events = sts_client.meta.events
    events.register(
        "provide-client-params.sts.GetCallerIdentity", _retrieve_k8s_aws_id, unique_id="firebreak-k8s-aws-id-params"
    )
    events.register(
        "before-sign.sts.GetCallerIdentity", _inject_k8s_aws_id_header, unique_id="firebreak-k8s-aws-id-sign"
    )


def presigned_url(sts_client, cluster_name: str) -> str:
    register_handlers(sts_client)
    return sts_client.generate_presigned_url(
        "get_caller_identity",
        Params={K8S_AWS_ID_HEADER: cluster_name},
        ExpiresIn=URL_TIMEOUT,
        HttpMethod="GET",
    )


def token_from_url(url: str) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("utf-8").rstrip("=")


def url_from_token(token: str) -> str:
    """The presigned URL inside a token (for checks and tests)."""
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError(f"not an EKS token: it does not start with {TOKEN_PREFIX}")
    body = token[len(TOKEN_PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")


def get_token(sts_client, cluster_name: str, now: datetime.datetime | None = None) -> dict:
    """``{"token", "expiration"}`` for ``cluster_name`` (as ``aws eks get-token --cluster-name``)."""
    if not cluster_name or not str(cluster_name).strip():
        raise ValueError("an EKS cluster name is required")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    token = token_from_url(presigned_url(sts_client, str(cluster_name).strip()))
    expiration = (now + TOKEN_LIFETIME).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"token": token, "expiration": expiration}


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str | None, token: str) -> dict:
    """An in-memory kubeconfig (kubernetes.core's ``kubeconfig`` option accepts a dict) for one EKS cluster."""
    cluster = {"server": endpoint}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": f"{cluster_name}-token", "user": {"token": token}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": f"{cluster_name}-token"}}],
        "current-context": cluster_name,
        "preferences": {},
    }
