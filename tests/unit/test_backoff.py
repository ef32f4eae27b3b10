"""A throttled message comes back later and later, never hammering the provider."""

from dialogue.aws.sqs import backoff_seconds
from dialogue.delivery.providers_port import ProviderUnavailable

from tests.unit.test_delivery import customer, job, world


def test_backoff_doubles_from_15_seconds_up_to_15_minutes() -> None:
    assert [backoff_seconds(n) for n in range(1, 9)] == [15, 30, 60, 120, 240, 480, 900, 900]


def test_a_provider_saying_not_now_sets_the_backoff_and_the_job_waits_queued() -> None:
    w = world(customer())
    w.mailer.failures.append(ProviderUnavailable("Throttling"))
    queued, later = job(), []

    try:
        w.service.handle(queued.model_dump_json(), retry_later=lambda: later.append(1))
    except ProviderUnavailable:
        pass
    else:
        raise AssertionError("the record must fail so that the queue brings it back")

    assert later == [1] and w.jobs.get(queued.key) == "queued"
    assert w.service.handle(queued.model_dump_json(), retry_later=lambda: later.append(2)) == "sent"
    assert later == [1]  # a send that goes through asks for no back-off


def test_each_reason_for_not_sending_is_counted_by_kind() -> None:
    from dialogue.model.customer import ConsentState

    w = world(customer(consent=ConsentState(email=False, sms=False)))
    assert w.service.handle(job().model_dump_json()) == "suppressed"
    assert w.counts["Suppressed_no_consent"] == 1


def test_ses_bounces_complaints_and_unsubscribes_name_the_addresses_to_suppress() -> None:
    from dialogue.delivery.suppression import addresses_to_suppress

    assert addresses_to_suppress("Email Bounced", {"bounce": {
        "bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "A@x.com"}]}}) == [
        ("a@x.com", "permanent bounce (General)")]
    assert addresses_to_suppress("Email Bounced", {"bounce": {
        "bounceType": "Transient", "bouncedRecipients": [{"emailAddress": "a@x.com"}]}}) == []
    assert addresses_to_suppress("Email Complaint Received", {"complaint": {
        "complainedRecipients": [{"emailAddress": "b@x.com"}]}}) == [("b@x.com", "complaint")]
    assert addresses_to_suppress("Email Subscribed", {
        "mail": {"destination": ["c@x.com"]},
        "subscription": {"newTopicPreferences": {"unsubscribeAll": True}}}) == [
        ("c@x.com", "unsubscribe")]
    assert addresses_to_suppress("Email Subscribed", {
        "mail": {"destination": ["c@x.com"]},
        "subscription": {"newTopicPreferences": {"unsubscribeAll": False}}}) == []
    assert addresses_to_suppress("Email Delivered", {}) == []
