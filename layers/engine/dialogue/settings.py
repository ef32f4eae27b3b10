"""Settings from the environment, read when first needed (never at import); a missing one fails
with its name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dialogue.model.controls import QuietHours


class MissingSetting(RuntimeError):
    pass


class BadSetting(RuntimeError):
    pass


def check_send_time(daily_check_time: str, send_time: str) -> None:
    """Messages held for the send time must be able to include the daily check's: a send time
    before the check would send yesterday's decisions a day late."""
    def minutes(hhmm: str, name: str) -> int:
        try:
            hour, minute = (int(x) for x in hhmm.split(":"))
        except ValueError:
            raise BadSetting(f"{name} {hhmm!r} is not HH:MM") from None
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise BadSetting(f"{name} {hhmm!r} is not a time of day")
        return hour * 60 + minute

    if minutes(send_time, "SendTime") < minutes(daily_check_time, "DailyCheckTime"):
        raise BadSetting(f"SendTime {send_time} is earlier than DailyCheckTime "
                         f"{daily_check_time}: messages are sent after the daily check "
                         "(both in TimeZone)")


def shop_quiet_hours(window: str, blackout: str = "") -> QuietHours | None:
    """The shop's default quiet hours (template parameters QuietHours "21:00-08:00" and
    BlackoutDates "2027-12-24,2027-12-25"; both empty: none), for activities without their own.
    A message due inside them is held until they end. BadSetting says what is wrong."""
    from pydantic import ValidationError

    from dialogue.model.controls import QuietHours

    window, blackout = window.strip(), blackout.strip()
    if not window and not blackout:
        return None
    start, dash, end = window.partition("-")
    if window and not dash:
        raise BadSetting(f"QuietHours {window!r} is not HH:MM-HH:MM (e.g. 21:00-08:00)")
    fields: dict[str, Any] = {"start": start, "end": end} if window else {}
    if blackout:
        fields["blackout"] = {"name": "BlackoutDates", "dates": blackout.split(",")}
    try:
        return QuietHours.model_validate(fields)
    except ValidationError as e:
        reasons = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'value'}: {err['msg']}"
                            for err in e.errors(include_url=False))
        raise BadSetting(f"QuietHours {window!r} / BlackoutDates {blackout!r}: {reasons}"
                         ) from None


def _needs(env: Mapping[str, str]) -> Callable[[str], str]:
    def need(name: str) -> str:
        value = env.get(name)
        if not value:
            raise MissingSetting(f"environment variable {name} is not set")
        return value

    return need


@dataclass(frozen=True)
class Settings:
    """on_event's."""

    table_name: str
    customers_table: str
    catalog_bucket: str
    events_dead_letter_queue_url: str = ""
    segment_shards: int = 16
    catalog_cache_seconds: float = 60.0
    timer_bucket_minutes: int = 15
    timer_shards: int = 16
    time_zone: str = "UTC"
    keep_link_after_logout: bool = False  # "remember me" (docs/identity.md)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        need = _needs(env)
        return cls(
            table_name=need("TABLE_NAME"),
            customers_table=need("CUSTOMERS_TABLE"),
            catalog_bucket=need("ACTIVITIES_BUCKET"),
            events_dead_letter_queue_url=env.get("EVENTS_DLQ_URL", ""),
            segment_shards=int(env.get("SEGMENT_SHARDS", "16")),
            catalog_cache_seconds=float(env.get("CATALOG_CACHE_SECONDS", "60")),
            timer_bucket_minutes=int(env.get("TIMER_BUCKET_MINUTES", "15")),
            timer_shards=int(env.get("TIMER_SHARDS", "16")),
            time_zone=env.get("TIME_ZONE", "UTC"),
            keep_link_after_logout=env.get("KEEP_LINK_AFTER_LOGOUT", "false") == "true",
        )


@dataclass(frozen=True)
class SendSettings:
    """send_message's: the sender, the shop, the account's send rate, the daily send time."""

    table_name: str
    customers_table: str
    catalog_bucket: str
    dead_letter_queue_url: str
    event_bus_name: str
    sender: str
    shop_name: str
    shop_url: str
    unsubscribe_url: str
    unsubscribe_secret_arn: str  # the stack's generated secret, read once per container
    max_send_rate: float  # the account's SES maximum send rate, messages a second
    concurrency: int  # send_message's most concurrent containers: each takes its share
    send_time: str = "09:00"
    time_zone: str = "UTC"
    configuration_set: str | None = None
    catalog_cache_seconds: float = 60.0
    # botocore's own tries per provider call. 1: a retry after a timeout could send twice, so
    # retrying is left to the queue, after the claim was reverted on a clear "not sent".
    provider_attempts: int = 1
    # A claim's lease: longer than the function's timeout (30 s), so a lease that ran out
    # belongs to an attempt that is dead, not slow.
    claim_lease_seconds: float = 60.0
    # Each provider call ends well inside the function's timeout: connect + read (botocore's
    # defaults are 60 s each, longer than the function lives).
    provider_connect_timeout: float = 3.0
    provider_read_timeout: float = 10.0
    max_receives: int = 8  # the messages queue's maxReceiveCount
    # The shop's default quiet hours (docs/activities.md, "Quiet hours"); None: none.
    quiet_hours: QuietHours | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SendSettings:
        need = _needs(env)
        return cls(
            table_name=need("TABLE_NAME"), customers_table=need("CUSTOMERS_TABLE"),
            catalog_bucket=need("ACTIVITIES_BUCKET"),
            dead_letter_queue_url=need("MESSAGES_DLQ_URL"), sender=need("SENDER"),
            event_bus_name=need("EVENT_BUS_NAME"),
            shop_name=need("SHOP_NAME"), shop_url=need("SHOP_URL"),
            unsubscribe_url=need("UNSUBSCRIBE_URL"),
            unsubscribe_secret_arn=need("UNSUBSCRIBE_SECRET_ARN"),
            max_send_rate=float(need("MAX_SEND_RATE")),
            concurrency=max(1, int(env.get("SEND_CONCURRENCY", "1"))),
            send_time=env.get("SEND_TIME", "09:00"), time_zone=env.get("TIME_ZONE", "UTC"),
            configuration_set=env.get("SES_CONFIGURATION_SET") or None,
            quiet_hours=shop_quiet_hours(env.get("QUIET_HOURS", ""),
                                         env.get("BLACKOUT_DATES", "")),
            catalog_cache_seconds=float(env.get("CATALOG_CACHE_SECONDS", "60")),
            provider_attempts=max(1, int(env.get("PROVIDER_ATTEMPTS", "1"))),
            claim_lease_seconds=float(env.get("CLAIM_LEASE_SECONDS", "60")),
            max_receives=int(env.get("MAX_RECEIVES", "8")),
        )
