"""The local runner's SQS (moto, patched where it differs from SQS in ways the product's timing depends on)."""

from __future__ import annotations

import threading
import time
from typing import Any

from promptlab.local.runner import LocalRunner


class LongPoll(threading.Thread):
    """A consumer waiting on the queue (up to 5 s), noting when a message came."""

    def __init__(self, sqs: Any, url: str) -> None:
        super().__init__(daemon=True)
        self.sqs, self.url = sqs, url
        self.started, self.answered = time.monotonic(), 0.0
        self.handle = ""
        self.start()

    def run(self) -> None:
        messages = self.sqs.receive_message(QueueUrl=self.url, WaitTimeSeconds=5, VisibilityTimeout=30).get("Messages")
        if messages:
            self.answered, self.handle = time.monotonic(), messages[0]["ReceiptHandle"]

    def seconds(self) -> float:
        self.join(6)
        assert self.answered, "the long poll returned nothing"
        return self.answered - self.started


def test_a_waiting_long_poll_answers_when_a_message_turns_visible(clean_queues: LocalRunner) -> None:
    # Given a received message, and another consumer long-polling the queue
    assert clean_queues.stack is not None
    sqs = clean_queues.sqs_client()
    url = clean_queues.stack.queue_urls["JobQueueNormal"]
    sqs.send_message(QueueUrl=url, MessageBody="retry me")
    received = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0]
    poll = LongPoll(sqs, url)
    # When a retry's backoff is set on the received copy (it turns visible 1 s later; no message is added)
    time.sleep(0.3)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"], VisibilityTimeout=1)
    # Then the long poll answers then, as SQS does (moto's own waited for a new message, or a whole second more)
    assert 1.25 <= poll.seconds() < 1.8

    # And a message given back at once (visibility 0) wakes a waiting long poll at once
    second = LongPoll(sqs, url)
    time.sleep(0.3)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=poll.handle, VisibilityTimeout=0)
    assert 0.25 <= second.seconds() < 0.6
    # (leave nothing behind: the message would turn visible again during a later test, as a poison message)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second.handle)
