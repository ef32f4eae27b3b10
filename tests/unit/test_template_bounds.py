"""Hostile and broken templates: caught with their reason when a message is rendered (held back,
never sent, never a crash) and already when `dialogue validate` checks the catalog."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from dialogue.delivery.bounds import MAX_STEPS, MAX_VALUE
from dialogue.delivery.plan import Email, Hold, plan
from dialogue.delivery.render import MAX_EMAIL_PART, MAX_SMS, RenderError, render
from dialogue.engine.checks import Problem, load_catalog
from dialogue.engine.template_checks import _DETAILS, event_sample
from dialogue.model.events import DETAILS
from dialogue.model.template import EmailTemplate, SmsTemplate

from tests.unit.test_delivery import NOW, SETTINGS, customer, job

CONTEXT = {"customer": {"first_name": "Frank"}, "shop": {"name": "Shop", "url": "u"},
           "unsubscribe_url": "u", "event": {"lines": [{"name": "Skis"}]}}

# (template text, what the reason says)
HOSTILE = [
    ("{{ 1/0 }}", "ZeroDivisionError: division by zero"),
    ("{{ customer.first_name + 1 }}", "TypeError: can only concatenate str"),
    ("{% include 'footer.html' %}", "{% include %} is not supported"),
    ("{% import 'macros.html' as m %}", "{% import %} is not supported"),
    ("{% from 'macros.html' import f %}", "{% from … import %} is not supported"),
    ("{% extends 'base.html' %}", "{% extends %} is not supported"),
    ("{{ 'x' * 30000000 }}", f"longer than {MAX_VALUE:,} characters"),
    ("{{ ['x'] * 30000000 }}", f"longer than {MAX_VALUE:,} characters"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     f"more than {MAX_STEPS:,} loop steps"),
    ("{% set out %}{% for i in range(90000) %}{{ i }}{% endfor %}{% endset %}",
     f"more than {MAX_STEPS:,} loop steps"),
    ("{{ range(1000000000) | list }}", "Range too big"),
    ("{{ 9 ** 999999 }}", "a number larger than 4,096 bits"),
    ("{% set s = 'x' * 100000 %}{{ s.replace('x', s) }}", "replaced text would be longer"),
    ("{% set s = 'x' * 100000 %}{{ s | replace('x', s) }}", "replaced text would be longer"),
    ("{{ 'x'.ljust(1000000000) }}", "a width of 1,000,000,000"),
    ("{{ 'x' | center(1000000000) }}", "a width of 1,000,000,000"),
    ("{{ '%999999999s' % 'x' }}", "formatted text would be longer"),
    ("{{ '%999999999s' | format('x') }}", "formatted text would be longer"),
    ("{{ '{:>999999999}'.format('x') }}", "formatted text would be longer"),
    ("{% set ns = namespace(s='x' * 100000) %}{% for i in range(30) %}"
     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "joined text would be longer"),
    ("{% set l = [1] %}{% for i in range(40) %}{{ l.extend(l) }}{% endfor %}",
     "a value would be longer"),
    ("{{ (['x' * 1000] * 150) | join('x' * 1000) }}", "joined text would be longer"),
    ("{% set s = '\n' * 100000 %}{{ s | indent(1000) }}", "indented text would be longer"),
    ("{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
    ("{% for i in range(60000) %}xxxxxx{% endfor %}", f"longer than {MAX_EMAIL_PART:,}"),
    ("{{ 'x'.expandtabs(100000) }}", "unsafe"),
]


def email(text: str, **fields: Any) -> EmailTemplate:
    return EmailTemplate(id="t", channel="email", subject=fields.pop("subject", "Hello"),
                         text=text, **fields)


@pytest.mark.parametrize(("text", "reason"), HOSTILE, ids=[t[:40] for t, _ in HOSTILE])
def test_a_hostile_template_is_a_render_error_with_its_reason(text: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError) as caught:
        render(email(text), CONTEXT)
    assert str(caught.value).startswith("template 't': ")
    assert reason in str(caught.value)
    assert caught.value.field == "text"
    assert time.monotonic() - started < 5  # bounded, not merely slow


@pytest.mark.parametrize(("text", "reason"), HOSTILE[:8], ids=[t[:40] for t, _ in HOSTILE[:8]])
def test_at_send_time_the_message_is_held_with_the_reason(text: str, reason: str) -> None:
    decision = plan(job(), customer(), False, email(text), NOW, SETTINGS)
    assert isinstance(decision, Hold), decision
    assert decision.reason.startswith("template 't': ") and reason in decision.reason


def test_the_sandbox_still_blocks_python_internals_and_the_environment() -> None:
    os.environ["DIALOGUE_TEST_SECRET"] = "s3cr3t-value"
    try:
        for text in ["{{ ''.__class__.__mro__[1].__subclasses__() }}",
                     "{{ cycler.__init__.__globals__.os.environ }}",
                     "{{ self.__init__.__globals__ }}",
                     "{{ namespace.__init__.__globals__['os'].environ }}",
                     "{{ lipsum.__globals__['os'].environ }}",
                     "{{ customer.__class__ }}"]:
            with pytest.raises(RenderError) as caught:
                render(email(text + "{{ 'end' }}"), CONTEXT)
            assert "s3cr3t-value" not in str(caught.value)
    finally:
        del os.environ["DIALOGUE_TEST_SECRET"]


def test_a_customers_value_is_not_quoted_in_the_reason() -> None:
    with pytest.raises(RenderError) as caught:
        render(email("{{ customer.first_name | int(strict) }}{{ [] + customer.first_name }}"),
               CONTEXT)
    assert "Frank" not in str(caught.value)


def test_an_sms_longer_than_sns_takes_in_one_publish_is_held() -> None:
    sms = SmsTemplate(id="s", channel="sms", text="{{ 'x' * 1601 }}")
    with pytest.raises(RenderError, match=f"longer than {MAX_SMS:,} characters"):
        render(sms, CONTEXT)


def test_a_subject_longer_than_one_header_line_is_held() -> None:
    with pytest.raises(RenderError, match="subject is longer than 998"):
        render(email("x", subject="{{ 'word ' * 300 }}"), CONTEXT)


def test_a_big_but_reasonable_message_still_renders() -> None:
    lines = [{"name": f"Product {i}", "unit_price": "9.99"} for i in range(500)]
    text = ("{% for line in event.lines %}{{ loop.index }}. {{ line.name ~ ' - ' ~ "
            "'%.2f' | format(line.unit_price | float) }} €\n{% endfor %}")
    rendered = render(email(text, html="<table>{% for l in event.lines %}<tr><td>{{ l.name }}"
                                       "</td></tr>{% endfor %}</table>"),
                      {**CONTEXT, "event": {"lines": lines}})
    assert rendered.text.count("\n") == 500 and "500. Product 499 - 9.99 €" in rendered.text
    assert rendered.html is not None and rendered.html.count("<tr>") == 500


def test_a_good_template_goes_out() -> None:
    decision = plan(job(), customer(), False, email("Hi {{ customer.first_name }}"), NOW,
                    SETTINGS)
    assert isinstance(decision, Email) and decision.text == "Hi Frank"


# --- dialogue validate -------------------------------------------------------------------------
def activity(*elements: dict[str, Any], ident: str = "act") -> str:
    return json.dumps({"id": ident, "name": "Test", "elements": list(elements)})


def send(template: str = "t", ident: str = "mail", **more: Any) -> dict[str, Any]:
    return {"id": ident, "type": "send_message", "channel": "email", "template": template,
            **more}


def validate(activities: list[str], **templates: str) -> list[Problem]:
    docs = [(f"templates/{k}.json", json.dumps({"id": k, "channel": "email", "subject": "Hi",
                                                "text": v})) for k, v in templates.items()]
    _, problems = load_catalog([(f"activities/{i}.json", a) for i, a in enumerate(activities)],
                               [("vip.json", json.dumps({"id": "vip", "name": "VIP"}))], docs)
    return problems


ORDER_TRIGGER = {"id": "ordered", "type": "places_order", "next": "mail"}


@pytest.mark.parametrize(("text", "reason"), HOSTILE, ids=[t[:40] for t, _ in HOSTILE])
def test_validate_names_the_template_file_and_the_reason(text: str, reason: str) -> None:
    problems = validate([activity(ORDER_TRIGGER, send())], t=text)
    assert problems, "a hostile template passed validation"
    first = problems[0]
    assert (first.file, first.path) == ("templates/t.json", "$.text"), str(first)
    assert reason in first.reason
    # the activity that sends it is reported too: it cannot run with a broken template
    assert any(p.file == "activities/0.json" for p in problems)


def test_validate_is_clean_for_a_template_that_fits_its_trigger() -> None:
    text = ("{{ customer.first_name }} {{ event.order_id }} {{ event.lines[0].name }} "
            "{{ customer.attributes.loyalty_tier }} {{ unsubscribe_url }}")
    assert validate([activity(ORDER_TRIGGER, send())], t=text) == []


DAILY = {
    "in_segment": ({"segments": ["vip"], "mode": "daily"}, "segment"),
    "abandons_cart": ({"days": 2}, "cart"),
    "birthday": ({}, "birthday"),
}


@pytest.mark.parametrize("trigger", sorted(DAILY))
def test_each_daily_trigger_provides_its_own_event_field_and_no_other(trigger: str) -> None:
    props, own = DAILY[trigger]
    for other in sorted({f for _, f in DAILY.values()} - {own}):
        act = activity({"id": "daily", "type": trigger, **props, "next": "mail"}, send())
        problems = validate([act], t=f"{{{{ event.type }}}} {{{{ event.date }}}} "
                                    f"{{{{ event.{own} }}}} {{{{ event.{other} }}}}")
        [problem] = problems
        assert (problem.file, problem.path) == ("activities/0.json", "$.elements[1].template")
        assert f"has no attribute '{other}'" in problem.reason
        assert f"after the '{trigger}' trigger" in problem.reason


def test_event_after_a_wait_is_the_wake_up_not_the_trigger() -> None:
    act = activity({**ORDER_TRIGGER, "next": "wait"},
                   {"id": "wait", "type": "wait", "amount": 2, "unit": "days", "next": "mail"},
                   send())
    [problem] = validate([act], t="{{ event.order_id }}")
    assert problem.path == "$.elements[2].template" and "after the wait 'wait'" in problem.reason


def test_coupon_is_only_there_when_an_issue_coupon_comes_before_on_the_way() -> None:
    coupon = {"id": "coupon", "type": "issue_coupon", "promotion": "THANKS", "next": "mail"}
    issued = activity({**ORDER_TRIGGER, "next": "coupon"}, coupon, send(), ident="a")
    not_issued = activity(ORDER_TRIGGER, send(), ident="b")
    problems = validate([issued, not_issued], t="{{ coupon.code }} {{ coupons.THANKS.code }}")
    assert [(p.file, p.path) for p in problems] == [("activities/1.json",
                                                     "$.elements[1].template")]
    assert "'coupon' is undefined" in problems[0].reason


def test_an_activity_with_a_render_problem_is_reported_and_still_runs() -> None:
    act = activity(ORDER_TRIGGER, send())
    docs = [("templates/t.json", json.dumps({"id": "t", "channel": "email", "subject": "Hi",
                                             "text": "{{ coupon.code }}"}))]
    catalog, problems = load_catalog([("a.json", act)], [], docs)
    assert [p.path for p in problems] == ["$.elements[1].template"]
    assert list(catalog.activities) == ["act"]  # at send time: held with the same reason


def test_every_shop_event_has_a_sample_of_every_field() -> None:
    assert set(_DETAILS) == set(DETAILS)
    for detail_type, model in DETAILS.items():
        sample = event_sample(detail_type)
        assert set(model.model_fields) <= set(sample), detail_type
