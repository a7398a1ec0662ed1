"""The EKS token against the documented algorithm (aws eks get-token; SigV4 query signing), without network."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import sys
import urllib.parse

import boto3
import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import eks_auth

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def sts(region="eu-west-1"):
    session = boto3.session.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=region)
    return session.client("sts")


def _sign(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def expected_signature(url: str, headers: dict) -> str:
    """SigV4 from the AWS documentation ("Create a signed AWS API request", query string authentication; the
    payload of a GET is empty, so its hash is that of the empty string)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(query)
        if k != "X-Amz-Signature"
    )
    params = dict(query)
    signed = params["X-Amz-SignedHeaders"].split(";")
    canonical_headers = "".join(f"{h}:{headers[h].strip()}\n" for h in signed)
    canonical_request = "\n".join(
        [
            "GET",
            parts.path or "/",
            canonical_query,
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    amz_date = params["X-Amz-Date"]
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    date, region, service, _ = scope.split("/")
    key = _sign(_sign(_sign(_sign(("AWS4" + SECRET).encode(), date), region), service), "aws4_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_token_is_the_documented_presigned_get_caller_identity_url():
    now = datetime.datetime(2026, 11, 24, 13, 0, tzinfo=datetime.timezone.utc)
    issued = eks_auth.get_token(sts(), "shop-prod", now=now)
    token = issued["token"]
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    assert set(token[len("k8s-aws-v1.") :]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert issued["expiration"] == "2026-11-24T13:14:00Z"

    url = eks_auth.url_from_token(token)
    parts = urllib.parse.urlsplit(url)
    params = dict(urllib.parse.parse_qsl(parts.query))
    assert parts.scheme == "https" and parts.hostname == "sts.eu-west-1.amazonaws.com"
    assert params["Action"] == "GetCallerIdentity" and params["Version"] == "2011-06-15"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == "60"
    assert params["X-Amz-Credential"].startswith(f"{KEY}/") and params["X-Amz-Credential"].endswith(
        "/eu-west-1/sts/aws4_request"
    )
    assert params["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert "x-k8s-aws-id" not in {k.lower() for k in params}  # a signed header, not a query parameter
    headers = {"host": parts.netloc, "x-k8s-aws-id": "shop-prod"}
    assert params["X-Amz-Signature"] == expected_signature(url, headers)
    # the signature covers the cluster name: another name does not verify
    assert params["X-Amz-Signature"] != expected_signature(url, dict(headers, **{"x-k8s-aws-id": "other"}))


def test_token_round_trip_and_errors():
    assert eks_auth.url_from_token(eks_auth.token_from_url("https://a/?b=c")) == "https://a/?b=c"
    with pytest.raises(ValueError, match="not an EKS token"):
        eks_auth.url_from_token("Bearer x")
    with pytest.raises(ValueError, match="cluster name is required"):
        eks_auth.get_token(sts(), " ")


def test_kubeconfig_dict_for_kubernetes_core():
    config = eks_auth.kubeconfig("shop-prod", "https://ABC.gr7.eu-west-1.eks.amazonaws.com", "LS0tCg==", "k8s-aws-v1.x")
    assert config["current-context"] == "shop-prod"
    assert config["clusters"][0]["cluster"] == {
        "server": "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
        "certificate-authority-data": "LS0tCg==",
    }
    assert config["users"][0]["user"] == {"token": "k8s-aws-v1.x"}
