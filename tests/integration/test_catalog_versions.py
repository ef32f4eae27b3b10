"""A catalog file that reaches S3 invalid (by hand, by a sync) never stops the activity: its
last valid version keeps running and the problem is reported; a new invalid file is skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from dialogue.aws.s3_catalog import S3CatalogSource
from dialogue.engine.checks import Problem
from moto import mock_aws

THANKS = {"schema_version": 1, "id": "thanks", "name": "Thanks", "repeatable": True,
          "elements": [{"id": "ordered", "type": "places_order", "next": "coupon"},
                       {"id": "coupon", "type": "issue_coupon", "promotion": "T5"}]}


class Clock:
    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def bucket() -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="catalog",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket="catalog",
                                 VersioningConfiguration={"Status": "Enabled"})
        yield s3


def broken(doc: dict[str, Any]) -> bytes:
    return json.dumps({**doc, "elements": [{**doc["elements"][0], "next": "nowhere"},
                                           *doc["elements"][1:]]}).encode()


def test_a_file_turned_invalid_keeps_running_in_its_last_valid_version(bucket: Any) -> None:
    bucket.put_object(Bucket="catalog", Key="activities/thanks.json", Body=json.dumps(THANKS))
    bucket.put_object(Bucket="catalog", Key="activities/thanks.json", Body=broken(THANKS))
    reported: list[Problem] = []
    # A new container: nothing in memory, the valid version is found among the bucket's.
    source = S3CatalogSource(bucket, "catalog", 60, Clock(), reported.extend)

    catalog = source.catalog()

    assert catalog.activities["thanks"].elements[1].promotion == "T5"
    assert [(p.file, p.path) for p in reported][-1] == (
        "s3://catalog/activities/thanks.json", "$")
    assert "nowhere" in " ".join(p.reason for p in reported)
    assert "last valid version" in reported[-1].reason


def test_a_running_container_keeps_the_version_it_had(bucket: Any) -> None:
    clock, reported = Clock(), []
    bucket.put_object(Bucket="catalog", Key="activities/thanks.json", Body=json.dumps(THANKS))
    source = S3CatalogSource(bucket, "catalog", 60, clock, reported.extend)
    source.catalog()
    edited = {**THANKS, "elements": [THANKS["elements"][0],
                                     {**THANKS["elements"][1], "promotion": "T10"}]}
    bucket.put_object(Bucket="catalog", Key="activities/thanks.json", Body=json.dumps(edited))
    clock.at = 61
    assert source.catalog().activities["thanks"].elements[1].promotion == "T10"
    bucket.put_object(Bucket="catalog", Key="activities/thanks.json", Body=broken(edited))
    clock.at = 122

    assert source.catalog().activities["thanks"].elements[1].promotion == "T10"


def test_a_new_invalid_file_is_skipped_and_reported(bucket: Any) -> None:
    bucket.put_object(Bucket="catalog", Key="activities/thanks.json", Body=broken(THANKS))
    reported: list[Problem] = []

    catalog = S3CatalogSource(bucket, "catalog", 60, Clock(), reported.extend).catalog()

    assert "thanks" not in catalog.activities
    assert reported and all("last valid" not in p.reason for p in reported)
