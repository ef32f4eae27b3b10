"""Message templates: JSON files beside the activities (`templates/<id>.json`), Jinja2 text."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dialogue.model.base import Id, Strict


class EmailTemplate(Strict):
    schema_version: Literal[1] = 1
    id: Id
    channel: Literal["email"]
    subject: str = Field(min_length=1, max_length=998)
    text: str = Field(min_length=1)
    html: str | None = None


class SmsTemplate(Strict):
    schema_version: Literal[1] = 1
    id: Id
    channel: Literal["sms"]
    text: str = Field(min_length=1, max_length=1600)  # 10 concatenated parts at most


MessageTemplate = Annotated[EmailTemplate | SmsTemplate, Field(discriminator="channel")]
