"""A claim store call that fails names the call as the step contract asks (docs/contract.md, "On failure"): the step's
failure carries ``aws_operation``, ``aws_error_code``, ``resource`` and ``attempts`` of the S3 call, not only a message
(found by the proof suite: a permanent 500 on the claim write failed auth_attack without them)."""

from __future__ import annotations

import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, failed_result

ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/blocklist/af7ab5ee"


class FailingStore:
    where = "claim store s3://evidence/firebreak/claims/"

    def __init__(self, operation):
        self.operation = operation

    def _fail(self, key):
        raise StepAWSError(self.operation, "InternalError", "An internal error occurred.", f"claim {key}", 7, 12.0)

    def create(self, key, body):
        self._fail(key)

    def list(self, prefix):
        self._fail(prefix)

    def delete(self, key):
        self._fail(key)


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("PutObject", lambda led: led.claim("INC-A", "waf_block", ARN, ["203.0.113.66/32"])),
        ("ListObjectsV2", lambda led: led.select("INC-A", ARN, ["203.0.113.66/32"])),
        ("DeleteObject", lambda led: led.drop("INC-A", ARN, ["203.0.113.66/32"])),
    ],
)
def test_a_failed_claim_store_call_carries_its_operation_code_and_resource(operation, call):
    with pytest.raises(ledger.LedgerError) as caught:
        call(ledger.Ledger(FailingStore(operation)))
    result = failed_result(caught.value, {"containment": []}, "containment")
    assert result["aws_operation"] == operation
    assert result["aws_error_code"] == "InternalError"
    assert result["resource"].startswith("claim ") and result["attempts"] == 7
    assert result["msg"].startswith("cannot ") and operation in result["msg"]


def test_a_ledger_error_without_a_call_adds_no_call_keys():
    assert ledger.LedgerError("claims_bucket needs an AWS client").fail_result() == {}
