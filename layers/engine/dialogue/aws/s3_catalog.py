"""Activities, segments and message templates from S3, cached per Lambda container.

A refresh lists the prefixes and re-reads only objects whose ETag changed; between refreshes an
event costs no S3 call. Broken documents are reported (file : path : reason, logged at ERROR and
counted in `InvalidDocuments`, which is alarmed); a file whose new version is broken keeps
running in its last valid version (the bucket keeps versions), a new broken file is skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from dialogue.engine.catalog import Catalog
from dialogue.engine.checks import Problem, load_catalog
from dialogue.model.base import DocumentError, read_document

ACTIVITIES, SEGMENTS, TEMPLATES = "activities/", "segments/", "templates/"
MAX_VERSIONS_BACK = 5  # earlier versions of an invalid file looked at for a valid one


class S3CatalogSource:
    def __init__(self, client: Any, bucket: str, ttl_seconds: float,
                 monotonic: Callable[[], float], on_problems: Callable[[list[Problem]], None]):
        self._s3, self._bucket, self._ttl = client, bucket, ttl_seconds
        self._monotonic, self._on_problems = monotonic, on_problems
        self._bodies: dict[str, tuple[str, str]] = {}  # key -> (etag, text)
        self._catalog: Catalog | None = None
        self._loaded_at = 0.0
        self._valid: dict[str, str] = {}  # key -> the last text that was valid, in this container

    def catalog(self, max_age: float | None = None) -> Catalog:
        """The cached catalog, re-listed when older than the cache time (or `max_age`: a segment
        refresh asks for 0, the file it was started for has just changed)."""
        ttl = self._ttl if max_age is None else max_age
        if self._catalog is None or self._monotonic() - self._loaded_at >= ttl:
            self._catalog = self._load()
            self._loaded_at = self._monotonic()
        return self._catalog

    def _load(self) -> Catalog:
        listed = {obj["Key"]: obj["ETag"]
                  for prefix in (ACTIVITIES, SEGMENTS, TEMPLATES)
                  for obj in self._list(prefix) if obj["Key"].endswith(".json")}
        changed = [k for k, etag in listed.items() if self._bodies.get(k, ("",))[0] != etag]
        for key in changed:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
            self._bodies[key] = (listed[key], body.decode("utf-8", errors="replace"))
        self._bodies = {k: v for k, v in self._bodies.items() if k in listed}
        docs = {k: text for k, (_, text) in self._bodies.items()}
        catalog, problems = self._check(docs)
        bad = {p.file for p in problems}
        kept: dict[str, str] = {}
        for k in (k for k in docs if self._name(k) in bad):
            text = self._last_valid_version(k, docs[k])
            if text is not None:
                kept[k] = text
        if kept:  # the last valid version of each file keeps running, the problems reported
            catalog, _ = self._check({**docs, **kept})
            problems += [Problem(self._name(k), "$", "the last valid version of this file "
                                 "keeps running until it is fixed") for k in sorted(kept)]
        for k in docs:
            if self._name(k) not in bad:
                self._valid[k] = docs[k]
        if problems:
            self._on_problems(problems)
        logging.getLogger(__name__).debug("catalog loaded: %d activities", len(catalog.activities))
        return catalog

    def _name(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def _check(self, docs: dict[str, str]) -> tuple[Catalog, list[Problem]]:
        named = sorted((self._name(k), t, k) for k, t in docs.items())
        return load_catalog([(n, t) for n, t, k in named if k.startswith(ACTIVITIES)],
                            [(n, t) for n, t, k in named if k.startswith(SEGMENTS)],
                            [(n, t) for n, t, k in named if k.startswith(TEMPLATES)])

    def _last_valid_version(self, key: str, current: str) -> str | None:
        """The newest earlier text of `key` that is valid on its own: from this container's
        memory, else from the bucket's versions (it keeps them: VersioningConfiguration)."""
        if key in self._valid and self._valid[key] != current:
            return self._valid[key]
        try:
            page = self._s3.list_object_versions(Bucket=self._bucket, Prefix=key,
                                                 MaxKeys=MAX_VERSIONS_BACK + 1)
        except ClientError:
            return None  # an unversioned bucket, or no permission: the file is skipped
        versions = [v for v in page.get("Versions", []) if v["Key"] == key and not v["IsLatest"]]
        for version in sorted(versions, key=lambda v: v["LastModified"], reverse=True)[
                :MAX_VERSIONS_BACK]:
            text = self._s3.get_object(Bucket=self._bucket, Key=key,
                                       VersionId=version["VersionId"])["Body"].read().decode(
                "utf-8", errors="replace")
            if not self._check({key: text} | self._others(key))[1]:
                self._valid[key] = text
                return text
        return None

    def _others(self, key: str) -> dict[str, str]:
        """The segments and templates an activity version is checked against."""
        if not key.startswith(ACTIVITIES):
            return {}
        return {k: t for k, (_, t) in self._bodies.items() if not k.startswith(ACTIVITIES)}

    def deactivate(self, activity_id: str) -> bool:
        """Rewrite the activity's file with `"state": "inactive"`, only if it is unchanged since
        it was read (If-Match: a marketer's edit in between wins; the next day tries again).
        False when there is nothing to do or the file changed."""
        found = []
        for key, (etag, text) in self._bodies.items():
            if not key.startswith(ACTIVITIES):
                continue
            try:
                doc = read_document(text)
            except DocumentError:
                continue  # reported where the catalog is loaded
            if isinstance(doc, dict) and doc.get("id") == activity_id:
                found.append((key, etag, doc))
        if len(found) != 1 or found[0][2].get("state", "active") != "active":
            return False  # a duplicate id is a catalog problem, reported where it is loaded
        key, etag, doc = found[0]
        if "state" in doc:
            doc["state"] = "inactive"
        else:  # after the id and name, where a marketer looks for it
            head = {k: doc.pop(k) for k in ("schema_version", "id", "name") if k in doc}
            doc = {**head, "state": "inactive", **doc}
        body = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, IfMatch=etag,
                                ContentType="application/json")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412",
                                                           "ConditionalRequestConflict"):
                return False
            raise
        self._catalog = None  # read again, with the file as it now is
        return True

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket,
                                                                       Prefix=prefix):
            out += page.get("Contents", [])
        return out
