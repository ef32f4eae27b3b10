"""The size checks of the bounded sandbox (`sandbox.py`): each runs before the operation it
guards, from the sizes of its inputs, so nothing huge is ever built."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2.exceptions import TemplateRuntimeError

MAX_VALUE = 200_000  # characters of any text built while rendering; items of any list
MAX_STEPS = 50_000  # loop steps and calls (macros, methods, range) in one message
MAX_INT_BITS = 4_096  # a number of about 1,200 digits
MAX_SECONDS = 2.0  # one message, all its parts; the send function has 30 s


class LimitExceeded(TemplateRuntimeError):
    """A render bound was reached: the message is held back with this reason."""


def weight(value: Any, limit: int = MAX_VALUE) -> int:
    """Characters and items in `value`, a shared part counted each time it appears (as printing
    it would); stops counting once past `limit`, so it costs at most `limit` steps."""
    total, stack = 0, [value]
    while stack and total <= limit:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, Mapping):
            total += len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset):
            total += len(v)
            stack.extend(v)
        else:
            total += 1
    return total


def limit(size: int, what: str) -> None:
    if size > MAX_VALUE:
        raise LimitExceeded(f"{what} would be longer than {MAX_VALUE:,} characters")


def check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_VALUE:
        raise LimitExceeded(f"a width of {width:,} is more than {MAX_VALUE:,}")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*\}")


def check_format(fmt: str, args: Any, brace: bool) -> None:
    """`'%-999999s' % x`, `'{:>999999}'.format(x)`: widths and repeats add up before formatting."""
    specs = _BRACE_SPEC.findall(fmt) if brace else [m.group(0) for m in _PERCENT_SPEC.finditer(fmt)]
    widths = sum(int(d) for s in specs for d in re.findall(r"\d{1,7}", s.split(":", 1)[-1]))
    if any(len(d) > 7 for s in specs for d in re.findall(r"\d+", s)):
        widths = MAX_VALUE + 1
    if ("*" in "".join(specs) or re.search(r"\{[^{}]*\{", fmt)) and any(
            isinstance(a, int) and a > MAX_VALUE for a in _flat(args)):
        widths = MAX_VALUE + 1
    limit(len(fmt) + widths + len(specs) * weight(args), "the formatted text")


def _flat(args: Any) -> list[Any]:
    if isinstance(args, Mapping):
        return list(args.values())
    return list(args) if isinstance(args, tuple | list) else [args]


def check_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    s, old, new = str(s), str(old), str(new)
    times = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    limit(len(s) + times * max(0, len(new) - len(old)), "the replaced text")


def check_join(items: list[Any], sep: Any) -> None:
    limit(weight(items) + len(items) * len(str(sep)), "the joined text")


# Filters that can make a result much bigger than their input: checked before they run.
def _f_center(value: Any, width: Any = 80) -> None:
    check_width(width)


def _f_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(s)
    each = len(width) if isinstance(width, str) else int(width)
    limit(len(text) + (text.count("\n") + 1) * max(each, 0), "the indented text")


def _f_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    check_replace(s, old, new, count)


def _f_format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_format(str(value), kwargs or args, brace=False)


def _f_wordwrap(s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
                *_: Any, **__: Any) -> None:
    text = str(s)
    lines = len(text) // max(int(width), 1) + 1
    limit(len(text) + lines * len(str(wrapstring or "\n")), "the wrapped text")


def _f_urlize(value: Any, *args: Any, **kwargs: Any) -> None:
    text = str(value)
    extra = sum(len(str(a)) for a in [*args, *kwargs.values()] if isinstance(a, str))
    limit(3 * len(text) + (len(text) // 4 + 1) * (extra + 60), "the linked text")


def _f_whole(value: Any, *args: Any, **kwargs: Any) -> None:
    for a in args:
        check_width(a)
    limit(weight(value), "the value")


FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _f_center, "indent": _f_indent, "replace": _f_replace, "format": _f_format,
    "wordwrap": _f_wordwrap, "urlize": _f_urlize, **{name: _f_whole for name in (
        "string", "tojson", "pprint", "sum", "xmlattr", "batch", "slice", "list", "sort",
        "unique")}}
