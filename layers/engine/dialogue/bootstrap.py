"""The one place that wires adapters to use cases. Built lazily, once per process."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dialogue.ports import Clock
from dialogue.services import EventService
from dialogue.settings import SendSettings, Settings

if TYPE_CHECKING:
    from dialogue.aws.dispatch import StreamDispatcher
    from dialogue.delivery.reconcile import ReconcileService
    from dialogue.delivery.service import DeliveryService, ReleaseService, SuppressionService
    from dialogue.services import (
        ArmService,
        DailyCheck,
        DailyWorker,
        SegmentRefresh,
        WakeService,
    )


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


_clock: Clock = SystemClock()
_event_service: EventService | None = None
_delivery_service: DeliveryService | None = None
_suppression_service: SuppressionService | None = None
_backoff: Any = None
_built: dict[str, Any] = {}  # the time and segment services, by name


def use_clock(clock: Clock) -> None:
    """The local runtime and tests move time themselves."""
    global _clock
    _clock = clock


def now() -> datetime:
    """The time as the services see it (the simulated clock in the local runtime)."""
    return _clock.now()


def reset() -> None:
    """Forget built services (the local runtime calls it when it creates a new stack)."""
    global _event_service, _delivery_service, _suppression_service, _backoff
    _event_service = _delivery_service = _suppression_service = _backoff = None
    _built.clear()


def _once(name: str, build: Callable[[], Any]) -> Any:
    """A service built on a container's first call and kept while the container lives (its
    catalog is re-read when its cache time is up)."""
    if name not in _built:
        _built[name] = build()
    return _built[name]


def event_service() -> EventService:
    global _event_service
    if _event_service is None:
        _event_service = _build_event_service(Settings.from_env(os.environ))
    return _event_service


def event_records() -> Any:
    """The events queue's records through the event service, their failures seen."""
    return _once("event_records", _build_event_records)


def _build_event_records() -> Any:
    from dialogue.failures import EventRecords
    from dialogue.observability import count, logger

    service = event_service()
    return EventRecords(handle=service.handle, dead_letters=service.rejected,  # type: ignore[arg-type]
                        count=count, log_error=logger.error)


def _build_event_service(settings: Settings) -> EventService:
    import boto3
    from botocore.config import Config

    from dialogue.aws.erase import DynamoCustomerRows
    from dialogue.aws.sqs import SqsRejectedEvents
    from dialogue.observability import count, logger

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    session = boto3.session.Session()
    db = session.client("dynamodb", config=config)
    return EventService(
        store=_store(db, settings),
        catalogs=_catalog_source(session, config, settings.catalog_bucket,
                                 settings.catalog_cache_seconds),
        clock=_ClockProxy(),
        rejected=SqsRejectedEvents(session.client("sqs", config=config),
                                   settings.events_dead_letter_queue_url),
        count=count,
        log=logger.warning,
        keep_link_after_logout=settings.keep_link_after_logout,
        rows=DynamoCustomerRows(db, settings.table_name, settings.customers_table),
    )


def _store(db: Any, settings: Settings) -> Any:
    from zoneinfo import ZoneInfo

    from dialogue.aws.dynamo import DynamoCustomerStore

    return DynamoCustomerStore(db, settings.table_name, settings.segment_shards,
                               customers_table=settings.customers_table,
                               bucket_minutes=settings.timer_bucket_minutes,
                               timer_shards=settings.timer_shards,
                               zone=ZoneInfo(settings.time_zone))


def _catalog_source(session: Any, config: Any, bucket: str, cache_seconds: float) -> Any:
    """The S3 catalog, its broken documents counted and logged (file : path : reason)."""
    from dialogue.aws.s3_catalog import S3CatalogSource
    from dialogue.observability import count, logger

    def report(problems: list[Any]) -> None:
        count("InvalidDocuments", len(problems))
        for p in problems:
            logger.error("invalid catalog document: %s", p)

    return S3CatalogSource(session.client("s3", config=config), bucket, cache_seconds,
                           time.monotonic, report)


def delivery_service() -> DeliveryService:
    global _delivery_service
    if _delivery_service is None:
        _delivery_service = _build_delivery_service(SendSettings.from_env(os.environ))
    return _delivery_service


def _build_delivery_service(settings: SendSettings) -> DeliveryService:
    from datetime import time as clock_time

    import boto3
    from botocore.config import Config

    from dialogue.aws.jobs import DynamoJobs, DynamoRecipients
    from dialogue.aws.outcomes import EventBridgeOutcomes
    from dialogue.aws.providers import RateLimiter, SesMailer, SnsTexter
    from dialogue.aws.sqs import SqsRejectedEvents
    from dialogue.delivery.plan import DeliverySettings
    from dialogue.delivery.service import DeliveryService
    from dialogue.observability import count, logger

    config = Config(retries={"mode": "standard", "max_attempts": 4},
                    connect_timeout=3, read_timeout=5)
    # botocore's timeouts default to 60 s connect + 60 s read, longer than the function's
    # 30 s: a hung call would be killed with the function, its outcome unknown. Bounded here,
    # one try (a retried timeout could send twice: the queue retries, after a clear "not sent").
    # https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    provider_config = Config(retries={"mode": "standard",
                                      "total_max_attempts": settings.provider_attempts},
                             connect_timeout=settings.provider_connect_timeout,
                             read_timeout=settings.provider_read_timeout)
    session = boto3.session.Session()
    db = session.client("dynamodb", config=config)
    limiter = RateLimiter(settings.max_send_rate / settings.concurrency)
    hour, minute = (int(x) for x in settings.send_time.split(":"))

    return DeliveryService(
        jobs=DynamoJobs(db, settings.table_name),
        recipients=DynamoRecipients(db, settings.table_name, settings.customers_table),
        catalogs=_catalog_source(session, config, settings.catalog_bucket,
                                 settings.catalog_cache_seconds),
        mailer=SesMailer(session.client("sesv2", config=provider_config), limiter,
                         settings.configuration_set),
        texter=SnsTexter(session.client("sns", config=provider_config), limiter),
        dead_letters=SqsRejectedEvents(session.client("sqs", config=config),
                                       settings.dead_letter_queue_url),
        outcomes=EventBridgeOutcomes(session.client("events", config=config),
                                     settings.event_bus_name),
        settings=DeliverySettings(
            sender=settings.sender, shop_name=settings.shop_name, shop_url=settings.shop_url,
            unsubscribe_url=settings.unsubscribe_url,
            unsubscribe_secret=_secret(session, settings.unsubscribe_secret_arn).encode(),
            send_time=clock_time(hour, minute), time_zone=settings.time_zone,
            configuration_set=settings.configuration_set,
            quiet_hours=settings.quiet_hours),
        clock=_ClockProxy(),
        count=count,
        log=logger.info,
        error=logger.error,
        lease=timedelta(seconds=settings.claim_lease_seconds),
        provider_budget=timedelta(seconds=settings.provider_connect_timeout
                                  + settings.provider_read_timeout + 2),
        max_receives=settings.max_receives,
    )


def _secret(session: Any, arn: str) -> str:
    """The stack's generated secret (Secrets Manager), read with powertools' parameters utility
    through this session's client: once per container, as the service is built once."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    value = SecretsProvider(boto3_client=session.client("secretsmanager")).get(arn)
    return str(value)


def suppression_service() -> SuppressionService:
    global _suppression_service
    if _suppression_service is None:
        _suppression_service = _build_suppression_service()
    return _suppression_service


def _build_suppression_service() -> SuppressionService:
    """Suppression needs the table; opens and clicks the customers' states and the catalog,
    as on_event does (the catalog is read at the first open or click only)."""
    import boto3
    from botocore.config import Config

    from dialogue.aws.jobs import DynamoRecipients
    from dialogue.delivery.engagement import EngagementService
    from dialogue.delivery.service import SuppressionService
    from dialogue.observability import count, logger

    settings = Settings.from_env(os.environ)
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    session = boto3.session.Session()
    db = session.client("dynamodb", config=config)
    engagement = EngagementService(
        store=_store(db, settings),
        catalogs=_catalog_source(session, config, settings.catalog_bucket,
                                 settings.catalog_cache_seconds),
        clock=_ClockProxy(), count=count, log=logger.info)
    return SuppressionService(DynamoRecipients(db, settings.table_name, settings.customers_table),
                              _ClockProxy(), count, engagement)


def retry_later(receipt_handle: str, receive_count: int) -> Callable[[], None]:
    """For send_message: what to call when a provider said "not now"."""
    from dialogue.aws.sqs import SqsBackoff

    global _backoff
    if _backoff is None:
        import boto3

        from dialogue.settings import _needs

        _backoff = SqsBackoff(boto3.client("sqs"), _needs(os.environ)("MESSAGES_QUEUE_URL"))
    backoff = _backoff
    return lambda: backoff.later(receipt_handle, receive_count)


def release_service() -> ReleaseService:
    """Built per call: it runs once every few minutes, and its settings are two names."""
    import boto3

    from dialogue.aws.jobs import DynamoJobs
    from dialogue.aws.sqs import SqsRequeue
    from dialogue.delivery.service import ReleaseService
    from dialogue.observability import count
    from dialogue.settings import _needs, check_send_time

    need = _needs(os.environ)
    check_send_time(os.environ.get("DAILY_CHECK_TIME", "00:00"),
                    os.environ.get("SEND_TIME", "23:59"))
    return ReleaseService(DynamoJobs(boto3.client("dynamodb"), need("TABLE_NAME")),
                          SqsRequeue(boto3.client("sqs"), need("MESSAGES_QUEUE_URL")),
                          _ClockProxy(), count)


def reconcile_service() -> ReconcileService:
    """Built per call, as release_service: it runs every 15 minutes."""
    import boto3
    from botocore.config import Config

    from dialogue.aws.jobs import DynamoJobs
    from dialogue.aws.sqs import SqsRejectedEvents, SqsRequeue
    from dialogue.delivery.reconcile import ReconcileService, Reporter
    from dialogue.observability import count, logger
    from dialogue.settings import _needs

    need = _needs(os.environ)
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    jobs = DynamoJobs(boto3.client("dynamodb", config=config), need("TABLE_NAME"))
    dead = SqsRejectedEvents(boto3.client("sqs", config=config), need("MESSAGES_DLQ_URL"))
    return ReconcileService(jobs, Reporter(jobs, dead, _ClockProxy(), count, logger.error),
                            _ClockProxy(), count,
                            requeue=SqsRequeue(boto3.client("sqs", config=config),
                                               need("MESSAGES_QUEUE_URL")))


def wake_service() -> WakeService:
    return _once("wake", _build_wake_service)  # type: ignore[no-any-return]


def _build_wake_service() -> WakeService:
    from dialogue.aws.timers import DynamoTimers
    from dialogue.observability import count, logger
    from dialogue.services import WakeService

    settings, db, session, config = _time_parts()
    return WakeService(store=_store(db, settings), timers=DynamoTimers(db, settings.table_name),
                       catalogs=_catalog_source(session, config, settings.catalog_bucket,
                                                settings.catalog_cache_seconds),
                       clock=_ClockProxy(), count=count, log_error=logger.error,
                       threads=int(os.environ.get("WORKER_THREADS", "8")))


def arm_service() -> ArmService:
    return _once("arm", _build_arm_service)  # type: ignore[no-any-return]


def _build_arm_service() -> ArmService:
    import boto3

    from dialogue.aws.timers import StepFunctionsWaker
    from dialogue.observability import count
    from dialogue.services import ArmService
    from dialogue.settings import _needs

    need = _needs(os.environ)
    return ArmService(StepFunctionsWaker(boto3.client("stepfunctions"),
                                         need("WAKE_STATE_MACHINE_ARN"), int(need("TIMER_SHARDS"))),
                      _ClockProxy(), count)


def dispatcher() -> StreamDispatcher:
    return _once("dispatch", _build_dispatcher)  # type: ignore[no-any-return]


def _build_dispatcher() -> StreamDispatcher:
    import boto3

    from dialogue.aws.dispatch import StreamDispatcher
    from dialogue.observability import count
    from dialogue.settings import _needs

    need = _needs(os.environ)
    return StreamDispatcher(boto3.client("sqs"), boto3.client("events"),
                            need("MESSAGES_QUEUE_URL"), need("TIMERS_QUEUE_URL"),
                            need("EVENT_BUS_NAME"), count)


def daily_check() -> DailyCheck:
    return _once("daily_check", _build_daily_check)  # type: ignore[no-any-return]


def _build_daily_check() -> DailyCheck:
    from zoneinfo import ZoneInfo

    from dialogue.aws.dynamo import DynamoRfm
    from dialogue.aws.scan import DynamoDailyRuns, SqsWork
    from dialogue.observability import count, logger
    from dialogue.services import DailyCheck
    from dialogue.settings import _needs, check_send_time

    need = _needs(os.environ)
    check_send_time(need("DAILY_CHECK_TIME"), need("SEND_TIME"))
    settings, db, session, config = _time_parts()
    return DailyCheck(runs=DynamoDailyRuns(db, settings.table_name),
                      work=SqsWork(session.client("sqs"), need("DAILY_QUEUE_URL")),
                      rfm=DynamoRfm(db, settings.table_name),
                      clock=_ClockProxy(), zone=ZoneInfo(need("TIME_ZONE")),
                      segments=int(need("DAILY_SCAN_SEGMENTS")), count=count,
                      files=_catalog_source(session, config, settings.catalog_bucket,
                                            settings.catalog_cache_seconds),
                      log=logger.info)


def daily_worker() -> DailyWorker:
    return _once("daily_worker", _build_daily_worker)  # type: ignore[no-any-return]


def _build_daily_worker() -> DailyWorker:
    from zoneinfo import ZoneInfo

    from dialogue.aws.dynamo import DynamoRfm
    from dialogue.aws.scan import DynamoCustomerScan, SqsWork
    from dialogue.observability import count, logger
    from dialogue.services import DailyWorker
    from dialogue.settings import _needs

    need = _needs(os.environ)
    settings, db, session, config = _time_parts()
    return DailyWorker(store=_store(db, settings),
                       scan=DynamoCustomerScan(db, settings.customers_table),
                       work=SqsWork(session.client("sqs"), need("DAILY_QUEUE_URL")),
                       rfm=DynamoRfm(db, settings.table_name),
                       catalogs=_catalog_source(session, config, settings.catalog_bucket,
                                                settings.catalog_cache_seconds),
                       clock=_ClockProxy(), zone=ZoneInfo(need("TIME_ZONE")), count=count,
                       log_error=logger.error,
                       threads=int(os.environ.get("WORKER_THREADS", "8")))


def segment_refresh() -> SegmentRefresh:
    return _once("segment_refresh", _build_segment_refresh)  # type: ignore[no-any-return]


def _build_segment_refresh() -> SegmentRefresh:
    from dialogue.aws.scan import SqsWork
    from dialogue.model.base import read_document
    from dialogue.observability import count
    from dialogue.services import SegmentRefresh
    from dialogue.settings import _needs

    need = _needs(os.environ)
    settings, _, session, _ = _time_parts()
    s3 = session.client("s3")

    def segment_id(key: str) -> str | None:
        try:
            body = s3.get_object(Bucket=settings.catalog_bucket, Key=key)["Body"].read()
            doc = read_document(body.decode("utf-8", errors="replace"))
        except (ValueError, s3.exceptions.NoSuchKey):  # DocumentError: too deep, not JSON
            return None  # a broken file is reported by the catalog loader, not refreshed
        if not isinstance(doc, dict) or doc.get("kind") != "rule":
            return None  # managed segments change only through activities
        value = doc.get("id")
        return value if isinstance(value, str) else None

    return SegmentRefresh(work=SqsWork(session.client("sqs"), need("DAILY_QUEUE_URL")),
                          segment_id=segment_id, clock=_ClockProxy(),
                          segments=int(need("DAILY_SCAN_SEGMENTS")), count=count)


def _time_parts() -> tuple[Settings, Any, Any, Any]:
    import boto3
    from botocore.config import Config

    settings = Settings.from_env(os.environ)
    config = Config(retries={"mode": "standard", "max_attempts": 5},
                    max_pool_connections=int(os.environ.get("WORKER_THREADS", "8")) + 2)
    session = boto3.session.Session()
    return settings, session.client("dynamodb", config=config), session, config


class _ClockProxy:
    """Reads the current clock each time, so use_clock() applies to built services."""

    def now(self) -> datetime:
        return _clock.now()
