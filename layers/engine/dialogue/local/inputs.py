"""The command line's inputs checked before the embedded AWS starts: a user's mistake is one
line naming the argument, the file or the line and the reason, never a traceback."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """A mistake in the command line or in a file it names: shown as one line, exit status 2."""


def folder_of_documents(path: Path, what: str, *, required: bool = True) -> list[Path]:
    """The *.json files of a folder; a missing folder, or an empty one when `required`, is
    refused (a run with no activities would do nothing, silently)."""
    if not path.exists():
        raise UsageError(f"{what} folder {path}: no such folder")
    if not path.is_dir():
        raise UsageError(f"{what} folder {path}: not a folder")
    files = sorted(path.glob("*.json"))
    if required and not files:
        raise UsageError(f"{what} folder {path}: no *.json file in it")
    return files


def events_file(path: Path) -> list[dict[str, Any]]:
    """One EventBridge event per line, from a .jsonl file or every *.jsonl of a folder."""
    if not path.exists():
        raise UsageError(f"events {path}: no such file or folder")
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise UsageError(f"events folder {path}: no *.jsonl file in it")
    events: list[dict[str, Any]] = []
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as e:
                raise UsageError(f"{f}:{n}: not JSON ({e.msg})") from None
            if not isinstance(event, dict) or not isinstance(event.get("time"), str):
                raise UsageError(f"{f}:{n}: an EventBridge event with a \"time\" is expected")
            events.append(event)
    return events


def day(value: str, name: str = "--from") -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"{name} {value!r}: a day is expected (YYYY-MM-DD)") from None


def positive(value: int, name: str) -> int:
    if value < 1:
        raise UsageError(f"{name} {value}: at least 1 is expected")
    return value


def parameters(pairs: list[str], known: set[str]) -> dict[str, str]:
    """--param NAME=VALUE, each NAME a parameter of the template."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--param {pair!r}: NAME=VALUE is expected")
        if name not in known:
            raise UsageError(f"--param {name}: not a parameter of infra/template.yaml "
                             f"(one of {', '.join(sorted(known))})")
        out[name] = value
    return out


def port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise UsageError(f"--port {value}: a TCP port (0-65535) is expected")
    return value
