"""Progress bars go to a terminal only: never into a pipe or a CI log, never with --quiet."""

from __future__ import annotations

import io

from dialogue.local.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal_moves_to_the_step_reached() -> None:
    out = Terminal()
    with Progress(30, "simulated days", stream=out) as bar:
        bar.reach(12, "2026-12-12")
        bar.reach(5)  # never back
        assert bar.bar is not None and bar.bar.n == 12 and "2026-12-12" in bar.bar.postfix
    assert "simulated days" in out.getvalue()


def test_silent_when_not_a_terminal_or_quiet() -> None:
    for out, quiet in ((io.StringIO(), False), (Terminal(), True)):
        with Progress(30, "simulated days", quiet=quiet, stream=out) as bar:
            bar.reach(30)
        assert out.getvalue() == ""
