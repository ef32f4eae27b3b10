"""Progress on stderr for the long commands (simulate, demo, report), with tqdm.

Silent when stderr is not a terminal (a pipe, a CI log) or with --quiet: what a command prints
on stdout is never mixed with it. tqdm is a development/CLI dependency only; without it the
commands run the same, without a bar.
"""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    def __init__(self, total: int, what: str, quiet: bool = False, stream: Any = None):
        stream = stream if stream is not None else sys.stderr
        self.bar: Any = None
        if quiet or not getattr(stream, "isatty", lambda: False)():
            return
        try:
            from tqdm import tqdm
        except ImportError:  # a Lambda-layer install: no bar, same work
            return
        self.bar = tqdm(total=total, desc=what, file=stream, leave=False, unit="step")

    def step(self, n: int = 1, note: str | None = None) -> None:
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(n)

    def reach(self, n: int, note: str | None = None) -> None:
        """Move the bar to `n` (steps done), never back."""
        if self.bar is not None and n > self.bar.n:
            self.step(n - self.bar.n, note)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
