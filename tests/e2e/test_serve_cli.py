"""`dialogue serve` as a shop developer runs it: an endpoint any boto3 client publishes to, the
template's wiring behind it, and a prompt stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3

from tests.e2e.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_takes_events_on_its_port_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    serve = subprocess.Popen([sys.executable, "-m", "dialogue.local.cli", "serve",
                              "--port", str(port)], cwd=ROOT, stdout=log,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240  # a guard against a hang, not a measure
        while "Ctrl-C stops" not in (tmp_path / "serve.log").read_text():
            assert serve.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
        assert f"embedded AWS at http://127.0.0.1:{port}" in (tmp_path / "serve.log").read_text()
        events = boto3.client("events", endpoint_url=f"http://127.0.0.1:{port}",
                              region_name="eu-west-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
        answer = events.put_events(Entries=[{
            "EventBusName": "dialogue-local-shop", "Source": "shop",
            "DetailType": "CustomerRegistered", "Detail": json.dumps({
                "event_id": "serve-1", "customer_id": "c1",
                "occurred_at": "2026-12-01T10:00:00Z"})}])
        assert answer["FailedEntryCount"] == 0
        table = next(line.split(":", 1)[1].strip() for line in
                     (tmp_path / "serve.log").read_text().splitlines()
                     if line.strip().startswith("customers :"))
        db = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}",
                          region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
        while not db.scan(TableName=table)["Items"]:  # on_event applied it: c1 has a state
            assert time.monotonic() < deadline
            time.sleep(0.5)

        serve.send_signal(signal.SIGTERM)

        assert serve.wait(timeout=60) == 0  # promptly: it no longer finishes its deliveries
    finally:
        if serve.poll() is None:
            serve.kill()


def test_a_missing_activities_folder_is_refused_before_anything_starts(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "dialogue.local.cli", "simulate",
                          "--activities", str(tmp_path / "none"), "--events", str(tmp_path),
                          "--from", "2026-12-01"], cwd=ROOT, capture_output=True, text=True)

    assert run.returncode == 2
    assert run.stderr.strip() == f"dialogue simulate: activities folder {tmp_path / 'none'}: " \
                                 "no such folder"
