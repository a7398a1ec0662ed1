"""S3 point-in-time restore: the per-key plan and the listing, without AWS."""

from __future__ import annotations

import datetime
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import s3_restore
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller, StepAWSError
from ansible_collections.firebreak.runbooks.plugins.modules import s3_object_restore

T0 = datetime.datetime(2026, 11, 24, 9, 0, tzinfo=datetime.UTC)
AT = T0 + datetime.timedelta(minutes=30)


def minutes(n):
    return T0 + datetime.timedelta(minutes=n)


def version(vid, at, etag=None, size=1, latest=False, storage="STANDARD", key="k"):
    return {
        "Key": key,
        "VersionId": vid,
        "LastModified": minutes(at),
        "ETag": etag or f'"{vid}"',
        "Size": size,
        "IsLatest": latest,
        "StorageClass": storage,
    }


def marker(vid, at, latest=False, key="k"):
    return {"Key": key, "VersionId": vid, "LastModified": minutes(at), "IsLatest": latest}


def history(versions=(), markers=()):
    return s3_restore.collect_versions([{"Versions": list(versions), "DeleteMarkers": list(markers)}])["k"]


def plan(versions=(), markers=(), **kwargs):
    return s3_restore.plan_key("k", history(versions, markers), AT, **kwargs)


def test_version_of_the_time_still_current_is_unchanged():
    p = plan([version("v1", 10, latest=True)])
    assert p["action"] == "unchanged"


def test_overwritten_after_the_time_copies_the_newest_version_at_or_before_it():
    p = plan([version("v3", 40, latest=True), version("v2", 30), version("v1", 10)])
    assert p["action"] == "copy" and p["restore_version"]["version_id"] == "v2"  # at the time exactly counts


def test_deleted_after_the_time_removes_only_the_markers_newer_than_the_time():
    p = plan([version("v1", 10)], [marker("m2", 50, latest=True), marker("m1", 40), marker("m0", 5)])
    assert p["action"] == "remove_delete_marker"
    assert p["delete_markers"] == ["m2", "m1"]
    assert p["restore_version"]["version_id"] == "v1"


def test_deleted_recreated_and_deleted_again_copies_instead_of_removing_a_marker():
    p = plan([version("v2", 45), version("v1", 10)], [marker("m2", 50, latest=True), marker("m1", 40)])
    assert p["action"] == "copy"
    assert p["restore_version"]["version_id"] == "v1"
    assert "recreated and deleted again" in p["reason"]
    assert "delete_markers" not in p


def test_a_copy_already_made_is_recognised_by_etag_and_size():
    p = plan([version("v3", 50, etag='"a"', latest=True), version("v2", 40, etag='"b"'), version("v1", 10, etag='"a"')])
    assert p["action"] == "unchanged"


def test_key_absent_at_the_time_is_reported_or_hidden_when_asked():
    assert plan([version("v1", 40, latest=True)])["action"] == "absent_at_time"
    assert plan([version("v1", 40, latest=True)], delete_absent=True)["action"] == "add_delete_marker"
    deleted_then = plan([version("v2", 40, latest=True), version("v1", 5)], [marker("m1", 10)], delete_absent=True)
    assert deleted_then["action"] == "add_delete_marker" and "deleted at the time" in deleted_then["reason"]


def test_key_absent_then_and_deleted_now_is_unchanged():
    assert plan([version("v1", 40)], [marker("m1", 45, latest=True)], delete_absent=True)["action"] == "unchanged"


def test_archived_version_needs_a_restore_request_unless_restored():
    p = plan([version("v2", 40, latest=True), version("v1", 10, storage="DEEP_ARCHIVE")])
    assert p["action"] == "needs_restore_request" and "DEEP_ARCHIVE" in p["reason"]
    restored = version("v1", 10, storage="GLACIER")
    restored["RestoreStatus"] = {"IsRestoreInProgress": False, "RestoreExpiryDate": minutes(999)}
    assert plan([version("v2", 40, latest=True), restored])["action"] == "copy"
    # a marker removal reads no data: fine for an archived version
    archived_deleted = plan([version("v1", 10, storage="GLACIER")], [marker("m1", 40, latest=True)])
    assert archived_deleted["action"] == "remove_delete_marker"


def test_named_key_without_versions_is_missing():
    p = s3_restore.plan_key("k", [], AT, explicit=True)
    assert p["action"] == "missing" and "exact key" in p["reason"]


def test_restore_elsewhere_copies_deleted_keys_and_skips_identical_destinations():
    deleted = history([version("v1", 10, etag='"a"')], [marker("m1", 40, latest=True)])
    assert s3_restore.plan_key("k", deleted, AT, target={})["action"] == "copy"
    assert s3_restore.plan_key("k", deleted, AT, target={"etag": '"a"', "size": 1})["action"] == "unchanged"
    new = history([version("v1", 40, latest=True)])
    assert s3_restore.plan_key("k", new, AT, target={})["action"] == "unchanged"
    assert s3_restore.plan_key("k", new, AT, target={"etag": '"x"', "size": 1})["action"] == "absent_at_time"


def test_same_second_tie_puts_the_listed_latest_first():
    h = history([version("old", 40), version("new", 40, latest=True)])
    assert [e["version_id"] for e in h] == ["new", "old"]


def test_a_page_boundary_inside_one_keys_versions_joins_its_history():
    pages = [
        {"Versions": [version("x1", 5, key="a")], "DeleteMarkers": [marker("m2", 50, latest=True, key="k")]},
        {"Versions": [version("v2", 45, key="k"), version("v1", 10, key="k")], "DeleteMarkers": []},
    ]
    histories = s3_restore.collect_versions(pages)
    assert [e["version_id"] for e in histories["k"]] == ["m2", "v2", "v1"]
    assert s3_restore.plan_key("k", histories["k"], AT)["action"] == "copy"


def test_exact_key_filter_drops_longer_keys():
    pages = [{"Versions": [version("b", 5, key="a.txt.bak"), version("a", 5, key="a.txt", latest=True)]}]
    assert list(s3_restore.collect_versions(pages, keep=lambda k: k == "a.txt")) == ["a.txt"]


class FakeS3:
    """ListObjectVersions over a fixed entry list, paged like S3 (KeyMarker + VersionIdMarker)."""

    def __init__(self, entries, page_size):
        self.entries = entries  # (key, version dict or marker dict, is_marker), S3 order
        self.page_size = page_size
        self.calls = []

    def list_object_versions(self, Bucket, Prefix="", MaxKeys=1000, KeyMarker=None, VersionIdMarker=None):
        self.calls.append((KeyMarker, VersionIdMarker))
        start = 0
        if KeyMarker is not None:
            start = (
                next(
                    i for i, (k, e, _) in enumerate(self.entries) if (k, e["VersionId"]) == (KeyMarker, VersionIdMarker)
                )
                + 1
            )
        chunk = self.entries[start : start + self.page_size]
        page = {"Versions": [e for _, e, m in chunk if not m], "DeleteMarkers": [e for _, e, m in chunk if m]}
        page["IsTruncated"] = start + self.page_size < len(self.entries)
        if page["IsTruncated"]:
            page["NextKeyMarker"], last, _ = chunk[-1]
            page["NextVersionIdMarker"] = last["VersionId"]
        return page


def test_listing_follows_key_and_version_markers_through_pages_of_only_delete_markers():
    entries = [("d", marker(f"m{i}", 40 - i / 100, latest=i == 0, key="d"), True) for i in range(7)]
    entries += [("d", version("d1", 1, key="d"), False), ("k", version("v1", 10, key="k", latest=True), False)]
    fake = FakeS3(entries, page_size=3)
    restorer = s3_restore.Restorer(Caller(5), fake, "bucket", AT)
    histories = restorer.list_prefix("")
    assert restorer.list_calls == 3 == len(fake.calls)
    assert len(histories["d"]) == 8 and histories["k"][0]["version_id"] == "v1"
    assert fake.calls[1] == ("d", "m2")


def test_named_key_listing_stops_once_past_the_key():
    entries = [("a.txt", version("a1", 1, key="a.txt", latest=True), False)]
    entries += [(f"a.txt.{i}", version(f"b{i}", 1, key=f"a.txt.{i}", latest=True), False) for i in range(9)]
    fake = FakeS3(entries, page_size=3)
    restorer = s3_restore.Restorer(Caller(5), fake, "bucket", AT)
    assert [e["version_id"] for e in restorer.list_key("a.txt")] == ["a1"]
    assert len(fake.calls) == 2  # the second page holds only longer keys: no third call


def test_part_ranges_cover_the_object_within_ten_thousand_parts():
    ranges = s3_restore.part_ranges(11 * 1024**2, 5 * 1024**2)
    assert ranges == [(0, 5 * 1024**2 - 1), (5 * 1024**2, 10 * 1024**2 - 1), (10 * 1024**2, 11 * 1024**2 - 1)]
    huge = s3_restore.part_ranges(5 * 1024**4, 5 * 1024**2)  # 5 TiB
    assert len(huge) <= 10000 and huge[-1][1] == 5 * 1024**4 - 1


def test_encryption_args_keep_sse_kms_key():
    assert s3_restore.encryption_args({}) == {}
    assert s3_restore.encryption_args({"ServerSideEncryption": "AES256"}) == {"ServerSideEncryption": "AES256"}
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:key", "BucketKeyEnabled": True}
    assert s3_restore.encryption_args(kms) == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "arn:key",
        "BucketKeyEnabled": True,
    }


def test_summarize_counts_everything_and_caps_reported_keys():
    plans = [{"key": f"k{i}", "action": "copy"} for i in range(5)] + [{"key": "u", "action": "unchanged"}]
    counts, reported, truncated = s3_restore.summarize(plans, 2)
    assert counts["copy"] == 5 and counts["unchanged"] == 1
    assert [p["key"] for p in reported] == ["k0", "k1"] and truncated == {"copy": 3}


def test_destination_key_replaces_the_prefix():
    assert s3_restore.destination_key("docs/a.txt", "docs/", "check/docs/") == "check/docs/a.txt"
    assert s3_restore.destination_key("docs/a.txt", None, "check/") == "check/docs/a.txt"


NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)


def params(**overrides):
    base = {
        "bucket": "shop",
        "keys": None,
        "prefix": "docs/",
        "time": "2026-11-24T09:30:00+01:00",
        "target_bucket": None,
        "target_prefix": None,
        "delete_absent": False,
        "concurrency": 4,
        "report_limit": 10,
        "wait_timeout": 10,
        "multipart_threshold": 100,
        "part_size": 5 * 1024**2,
    }
    return dict(base, **overrides)


def test_validate_accepts_offsets_and_rejects_future_and_unparseable_times_naming_them():
    at, target = s3_object_restore.validate(params(), NOW)
    assert at == datetime.datetime(2026, 11, 24, 8, 30, tzinfo=datetime.UTC) and target is None
    with pytest.raises(s3_object_restore.InputError, match=r"'2026-11-24T13:00:00Z' .* is in the future"):
        s3_object_restore.validate(params(time="2026-11-24T13:00:00Z"), NOW)
    with pytest.raises(s3_object_restore.InputError, match="unparseable time 'soon'"):
        s3_object_restore.validate(params(time="soon"), NOW)


def test_validate_target_rules():
    _, target = s3_object_restore.validate(params(target_prefix="check/"), NOW)
    assert target == {"bucket": "shop", "prefix": "check/"}
    with pytest.raises(s3_object_restore.InputError, match="lies under prefix"):
        s3_object_restore.validate(params(target_prefix="docs/x/"), NOW)
    with pytest.raises(s3_object_restore.InputError, match="in-place restore only"):
        s3_object_restore.validate(params(target_bucket="other", delete_absent=True), NOW)
    _, same = s3_object_restore.validate(params(target_bucket="shop", target_prefix="docs/"), NOW)
    assert same is None  # the same location is an in-place restore


# -- the module's documentation ---------------------------------------------------------------------


def test_module_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(s3_object_restore.DOCUMENTATION)
    own = {k: v for k, v in s3_object_restore.ARGUMENT_SPEC.items() if k != "retry_budget"}  # the step fragment
    assert set(doc["options"]) == set(own)
    for name, spec in own.items():
        assert doc["options"][name]["type"] == spec["type"], name
        assert doc["options"][name].get("default") == spec.get("default"), name


def test_an_empty_prefix_is_the_whole_bucket_only_when_asked():
    with pytest.raises(s3_object_restore.InputError, match=r"prefix '' is empty and no keys: .* whole_bucket=true"):
        s3_object_restore.validate(params(prefix=""), NOW)
    with pytest.raises(s3_object_restore.InputError, match=r"^no prefix and no keys: .* bucket 'shop'"):
        s3_object_restore.validate(params(prefix=None), NOW)
    assert s3_object_restore.scope(params(prefix=None, whole_bucket=True)) == ""
    assert s3_object_restore.scope(params(prefix="", whole_bucket=True)) == ""
    assert s3_object_restore.scope(params()) == "docs/"
    with pytest.raises(s3_object_restore.InputError, match="but prefix 'docs/' was given too"):
        s3_object_restore.scope(params(whole_bucket=True))
    with pytest.raises(s3_object_restore.InputError, match="restored whole"):
        s3_object_restore.validate(params(prefix=None, whole_bucket=True, target_prefix="copy/"), NOW)
    _, target = s3_object_restore.validate(params(prefix=None, whole_bucket=True, target_bucket="other"), NOW)
    assert target == {"bucket": "other", "prefix": ""}


def test_bucket_names_are_checked_before_any_call_naming_the_value_and_the_rule():
    with pytest.raises(s3_object_restore.InputError, match=r"^bucket: 's3://shop' is not a valid S3 bucket name: "):
        s3_object_restore.validate(params(bucket="s3://shop"), NOW)
    with pytest.raises(s3_object_restore.InputError, match=r"^target_bucket: 'ab' .*: 2 characters, AWS allows 3"):
        s3_object_restore.validate(params(target_bucket="ab"), NOW)


def test_every_key_is_tried_and_a_failed_key_names_its_call_code_and_attempts():
    class Failing(s3_restore.Restorer):
        def act(self, plan, dest_bucket=None, dest_key=None):
            if plan["key"] in ("b", "d"):
                raise StepAWSError("DeleteObject", "InternalError", "boom", f"s3://{dest_bucket}/{plan['key']}", 7)
            return {"done_by": "fake"}

    restorer = Failing(Caller(5), None, "shop-uploads", AT, concurrency=2)
    plans = [{"key": k, "action": a} for k, a in (("a", "copy"), ("b", "remove_delete_marker"), ("c", "unchanged"))]
    plans.append({"key": "d", "action": "copy"})
    done, failed = restorer.act_all(plans, lambda key: ("shop-uploads", key))
    assert [p["key"] for p in done] == ["a"] and done[0]["done_by"] == "fake"
    assert [p["key"] for p in failed] == ["b", "d"]
    assert {(p["aws_operation"], p["aws_error_code"], p["attempts"]) for p in failed} == {
        ("DeleteObject", "InternalError", 7)
    }

    failure = s3_object_restore.failure_of(failed, "shop-uploads")
    assert failure["aws_operation"] == "DeleteObject" and failure["aws_error_code"] == "InternalError"
    assert failure["attempts"] == 7 and failure["failed_keys"] == ["b", "d"]
    assert "shop-uploads" in failure["resource"] and "'b'" in failure["resource"]
    text = failure["failure"]
    for part in ("2 key(s) failed in bucket 'shop-uploads'", "['b', 'd']", "DeleteObject InternalError", "'b': "):
        assert part in text, (part, text)


def test_a_failure_of_many_keys_names_ten_and_counts_the_rest():
    failed = [
        {"key": f"k{n}", "error": "e", "aws_operation": "CopyObject", "aws_error_code": "SlowDown"} for n in range(13)
    ]
    failure = s3_object_restore.failure_of(failed, "b")
    assert "13 key(s) failed" in failure["failure"] and "... 3 more" in failure["failure"]
    assert len(failure["failed_keys"]) == 13
