"""Shared pydantic base classes: strict where a marketer or a shop types the data."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Ids a marketer writes (activities, elements, segments): short, no spaces, safe in keys and paths.
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")]
# Ids the shop owns (customers, orders, products): any printable text.
ShopId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]



def _known_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {v!r}") from None
    return v


# An IANA time zone name ("Europe/Paris"), checked where it is written, not when first used.
ZoneName = Annotated[str, AfterValidator(_known_zone)]

# A calendar day a marketer writes (a start or end date, a time frame's day): bounded so that the
# engine's date arithmetic (the day after, the day's start in a time zone) can never overflow.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)
Day = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY, json_schema_extra={
    "formatMinimum": FIRST_DAY.isoformat(), "formatMaximum": LAST_DAY.isoformat()})]


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Record(BaseModel):
    """Mutable state the engine owns (customer state); still no unknown keys."""

    model_config = ConfigDict(extra="forbid")


# --- reading a document ------------------------------------------------------------------------
# How deeply a catalog document may nest objects and lists. The deepest real one is a segment
# rule of ~12 all/any/not levels (two JSON levels each); the limit keeps far from the parser's and
# the engine's recursion (a file nested ~1,000 levels deep would otherwise raise RecursionError).
MAX_DEPTH = 32
# Strings (so that brackets inside them do not count) and brackets; a linear scan, no backtracking.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class DocumentError(ValueError):
    """A document that is not JSON a model can read: `where` (a line and column, or a JSON path)
    and `reason`, as *file : where : reason* is printed."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where} : {reason}")
        self.where, self.reason = where, reason


def read_document(text: str) -> Any:
    """JSON text → plain values, for a model to validate; DocumentError when it is not JSON or
    nests deeper than MAX_DEPTH (checked before parsing, so no input can exhaust the stack)."""
    depth = 0
    for token in _TOKENS.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                column = token.start() - text.rfind("\n", 0, token.start())
                raise DocumentError(f"line {line} column {column}",
                                    f"nested deeper than {MAX_DEPTH} levels of objects and lists")
        elif bracket in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DocumentError(f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}") from e
    except (ValueError, RecursionError) as e:  # a number of more than 4,300 digits, …
        raise DocumentError("$", f"invalid JSON: {e}") from e
