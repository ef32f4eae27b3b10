"""Render templates in Jinja2's sandbox with strict undefined values.

A value that is missing is an error (the message is held back with the reason), never an empty
gap in a customer's inbox: absent profile fields are left out of the context, not set to None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, meta

from dialogue.delivery.sandbox import BoundedEnvironment, budget, render_part
from dialogue.model.template import EmailTemplate, MessageTemplate, SmsTemplate

# What a template may refer to at its top level.
CONTEXT_NAMES = frozenset({"customer", "event", "coupon", "coupons", "activity", "shop", "cart",
                           "run", "unsubscribe_url"})  # run: a keyed run's `run.key`

# Bounds on what is sent. A subject is one header line: RFC 5322 allows 998 characters. An
# e-mail part of 200,000 characters is at most 800 KB in UTF-8, far below SES's message size
# quota (40 MB with the v2 API this engine uses, https://docs.aws.amazon.com/ses/latest/dg/quotas.html).
# SNS sends at most 1,600 characters per SMS publish (split into parts), https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html.
MAX_SUBJECT = 998
MAX_EMAIL_PART = 200_000
MAX_SMS = 1_600

_text = BoundedEnvironment(autoescape=False)
_html = BoundedEnvironment(autoescape=True)


class RenderError(ValueError):
    """The template cannot be rendered for this customer: why, in a marketer's words.
    `field`: the part that failed (subject, text, html), when known."""

    def __init__(self, message: str, field: str | None = None, kind: str = "other"):
        super().__init__(message)
        self.field = field
        self.kind = kind  # "missing" for a value the customer or event does not have


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


def render(template: MessageTemplate, context: dict[str, Any], clean: bool = True) -> Rendered:
    """Every failure, of any kind, is a RenderError naming the template, the part and why;
    `clean`: absent and empty values are removed first (as for a customer's real values)."""
    ctx = _without_none(context) if clean else context
    with budget():
        if isinstance(template, SmsTemplate):
            text = _part(template, "text", _text, template.text, ctx, MAX_SMS).strip()
            if not text:
                raise RenderError(f"template {template.id!r}: the text is empty", "text")
            return Rendered(None, text, None)
        # A header is one line: a value with a line break must not add headers to the e-mail.
        subject = " ".join(_part(template, "subject", _text, template.subject, ctx,
                                 MAX_EMAIL_PART).split())
        if len(subject) > MAX_SUBJECT:
            raise RenderError(f"template {template.id!r}: the subject is longer than "
                              f"{MAX_SUBJECT} characters", "subject")
        text = _part(template, "text", _text, template.text, ctx, MAX_EMAIL_PART)
        html = (_part(template, "html", _html, template.html, ctx, MAX_EMAIL_PART)
                if template.html else None)
    if not subject:
        raise RenderError(f"template {template.id!r}: the subject is empty", "subject")
    return Rendered(subject, text, html)


def _part(template: MessageTemplate, field: str, env: BoundedEnvironment, source: str,
          context: dict[str, Any], max_chars: int) -> str:
    prefix = f"template {template.id!r}"
    try:
        return render_part(env, source, context, max_chars, field)
    except TemplateError as e:
        kind = "missing" if type(e).__name__ == "UndefinedError" else "other"
        raise RenderError(f"{prefix}: {_short(e.message or str(e))}", field, kind) from e
    except Exception as e:  # noqa: BLE001 - 1/0, a type error, recursion, memory: all held
        raise RenderError(f"{prefix}: {type(e).__name__}: {_short(_redact(str(e)))}".rstrip(": "),
                          field) from e


def _redact(message: str) -> str:
    """Python's messages may quote a customer's value ('Frank'): not in a reason or a log."""
    return re.sub(r"'[^']*'", "'…'", message)


def _short(message: str, size: int = 300) -> str:
    return message if len(message) <= size else message[:size] + "…"


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
