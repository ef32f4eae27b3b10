"""Time end to end on embedded AWS (issue 3): waits on the wake-up state machine, the daily check
at 02:00 in the shop's time zone, the daily send time, all on a simulated clock.

Every test runs the template's stack on moto: events go to EventBridge, the daily check and the
release function run at their times, and the wake-up executions' Wait states follow the
simulated clock (`dialogue.local.simulate.Simulation`). What a user cares about is read back:
the e-mails SES received and the SMS SNS received, the message jobs and when they were sent,
coupons, segment membership and where customers stand in the activities.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import io
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dialogue import bootstrap
from dialogue.engine.checks import load_catalog
from dialogue.local import readback
from dialogue.local.runtime import LocalAws
from dialogue.local.simulate import SimulatedClock, Simulation
from dialogue.model.customer import CustomerState

from tests.e2e.conftest import EXAMPLES, example

PARIS = ZoneInfo("Europe/Paris")
TEMPLATES = sorted((EXAMPLES / "templates").glob("*.json"))
SUBJECTS = {  # the e-mail templates used here, by the subject they render
    "welcome": "Welcome to Shop",
    "red-label-sale": "Red label sale week starts today",
    "red-label-reminder": "Only 3 days left",
    "ski-sale": "Ski sale: 5 to 13 December",
    "first-order-10": "Here is 10% off your first order",
    "first-order-20": "Now 20% off your first order",
    "abandoned-cart": "cart is waiting",
    "birthday-card": "almost your birthday",
}


# --- events, as the shop puts them on the bus ---------------------------------------------------
def event(detail_type: str, customer: str, at: str, **detail: Any) -> dict[str, Any]:
    event_id = f"{customer}-{detail_type}-{detail.get('name', '')}-{at}"
    return {"version": "0", "id": event_id, "source": "shop", "detail-type": detail_type,
            "time": at, "detail": {"event_id": event_id, "customer_id": customer,
                                   "occurred_at": at, **detail}}


def profile(customer: str, country: str, sms: bool, extra: dict[str, Any]) -> dict[str, Any]:
    """A customer with an e-mail address and e-mail consent (and a phone for `sms`)."""
    phone = {"phone": f"+336{zlib.crc32(customer.encode()) % 10**8:08d}"} if sms else {}
    return {"profile": {"first_name": customer.title(), "email": f"{customer}@example.com",
                        "country": country, **phone, **extra},
            "consent": {"email": True, "sms": sms, "tracking": True}}


def registers(customer: str, at: str, *, country: str = "FR", sms: bool = False,
              **extra: Any) -> dict[str, Any]:
    return event("CustomerRegistered", customer, at, **profile(customer, country, sms, extra))


def known(customer: str, at: str, *, country: str = "FR", sms: bool = False,
          **extra: Any) -> dict[str, Any]:
    """A customer the shop knew before (a profile update, not a registration)."""
    return event("CustomerUpdated", customer, at, **profile(customer, country, sms, extra))


def orders(customer: str, at: str, total: str = "60") -> dict[str, Any]:
    return event("OrderPlaced", customer, at, order_id=f"o-{customer}-{at}", total=total,
                 lines=[{"product_id": "jacket", "unit_price": total, "categories": ["Ski"]}])


def fills_cart(customer: str, at: str, value: str) -> dict[str, Any]:
    return event("CartUpdated", customer, at, cart_id=f"cart-{customer}",
                 lines=[{"product_id": "boots", "unit_price": value, "categories": ["Ski"]}])


def custom(customer: str, at: str, name: str, **parameters: str) -> dict[str, Any]:
    return event("CustomEvent", customer, at, name=name, parameters=parameters)


def by_hand(segment: str) -> dict[str, Any]:
    """Stands for a hand-made change of a managed segment (the customer service's pick): the
    custom event 'AddedByHand' naming the segment puts the customer in it."""
    return {"id": f"by-hand-{segment}", "name": f"{segment} picked by hand", "repeatable": True,
            "elements": [
                {"id": "picked", "type": "wait_for_event", "event": "AddedByHand",
                 "parameters": [{"name": "segment",
                                 "match": {"rule": "exact", "value": segment}}],
                 "next": "add"},
                {"id": "add", "type": "add_to_segment", "segment": segment}]}


def picked(customer: str, at: str, segment: str) -> dict[str, Any]:
    return custom(customer, at, "AddedByHand", segment=segment)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def local(text: str | None) -> str:
    """An ISO instant as Paris wall-clock time, 'MM-DD HH:MM'."""
    assert text, "no time"
    return f"{utc(text).astimezone(PARIS):%m-%d %H:%M}"


# --- the world: a stack, a catalog and a simulated clock ----------------------------------------
class World:
    def __init__(self, aws: LocalAws, tmp: Path):
        self.aws, self.tmp = aws, tmp
        self.clock = SimulatedClock(datetime(2027, 1, 4, tzinfo=UTC))
        self.outcomes: list[dict[str, Any]] = []  # what the shop's consumer took off the tap

    def load(self, activities: list[str | dict[str, Any]],
             segments: tuple[str, ...] | list[str] = ()) -> None:
        """Validate (nothing may be skipped silently) and upload to the catalog bucket."""
        files = []
        for a in activities:
            if isinstance(a, str):
                files.append(example(a))
                continue
            path = self.tmp / f"{a['id']}-{len(list(self.tmp.iterdir()))}.json"
            path.write_text(json.dumps({"schema_version": 1, "time_zone": "Europe/Paris", **a}))
            files.append(path)
        segment_files = [EXAMPLES / "segments" / f"{s}.json" for s in segments]
        _, problems = load_catalog([(f.name, f.read_text()) for f in files],
                                   [(f.name, f.read_text()) for f in segment_files],
                                   [(f.name, f.read_text()) for f in TEMPLATES])
        assert problems == []
        # Each file under its activity's id: a new version replaces the old one.
        named = []
        for f in files:
            target = self.tmp / "upload" / f"{json.loads(f.read_text())['id']}.json"
            target.parent.mkdir(exist_ok=True)
            target.write_text(f.read_text())
            named.append(target)
        self.aws.upload_catalog(named, segment_files, TEMPLATES)

    def run(self, events: list[dict[str, Any]], start: datetime, days: int) -> None:
        """Events, daily checks, send times and wake-ups from `start` for `days` days."""
        Simulation(self.aws, self.clock, kept_outcomes=self.outcomes).run(events, start, days)

    # manual steps, for what happens between the simulation's stops
    def at(self, when: datetime) -> None:
        self.clock.at = when
        bootstrap.use_clock(self.clock)
        self.aws.waits.clock = self.clock.now

    def settle(self) -> None:
        """Deliver until queues, pipes and state machine executions are all quiet."""
        router = self.aws.router
        assert router is not None
        with contextlib.redirect_stdout(io.StringIO()):
            while True:
                before = router.invocations
                self.aws.drain()
                self.aws.waits.wait_idle()
                if router.invocations == before:
                    return

    def daily_check(self) -> Any:
        """The schedule fires the daily check now (as EventBridge Scheduler would)."""
        with contextlib.redirect_stdout(io.StringIO()):
            answer = self.aws.call_function("DailyCheckFunction",
                                            {"source": "aws.scheduler", "detail": {}})
        self.settle()
        return answer

    def release(self) -> None:
        """The release function's 15-minute schedule fires now."""
        with contextlib.redirect_stdout(io.StringIO()):
            self.aws.run_schedules()
        self.settle()

    # readback
    def activity_file(self, activity_id: str) -> dict[str, Any]:
        """The activity's file in the catalog bucket now (with "state" as the engine reads it)."""
        body = self.aws.client("s3").get_object(Bucket=self.aws.s.name("CatalogBucket"),
                                                Key=f"activities/{activity_id}.json")["Body"]
        return {"state": "active", **json.loads(body.read())}

    def jobs(self, customer: str | None = None) -> list[dict[str, Any]]:
        return [j for j in readback.message_jobs(self.aws)
                if customer is None or j["subject"] == f"customer:{customer}"]

    def mails(self) -> list[tuple[str, str, str]]:
        """(to, subject, text) of every e-mail SES received."""
        return mails_of(self.aws)

    def sms(self) -> list[tuple[str, str]]:
        return readback.sent_sms(self.aws)

    def coupons(self, customer: str | None = None) -> list[dict[str, str]]:
        return [c for c in readback.coupons(self.aws)
                if customer is None or c["subject"] == f"customer:{customer}"]

    def customer(self, name: str) -> CustomerState:
        return readback.customers(self.aws)[f"customer:{name}"]

    def daily_runs(self) -> dict[str, str]:
        """Shop-local day → when that day's daily check started (its once-per-day claim)."""
        ddb = self.aws.client("dynamodb")
        items = ddb.scan(TableName=self.aws.s.name("Table"),
                         FilterExpression="begins_with(pk, :p)",
                         ExpressionAttributeValues={":p": {"S": "DAILY#"}})["Items"]
        return {i["pk"]["S"].removeprefix("DAILY#"): i["started_at"]["S"] for i in items}


def mails_of(aws: LocalAws) -> list[tuple[str, str, str]]:
    out = []
    for raw in readback.sent_emails(aws):
        message = email.message_from_string(raw.raw_data, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",))
        text = str(part.get_content()) if part is not None else ""
        out.append((str(message["To"]), str(message["Subject"]), text))
    return out


def subjects(mails: list[tuple[str, str, str]], customer: str) -> list[str]:
    """The templates (by their subject) of the e-mails a customer received, sorted."""
    out = []
    for to, subject, _ in mails:
        if to == f"{customer}@example.com":
            out.append(next((t for t, s in SUBJECTS.items() if s in subject), subject))
    return sorted(out)


def sent(jobs: list[dict[str, Any]], customer: str, template: str) -> list[str]:
    """When a customer's messages of a template were sent (Paris time, 'MM-DD HH:MM')."""
    return sorted(local(j["sent_at"]) for j in jobs
                  if j["subject"] == f"customer:{customer}" and j["template"] == template
                  and j["status"] == "sent")


# =================================================================================================
# 1. The seed examples 4, 5, 8, 10 and 11 over simulated weeks: one shop, one run, read per seed.
# =================================================================================================
@dataclass
class Month:
    jobs: list[dict[str, Any]]
    mails: list[tuple[str, str, str]]
    sms: list[tuple[str, str]]
    coupons: list[dict[str, str]]
    customers: dict[str, CustomerState]

    def coupons_of(self, customer: str, prefix: str) -> list[tuple[str, str]]:
        """(promotion, Paris time issued) of a customer's coupons of these promotions."""
        return sorted((c["promotion"], local(c["issued_at"])) for c in self.coupons
                      if c["subject"] == f"customer:{customer}"
                      and c["promotion"].startswith(prefix))

    def phone(self, customer: str) -> str:
        phone = self.customers[f"customer:{customer}"].profile.phone
        assert phone
        return phone


SEED_EVENTS = [
    # Registered customers (4), and the first-order follow-up of new registrations (11).
    registers("anna", "2026-11-30T10:00:00Z"),                   # never orders
    registers("ben", "2026-11-30T10:15:00Z"),
    orders("ben", "2026-12-03T15:00:00Z"),                       # orders within the first week
    registers("carla", "2026-11-30T10:30:00Z"),
    orders("carla", "2026-12-10T15:00:00Z"),                     # orders in the second week
    *(picked(c, "2026-11-30T12:00:00Z", "registered-customers") for c in ("anna", "ben", "carla")),
    registers("dora", "2026-12-02T10:00:00Z"),                   # after the sale week began
    picked("dora", "2026-12-02T12:00:00Z", "registered-customers"),
    # Preferred customers (5), picked by the customer service.
    known("emil", "2026-11-30T11:00:00Z", sms=True),
    known("fritz", "2026-11-30T11:10:00Z", country="DE", sms=True),
    picked("emil", "2026-12-01T10:00:00Z", "preferred-customers"),
    picked("fritz", "2026-12-01T10:05:00Z", "preferred-customers"),
    # Carts (8).
    *(known(c, "2026-11-30T12:00:00Z") for c in ("gina", "hugo", "ines", "jules")),
    fills_cart("gina", "2026-12-01T15:00:00Z", "120"),         # left alone
    fills_cart("hugo", "2026-12-01T15:10:00Z", "120"),
    orders("hugo", "2026-12-02T09:00:00Z", "120"),              # bought it
    fills_cart("ines", "2026-12-01T15:20:00Z", "15"),          # under 20 EUR
    fills_cart("jules", "2026-12-01T15:30:00Z", "80"),
    fills_cart("jules", "2026-12-06T10:00:00Z", "95"),         # changed: abandoned again
    # Birthdays (10).
    known("kim", "2026-11-30T13:00:00Z", sms=True, birthday="1990-12-12"),
]


@pytest.fixture(scope="module")
def month(local_aws: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Month]:
    local_aws.reset()
    world = World(local_aws, tmp_path_factory.mktemp("seeds"))
    world.load(["04-red-label-sale.json", "05-weekend-sale-sms.json", "08-abandoned-cart.json",
                "10-birthday-card.json", "10-birthday-sms.json",
                "11-registration-follow-up.json", by_hand("registered-customers"),
                by_hand("preferred-customers")],
               ["registered-customers", "preferred-customers"])
    try:
        world.run(SEED_EVENTS, datetime(2026, 11, 30, tzinfo=UTC), 16)  # to 16 December
        yield Month(world.jobs(), world.mails(), world.sms(), world.coupons(),
                    readback.customers(local_aws))
    finally:
        bootstrap.use_clock(bootstrap.SystemClock())
        local_aws.waits.clock = None


def test_4_the_sale_week_email_goes_once_on_the_start_date_and_the_reminder_to_non_buyers(
        month: Month):
    # Announced on 1 December to the customers registered by then, at the morning send time.
    for customer in ("anna", "ben", "carla"):
        assert sent(month.jobs, customer, "red-label-sale") == ["12-01 09:00"], customer
    assert sent(month.jobs, "dora", "red-label-sale") == []  # "once": the start date only
    # Four days later, only those who have not ordered since the sale started.
    assert sent(month.jobs, "anna", "red-label-reminder") == ["12-05 09:00"]
    assert sent(month.jobs, "carla", "red-label-reminder") == ["12-05 09:00"]  # ordered later
    assert sent(month.jobs, "ben", "red-label-reminder") == []
    assert subjects(month.mails, "ben").count("red-label-sale") == 1
    assert "red-label-reminder" not in subjects(month.mails, "ben")
    assert subjects(month.mails, "anna").count("red-label-reminder") == 1


def test_5_preferred_customers_in_france_get_the_weekend_sale_sms_once(month: Month):
    weekend = [(number, text) for number, text in month.sms if "EVERYTHING is on sale" in text]
    assert [number for number, _ in weekend] == [month.phone("emil")]  # not fritz (Germany)
    assert sent(month.jobs, "emil", "weekend-sale") == ["12-10 09:00"]
    assert sent(month.jobs, "fritz", "weekend-sale") == []


def test_8_a_cart_abandoned_3_days_ago_gets_a_coupon_and_a_reminder(month: Month):
    assert month.coupons_of("gina", "CART") == [("CART-20", "12-04 02:00")]
    assert sent(month.jobs, "gina", "abandoned-cart") == ["12-04 09:00"]
    [(_, _, text)] = [m for m in month.mails
                      if m[0] == "gina@example.com" and SUBJECTS["abandoned-cart"] in m[1]]
    [code] = [c["code"] for c in month.coupons
              if c["subject"] == "customer:gina" and c["promotion"] == "CART-20"]
    assert code in text
    for name in ("hugo", "ines"):  # ordered it; under 20 EUR
        assert month.coupons_of(name, "CART") == [], name
        assert sent(month.jobs, name, "abandoned-cart") == [], name
    # Repeatable: the cart changed on 6 December is abandoned again 3 days later.
    assert month.coupons_of("jules", "CART") == [("CART-20", "12-04 02:00"),
                                                 ("CART-20", "12-09 02:00")]
    assert subjects(month.mails, "jules").count("abandoned-cart") == 2


def test_10_a_birthday_card_a_week_before_and_an_sms_on_the_day(month: Month):
    assert month.coupons_of("kim", "BIRTHDAY") == [("BIRTHDAY-10", "12-05 02:00")]
    cards = [j for j in month.jobs if j["subject"] == "customer:kim"
             and j["template"].startswith("birthday-card")]
    assert [local(j["sent_at"]) for j in cards] == ["12-05 09:00"]
    assert subjects(month.mails, "kim").count("birthday-card") == 1
    assert sent(month.jobs, "kim", "birthday-wishes") == ["12-12 09:00"]
    assert [n for n, text in month.sms if "Happy birthday" in text] == [month.phone("kim")]


def test_11_no_order_after_a_week_brings_10_percent_and_after_another_week_20_percent(
        month: Month):
    assert month.coupons_of("anna", "FIRST-ORDER") == [("FIRST-ORDER-10", "12-07 11:00"),
                                        ("FIRST-ORDER-20", "12-14 11:00")]
    assert sent(month.jobs, "anna", "first-order-10") == ["12-08 09:00"]
    assert sent(month.jobs, "anna", "first-order-20") == ["12-15 09:00"]
    codes = {c["promotion"]: c["code"] for c in month.coupons if c["subject"] == "customer:anna"}
    texts = {s: t for to, s, t in month.mails if to == "anna@example.com"}
    assert codes["FIRST-ORDER-10"] in texts[SUBJECTS["first-order-10"]]
    assert codes["FIRST-ORDER-20"] in texts[SUBJECTS["first-order-20"]]
    # An order within the first week: neither; in the second week: only the first.
    assert month.coupons_of("ben", "FIRST-ORDER") == []
    assert not {"first-order-10", "first-order-20"} & set(subjects(month.mails, "ben"))
    assert month.coupons_of("carla", "FIRST-ORDER") == [("FIRST-ORDER-10", "12-07 11:30")]
    assert "first-order-20" not in subjects(month.mails, "carla")
    # Nobody is left waiting in a finished follow-up.
    for name in ("anna", "ben", "carla"):
        journey = month.customers[f"customer:{name}"].journeys["registration-follow-up"]
        assert journey.waiting == [], name


# =================================================================================================
# 2. Customer is in segment: once vs daily; repeatable across two segments vs not.
# =================================================================================================
def in_segment(ident: str, segments: list[str], mode: str, repeatable: bool,
               template: str) -> dict[str, Any]:
    return {"id": ident, "name": ident, "start_date": "2027-01-04", "repeatable": repeatable,
            "elements": [
                {"id": "member", "type": "in_segment", "segments": segments, "mode": mode,
                 "next": "mail"},
                {"id": "mail", "type": "send_message", "channel": "email",
                 "template": template}]}


def test_once_fires_on_the_start_date_only_and_daily_every_day(world: World):
    world.load([by_hand("golfers"),
                in_segment("golf-once", ["golfers"], "once", True, "red-label-sale"),
                in_segment("golf-daily", ["golfers"], "daily", True, "welcome"),
                in_segment("golf-daily-first", ["golfers"], "daily", False, "ski-sale")],
               ["golfers"])
    world.run([registers("lou", "2027-01-03T09:00:00Z"),
               picked("lou", "2027-01-03T10:00:00Z", "golfers"),
               registers("nina", "2027-01-03T09:00:00Z")],  # not a golfer
              datetime(2027, 1, 3, 8, 30, tzinfo=UTC), 2)  # daily checks on 4 and 5 January

    jobs = world.jobs("lou")
    assert sent(jobs, "lou", "red-label-sale") == ["01-04 09:00"]  # once: the first day only
    assert sent(jobs, "lou", "welcome") == ["01-04 09:00", "01-05 09:00"]  # daily, repeatable
    assert sent(jobs, "lou", "ski-sale") == ["01-04 09:00"]  # daily, not repeatable: once ever
    assert subjects(world.mails(), "lou") == ["red-label-sale", "ski-sale", "welcome", "welcome"]
    assert subjects(world.mails(), "nina") == [] and world.jobs("nina") == []


def test_repeatable_runs_once_per_segment_the_customer_is_in_and_non_repeatable_once(
        world: World):
    world.load([by_hand("golfers"), by_hand("skiers"),
                in_segment("sports-repeatable", ["golfers", "skiers"], "once", True,
                           "ski-sale"),
                in_segment("sports-once", ["golfers", "skiers"], "once", False,
                           "red-label-sale")],
               ["golfers", "skiers"])
    world.run([registers("lou", "2027-01-03T09:00:00Z"),
               picked("lou", "2027-01-03T10:00:00Z", "golfers"),
               picked("lou", "2027-01-03T10:05:00Z", "skiers"),
               registers("max", "2027-01-03T09:00:00Z"),
               picked("max", "2027-01-03T10:00:00Z", "skiers")],
              datetime(2027, 1, 3, 12, tzinfo=UTC), 1)  # the start date's check and send time

    runs = Counter((j["subject"], j["activity_id"], j["context"]["event"]["segment"])
                   for j in world.jobs())
    assert runs == {("customer:lou", "sports-repeatable", "golfers"): 1,
                    ("customer:lou", "sports-repeatable", "skiers"): 1,
                    ("customer:lou", "sports-once", "golfers"): 1,
                    ("customer:max", "sports-repeatable", "skiers"): 1,
                    ("customer:max", "sports-once", "skiers"): 1}
    assert subjects(world.mails(), "lou") == ["red-label-sale", "ski-sale", "ski-sale"]
    assert subjects(world.mails(), "max") == ["red-label-sale", "ski-sale"]


# =================================================================================================
# 3. Wait for event with a timeout, both ways.
# =================================================================================================
WISH_LIST = {
    "id": "wish-list", "name": "A wish within a day, or a nudge", "elements": [
        {"id": "registered", "type": "registers", "next": "wished"},
        {"id": "wished", "type": "wait_for_event", "event": "WishListAdded",
         "timeout": {"amount": 1, "unit": "days", "next": "nudge"}, "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "WISH-10", "next": "thanks"},
        {"id": "thanks", "type": "send_message", "channel": "email", "template": "ski-sale",
         "send_immediately": True},
        {"id": "nudge", "type": "send_message", "channel": "email",
         "template": "red-label-reminder", "send_immediately": True}]}


def test_wait_for_event_takes_path_a_on_the_event_and_path_b_at_the_timeout(world: World):
    world.load([WISH_LIST])
    world.run([registers("nora", "2027-01-04T10:00:00Z"),
               custom("nora", "2027-01-04T16:00:00Z", "WishListAdded", product="skis"),
               registers("otto", "2027-01-04T10:00:00Z"),        # never does it
               registers("pia", "2027-01-04T10:00:00Z"),
               custom("pia", "2027-01-05T16:00:00Z", "WishListAdded", product="skis")],  # late
              datetime(2027, 1, 4, tzinfo=UTC), 2)

    # Path A when the event comes before the timeout; the timeout later does nothing.
    assert [(j["element_id"], local(j["at"])) for j in world.jobs("nora")] == [
        ("thanks", "01-04 17:00")]
    assert [c["promotion"] for c in world.coupons("nora")] == ["WISH-10"]
    assert subjects(world.mails(), "nora") == ["ski-sale"]
    # Path B at the timeout (5 January, 11:00 Paris); an event after it changes nothing.
    for name in ("otto", "pia"):
        assert [(j["element_id"], local(j["at"])) for j in world.jobs(name)] == [
            ("nudge", "01-05 11:00")], name
        assert world.coupons(name) == [] and subjects(world.mails(), name) == [
            "red-label-reminder"], name
        assert world.customer(name).journeys["wish-list"].waiting == []
    assert world.customer("nora").journeys["wish-list"].waiting == []


# =================================================================================================
# 4. Activities changed while customers wait.
# =================================================================================================
FOLLOW_UP = {
    "id": "follow-up", "name": "A mail a day after registering", "elements": [
        {"id": "registered", "type": "registers", "next": "wait"},
        {"id": "wait", "type": "wait", "amount": 1, "unit": "days", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "ski-sale",
         "send_immediately": True}]}


def test_customers_waiting_in_a_deactivated_activity_are_not_resumed(world: World):
    world.load([FOLLOW_UP])
    world.run([registers("quinn", "2027-01-04T10:00:00Z")], datetime(2027, 1, 4, tzinfo=UTC), 1)
    [waiting] = world.customer("quinn").journeys["follow-up"].waiting
    assert waiting.element == "wait"

    world.load([{**FOLLOW_UP, "state": "inactive"}])  # 5 January
    world.run([], datetime(2027, 1, 5, tzinfo=UTC), 1)  # past the due time, 5 January 10:00

    assert world.jobs() == [] and world.mails() == []
    assert world.customer("quinn").journeys["follow-up"].waiting == []  # left the activity
    assert readback.counters(world.aws)["follow-up"].get("mail", 0) == 0


def test_an_activity_past_its_end_date_is_marked_inactive_by_the_daily_check(world: World):
    """Its last day is 5 January in Paris: the check of 6 January at 02:00 lets its waiting
    customers go; once late events can no longer come (5 days), the check rewrites its file as
    inactive, the rest of the file as it was."""
    ending = {**FOLLOW_UP, "end_date": "2027-01-05",
              "elements": [{**FOLLOW_UP["elements"][0]},
                           {**FOLLOW_UP["elements"][1], "amount": 3},
                           FOLLOW_UP["elements"][2]]}
    world.load([ending])
    world.run([registers("uma", "2027-01-04T10:00:00Z")], datetime(2027, 1, 4, tzinfo=UTC), 1)
    assert world.activity_file("follow-up")["state"] == "active"  # absent: active by default

    world.run([], datetime(2027, 1, 5, tzinfo=UTC), 1)
    assert world.activity_file("follow-up")["state"] == "active"  # its last day
    world.run([], datetime(2027, 1, 6, tzinfo=UTC), 1)  # the check at 02:00 on the 6th
    assert world.customer("uma").journeys["follow-up"].waiting == []
    assert world.activity_file("follow-up")["state"] == "active"  # late orders still count
    world.run([], datetime(2027, 1, 7, tzinfo=UTC), 5)  # the check of the 11th marks it

    written = world.activity_file("follow-up")
    assert written["state"] == "inactive"
    assert {**written, "state": "active"} == {
        "schema_version": 1, "time_zone": "Europe/Paris", **ending, "state": "active"}
    assert world.customer("uma").journeys["follow-up"].waiting == []
    assert world.jobs("uma") == [] and subjects(world.mails(), "uma") == []


def test_customers_waiting_at_a_wait_removed_by_an_edit_are_not_resumed_wrongly(world: World):
    world.load([FOLLOW_UP])
    world.run([registers("rosa", "2027-01-04T10:00:00Z")], datetime(2027, 1, 4, tzinfo=UTC), 1)
    edited = {**FOLLOW_UP, "elements": [  # now the mail goes at once: no wait any more
        {"id": "registered", "type": "registers", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "ski-sale",
         "send_immediately": True}]}
    world.load([edited])
    world.run([registers("sam", "2027-01-05T09:00:00Z")], datetime(2027, 1, 5, tzinfo=UTC), 1)

    assert subjects(world.mails(), "sam") == ["ski-sale"]  # the edited version is live
    assert world.jobs("rosa") == [] and subjects(world.mails(), "rosa") == []
    assert world.customer("rosa").journeys["follow-up"].waiting == []


# =================================================================================================
# 5. The daily check at 02:00 in the shop's time zone, across daylight saving time changes.
# =================================================================================================
GOLF_DAILY = {
    "id": "golf-daily", "name": "Every day, golfers", "repeatable": True, "elements": [
        {"id": "member", "type": "in_segment", "segments": ["golfers"], "mode": "daily",
         "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome"}]}


def daily_messages(world: World) -> list[tuple[str, str, str]]:
    """(local day the run was for, when it ran, when its message was sent), Paris time."""
    return sorted((j["context"]["event"]["date"], local(j["at"]),
                   local(j["sent_at"]) if j["sent_at"] else j["status"])
                  for j in world.jobs("tom") if j["activity_id"] == "golf-daily")


def test_the_daily_check_runs_at_2am_paris_time_once_a_day_across_the_spring_change(
        world: World):
    world.load([by_hand("golfers"), GOLF_DAILY], ["golfers"])
    world.run([registers("tom", "2026-03-27T10:00:00Z"),
               picked("tom", "2026-03-27T10:05:00Z", "golfers")],
              datetime(2026, 3, 27, 12, tzinfo=UTC), 3)

    # 02:00 does not exist on 29 March: EventBridge Scheduler skips that night, as the
    # simulator does; the run of the 30th (02:00 summer time) checks the 29th first.
    runs = world.daily_runs()
    assert {day: utc(at).strftime("%m-%d %H:%M") for day, at in runs.items()} == {
        "2026-03-28": "03-28 01:00", "2026-03-29": "03-30 00:00", "2026-03-30": "03-30 00:00"}
    assert daily_messages(world) == [
        ("2026-03-28", "03-28 02:00", "03-28 09:00"), ("2026-03-29", "03-29 03:00", "03-30 09:00"),
        ("2026-03-30", "03-30 02:00", "03-30 09:00")]
    assert len(subjects(world.mails(), "tom")) == 3


def test_the_daily_check_runs_once_on_the_autumn_night_02_00_happens_twice(world: World):
    world.load([by_hand("golfers"), GOLF_DAILY], ["golfers"])
    world.run([registers("tom", "2026-10-23T10:00:00Z"),
               picked("tom", "2026-10-23T10:05:00Z", "golfers")],
              datetime(2026, 10, 23, 0, 30, tzinfo=UTC), 2)  # to 25 October, 02:30 summer time
    # 02:00 again, in winter time: a second firing of the schedule starts nothing.
    world.at(datetime(2026, 10, 25, 1, tzinfo=UTC))
    assert world.daily_check()["started"] is False
    world.run([], datetime(2026, 10, 25, 1, tzinfo=UTC), 1)  # to 26 October, 02:00

    runs = world.daily_runs()
    assert {day: utc(at).strftime("%H:%M") for day, at in runs.items()} == {
        "2026-10-24": "00:00", "2026-10-25": "00:00", "2026-10-26": "01:00"}
    assert daily_messages(world) == [
        ("2026-10-24", "10-24 02:00", "10-24 09:00"), ("2026-10-25", "10-25 02:00", "10-25 09:00"),
        ("2026-10-26", "10-26 02:00", "scheduled")]
    assert len(subjects(world.mails(), "tom")) == 2


def test_a_day_whose_daily_check_never_ran_is_caught_up_by_the_next_run(world: World):
    world.load(["10-birthday-sms.json"])
    world.run([known("ann", "2027-05-10T10:00:00Z", sms=True, birthday="1990-05-12")],
              datetime(2027, 5, 10, 12, tzinfo=UTC), 1)  # the 11th's check ran
    # The 12th's invocation failed for good (an outage): nothing ran that night.
    world.at(datetime(2027, 5, 13, 0, tzinfo=UTC))  # the 13th, 02:00 in Paris
    answer = world.daily_check()

    assert answer["started"] is True
    assert [at[:10] for at in answer["caught_up"]] == ["2027-05-12"]
    # Judged at 02:00 on the 12th, the day it belonged to: the birthday SMS is decided.
    assert [local(j["at"]) for j in world.jobs("ann")
            if j["activity_id"] == "birthday-sms"] == ["05-12 02:00"]
    assert world.daily_check()["started"] is False  # fired twice: nothing checked twice


def test_events_dated_before_the_start_are_all_seen_by_the_first_daily_check(world: World):
    world.load([], ["repeat-category-buyers"])
    start = datetime(2027, 1, 4, 1, tzinfo=UTC)  # 02:00 in Paris: the daily check's instant
    world.run([orders("kim", "2027-01-02T10:00:00Z"), orders("kim", "2027-01-03T10:00:00Z")],
              start, 1)

    changes = [(c.change, c.segment, c.at) for c in world.customer("kim").segment_history]
    assert changes == [("added", "repeat-category-buyers", start)]


# =================================================================================================
# 6. 29 February.
# =================================================================================================
def test_a_29_february_birthday_is_on_28_february_in_other_years(world: World):
    world.load(["10-birthday-sms.json"])
    people = [known("leap", "2027-02-27T10:00:00Z", sms=True, birthday="2000-02-29"),
              known("eve", "2027-02-27T10:00:00Z", sms=True, birthday="1999-02-28")]
    world.run(people, datetime(2027, 2, 27, 12, tzinfo=UTC), 2)  # 28 February, 1 March 2027
    world.run([], datetime(2028, 2, 27, 12, tzinfo=UTC), 2)      # 28 and 29 February 2028

    assert sent(world.jobs(), "leap", "birthday-wishes") == ["02-28 09:00", "02-29 09:00"]
    assert sorted(utc(j["at"]).year for j in world.jobs("leap")) == [2027, 2028]
    assert sent(world.jobs(), "eve", "birthday-wishes") == ["02-28 09:00", "02-28 09:00"]
    texts = Counter(number for number, text in world.sms() if "Happy birthday, Leap" in text)
    assert sum(texts.values()) == 2


# =================================================================================================
# 7. Test mode.
# =================================================================================================
def test_in_test_mode_every_wait_lasts_the_given_minutes(world: World):
    follow_up = json.loads(example("11-registration-follow-up.json").read_text())
    after_order = {**WISH_LIST, "elements": [  # entered on an order, not on registering
        {"id": "registered", "type": "places_order", "next": "wished"}, *WISH_LIST["elements"][1:]]}
    world.load([{**follow_up, "test_mode": {"wait_minutes": 30}},
                {**after_order, "test_mode": {"wait_minutes": 30}}])
    world.run([registers("uma", "2027-01-04T06:07:00Z"),
               known("vic", "2027-01-04T06:00:00Z"), orders("vic", "2027-01-04T06:07:00Z")],
              datetime(2027, 1, 4, tzinfo=UTC), 1)

    due = datetime(2027, 1, 4, 6, 37, tzinfo=UTC)  # a week's wait: 30 minutes
    issued = {c["promotion"]: utc(c["issued_at"]) for c in world.coupons("uma")}
    assert due <= issued["FIRST-ORDER-10"] <= due + timedelta(minutes=15)
    second_due = issued["FIRST-ORDER-10"] + timedelta(minutes=30)
    assert second_due <= issued["FIRST-ORDER-20"] <= second_due + timedelta(minutes=15)
    # The e-mails keep the send time (send immediately is off): 09:00 the same morning.
    assert sent(world.jobs(), "uma", "first-order-10") == ["01-04 09:00"]
    assert sent(world.jobs(), "uma", "first-order-20") == ["01-04 09:00"]
    assert subjects(world.mails(), "uma") == ["first-order-10", "first-order-20"]
    # A timeout too: the day allowed for the wish becomes 30 minutes.
    [nudge] = world.jobs("vic")
    assert nudge["element_id"] == "nudge" and due <= utc(nudge["at"]) <= due + timedelta(
        minutes=15)
    assert subjects(world.mails(), "vic") == ["red-label-reminder"]


# =================================================================================================
# 8. The daily send time.
# =================================================================================================
def test_a_message_without_send_immediately_waits_for_the_send_time_of_the_same_morning(
        world: World):
    world.load(["10-birthday-sms.json", GOLF_DAILY, by_hand("golfers")], ["golfers"])
    world.at(datetime(2027, 1, 4, 15, tzinfo=UTC))
    world.aws.put_events([known("vera", "2027-01-04T15:00:00Z", sms=True,
                                birthday="1990-01-05"),
                          picked("vera", "2027-01-04T15:00:00Z", "golfers")])
    world.settle()

    world.at(datetime(2027, 1, 5, 1, tzinfo=UTC))  # 02:00 in Paris: the daily check
    assert world.daily_check()["started"] is True
    queued = {j["template"]: j for j in world.jobs("vera")}
    assert set(queued) == {"birthday-wishes", "welcome"}
    assert {j["status"] for j in queued.values()} == {"scheduled"}
    world.at(datetime(2027, 1, 5, 7, 45, tzinfo=UTC))  # 08:45: the release runs, too early
    world.release()
    assert world.sms() == [] and world.mails() == []

    world.at(datetime(2027, 1, 5, 8, tzinfo=UTC))  # 09:00 in Paris
    world.release()
    assert {j["template"]: (j["status"], local(j["sent_at"])) for j in world.jobs("vera")} == {
        "birthday-wishes": ("sent", "01-05 09:00"), "welcome": ("sent", "01-05 09:00")}
    assert len(world.sms()) == 1 and subjects(world.mails(), "vera") == ["welcome"]


def test_a_message_queued_after_the_send_time_goes_the_next_morning(world: World):
    later = {"id": "order-thanks", "name": "Thanks, at the send time", "repeatable": True,
             "elements": [
                 {"id": "ordered", "type": "places_order", "next": "mail"},
                 {"id": "mail", "type": "send_message", "channel": "email",
                  "template": "ski-sale"}]}
    world.load([later])
    world.run([known("walt", "2027-01-04T06:00:00Z"),
               orders("walt", "2027-01-04T07:30:00Z"),   # 08:30 in Paris: this morning
               orders("walt", "2027-01-04T10:00:00Z")],  # 11:00: tomorrow morning
              datetime(2027, 1, 4, tzinfo=UTC), 2)
    assert sent(world.jobs(), "walt", "ski-sale") == ["01-04 09:00", "01-05 09:00"]
    assert subjects(world.mails(), "walt") == ["ski-sale", "ski-sale"]


# =================================================================================================
# 9. Resuming is idempotent.
# =================================================================================================
def test_a_wake_up_run_twice_or_a_redelivered_timer_sends_nothing_twice(world: World):
    world.load([FOLLOW_UP])
    world.run([registers("xena", "2027-01-04T10:00:00Z"),
               registers("yves", "2027-01-04T10:05:00Z")],
              datetime(2027, 1, 4, 9, tzinfo=UTC), 2)  # resumed on 5 January, 10:00 and 10:15
    assert sorted(j["subject"] for j in world.jobs()) == ["customer:xena", "customer:yves"]
    assert len(world.mails()) == 2
    ddb, table = world.aws.client("dynamodb"), world.aws.s.name("Table")
    timers = ddb.scan(TableName=table, FilterExpression="begins_with(pk, :p)",
                      ExpressionAttributeValues={":p": {"S": "TIMER#"}})["Items"]
    assert len(timers) == 2
    buckets = sorted({t["bucket"]["S"] for t in timers})
    shards = int(world.aws.s.resolver.parameters["TimerShards"])

    world.at(datetime(2027, 1, 6, 12, tzinfo=UTC))
    # The wake function called again for every shard of the buckets (a retried task).
    for bucket in buckets:
        for shard in range(shards):
            answer = world.aws.call_function("WakeFunction", {"bucket": bucket, "shard": shard,
                                                              "cursor": None})
            assert answer["more"] is False
    # The timer rows relayed again by the pipe: the arm function starts late executions.
    sqs = world.aws.client("sqs")
    for t in timers:
        sqs.send_message(QueueUrl=world.aws.s.queue_url("TimersQueue"), MessageBody=json.dumps(
            {"eventName": "INSERT", "dynamodb": {"NewImage": t}}))
    # A second execution of the same bucket (Step Functions started it twice).
    sfn = world.aws.client("stepfunctions")
    for bucket in buckets:
        sfn.start_execution(stateMachineArn=world.aws.state_machines["WakeStateMachine"],
                            name=f"again-{bucket.replace(':', '')}",
                            input=json.dumps({"bucket": bucket, "wake_at": bucket,
                                              "shards": list(range(shards))}))
    world.settle()
    executions = sfn.list_executions(
        stateMachineArn=world.aws.state_machines["WakeStateMachine"])["executions"]
    assert [e["status"] for e in executions] == ["SUCCEEDED"] * 3 * len(buckets)
    # The daily check run twice the same day.
    world.daily_check()
    world.daily_check()
    world.release()

    assert sorted(j["subject"] for j in world.jobs()) == ["customer:xena", "customer:yves"]
    assert len(world.mails()) == 2
    assert readback.counters(world.aws)["follow-up"]["mail"] == 2


def test_a_customer_whose_wake_up_failed_is_resumed_once_by_the_next_daily_check(world: World):
    world.load([FOLLOW_UP])
    world.run([registers("zack", "2027-01-04T10:00:00Z")], datetime(2027, 1, 4, 9, tzinfo=UTC), 1)
    sfn = world.aws.client("stepfunctions")
    [execution] = sfn.list_executions(
        stateMachineArn=world.aws.state_machines["WakeStateMachine"])["executions"]
    assert execution["status"] == "RUNNING"  # asleep until the bucket of 5 January, 10:00
    sfn.stop_execution(executionArn=execution["executionArn"], error="Lost")
    world.settle()

    world.run([], datetime(2027, 1, 5, 9, tzinfo=UTC), 1)  # the wait ends at 10:00 (11:00)

    # Not at the end of the wait (nothing woke the customer), but by the next daily check.
    assert [(j["element_id"], local(j["at"]), j["status"]) for j in world.jobs("zack")] == [
        ("mail", "01-06 02:00", "sent")]
    assert subjects(world.mails(), "zack") == ["ski-sale"]
    assert world.customer("zack").journeys["follow-up"].waiting == []


# =================================================================================================
# Found while writing these tests.
# =================================================================================================
def in_an_hour(n: int) -> dict[str, Any]:
    return {"id": f"hourly-{n}", "name": f"Two hourly mails ({n})", "elements": [
        {"id": "registered", "type": "registers", "next": "wait"},
        {"id": "wait", "type": "wait", "amount": 1, "unit": "hours", "next": "first"},
        {"id": "first", "type": "send_message", "channel": "email", "template": "ski-sale",
         "send_immediately": True, "next": "again"},
        {"id": "again", "type": "wait", "amount": 1, "unit": "hours", "next": "second"},
        {"id": "second", "type": "send_message", "channel": "email",
         "template": "red-label-reminder", "send_immediately": True}]}


def test_waits_of_one_customer_ending_in_the_same_bucket_lose_no_later_message(world: World):
    world.load([in_an_hour(n) for n in range(4)])
    world.run([registers("ada", "2027-01-04T10:00:00Z")], datetime(2027, 1, 4, 9, tzinfo=UTC), 1)

    assert sorted((j["element_id"], j["status"], local(j["sent_at"] or j["at"]))
                  for j in world.jobs("ada")) == (
        [("first", "sent", "01-04 12:00")] * 4 + [("second", "sent", "01-04 13:00")] * 4)
    assert len(world.mails()) == 8
