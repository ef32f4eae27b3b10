"""Render templates in Jinja2's sandbox with strict undefined values.

A value that is missing is an error (the message is held back with the reason), never an empty
gap in a customer's inbox: absent profile fields are left out of the context, not set to None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from dialogue.model.template import EmailTemplate, MessageTemplate, SmsTemplate

# What a template may refer to at its top level.
CONTEXT_NAMES = frozenset({"customer", "event", "coupon", "coupons", "activity", "shop", "cart",
                           "unsubscribe_url"})

_text = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                             keep_trailing_newline=True)
_html = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True,
                             keep_trailing_newline=True)


class RenderError(ValueError):
    """The template cannot be rendered for this customer: why, in a marketer's words."""


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


def render(template: MessageTemplate, context: dict[str, Any]) -> Rendered:
    clean = _without_none(context)
    try:
        if isinstance(template, SmsTemplate):
            return _sms(template, clean)
        # A header is one line: a value with a line break must not add headers to the e-mail.
        subject = " ".join(_text.from_string(template.subject).render(clean).split())
        text = _text.from_string(template.text).render(clean)
        html = _html.from_string(template.html).render(clean) if template.html else None
    except TemplateError as e:
        raise RenderError(f"template {template.id!r}: {e.message or e}") from e
    if not subject:
        raise RenderError(f"template {template.id!r}: the subject is empty")
    return Rendered(subject, text, html)


def _sms(template: SmsTemplate, context: dict[str, Any]) -> Rendered:
    text = _text.from_string(template.text).render(context).strip()
    if not text:
        raise RenderError(f"template {template.id!r}: the text is empty")
    return Rendered(None, text, None)


def template_problems(template: EmailTemplate | SmsTemplate) -> list[tuple[str, str]]:
    """(field, reason) for syntax errors and names a template cannot know."""
    parts = {"text": template.text}
    if isinstance(template, EmailTemplate):
        parts["subject"] = template.subject
        if template.html:
            parts["html"] = template.html
    out = []
    for field, source in parts.items():
        try:
            names = meta.find_undeclared_variables(_text.parse(source))
        except TemplateError as e:
            out.append((field, f"template syntax: {e.message}"))
            continue
        out += [(field, f"unknown value {name!r} (known: {', '.join(sorted(CONTEXT_NAMES))})")
                for name in sorted(names - CONTEXT_NAMES)]
    return out


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
