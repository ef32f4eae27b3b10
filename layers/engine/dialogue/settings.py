"""Settings from the environment, read when first needed (never at import); a missing one fails
with its name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class MissingSetting(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    table_name: str
    catalog_bucket: str
    events_dead_letter_queue_url: str
    segment_shards: int = 16
    catalog_cache_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def need(name: str) -> str:
            value = env.get(name)
            if not value:
                raise MissingSetting(f"environment variable {name} is not set")
            return value

        return cls(
            table_name=need("TABLE_NAME"),
            catalog_bucket=need("ACTIVITIES_BUCKET"),
            events_dead_letter_queue_url=need("EVENTS_DLQ_URL"),
            segment_shards=int(env.get("SEGMENT_SHARDS", "16")),
            catalog_cache_seconds=float(env.get("CATALOG_CACHE_SECONDS", "60")),
        )
