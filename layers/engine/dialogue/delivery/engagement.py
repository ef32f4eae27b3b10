"""`EngagementService.handle`: an SES open, click, delivery or bounce becomes the customer's
behaviour.

The event is turned into the `CustomEvent` a shop would have published (`tracking`) and decided
by the engine exactly as on_event decides one: one read, `decide`, one conditional write, again
on a conflict. So it is recorded once (its id is remembered as applied), only with tracking
consent, and it may start or resume activities (*wait for event* `EmailClicked`...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dialogue.delivery.tracking import MAIL_OUTCOMES, Ignored, behaviour_event
from dialogue.engine.catalog import Catalog
from dialogue.engine.decide import Decision, decide
from dialogue.model.activity import MessageOutcomeTrigger
from dialogue.model.customer import CustomerState
from dialogue.model.events import CustomEvent, ShopEvent
from dialogue.ports import CatalogSource, Clock, CustomerStore
from dialogue.services import apply


class Engagement(StrEnum):
    RECORDED = "recorded"
    NOT_TRACKED = "not_tracked"  # applied, but the customer refused tracking: nothing kept
    DUPLICATE = "duplicate"
    UNTAGGED = "untagged"
    MALFORMED = "malformed"
    UNKNOWN_CUSTOMER = "unknown_customer"
    UNAWAITED = "unawaited"  # a delivery or bounce no activity waits for: no state read


@dataclass
class EngagementService:
    store: CustomerStore
    catalogs: CatalogSource
    clock: Clock
    count: Callable[[str, int], None]
    log: Callable[..., None]
    max_attempts: int = 6

    def handle(self, event: dict[str, Any]) -> Engagement:
        """Opens and clicks of mail dialogue did not tag are counted and ignored, not errors:
        other senders in the account may use SES's events too."""
        try:
            shop_event = behaviour_event(event)
        except Ignored as e:
            self.log("ignored SES event %s: %s", event.get("id"), e)
            return self._outcome(Engagement(e.why))
        catalog = self.catalogs.catalog()
        if not awaited(shop_event, catalog):
            return self._outcome(Engagement.UNAWAITED)
        unknown = False

        def step(state: CustomerState) -> Decision:
            nonlocal unknown
            # Never created from an SES event: a customer deleted since the mail stays deleted.
            unknown = state.version == 0
            if unknown:
                return Decision(state=state, duplicate=True)
            return decide(state, shop_event, catalog, self.clock.now())

        decision = apply(self.store, shop_event.subject, step, self.count, self.max_attempts)
        if decision is None:
            return self._outcome(Engagement.UNKNOWN_CUSTOMER if unknown
                                 else Engagement.DUPLICATE)
        return self._outcome(Engagement.RECORDED if decision.state.consent.tracking
                             else Engagement.NOT_TRACKED)

    def _outcome(self, outcome: Engagement) -> Engagement:
        self.count(f"EmailEngagement_{outcome.value}", 1)
        return outcome


def awaited(event: ShopEvent, catalog: Catalog) -> bool:
    """Opens and clicks are behaviour (segments count them); a delivery or a bounce matters only
    to a `message_outcome` of the mail's activity waiting for it: every other one is let go
    before the customer's state is read, so delivery events cost no DynamoDB call."""
    detail = event.detail
    if not isinstance(detail, CustomEvent) or detail.name not in MAIL_OUTCOMES:
        return True
    activity = catalog.get(str(detail.parameters.get("campaign")))
    return activity is not None and any(
        isinstance(el, MessageOutcomeTrigger) and el.outcome == MAIL_OUTCOMES[detail.name]
        for el in activity.elements)
