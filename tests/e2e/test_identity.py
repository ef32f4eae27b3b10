"""Identity end to end on embedded AWS (issue 12): the shared computer, a guest becoming a customer.

Events go to EventBridge with both ids as a shop sends them (the browser's personalization id
always, the customer id once known); what a user cares about is read back: segment member rows,
coupons, message jobs, the e-mails SES received.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dialogue.engine.catalog import Catalog
from dialogue.engine.checks import load_catalog
from dialogue.local import insight, readback

from tests.e2e.test_time import World, by_hand, subjects

P = "browser-P"  # the shared computer's personalization id


def sent_by(detail_type: str, at: str, customer: str | None, pid: str | None,
            **detail: Any) -> dict[str, Any]:
    event_id = f"{customer or pid}-{detail_type}-{at}"
    ids = {k: v for k, v in (("customer_id", customer), ("personalization_id", pid)) if v}
    return {"version": "0", "id": event_id, "source": "shop", "detail-type": detail_type,
            "time": at, "detail": {"event_id": event_id, "occurred_at": at, **ids, **detail}}


def registers(customer: str, at: str, pid: str) -> dict[str, Any]:
    return sent_by("CustomerRegistered", at, customer, pid, profile={
        "first_name": customer.title(), "email": f"{customer}@example.com", "country": "FR"},
        consent={"email": True, "sms": False, "tracking": True})


PERKS = {  # X's content: members who log in get X's coupon and X's e-mail
    "id": "x-perks", "name": "Preferred perks on login", "repeatable": True, "elements": [
        {"id": "in", "type": "wait_for_event", "event": "CustomerLoggedIn", "next": "member"},
        {"id": "member", "type": "target", "next": "coupon", "conditions": [
            {"type": "segment", "match": "any", "segments": ["preferred-customers"]}]},
        {"id": "coupon", "type": "issue_coupon", "promotion": "X-PERK", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome",
         "send_immediately": True}]}


def members(world: World, segment: str) -> list[str]:
    ddb = world.aws.client("dynamodb")
    items = ddb.scan(TableName=world.aws.s.name("Table"),
                     FilterExpression="begins_with(pk, :p)",
                     ExpressionAttributeValues={":p": {"S": f"SEGMENT#{segment}#"}})["Items"]
    return sorted(i["subject"]["S"] for i in items)


def test_the_shared_computer_b_inherits_nothing_of_a_and_a_keeps_x(world: World):
    world.load([by_hand("preferred-customers"), PERKS], ["preferred-customers"])
    events = [
        registers("a", "2027-01-04T09:00:00Z", P),
        sent_by("CustomerLoggedIn", "2027-01-04T09:01:00Z", "a", P),
        # A dialogue adds A to X while A is logged in on P.
        sent_by("CustomEvent", "2027-01-04T09:30:00Z", "a", P, name="AddedByHand",
                parameters={"segment": "preferred-customers"}),
        sent_by("CustomerLoggedOut", "2027-01-04T10:00:00Z", "a", P),
        sent_by("SearchPerformed", "2027-01-04T10:30:00Z", None, P, query="boots"),
        registers("b", "2027-01-04T11:00:00Z", P),
        sent_by("CustomerLoggedIn", "2027-01-04T11:01:00Z", "b", P),
        # A comes back on another browser: A kept X.
        sent_by("CustomerLoggedIn", "2027-01-04T12:00:00Z", "a", "browser-Q"),
    ]
    world.run(events, datetime(2027, 1, 4, tzinfo=UTC), 1)

    assert members(world, "preferred-customers") == ["customer:a"]
    customers = readback.customers(world.aws)
    assert customers["customer:a"].in_segment("preferred-customers", world.clock.now())
    b = customers["customer:b"]
    assert "preferred-customers" not in b.segments
    assert [o.fields.get("query") for o in b.behaviour] == ["boots"]  # the guest's, after A left
    assert not [o for o in customers["customer:a"].behaviour if o.kind == "SearchPerformed"]
    assert [c["subject"] for c in world.coupons()] == ["customer:a"]
    assert {j["subject"] for j in world.jobs()} == {"customer:a"}
    assert subjects(world.mails(), "b") == []
    assert subjects(world.mails(), "a") == ["welcome"]
    guest = customers.get(f"guest:{P}") or readback_guest(world)
    assert guest.linked_to == "b" and guest.behaviour == []


def readback_guest(world: World) -> Any:
    return readback.customers(world.aws)[f"guest:{P}"]


def test_a_guests_cart_becomes_the_customers_and_the_reminder_goes_to_them(world: World):
    world.load(["08-abandoned-cart.json"])
    events = [
        sent_by("ProductViewed", "2027-01-04T09:00:00Z", None, P, product_id="boots"),
        sent_by("CartUpdated", "2027-01-04T09:05:00Z", None, P, cart_id="cart-P",
                lines=[{"product_id": "boots", "unit_price": "90", "categories": ["Ski"]}]),
        registers("c", "2027-01-04T09:20:00Z", P),
    ]
    world.run(events, datetime(2027, 1, 4, tzinfo=UTC), 5)

    c = readback.customers(world.aws)["customer:c"]
    assert c.cart is not None and c.cart.cart_id == "cart-P"
    assert [o.kind for o in c.behaviour if o.kind == "ProductViewed"] == ["ProductViewed"]
    assert subjects(world.mails(), "c") == ["abandoned-cart"]
    assert [(x["subject"], x["promotion"]) for x in world.coupons()] == [
        ("customer:c", "CART-20")]
    assert {j["subject"] for j in world.jobs()} == {"customer:c"}


def test_a_guest_added_to_x_on_p_who_logs_in_as_c_brings_x_to_c_once(world: World):
    """The reverse of the shared computer: what the guest earned on P is C's after C's login,
    moved once (the guest's row goes: SegmentLeft for the browser, SegmentEntered for C), and
    the next customer on P gets none of it."""
    world.load([by_hand("preferred-customers"), PERKS], ["preferred-customers"])
    events = [
        sent_by("CustomEvent", "2027-01-04T09:00:00Z", None, P, name="AddedByHand",
                parameters={"segment": "preferred-customers"}),
    ]
    world.run(events, datetime(2027, 1, 4, tzinfo=UTC), 1)
    assert members(world, "preferred-customers") == [f"guest:{P}"]

    world.run([registers("c", "2027-01-05T09:00:00Z", P),
               sent_by("CustomerLoggedIn", "2027-01-05T09:01:00Z", "c", P),
               sent_by("CustomerLoggedOut", "2027-01-05T10:00:00Z", "c", P),
               registers("b", "2027-01-05T11:00:00Z", P)],
              datetime(2027, 1, 5, tzinfo=UTC), 1)

    assert members(world, "preferred-customers") == ["customer:c"]
    customers = readback.customers(world.aws)
    assert customers["customer:c"].segments["preferred-customers"].by == (
        "by-hand-preferred-customers")
    assert "preferred-customers" not in customers["customer:b"].segments
    assert customers[f"guest:{P}"].segments == {}
    # X's content follows C: C's login (a member by then) brings X's coupon and e-mail.
    assert [c["subject"] for c in world.coupons()] == ["customer:c"]
    assert subjects(world.mails(), "c") == ["welcome"]
    assert subjects(world.mails(), "b") == []
    outcomes = sorted((o["detail-type"], o["detail"]["customer"])
                      for o in world.outcomes
                      if o["detail-type"] in ("SegmentEntered", "SegmentLeft"))
    assert outcomes == [("SegmentEntered", "customer:c"), ("SegmentEntered", f"guest:{P}"),
                        ("SegmentLeft", f"guest:{P}")]


SEARCH_PERK = {
    "id": "search-perk", "name": "A coupon for searchers", "elements": [
        {"id": "searched", "type": "searches", "keyword": {"rule": "any"}, "next": "coupon"},
        {"id": "coupon", "type": "issue_coupon", "promotion": "SEARCH-5", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome",
         "send_immediately": True}]}


def test_a_guests_message_and_coupon_wait_for_the_login_and_go_to_the_customer(world: World):
    world.load([SEARCH_PERK])
    start = datetime(2027, 1, 4, tzinfo=UTC)
    world.run([sent_by("SearchPerformed", "2027-01-04T09:00:00Z", None, P, query="boots")],
              start, 1)
    # Nothing for an anonymous browser: no coupon row, no message job, no e-mail.
    assert (world.coupons(), world.jobs(), world.mails()) == ([], [], [])
    guest = readback.customers(world.aws)[f"guest:{P}"]
    assert [e.type for e in guest.held] == ["coupon", "message"]

    world.run([registers("d", "2027-01-05T10:00:00Z", P)], start.replace(day=5), 1)

    assert [(c["subject"], c["promotion"]) for c in world.coupons()] == [
        ("customer:d", "SEARCH-5")]
    assert subjects(world.mails(), "d") == ["welcome"]


def counted(lines: list[str], name: str) -> float:
    """The total of metric `name` in the functions' printed EMF lines."""
    total = 0.0
    for line in lines:
        if '"_aws"' in line:
            value = json.loads(line).get(name, 0)
            total += sum(value) if isinstance(value, list) else value
    return total


def printed_lines(monkeypatch: Any) -> list[str]:
    """The functions' printed lines (JSON logs, EMF metrics), which the runtime silences."""
    import contextlib
    import io

    stdout, redirect = io.StringIO(), contextlib.redirect_stdout
    monkeypatch.setattr(contextlib, "redirect_stdout", lambda _: redirect(stdout))

    class Lines(list[str]):
        def __iter__(self) -> Any:
            return iter(stdout.getvalue().splitlines())

    return Lines()


def test_an_activity_dropping_guests_messages_sends_nothing_after_the_login(
        world: World, monkeypatch: Any):
    world.load([{**SEARCH_PERK, "guest_messages": "drop"}])
    lines = printed_lines(monkeypatch)
    world.run([sent_by("SearchPerformed", "2027-01-04T09:00:00Z", None, P, query="boots")],
              datetime(2027, 1, 4, tzinfo=UTC), 1)
    assert readback.customers(world.aws)[f"guest:{P}"].held == []
    world.run([registers("d", "2027-01-05T10:00:00Z", P)], datetime(2027, 1, 5, tzinfo=UTC), 1)

    assert (world.coupons(), world.jobs(), world.mails()) == ([], [], [])
    assert counted(lines, "GuestMessagesDropped_guest") == 2  # the coupon and the e-mail
    assert counted(lines, "GuestMessagesHeld") == 0
    stats = insight.activity_stats(world.aws.client("dynamodb"),
                                   insight.StackRef.from_local(world.aws),
                                   _catalog(world).get(SEARCH_PERK["id"]))
    assert stats["controls"]["skipped"] == {"a guest's message (the activity drops them)": 1}


def _catalog(world: World) -> Catalog:
    files = sorted((world.tmp / "upload").glob("*.json"))
    return load_catalog([(f.name, f.read_text()) for f in files], [])[0]


SEARCH_WAIT_MAIL = {
    "id": "search-later", "name": "An e-mail an hour after a search", "elements": [
        {"id": "searched", "type": "searches", "keyword": {"rule": "any"}, "next": "wait"},
        {"id": "wait", "type": "wait", "amount": 1, "unit": "hours", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome",
         "send_immediately": True}]}


def test_a_guests_message_reached_at_a_waits_end_is_held_counted_and_goes_at_the_login(
        world: World, monkeypatch: Any):
    world.load([SEARCH_WAIT_MAIL])
    lines = printed_lines(monkeypatch)
    world.run([sent_by("SearchPerformed", "2027-01-04T09:00:00Z", None, P, query="boots")],
              datetime(2027, 1, 4, tzinfo=UTC), 1)
    guest = readback.customers(world.aws)[f"guest:{P}"]
    assert [e.type for e in guest.held] == ["message"] and world.jobs() == []
    assert counted(lines, "GuestMessagesHeld") == 1  # counted by the wake-up, not only events

    world.run([registers("e", "2027-01-05T10:00:00Z", P)], datetime(2027, 1, 5, tzinfo=UTC), 1)
    assert subjects(world.mails(), "e") == ["welcome"]


# --- deletion and export on request --------------------------------------------------------------
EVE = "eve-7f3c"  # the customer id: looked for verbatim in every table and queue
EVE_PERSONAL = (EVE, "eve-7f3c@example.com", "Evelyne", "+33611122233", P)


def eves_month() -> list[dict[str, Any]]:
    registration = sent_by("CustomerRegistered", "2027-01-04T09:00:00Z", EVE, P, profile={
        "first_name": "Evelyne", "email": "eve-7f3c@example.com", "phone": "+33611122233",
        "country": "FR"}, consent={"email": True, "sms": True, "tracking": True})
    return [
        sent_by("ProductViewed", "2027-01-04T08:50:00Z", None, P, product_id="boots"),
        registration,
        sent_by("CustomEvent", "2027-01-04T09:30:00Z", EVE, P, name="AddedByHand",
                parameters={"segment": "preferred-customers"}),
        sent_by("CartUpdated", "2027-01-06T18:00:00Z", EVE, P, cart_id="cart-eve",
                lines=[{"product_id": "boots", "unit_price": "90", "categories": ["Ski"]}]),
        sent_by("SearchPerformed", "2027-01-20T10:00:00Z", EVE, P, query="skis"),
        # Registered again on the 28th: a second run waiting a week when she is deleted.
    ]


def everything_stored(world: World) -> list[tuple[str, str]]:
    """(where, text) of every item of both tables (state documents decoded) and every message
    waiting in the stack's queues."""
    from dialogue.aws.state_codec import decode

    ddb, out = world.aws.client("dynamodb"), []
    for logical in ("Table", "CustomersTable"):
        args: dict[str, Any] = {"TableName": world.aws.s.name(logical)}
        while True:
            page = ddb.scan(**args)
            for item in page["Items"]:
                doc = item.pop("doc", None)
                text = repr(item)
                if doc is not None:
                    text += decode(doc["B"]).model_dump_json()
                out.append((logical, text))
            if "LastEvaluatedKey" not in page:
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    sqs = world.aws.client("sqs")
    for url in sqs.list_queues().get("QueueUrls", []):
        if url == world.aws.outcomes_tap_url:
            continue  # the local runtime's stand-in for the shop's subscriber: not the stack's
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                     VisibilityTimeout=0).get("Messages", []):
            out.append((url, m["Body"]))
    return out


def naming_eve(world: World) -> list[tuple[str, str]]:
    return [(where, text) for where, text in everything_stored(world)
            if any(p in text for p in EVE_PERSONAL)]


def test_a_customer_deleted_after_a_month_leaves_nothing_personal(world: World, capsys: Any):
    from dialogue.local.cli import main

    world.load(["08-abandoned-cart.json", "11-registration-follow-up.json",
                by_hand("preferred-customers")], ["preferred-customers"])
    world.run(eves_month(), datetime(2027, 1, 4, tzinfo=UTC), 30)
    assert subjects(world.mails(), "eve-7f3c")  # she got her reminders
    assert naming_eve(world)  # (the scan finds her before)
    names = ["--table", world.aws.s.name("Table"),
             "--customers-table", world.aws.s.name("CustomersTable")]

    assert main(["customer", "export", EVE, *names]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["state"]["profile"]["email"] == "eve-7f3c@example.com"
    assert {r.get("kind") for r in exported["rows"]} >= {"job", "coupon", "member"}
    assert [b["subject"] for b in exported["browsers"]] == [f"guest:{P}"]

    assert main(["customer", "delete", EVE, *names]) == 0
    # A late event dated before the deletion, and the daily checks after it: nothing comes back.
    world.run([sent_by("OrderPlaced", "2027-01-30T10:00:00Z", EVE, P, order_id="late",
                       total="10", lines=[{"product_id": "x", "unit_price": "10"}])],
              datetime(2027, 2, 3, tzinfo=UTC), 3)

    left = naming_eve(world)
    # Only the tombstone: its key is the id (to refuse late events), and nothing else.
    assert [where for where, _ in left] == ["CustomersTable"], [t[:300] for _, t in left]
    tombstone = readback.customers(world.aws)[f"customer:{EVE}"]
    assert tombstone.deleted_at is not None
    assert (tombstone.profile.email, tombstone.orders, tombstone.behaviour, tombstone.segments,
            tombstone.journeys, tombstone.browsers) == (None, [], [], {}, {}, [])
    assert readback.segment_members(world.aws, "preferred-customers") == set()
    assert world.coupons() == []


SEARCH_WAIT_2_DAYS = {**SEARCH_WAIT_MAIL, "id": "search-2-days", "repeatable": True,
                      "elements": [{**SEARCH_WAIT_MAIL["elements"][0]},
                                   {**SEARCH_WAIT_MAIL["elements"][1], "amount": 2,
                                    "unit": "days"},
                                   SEARCH_WAIT_MAIL["elements"][2]]}


def rows_of_eve(world: World, kind: str) -> list[dict[str, Any]]:
    ddb = world.aws.client("dynamodb")
    return ddb.scan(TableName=world.aws.s.name("Table"),
                    FilterExpression="kind = :k AND subject = :s",
                    ExpressionAttributeValues={":k": {"S": kind},
                                               ":s": {"S": f"customer:{EVE}"}})["Items"]


def test_the_customer_deleted_event_alone_erases_everything_even_after_a_crash(
        world: World, monkeypatch: Any):
    """A month, then a `CustomerDeleted` while a wait is armed, a message is scheduled for the
    send time and a coupon was issued. The first attempt dies between the tombstone and the
    erasure of the rows; the redelivered event finishes it. Then the timers fire and the send
    time comes: nothing is sent, and no table or queue names her."""
    from dialogue.aws.erase import DynamoCustomerRows

    world.load(["08-abandoned-cart.json", "11-registration-follow-up.json", NEXT_MORNING,
                SEARCH_WAIT_2_DAYS, by_hand("preferred-customers")], ["preferred-customers"])
    order = {"total": "30", "lines": [{"product_id": "x", "unit_price": "30"}]}
    world.run([*eves_month(),
               sent_by("OrderPlaced", "2027-01-28T18:00:00Z", EVE, P, order_id="o9", **order),
               sent_by("SearchPerformed", "2027-01-28T18:30:00Z", EVE, P, query="poles")],
              datetime(2027, 1, 4, tzinfo=UTC), 25)
    assert [j["status"] for j in world.jobs(EVE) if j["activity_id"] == "thanks-later"] == [
        "scheduled"]  # for tomorrow's send time
    assert rows_of_eve(world, "timer") and world.coupons()  # a wait armed, a coupon issued
    mails_before = subjects(world.mails(), EVE)

    real, calls = DynamoCustomerRows.erase_rows, []

    def crash_once(self: DynamoCustomerRows, subjects: list[str]) -> dict[str, int]:
        calls.append(subjects)
        if len(calls) == 1:
            raise ConnectionError("killed between the tombstone and the rows")
        return real(self, subjects)

    monkeypatch.setattr(DynamoCustomerRows, "erase_rows", crash_once)
    world.run([sent_by("CustomerDeleted", "2027-01-29T06:00:00Z", EVE, None)],
              datetime(2027, 1, 29, tzinfo=UTC), 4)

    assert len(calls) == 2  # the redelivered event erased what the first attempt did not
    assert calls[1] == [f"customer:{EVE}", f"guest:{P}"]
    assert subjects(world.mails(), EVE) == mails_before  # nothing sent after the deletion
    assert readback.rejected_events(world.aws) == []
    left = naming_eve(world)
    assert [where for where, _ in left] == ["CustomersTable"], [t[:300] for _, t in left]
    tombstone = readback.customers(world.aws)[f"customer:{EVE}"]
    assert (tombstone.deleted_at, tombstone.browsers, tombstone.profile.email) == (
        datetime(2027, 1, 29, 6, tzinfo=UTC), [], None)
    assert world.coupons() == [] and world.jobs(EVE) == []


# --- consent and logs ----------------------------------------------------------------------------
NEXT_MORNING = {  # an order's thank-you e-mail, released at the send time (09:00 Paris)
    "id": "thanks-later", "name": "Thanks, the next morning", "repeatable": True, "elements": [
        {"id": "ordered", "type": "places_order", "next": "mail"},
        {"id": "mail", "type": "send_message", "channel": "email", "template": "welcome"}]}


def test_a_consent_withdrawn_while_a_message_waits_for_the_send_time_stops_it(world: World):
    world.load([NEXT_MORNING])
    order = {"total": "30", "lines": [{"product_id": "x", "unit_price": "30"}]}
    events = [
        registers("fay", "2027-01-04T17:00:00Z", "browser-F"),
        sent_by("OrderPlaced", "2027-01-04T18:00:00Z", "fay", None, order_id="o1", **order),
        registers("gus", "2027-01-04T17:05:00Z", "browser-G"),
        sent_by("OrderPlaced", "2027-01-04T18:05:00Z", "gus", None, order_id="o2", **order),
        # Fay withdraws her e-mail consent in the evening, before the 09:00 release.
        sent_by("CustomerUpdated", "2027-01-04T21:00:00Z", "fay", None,
                consent={"email": False}),
    ]
    world.run(events, datetime(2027, 1, 4, tzinfo=UTC), 2)

    assert subjects(world.mails(), "gus") == ["welcome"]  # the send time came
    assert subjects(world.mails(), "fay") == []
    [job] = [j for j in world.jobs() if j["subject"] == "customer:fay"]
    assert (job["status"], job["reason"]) == ("suppressed", "no email marketing consent")


def test_no_personal_data_in_any_log_line_of_a_whole_run(world: World, monkeypatch: Any):
    """Every log line of a run with registrations, logins, carts, orders, a guest becoming a
    customer, messages and a rejected event: no e-mail address, phone, name or customer id.
    The functions' JSON logs and metrics (on stdout, which the runtime's helpers silence) and
    Python's logging records are all kept."""
    import contextlib
    import io
    import logging

    lines: list[str] = []
    stdout = io.StringIO()
    redirect = contextlib.redirect_stdout
    monkeypatch.setattr(contextlib, "redirect_stdout", lambda _: redirect(stdout))

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record) + repr(record.__dict__))

    keep = Keep()
    loggers = [logging.getLogger(), logging.getLogger("dialogue")]
    for logger in loggers:
        logger.addHandler(keep)
    try:
        world.load(["08-abandoned-cart.json", "11-registration-follow-up.json", NEXT_MORNING,
                    by_hand("preferred-customers"), PERKS], ["preferred-customers"])
        world.run([*eves_month(),
                   sent_by("CustomerLoggedIn", "2027-01-05T09:00:00Z", EVE, P),
                   sent_by("OrderPlaced", "2027-01-05T10:00:00Z", EVE, P, order_id="o-eve",
                           total="30", lines=[{"product_id": "x", "unit_price": "30"}]),
                   sent_by("CustomerLoggedOut", "2027-01-05T11:00:00Z", EVE, P),
                   # A malformed event and a late guest event: rejections are logged too.
                   sent_by("OrderPlaced", "2027-01-05T12:00:00Z", EVE, P, order_id="bad"),
                   ], datetime(2027, 1, 4, tzinfo=UTC), 12)
    finally:
        for logger in loggers:
            logger.removeHandler(keep)
    lines += stdout.getvalue().splitlines()
    assert len(lines) > 50  # the functions logged and counted: the capture works
    assert any("rejected event" in line for line in lines)
    assert subjects(world.mails(), EVE)
    leaks = [line for line in lines if any(p in line for p in EVE_PERSONAL)]
    assert leaks == []


def test_the_customer_deleted_event_forgets_them_and_refuses_what_comes_late(world: World):
    world.load([by_hand("preferred-customers"), NEXT_MORNING], ["preferred-customers"])
    order = {"total": "30", "lines": [{"product_id": "x", "unit_price": "30"}]}
    events = [
        registers("hal", "2027-01-04T09:00:00Z", "browser-H"),
        sent_by("CustomEvent", "2027-01-04T09:30:00Z", "hal", None, name="AddedByHand",
                parameters={"segment": "preferred-customers"}),
        sent_by("OrderPlaced", "2027-01-04T18:00:00Z", "hal", None, order_id="o1", **order),
        sent_by("CustomerDeleted", "2027-01-04T20:00:00Z", "hal", None),
    ]
    world.run(events, datetime(2027, 1, 4, tzinfo=UTC), 2)
    # A late order, dated before the deletion, delivered after it.
    world.run([sent_by("OrderPlaced", "2027-01-04T19:00:00Z", "hal", None, order_id="o2",
                       **order)], datetime(2027, 1, 6, tzinfo=UTC), 1)

    hal = readback.customers(world.aws)["customer:hal"]
    assert hal.deleted_at is not None
    assert (hal.profile.email, hal.orders, hal.segments) == (None, [], {})
    assert readback.segment_members(world.aws, "preferred-customers") == set()
    assert subjects(world.mails(), "hal") == []  # the next morning's e-mail found nobody


def test_a_guest_write_racing_the_login_conflicts_and_the_merge_is_decided_again(world: World):
    """The two states commit in one transaction, each on its own version (AWS rejects the
    whole TransactWriteItems when one condition fails): a guest event committed between the
    login's reads and its write makes the login read and merge again, so it is not lost."""
    from dialogue.aws.dynamo import DynamoCustomerStore
    from dialogue.engine.catalog import Catalog
    from dialogue.engine.decide import decide
    from dialogue.engine.identity import decide_identity
    from dialogue.model.events import parse_event
    from dialogue.ports import Conflict

    db = world.aws.client("dynamodb")
    store = DynamoCustomerStore(db, world.aws.s.name("Table"), 16,
                                customers_table=world.aws.s.name("CustomersTable"))
    catalog, now = Catalog([]), datetime(2027, 1, 4, 9, tzinfo=UTC)
    search = parse_event(sent_by("SearchPerformed", "2027-01-04T08:59:00Z", None, P, query="a"))
    login = parse_event(sent_by("CustomerLoggedIn", "2027-01-04T09:00:00Z", "ivy", P))
    customer, guest = store.load("customer:ivy"), store.load(f"guest:{P}")
    # Meanwhile, in the guest's group, a search is applied to the guest.
    searched = decide(guest, search, catalog, now)
    store.commit(searched.state, searched.effects, before=guest)

    stale = decide_identity(customer, guest, login, catalog, now)
    assert stale.guest is not None
    try:
        store.commit(stale.decision.state, stale.decision.effects, before=customer,
                     also=(stale.guest, guest))
        raise AssertionError("a stale guest was overwritten")
    except Conflict:
        pass
    assert "customer:ivy" not in readback.customers(world.aws)  # nothing of it was written

    fresh_guest = store.load(f"guest:{P}")
    again = decide_identity(customer, fresh_guest, login, catalog, now)
    assert again.guest is not None
    store.commit(again.decision.state, again.decision.effects, before=customer,
                 also=(again.guest, fresh_guest))
    ivy = readback.customers(world.aws)["customer:ivy"]
    assert [o.fields["query"] for o in ivy.behaviour] == ["a"]
