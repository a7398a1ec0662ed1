"""The sandbox's lazy ListObjectVersions (sandbox/moto_main.py) answers exactly what moto's own does.

Both run in process on the same random histories: names sharing prefixes, several versions and delete
markers per name (some in the same millisecond), and every page of every listing, with and without a
prefix, a delimiter and small page sizes, followed marker by marker.
"""

from __future__ import annotations

import datetime
import random

import pytest

moto = pytest.importorskip("moto")

from moto.s3 import models as s3_models  # noqa: E402

from sandbox import moto_main  # noqa: E402

NAMES = [
    "a",
    "a.txt",
    "a.txt.bak",
    "b/1",
    "b/2",
    "b/2/x",
    "b0",
    "c d",
    "c+d",
    "c%d",
    "data/00/x",
    "data/01/y",
    "é",
    "z",
]


def _summary(answer):
    versions, prefixes, markers, next_key, next_version = answer
    return (
        [(v.name, v.version_id, v.is_latest) for v in versions],
        prefixes,
        [(m.name, m.version_id, m.is_latest) for m in markers],
        next_key,
        next_version,
    )


@pytest.fixture(scope="module")
def backend():
    patched = s3_models.S3Backend.list_object_versions
    s3_models.S3Backend.list_object_versions = moto_main.moto_list_object_versions
    try:
        with moto.mock_aws():
            yield s3_models.s3_backends["123456789012"]["aws"]
    finally:
        s3_models.S3Backend.list_object_versions = patched


def _seed(backend, bucket: str, rng: random.Random) -> None:
    backend.create_bucket(bucket, "us-east-1")
    backend.put_bucket_versioning(bucket, "Enabled")
    stamp = datetime.datetime(2026, 11, 24, 9, 0, 0)
    for step in range(120):
        name = rng.choice(NAMES)
        if rng.random() < 0.25 and backend.get_bucket(bucket).keys.getlist(name):
            backend.delete_object(bucket, name)
        else:
            backend.put_object(bucket, name, b"v%d" % step)
        if rng.random() < 0.7:  # otherwise the next write lands in the same millisecond
            stamp += datetime.timedelta(milliseconds=rng.randint(1, 5))
        for version in backend.get_bucket(bucket).keys.getlist(name):
            if not getattr(version, "_firebreak_stamped", False):
                version.last_modified = stamp
                version._firebreak_stamped = True


def _pages(call, backend, bucket, **query):
    pages, key_marker, version_marker = [], None, None
    for _ in range(200):
        answer = call(backend, bucket, key_marker=key_marker, version_id_marker=version_marker, **query)
        pages.append(_summary(answer))
        key_marker, version_marker = answer[3], answer[4]
        if key_marker is None:
            return pages
    raise AssertionError("listing did not end")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "query",
    [
        {"prefix": "", "max_keys": 1000},
        {"prefix": "", "max_keys": 3},
        {"prefix": "a.txt", "max_keys": 2},
        {"prefix": "b/", "max_keys": 1},
        {"prefix": "b/", "delimiter": "/", "max_keys": 2},
        {"prefix": "", "delimiter": "/", "max_keys": 4},
        {"prefix": "data/", "max_keys": 5},
        {"prefix": "nothing-here/", "max_keys": 5},
    ],
)
def test_every_page_matches_moto(backend, seed, query):
    rng = random.Random(seed)
    bucket = f"listing-{seed}-{abs(hash(tuple(sorted(query.items())))) % 10**8}"
    _seed(backend, bucket, rng)
    ours = _pages(moto_main._list_object_versions, backend, bucket, **query)
    theirs = _pages(moto_main.moto_list_object_versions, backend, bucket, **query)
    assert ours == theirs
    listed = sum(len(page[0]) + len(page[2]) for page in ours)
    assert listed or query["prefix"] == "nothing-here/" or query.get("delimiter")


def test_a_marker_inside_one_names_versions_and_a_lone_key_marker_match_moto(backend):
    rng = random.Random(99)
    _seed(backend, "listing-markers", rng)
    names = sorted(dict(backend.get_bucket("listing-markers").keys))
    for name in names:
        for version in backend.get_bucket("listing-markers").keys.getlist(name):
            for marker in (version.version_id, None, "no-such-version"):
                query = {"key_marker": name, "version_id_marker": marker, "max_keys": 3, "prefix": ""}
                ours = moto_main._list_object_versions(backend, "listing-markers", **query)
                theirs = moto_main.moto_list_object_versions(backend, "listing-markers", **query)
                assert _summary(ours) == _summary(theirs), query


@pytest.mark.parametrize(
    "value",
    ["2026-11-24T09:30:00.000Z", "2026-11-24T09:30:00Z", "2026-11-24T09:30:00.123456Z", "2026-02-30T09:30:00Z",
     "2026-11-24T09:30:00+02:00", 1795556916, datetime.datetime(2026, 11, 24, 9, 30)],
)  # fmt: skip
def test_response_timestamps_read_as_moto_reads_them(value):
    """The sandbox's fast path for moto's serializer gives what botocore's parser gives, or the same error."""
    try:
        expected = moto_main._parse_to_aware_datetime(value)
    except ValueError:
        with pytest.raises(ValueError):
            moto_main._fast_aware_datetime(value)
        return
    assert moto_main._fast_aware_datetime(value) == expected
