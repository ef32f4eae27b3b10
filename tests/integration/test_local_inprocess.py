"""The in-process transport (local/inprocess.py): a request this process sends to the embedded
AWS's address is answered by moto's handlers without a socket; any other address, and the
`http` choice, go over the network as before."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from dialogue.local import inprocess


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A port nothing listens on: only an in-process answer can succeed."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "eu-west-1")):
        monkeypatch.setenv(name, value)
    chosen = _unused_port()
    inprocess.serve(chosen)
    yield chosen
    inprocess.release(chosen)


def client(service: str, port: int, host: str = "127.0.0.1") -> object:
    return boto3.session.Session(region_name="eu-west-1").client(
        service, endpoint_url=f"http://{host}:{port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1))


def test_requests_to_the_embedded_address_are_answered_without_a_socket(port: int):
    served = inprocess.HANDLER.served
    sqs = client("sqs", port)
    url = sqs.create_queue(QueueName="inprocess-test")["QueueUrl"]  # type: ignore[attr-defined]
    assert url == f"http://127.0.0.1:{port}/123456789012/inprocess-test"  # as the server says
    sqs.send_message(QueueUrl=url, MessageBody="hello")  # type: ignore[attr-defined]
    got = sqs.receive_message(QueueUrl=url)["Messages"]  # type: ignore[attr-defined]
    assert [m["Body"] for m in got] == ["hello"]
    streams = client("dynamodbstreams", port, host="localhost")  # moto's Step Functions' name
    assert streams.list_streams()["Streams"] is not None  # type: ignore[attr-defined]
    assert inprocess.HANDLER.served == served + 4


def test_moto_s_errors_come_back_as_aws_errors(port: int):
    sqs = client("sqs", port)
    with pytest.raises(ClientError) as error:
        sqs.get_queue_url(QueueName="no-such-queue")  # type: ignore[attr-defined]
    assert "NonExistentQueue" in str(error.value) or "QueueDoesNotExist" in str(error.value)


def test_other_addresses_and_released_ports_go_over_the_network(port: int):
    other = _unused_port()
    with pytest.raises(EndpointConnectionError):
        client("sqs", other).list_queues()  # type: ignore[attr-defined]
    inprocess.release(port)
    with pytest.raises(EndpointConnectionError):
        client("sqs", port).list_queues()  # type: ignore[attr-defined]


def test_the_transport_is_chosen_by_argument_or_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DIALOGUE_LOCAL_TRANSPORT", raising=False)
    assert inprocess.transport() == "inprocess"
    monkeypatch.setenv("DIALOGUE_LOCAL_TRANSPORT", "http")
    assert inprocess.transport() == "http"
    assert inprocess.transport("inprocess") == "inprocess"
    monkeypatch.setenv("DIALOGUE_LOCAL_TRANSPORT", "sockets")
    with pytest.raises(ValueError, match="DIALOGUE_LOCAL_TRANSPORT"):
        inprocess.transport()
