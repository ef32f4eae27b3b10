"""Cold-start import cost: the on_event handler module against `import boto3` + one client.

Each sample is a fresh interpreter (`-c`) that times the import itself with perf_counter, so
interpreter start-up, identical for both, is left out. Bytecode caches are warmed first by one
discarded run of each, as they are in a deployed layer.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLER_DIR = ROOT / "functions" / "on_event"

# What Lambda sets for the function (none of it is read at import time) and its credentials.
ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_SERVICE_NAME": "dialogue", "POWERTOOLS_METRICS_NAMESPACE": "Dialogue",
    "LOG_LEVEL": "INFO", "TABLE_NAME": "dialogue-table",
    "CUSTOMERS_TABLE": "dialogue-customers", "ACTIVITIES_BUCKET": "dialogue-catalog",
    "SEGMENT_SHARDS": "16", "EVENT_SOURCE": "shop", "EVENT_BUS_NAME": "dialogue-shop",
    "EVENTS_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dialogue-events-dlq.fifo",
    "CATALOG_CACHE_SECONDS": "60",
}

TIMED = "import time; t = time.perf_counter(); {body}; print(time.perf_counter() - t)"
HANDLER = TIMED.format(body="import on_event_handler")
BOTO3 = TIMED.format(body="import boto3; boto3.client('dynamodb')")


@dataclass
class Figures:
    handler_ms: float
    boto3_ms: float
    handler_samples: list[float]
    boto3_samples: list[float]

    @property
    def ratio(self) -> float:
        return self.handler_ms / self.boto3_ms


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    keep["PYTHONPATH"] = str(HANDLER_DIR)
    keep.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**keep, **ENV}


def _run(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *flags, "-c", code], env=_env(), cwd=ROOT,
                          capture_output=True, text=True, check=True)


def _sample(code: str) -> float:
    return float(_run(code).stdout.strip().splitlines()[-1]) * 1000


def measure(samples: int = 7) -> Figures:
    _sample(HANDLER), _sample(BOTO3)  # warm the bytecode caches
    handler, boto = [], []
    for _ in range(samples):  # interleaved, so drift on the machine hits both alike
        handler.append(_sample(HANDLER))
        boto.append(_sample(BOTO3))
    return Figures(statistics.median(handler), statistics.median(boto), handler, boto)


LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)")


def top_imports(module: str = "on_event_handler", top: int = 12,
                depth: int = 2) -> list[tuple[str, float, float]]:
    """`python -X importtime`: (module, self ms, cumulative ms) of the costliest imports made
    while importing `module`, up to `depth` levels below it, by cumulative time."""
    err = _run(f"import {module}", "-X", "importtime").stderr
    rows: list[tuple[str, float, float]] = []
    for m in LINE.finditer(err):  # post-order: a module's imports are listed before it
        level = (len(m.group(3)) - 1) // 2
        if level == 0:
            if m.group(4) == module:
                break
            rows = []
        elif level <= depth:
            rows.append((m.group(4), int(m.group(1)) / 1000, int(m.group(2)) / 1000))
    return sorted(rows, key=lambda r: -r[2])[:top]
