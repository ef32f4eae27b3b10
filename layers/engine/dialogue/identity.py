"""Identity use cases: a shop event applied to the right person (`apply_event`).

A login, registration or logout with both ids reads the customer and the guest and commits both
in one transaction (`engine.identity.decide_identity`): two reads and one transaction. Any other
event costs one read and one write, except a guest event for a browser linked to a customer
(late, or a "remember me" browser): the guest's read finds the link, and the event is applied to
the customer (one more read).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dialogue import services
from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import Decision, decide
from dialogue.engine.forget import erased, forget, reborn, refused
from dialogue.engine.identity import Linked, decide_identity, guest_of, redirect_to
from dialogue.model.customer import CustomerState
from dialogue.model.events import CustomerDeleted, ShopEvent
from dialogue.ports import Clock, CustomerRows, CustomerStore


def apply_event(store: CustomerStore, event: ShopEvent, catalog: Catalog, clock: Clock,
                count: Callable[[str, int], None], max_attempts: int = 6,
                keep_link_after_logout: bool = False,
                rows: CustomerRows | None = None) -> Decision | None:
    """Decide and commit `event` for the person it belongs to; None for a duplicate."""
    detail = event.detail
    if isinstance(detail, CustomerDeleted):
        assert detail.customer_id is not None  # (the event model requires it)
        return erase_customer(store, rows, detail.customer_id, detail.event_id,
                              detail.occurred_at, clock.now(), count)[0]

    def deleted(state: CustomerState) -> Decision | None:
        if not refused(state, detail.occurred_at):
            return None
        count("EventsForDeletedCustomer", 1)
        return Decision(state=state, duplicate=True)

    guest_subject = guest_of(detail)
    if guest_subject is not None:
        def linking(customer: CustomerState) -> Decision:
            if (no := deleted(customer)) is not None:
                return no
            guest = store.load(guest_subject)
            result = decide_identity(reborn(customer, detail.event_id), guest, event, catalog,
                                     clock.now(), keep_link_after_logout)
            if result.guest is not None:
                result.decision.also = (result.guest, guest)
            return result.decision

        return services.apply(store, event.subject, linking, count, max_attempts,
                              catalog=catalog)

    def plain(state: CustomerState) -> Decision:
        if (no := deleted(state)) is not None:
            return no
        return decide(reborn(state, detail.event_id), event, catalog, clock.now())

    def guest_or_linked(state: CustomerState) -> Decision:
        customer_id = redirect_to(state, detail)
        if customer_id is not None:
            raise Linked(customer_id)
        return plain(state)

    if detail.customer_id:
        return services.apply(store, event.subject, plain, count, max_attempts)
    try:
        return services.apply(store, event.subject, guest_or_linked, count, max_attempts,
                              catalog=catalog)
    except Linked as link:
        count("GuestEventsRedirected", 1)
        return services.apply(store, f"customer:{link.customer_id}", plain, count,
                              max_attempts)


def erase_customer(store: CustomerStore, rows: CustomerRows | None, customer_id: str,
                   event_id: str, at: datetime, now: datetime,
                   count: Callable[[str, int], None]) -> tuple[Decision | None, dict[str, int]]:
    """Erasure on request (a `CustomerDeleted` event, or `dialogue customer delete`), in three
    steps, each safe to repeat: (1) the state becomes a tombstone that still lists its browsers,
    so no event, timer or retry can write a new row for the customer from then on; (2) the
    browsers' guest states and every row naming the customer or them go (`rows`: other
    partitions, outside the customer's FIFO group); (3) the tombstone forgets the browsers.
    A crash between steps leaves a tombstone with its browsers: the redelivered event (or the
    command run again) finds it (step 1 is then a duplicate) and does steps 2 and 3 again.
    Returns the tombstone's decision (None: already deleted) and what was removed, by kind."""
    subject = f"customer:{customer_id}"
    decision = services.apply(store, subject, lambda s: forget(s, event_id, at, now), count)
    tombstone = decision.state if decision is not None else store.load(subject)
    done: dict[str, int] = {"state": int(decision is not None), "guest": 0}
    if rows is None or tombstone.deleted_at is None:  # no rows port; or reborn since: done
        return decision, done
    guests = [f"guest:{pid}" for pid in tombstone.browsers]
    done["guest"] = sum(rows.erase_guest(guest, customer_id) for guest in guests)
    for kind, n in rows.erase_rows([subject, *guests]).items():
        done[kind] = done.get(kind, 0) + n
    services.apply(store, subject, erased, count)
    count("CustomersErased", 1)
    return decision, done
