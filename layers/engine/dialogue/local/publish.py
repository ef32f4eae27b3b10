"""`dialogue publish DIR --bucket B`: a marketer's folder to the stack's catalog bucket, only
when every document in it is valid, showing what changes first.

The engine reads `activities/`, `segments/` and `templates/` from the bucket; a document that
reaches the bucket invalid by other means is skipped by the engine with an error (metric
`InvalidDocuments`, alarmed) while the others run. Publishing checks first, so that does not
happen through this command.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogue.local.inputs import UsageError, folder_of_documents

# Templates and segments before the activities that use them; removals last.
PREFIXES = ("templates", "segments", "activities")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    same: int = 0

    def lines(self) -> list[str]:
        return ([f"+ {k}" for k in self.added] + [f"~ {k}" for k in self.changed]
                + [f"- {k}" for k in self.removed])


def local_documents(folder: Path) -> dict[str, bytes]:
    """`activities/*.json` (at least one), `segments/*.json`, `templates/*.json`, by S3 key."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    docs: dict[str, bytes] = {}
    for prefix in PREFIXES:
        files = folder_of_documents(folder / prefix, prefix, required=prefix == "activities") \
            if (folder / prefix).exists() or prefix == "activities" else []
        docs.update({f"{prefix}/{f.name}": f.read_bytes() for f in files})
    return docs


def problems(docs: dict[str, bytes]) -> list[str]:
    from dialogue.engine.checks import load_catalog

    def of(prefix: str) -> list[tuple[str, str]]:
        return [(k, v.decode("utf-8", errors="replace")) for k, v in docs.items()
                if k.startswith(prefix + "/")]

    _, found = load_catalog(of("activities"), of("segments"), of("templates"))
    return [str(p) for p in found]


def changes(s3: Any, bucket: str, docs: dict[str, bytes]) -> Changes:
    """What publishing would do. An S3 ETag is the MD5 of the object for a single-part PUT with
    SSE-S3 or no encryption (the catalog bucket's): otherwise the object is read and compared."""
    remote: dict[str, str] = {}
    for prefix in PREFIXES:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                 Prefix=prefix + "/"):
            remote.update({o["Key"]: o["ETag"].strip('"') for o in page.get("Contents", [])
                           if o["Key"].endswith(".json")})
    out = Changes()
    for key, body in sorted(docs.items()):
        if key not in remote:
            out.added.append(key)
        elif not _same(s3, bucket, key, remote[key], body):
            out.changed.append(key)
        else:
            out.same += 1
    out.removed = sorted(set(remote) - set(docs))
    return out


def _same(s3: Any, bucket: str, key: str, etag: str, body: bytes) -> bool:
    if _MD5.match(etag):
        return hashlib.md5(body, usedforsecurity=False).hexdigest() == etag
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == body


def publish(folder: Path, bucket: str, *, dry_run: bool = False, delete: bool = False,
            s3: Any = None) -> int:
    docs = local_documents(folder)
    found = problems(docs)
    for line in found:
        print(line)
    if found:
        print(f"nothing published: {len(found)} problems in {folder}", file=sys.stderr)
        return 1
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    plan = changes(s3, bucket, docs)
    for line in plan.lines():
        print(line)
    kept = "" if delete or not plan.removed else \
        f"; {len(plan.removed)} only in the bucket kept (--delete removes them)"
    summary = (f"{len(plan.added)} added, {len(plan.changed)} changed, "
               f"{len(plan.removed) if delete else 0} removed, {plan.same} unchanged{kept}")
    if dry_run:
        print(f"dry run, nothing published: {summary}", file=sys.stderr)
        return 0
    for key in plan.added + plan.changed:  # in PREFIXES order: what activities use comes first
        s3.put_object(Bucket=bucket, Key=key, Body=docs[key], ContentType="application/json")
    if delete:
        for key in plan.removed:
            s3.delete_object(Bucket=bucket, Key=key)
    print(f"published to s3://{bucket}: {summary}", file=sys.stderr)
    return 0
