"""A Jinja2 sandbox that bounds what one message's render may cost.

Jinja's own sandbox blocks Python's internals (`__class__`, environment reads); it does not stop a
template from building a 30 MB string or looping for ever. This one refuses, before the work is
done, every value longer than `MAX_VALUE` characters (or items), more than `MAX_STEPS` loop steps
and calls, integers over `MAX_INT_BITS` bits, and more than `MAX_SECONDS` of rendering; it also
refuses `{% include %}`, `{% import %}` and `{% extends %}`: a template is one file.
Every refusal is a `LimitExceeded` (a Jinja `TemplateRuntimeError`) saying which bound.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, update_wrapper
from typing import Any, cast

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import TemplateRuntimeError, TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg, pass_eval_context
from jinja2.visitor import NodeTransformer

MAX_VALUE = 200_000  # characters of any text built while rendering; items of any list
MAX_STEPS = 50_000  # loop steps and calls (macros, methods, range) in one message
MAX_INT_BITS = 4_096  # a number of about 1,200 digits
MAX_SECONDS = 2.0  # one message, all its parts; the send function has 30 s

# str methods that could turn a small text into a huge one in a single call.
_UNSAFE_STR_METHODS = frozenset({"expandtabs", "translate", "maketrans", "encode"})
_WIDTH_STR_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


class LimitExceeded(TemplateRuntimeError):
    """A render bound was reached: the message is held back with this reason."""


@dataclass
class _Budget:
    deadline: float
    steps: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("dialogue_render_budget", default=None)


@contextmanager
def budget() -> Iterator[None]:
    """One message's allowance of steps and time, shared by its subject, text and HTML."""
    token = _budget.set(_Budget(time.monotonic() + MAX_SECONDS))
    try:
        yield
    finally:
        _budget.reset(token)


def _tick(step: bool = False) -> None:
    current = _budget.get()
    if current is None:
        return
    if step:
        current.steps += 1
        if current.steps > MAX_STEPS:
            raise LimitExceeded(f"more than {MAX_STEPS:,} loop steps and calls")
    if time.monotonic() > current.deadline:
        raise LimitExceeded(f"rendering took longer than {MAX_SECONDS:g} s")


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


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_VALUE:
        raise LimitExceeded(f"a width of {width:,} is more than {MAX_VALUE:,}")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*\}")


def _check_format(fmt: str, args: Any, brace: bool) -> None:
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


def _check_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    s, old, new = str(s), str(old), str(new)
    times = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    limit(len(s) + times * max(0, len(new) - len(old)), "the replaced text")


def _check_join(items: list[Any], sep: Any) -> None:
    limit(weight(items) + len(items) * len(str(sep)), "the joined text")


# Filters that can make a result much bigger than their input: checked before they run.
def _f_center(value: Any, width: Any = 80) -> None:
    _check_width(width)


def _f_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(s)
    each = len(width) if isinstance(width, str) else int(width)
    limit(len(text) + (text.count("\n") + 1) * max(each, 0), "the indented text")


def _f_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    _check_replace(s, old, new, count)


def _f_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_format(str(value), kwargs or args, brace=False)


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
        _check_width(a)
    limit(weight(value), "the value")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _f_center, "indent": _f_indent, "replace": _f_replace, "format": _f_format,
    "wordwrap": _f_wordwrap, "urlize": _f_urlize, **{name: _f_whole for name in (
        "string", "tojson", "pprint", "sum", "xmlattr", "batch", "slice", "list", "sort",
        "unique")}}


def _bounded_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    skip = 0 if _PassArg.from_obj(f) is None else 1
    check = _FILTER_CHECKS.get(name)

    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if name == "join":
            args = (*args[:skip], list(args[skip]), *args[skip + 1:])
            sep = args[skip + 1] if len(args) > skip + 1 else kwargs.get("d", "")
            _check_join(args[skip], sep)
        elif check is not None:
            check(*args[skip:], **kwargs)
        result = f(*args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            limit(len(result), f"the result of the {name} filter")
        return result

    return update_wrapper(bounded, f)


def _finalize(value: Any) -> Any:
    """Every `{{ … }}`: the value printed is bounded (a list is printed whole)."""
    limit(len(value) if isinstance(value, str) else weight(value), "a printed value")
    return value


def _concat(parts: Iterable[str]) -> str:
    """Blocks that collect their output (set blocks, macros, filter blocks)."""
    parts = list(parts)
    limit(sum(len(p) for p in parts), "a block's output")
    return "".join(parts)


class _Bounds(Extension):
    """Hooks the compiled template calls: every loop step, every `~` concatenation."""

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            _tick(step=True)
            yield item

    @pass_eval_context
    def concat(self, eval_ctx: Any, *parts: Any) -> str:
        limit(sum(weight(p) for p in parts), "the joined text")
        return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


class _Rewrite(NodeTransformer):
    """Route loops and `~` through `_Bounds`; refuse what reads other files."""

    def __init__(self, ext: _Bounds, name: str | None):
        self.ext, self.name = ext, name

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self.ext.call_method("iterate", [cast(nodes.Expr, node.iter)],
                                        lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self.ext.call_method("concat", list(node.nodes), lineno=node.lineno)

    def _refuse(self, node: nodes.Node) -> nodes.Node:
        tag = {"Include": "include", "Import": "import", "FromImport": "from … import",
               "Extends": "extends"}[type(node).__name__]
        raise TemplateSyntaxError(f"{{% {tag} %}} is not supported: a template is one file, "
                                  "it cannot read another", node.lineno, self.name)

    visit_Include = visit_Import = visit_FromImport = visit_Extends = _refuse


class BoundedEnvironment(SandboxedEnvironment):
    """Strict undefined values, no loader, bounded operators, calls, filters and loops."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, autoescape: bool):
        super().__init__(undefined=StrictUndefined, autoescape=autoescape,
                         keep_trailing_newline=True, finalize=_finalize, extensions=[_Bounds])
        self.globals.pop("lipsum", None)  # random text of any length: no use in a message
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.concat = _concat  # type: ignore[method-assign]

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        ext = self.extensions[_Bounds.identifier]
        assert isinstance(ext, _Bounds)
        out = _Rewrite(ext, name).visit(tree)
        assert isinstance(out, nodes.Template)
        return out

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _UNSAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            _check_times(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+" and not _numbers(left, right):
            limit(weight(left) + weight(right), "the sum")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, right, brace=False)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any,  # noqa: N805 - Jinja's signature
             **kwargs: Any) -> Any:
        _tick(step=True)
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name in _WIDTH_STR_METHODS and args:
                _check_width(args[0])
            elif name == "replace" and len(args) >= 2:
                _check_replace(owner, *args[:3])
            elif name == "join" and args:
                args = (list(args[0]), *args[1:])
                _check_join(args[0], owner)
        result = super().call(__context, __obj, *args, **kwargs)
        for value in (result, owner):
            if isinstance(value, str | list | tuple | dict | set):
                limit(len(value), "a value")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = str(value.__self__)

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format(fmt, (*args, *kwargs.values()), brace=True)
            return wrapped(*args, **kwargs)

        return checked


def _numbers(left: Any, right: Any) -> bool:
    return isinstance(left, int | float) and isinstance(right, int | float)


def _check_times(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise LimitExceeded(f"a number larger than {MAX_INT_BITS:,} bits")
        return
    seq, n = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(seq, str | list | tuple) and isinstance(n, int) and n > 0:
        limit(weight(seq) * n, "the repeated value")


def _check_power(base: Any, exponent: Any) -> None:
    if (isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1
            and exponent * base.bit_length() > MAX_INT_BITS):
        raise LimitExceeded(f"a number larger than {MAX_INT_BITS:,} bits")


@lru_cache(maxsize=512)
def compiled(env: BoundedEnvironment, source: str) -> Template:
    """Compile once per container: a template is the same for every message that uses it."""
    return env.from_string(source)


def render_part(env: BoundedEnvironment, source: str, context: dict[str, Any],
                max_chars: int, what: str) -> str:
    """Render one part, stopping as soon as it is longer than `max_chars`."""
    out: list[str] = []
    size = 0
    for piece in compiled(env, source).generate(context):
        size += len(piece)
        if size > max_chars:
            raise LimitExceeded(f"the {what} is longer than {max_chars:,} characters")
        _tick()
        out.append(piece)
    return "".join(out)
