"""Group commit for the webhook intake's queue: a burst leaves in few storage requests, nothing lost or doubled,
and a failed send reaches every caller of its group."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

from shared.queues import GROUP_KEY, GroupedSender, QueueUnavailable, grouped_messages


class FakeQueue:
    """Records each storage request; the first can be held until released (a send in flight)."""

    def __init__(self, fail: bool = False) -> None:
        self.bodies: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail = fail
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def send_text(self, body: str) -> None:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.release.wait(5)
            time.sleep(0.01)
            if self.fail:
                raise QueueUnavailable("storage down")
            with self._lock:
                self.bodies.append(body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def messages(self) -> list[dict[str, Any]]:
        """Every message in the queue, groups unpacked, in queue order."""
        out: list[dict[str, Any]] = []
        for body in self.bodies:
            data = json.loads(body)
            out.extend(grouped_messages(data) or [data])
        return out


def test_a_lone_message_is_sent_at_once_as_a_plain_message() -> None:
    queue = FakeQueue()
    asyncio.run(GroupedSender(queue.send_text).send({"n": 1}))
    assert [json.loads(b) for b in queue.bodies] == [{"n": 1}]


def test_a_burst_leaves_in_few_storage_requests_each_message_once() -> None:
    queue = FakeQueue()
    queue.release.clear()  # the first send stays in flight while the burst arrives

    async def burst() -> None:
        sender = GroupedSender(queue.send_text, senders=2)
        sends = [asyncio.create_task(sender.send({"n": n})) for n in range(100)]
        await asyncio.sleep(0.05)
        queue.release.set()
        await asyncio.gather(*sends)

    asyncio.run(burst())
    assert sorted(m["n"] for m in queue.messages()) == list(range(100))
    for body in queue.bodies:  # a group keeps the order of arrival (queues promise none between messages)
        numbers = [m["n"] for m in grouped_messages(json.loads(body)) or [json.loads(body)]]
        assert numbers == sorted(numbers)
    assert len(queue.bodies) <= 10
    assert queue.most_in_flight <= 2
    assert any(GROUP_KEY in json.loads(b) for b in queue.bodies)


def test_no_group_exceeds_the_size_a_queue_message_can_hold() -> None:
    queue = FakeQueue()
    queue.release.clear()
    filler = "x" * 3000

    async def burst() -> None:
        sender = GroupedSender(queue.send_text, max_bytes=20_000, max_messages=32)
        sends = [asyncio.create_task(sender.send({"n": n, "filler": filler})) for n in range(40)]
        await asyncio.sleep(0.05)
        queue.release.set()
        await asyncio.gather(*sends)

    asyncio.run(burst())
    assert sorted(m["n"] for m in queue.messages()) == list(range(40))
    assert max(len(b.encode()) for b in queue.bodies) <= 20_000


def test_when_storage_refuses_a_group_every_caller_of_it_hears_so_and_later_sends_work() -> None:
    queue = FakeQueue(fail=True)

    async def scenario() -> list[BaseException | None]:
        sender = GroupedSender(queue.send_text)
        results = await asyncio.gather(*(sender.send({"n": n}) for n in range(20)), return_exceptions=True)
        queue.fail = False
        await sender.send({"n": "after"})
        return list(results)

    results = asyncio.run(scenario())
    assert all(isinstance(r, QueueUnavailable) for r in results)
    assert queue.messages() == [{"n": "after"}]


def test_a_caller_that_gives_up_does_not_lose_the_others_of_its_group() -> None:
    queue = FakeQueue()
    queue.release.clear()

    async def scenario() -> None:
        sender = GroupedSender(queue.send_text, senders=1)
        first = asyncio.create_task(sender.send({"n": 0}))
        await asyncio.sleep(0.02)
        waiting = [asyncio.create_task(sender.send({"n": n})) for n in range(1, 6)]
        await asyncio.sleep(0.02)
        waiting[0].cancel()  # GHL hung up on this one
        queue.release.set()
        await first
        await asyncio.gather(*waiting[1:])
        with pytest.raises(asyncio.CancelledError):
            await waiting[0]

    asyncio.run(scenario())
    assert [m["n"] for m in queue.messages()] == [0, 1, 2, 3, 4, 5]


def test_an_ordinary_message_is_not_mistaken_for_a_group() -> None:
    assert grouped_messages({"group": [1], "event": {}}) is None
    assert grouped_messages({"group": "x"}) is None
    assert grouped_messages({"group": [{"a": 1}]}) == [{"a": 1}]
