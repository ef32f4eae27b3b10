"""Work moto repeats on every request although its answer never changes, done once.

* Each request lists its response class's methods (`inspect.getmembers`) to find the action's
  handler: the list depends on the class only, so it is kept per class.
* Each event a rule sends through an input transformer compiles every JSONPath of the rule's
  `InputPathsMap` again (jsonpath_ng builds a parser, reading its grammar tables, per call):
  a compiled path is kept per path text (they are read-only once built).

Same answers, same errors; only the repetition goes (local/runtime.py installs it).
"""

from __future__ import annotations

import functools
from typing import Any

MOTO: dict[str, Any] = {}  # the functions as found


def install() -> None:
    """Memoise both, once per process."""
    import jsonpath_ng.ext
    from moto.core import responses

    if "method_names_from_class" not in MOTO:
        MOTO["method_names_from_class"] = responses.method_names_from_class
        responses.method_names_from_class = _method_names  # type: ignore[assignment]
    if "jsonpath_parse" not in MOTO:  # moto's events import it at each call, from the module
        MOTO["jsonpath_parse"] = jsonpath_ng.ext.parse
        jsonpath_ng.ext.parse = _jsonpath  # type: ignore[assignment]


@functools.cache
def _method_names(clazz: type) -> frozenset[str]:
    """The names of a response class's methods (moto only asks `action in names`)."""
    return frozenset(MOTO["method_names_from_class"](clazz))


def _jsonpath(path: str, debug: bool | None = None) -> Any:
    return _compiled(path) if debug is None else MOTO["jsonpath_parse"](path, debug)


@functools.lru_cache(maxsize=1024)
def _compiled(path: str) -> Any:
    return MOTO["jsonpath_parse"](path)
