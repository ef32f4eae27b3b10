"""`dialogue publish`: nothing reaches the bucket unless the whole folder is valid; what changes
is shown first; --dry-run uploads nothing; --delete removes what the folder no longer has."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from dialogue.local.cli import main
from moto import mock_aws

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BUCKET = "catalog"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET,
                             CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for kind in ("activities", "segments", "templates"):
        shutil.copytree(EXAMPLES / kind, tmp_path / kind)
    return tmp_path


def keys(s3: Any) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_a_valid_folder_is_uploaded_and_a_second_publish_changes_nothing(
        s3: Any, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", str(folder), "--bucket", BUCKET]) == 0
    first = capsys.readouterr()

    assert "activities/06-welcome.json" in keys(s3)
    assert "+ activities/06-welcome.json" in first.out
    assert main(["publish", str(folder), "--bucket", BUCKET]) == 0
    second = capsys.readouterr()
    assert second.out == "" and "0 added, 0 changed, 0 removed" in second.err


def test_an_invalid_document_stops_the_whole_publish_with_its_reason(
        s3: Any, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    welcome = folder / "activities" / "06-welcome.json"
    doc = json.loads(welcome.read_text())
    doc["elements"][0]["next"] = "nowhere"
    welcome.write_text(json.dumps(doc))

    assert main(["publish", str(folder), "--bucket", BUCKET]) == 1

    out = capsys.readouterr()
    assert "06-welcome.json" in out.out and "nowhere" in out.out
    assert keys(s3) == set()  # not even the valid documents


def test_a_dry_run_shows_added_changed_and_removed_and_uploads_nothing(
        s3: Any, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", str(folder), "--bucket", BUCKET]) == 0
    (folder / "activities" / "07-big-spenders.json").unlink()
    sale = folder / "activities" / "01-ski-sale.json"
    sale.write_text(sale.read_text().replace('"name": "', '"name": "New: ', 1))
    capsys.readouterr()
    before = {k: s3.get_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(s3)}

    assert main(["publish", str(folder), "--bucket", BUCKET, "--dry-run"]) == 0

    out = capsys.readouterr()
    assert out.out.splitlines() == ["~ activities/01-ski-sale.json",
                                    "- activities/07-big-spenders.json"]
    assert {k: s3.get_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(s3)} == before
    assert main(["publish", str(folder), "--bucket", BUCKET, "--delete"]) == 0
    assert "activities/07-big-spenders.json" not in keys(s3)
    assert b"New: " in s3.get_object(Bucket=BUCKET, Key="activities/01-ski-sale.json")[
        "Body"].read()
