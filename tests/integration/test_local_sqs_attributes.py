"""A queue's attributes read one at a time (local/sqs_attributes.py): the same answers as moto's,
and a send that does not look at every message already queued."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from dialogue.local import sqs_attributes
from moto import mock_aws

sqs_attributes.install()


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="eu-west-1")


def _queues(sqs: Any) -> list[str]:
    dlq = sqs.create_queue(QueueName="dead.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return [
        sqs.create_queue(QueueName="plain")["QueueUrl"],
        sqs.create_queue(QueueName="work.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": 3})})["QueueUrl"],
        sqs.create_queue(QueueName="sealed", Attributes={
            "KmsMasterKeyId": "alias/aws/sqs", "DelaySeconds": "5",
            "Policy": json.dumps({"Version": "2012-10-17", "Statement": []})})["QueueUrl"],
        dlq]


def test_every_attribute_is_moto_s_own_in_the_same_order(sqs: Any):
    from moto.sqs.models import sqs_backends

    urls = _queues(sqs)
    sqs.send_message(QueueUrl=urls[0], MessageBody="one")
    sqs.send_message(QueueUrl=urls[1], MessageBody="two", MessageGroupId="g")
    sqs.receive_message(QueueUrl=urls[0], VisibilityTimeout=30)
    sqs.send_message(QueueUrl=urls[2], MessageBody="later")
    for queue in sqs_backends["123456789012"]["eu-west-1"].queues.values():
        theirs = sqs_attributes.MOTO["attributes"].fget(queue)
        ours = queue.attributes
        assert list(ours.items()) == list(theirs.items()), queue.name
        assert ours.get("ContentBasedDeduplication") == theirs.get("ContentBasedDeduplication")
        assert "KmsMasterKeyId" in ours if "KmsMasterKeyId" in theirs else "KmsMasterKeyId" \
            not in ours


def test_get_queue_attributes_answers_as_before(sqs: Any):
    urls = _queues(sqs)
    got = sqs.get_queue_attributes(QueueUrl=urls[1], AttributeNames=["All"])["Attributes"]
    assert got["ContentBasedDeduplication"] == "true" and got["FifoQueue"] == "true"
    assert json.loads(got["RedrivePolicy"])["maxReceiveCount"] == 3
    one = sqs.get_queue_attributes(QueueUrl=urls[2], AttributeNames=["DelaySeconds"])
    assert one["Attributes"] == {"DelaySeconds": "5"}


def test_a_send_and_a_receive_do_not_look_at_every_queued_message(
        sqs: Any, monkeypatch: pytest.MonkeyPatch):
    """The outcomes tap keeps every outcome of a run: moto counted all of them (three times) on
    each SendMessage and on each message received, so a month's run grew quadratically."""
    from moto.sqs.models import Message

    url = sqs.create_queue(QueueName="tap")["QueueUrl"]
    for start in range(0, 500, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)])
    looked = [0]
    visible = Message.visible

    def counted(message: Any) -> bool:
        looked[0] += 1
        return bool(visible.fget(message))  # type: ignore[attr-defined]

    monkeypatch.setattr(Message, "visible", property(counted))
    sqs.send_message(QueueUrl=url, MessageBody="one more")
    assert looked[0] == 0
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 10
    # moto's receive goes over the queue once; its counts went over it twice more per message
    assert looked[0] < 2 * 501
