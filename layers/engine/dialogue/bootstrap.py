"""The one place that wires adapters to use cases. Built lazily, once per process."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from dialogue.ports import Clock
from dialogue.services import EventService
from dialogue.settings import Settings


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


_clock: Clock = SystemClock()
_event_service: EventService | None = None


def use_clock(clock: Clock) -> None:
    """The local runtime and tests move time themselves."""
    global _clock
    _clock = clock


def reset() -> None:
    """Forget built services (the local runtime calls it when it creates a new stack)."""
    global _event_service
    _event_service = None


def event_service() -> EventService:
    global _event_service
    if _event_service is None:
        _event_service = _build_event_service(Settings.from_env(os.environ))
    return _event_service


def _build_event_service(settings: Settings) -> EventService:
    import boto3
    from botocore.config import Config

    from dialogue.aws.dynamo import DynamoCustomerStore
    from dialogue.aws.s3_catalog import S3CatalogSource
    from dialogue.aws.sqs import SqsRejectedEvents
    from dialogue.observability import count, logger

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    session = boto3.session.Session()

    def report(problems: list) -> None:  # type: ignore[type-arg]
        count("InvalidDocuments", len(problems))
        for p in problems:
            logger.error("invalid catalog document: %s", p)

    return EventService(
        store=DynamoCustomerStore(session.client("dynamodb", config=config),
                                  settings.table_name, settings.segment_shards),
        catalogs=S3CatalogSource(session.client("s3", config=config), settings.catalog_bucket,
                                 settings.catalog_cache_seconds, time.monotonic, report),
        clock=_ClockProxy(),
        rejected=SqsRejectedEvents(session.client("sqs", config=config),
                                   settings.events_dead_letter_queue_url),
        count=count,
        log=logger.warning,
    )


class _ClockProxy:
    """Reads the current clock each time, so use_clock() applies to built services."""

    def now(self) -> datetime:
        return _clock.now()
