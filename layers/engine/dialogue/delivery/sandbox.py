"""A Jinja2 sandbox that bounds what one message's render may cost.

Jinja's own sandbox blocks Python's internals (`__class__`, environment reads); it does not stop a
template from building a 30 MB string or looping for ever. This one refuses, before the work is
done, every value longer than `MAX_VALUE` characters (or items), more than `MAX_STEPS` loop steps
and calls, integers over `MAX_INT_BITS` bits, and more than `MAX_SECONDS` of rendering; it also
refuses `{% include %}`, `{% import %}` and `{% extends %}`: a template is one file.
Every refusal is a `LimitExceeded` (a Jinja `TemplateRuntimeError`) saying which bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, update_wrapper
from typing import Any, cast

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg, pass_eval_context
from jinja2.visitor import NodeTransformer

from dialogue.delivery.bounds import (
    FILTER_CHECKS,
    MAX_INT_BITS,
    MAX_SECONDS,
    MAX_STEPS,
    LimitExceeded,
    check_format,
    check_join,
    check_replace,
    check_width,
    limit,
    weight,
)

# str methods that could turn a small text into a huge one in a single call.
_UNSAFE_STR_METHODS = frozenset({"expandtabs", "translate", "maketrans", "encode"})
_WIDTH_STR_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


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


def _bounded_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    skip = 0 if _PassArg.from_obj(f) is None else 1
    check = FILTER_CHECKS.get(name)

    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if name == "join":
            args = (*args[:skip], list(args[skip]), *args[skip + 1:])
            sep = args[skip + 1] if len(args) > skip + 1 else kwargs.get("d", "")
            check_join(args[skip], sep)
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
            check_format(left, right, brace=False)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any,  # noqa: N805 - Jinja's signature
             **kwargs: Any) -> Any:
        _tick(step=True)
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name in _WIDTH_STR_METHODS and args:
                check_width(args[0])
            elif name == "replace" and len(args) >= 2:
                check_replace(owner, *args[:3])
            elif name == "join" and args:
                args = (list(args[0]), *args[1:])
                check_join(args[0], owner)
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
            check_format(fmt, (*args, *kwargs.values()), brace=True)
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
