"""Storage-queue triggers and output bindings with the WebJobs queue processor's semantics (batches, backoff,
lease renewal, release with visibilityTimeout, poison queue after maxDequeueCount)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import ExponentialRetry, QueueClient
from azure.storage.queue import QueueMessage as StoredMessage

from shared.queues import storage_transport
from tools.functions_host.config import QueueOptions
from tools.functions_host.indexing import FunctionDescriptor, QueueTrigger
from tools.functions_host.invocation import Invoker

logger = logging.getLogger("Host.Queues")

MIN_POLLING_INTERVAL = timedelta(milliseconds=100)  # WebJobs QueuePollingIntervals.Minimum
# The real listener keeps a message invisible for 10 minutes while it runs, renewing at half-time.
DEFAULT_MESSAGE_LEASE = timedelta(minutes=10)


class QueueClients:
    """One client per (connection string, queue); every call has a timeout and a bounded, jittered retry."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], QueueClient] = {}
        self._created: set[tuple[str, str]] = set()

    def get(self, connection_string: str, queue_name: str) -> QueueClient:
        key = (connection_string, queue_name)
        if key not in self._clients:
            self._clients[key] = QueueClient.from_connection_string(
                connection_string,
                queue_name,
                transport=storage_transport(connection_timeout=5, read_timeout=30),
                # Waits of about 1 s then 3 s (jittered by up to 1 s): bounded, and polls skip them.
                retry_policy=ExponentialRetry(
                    initial_backoff=1, increment_base=2, retry_total=2, random_jitter_range=1
                ),
            )
        return self._clients[key]

    async def ensure_exists(self, connection_string: str, queue_name: str) -> None:
        """Create the queue once per process. No SDK retry: every caller already retries (the listener's
        backoff, or redelivery of the message whose invocation failed); listeners `forget` after errors."""
        if (connection_string, queue_name) in self._created:
            return
        with contextlib.suppress(ResourceExistsError):
            await asyncio.to_thread(self.get(connection_string, queue_name).create_queue, retry_total=0)
        self._created.add((connection_string, queue_name))

    def forget(self, connection_string: str, queue_name: str) -> None:
        self._created.discard((connection_string, queue_name))


def encode_message(body: bytes, encoding: str) -> str:
    return base64.b64encode(body).decode("ascii") if encoding == "base64" else body.decode("utf-8")


def decode_message(content: str, encoding: str) -> bytes:
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except binascii.Error as error:
            raise ValueError("the message is not valid base64 (host.json messageEncoding is 'base64')") from error
    return content.encode("utf-8")


def _output_bodies(value: Any) -> list[bytes]:
    """What the worker accepts for a queue output binding: str, bytes, QueueMessage, or a list of them."""
    items = value if isinstance(value, list | tuple) else [value]
    bodies = []
    for item in items:
        if isinstance(item, str):
            bodies.append(item.encode("utf-8"))
        elif isinstance(item, bytes | bytearray):
            bodies.append(bytes(item))
        elif isinstance(item, func.QueueMessage):
            bodies.append(item.get_body())
        else:
            raise TypeError(f"unsupported type for a queue output binding: {type(item).__name__}")
    return bodies


class QueueOutputs:
    """Sends what functions put in their queue output bindings, after they succeed, as the host does."""

    def __init__(self, clients: QueueClients, connections: Mapping[str | None, str], encoding: str) -> None:
        self._clients = clients
        self._connections = connections
        self._encoding = encoding

    async def send(self, function: FunctionDescriptor, values: Mapping[str, Any]) -> None:
        for output in function.outputs:
            value = values.get(output.name)
            if value is None:
                continue
            client = self._clients.get(self._connections[output.connection], output.queue_name)
            await self._clients.ensure_exists(self._connections[output.connection], output.queue_name)
            for body in _output_bodies(value):
                await asyncio.to_thread(client.send_message, encode_message(body, self._encoding))


class _Lease:
    """The pop receipt of a message being processed; it changes each time its invisibility is renewed."""

    def __init__(self, message: StoredMessage) -> None:
        self.message_id = str(message.id)
        self.pop_receipt = str(message.pop_receipt)
        self.dequeue_count = int(message.dequeue_count or 1)
        self.timer: asyncio.TimerHandle | None = None  # the next renewal, while the function runs
        self.renewing: asyncio.Task[None] | None = None  # a renewal in flight
        self.done = False


class QueueListener:
    """Polls one queue for one function. Competing hosts on the same queue are fine: storage hands each
    message to one receiver at a time, and nothing here assumes this process is alone."""

    def __init__(
        self,
        function: FunctionDescriptor,
        connection_string: str,
        *,
        options: QueueOptions,
        clients: QueueClients,
        invoker: Invoker,
        message_lease: timedelta = DEFAULT_MESSAGE_LEASE,
    ) -> None:
        assert isinstance(function.trigger, QueueTrigger)
        self.function = function
        self.queue_name = function.trigger.queue_name
        self.poison_queue_name = f"{self.queue_name}-poison"
        self._connection_string = connection_string
        self._options = options
        self._clients = clients
        self._invoker = invoker
        self._message_lease = message_lease
        self._in_flight: set[asyncio.Task[None]] = set()
        self._min_delay = min(MIN_POLLING_INTERVAL, options.max_polling_interval).total_seconds()

    @property
    def _lease_seconds(self) -> int:
        """How long a received message stays invisible (whole seconds, as storage takes it)."""
        return max(1, round(self._message_lease.total_seconds()))

    @property
    def _queue(self) -> QueueClient:
        return self._clients.get(self._connection_string, self.queue_name)

    async def run(self, stopping: asyncio.Event) -> None:
        """Poll until `stopping` is set, then wait for the messages already being processed."""
        delay = self._min_delay
        ready = False
        while not stopping.is_set():
            try:
                if not ready:
                    await self._clients.ensure_exists(self._connection_string, self.queue_name)
                    await self._clients.ensure_exists(self._connection_string, self.poison_queue_name)
                    ready = True
                await self._wait_for_new_batch_threshold(stopping)
                if stopping.is_set():
                    break
                batch = await self._receive()
            except AzureError as error:
                ready = False
                self._clients.forget(self._connection_string, self.queue_name)
                self._clients.forget(self._connection_string, self.poison_queue_name)
                logger.warning("Polling queue '%s' failed, backing off: %s", self.queue_name, type(error).__name__)
                batch = []
            if batch:
                delay = self._min_delay
                for message in batch:
                    task = asyncio.create_task(self._process(message))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                continue
            delay = self._next_delay(delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight))

    def _next_delay(self, current: float) -> float:
        """Randomized exponential backoff while the queue is empty, capped at maxPollingInterval."""
        ceiling = self._options.max_polling_interval.total_seconds()
        return min(ceiling, max(self._min_delay, current * 2 * random.uniform(0.8, 1.2)))

    async def _wait_for_new_batch_threshold(self, stopping: asyncio.Event) -> None:
        while len(self._in_flight) > self._options.new_batch_threshold and not stopping.is_set():
            stop_waiter = asyncio.create_task(stopping.wait())
            await asyncio.wait({*self._in_flight, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
            stop_waiter.cancel()

    async def _receive(self) -> list[StoredMessage]:
        queue = self._queue
        lease_seconds = self._lease_seconds

        def receive() -> list[StoredMessage]:
            return list(
                queue.receive_messages(
                    messages_per_page=self._options.batch_size,
                    max_messages=self._options.batch_size,
                    visibility_timeout=lease_seconds,
                    # A failed poll is not retried here: the listener's own backoff paces the next one.
                    retry_total=0,
                )
            )

        return await asyncio.to_thread(receive)

    async def _process(self, message: StoredMessage) -> None:
        lease = _Lease(message)
        try:
            if lease.dequeue_count > self._options.max_dequeue_count:
                # Delivered more often than allowed without ever completing (e.g. its host was killed).
                await self._move_to_poison(message, lease)
                return
            self._renew_later(lease)
            try:
                outcome = await self._invoker.invoke(
                    self.function,
                    lambda: self._trigger_message(message, lease),
                    reason=f"New queue message detected on '{self.queue_name}'.",
                    trigger_details=(
                        f"MessageId: {message.id}, DequeueCount: {message.dequeue_count}, "
                        f"InsertedOn: {message.inserted_on.isoformat() if message.inserted_on else 'unknown'}"
                    ),
                )
            finally:
                await self._stop_renewing(lease)
            if outcome.succeeded:
                await asyncio.to_thread(self._queue.delete_message, lease.message_id, lease.pop_receipt)
            elif lease.dequeue_count >= self._options.max_dequeue_count:
                await self._move_to_poison(message, lease)
            else:
                await asyncio.to_thread(
                    self._queue.update_message,
                    lease.message_id,
                    lease.pop_receipt,
                    visibility_timeout=round(self._options.visibility_timeout.total_seconds()),
                )
        except AzureError as error:
            # The message stays invisible until its lease ends, then comes back: at-least-once, as on Azure.
            logger.warning(
                "Could not complete message '%s' on queue '%s': %s",
                message.id,
                self.queue_name,
                type(error).__name__,
            )

    def _trigger_message(self, message: StoredMessage, lease: _Lease) -> TriggerMessage:
        return TriggerMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=decode_message(message.content, self._options.message_encoding),
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=lease.pop_receipt,
        )

    def _renew_later(self, lease: _Lease) -> None:
        """Renew the message's invisibility at half its lease while the function runs (a timer, not a task per
        message: most functions end long before the first renewal)."""
        half = self._lease_seconds / 2

        def due() -> None:
            lease.renewing = asyncio.create_task(self._renew(lease))

        lease.timer = asyncio.get_running_loop().call_later(half, due)

    async def _renew(self, lease: _Lease) -> None:
        try:
            receipt = await asyncio.to_thread(
                self._queue.update_message, lease.message_id, lease.pop_receipt, visibility_timeout=self._lease_seconds
            )
        except AzureError as error:
            logger.warning(
                "Could not renew message '%s' on queue '%s': %s",
                lease.message_id,
                self.queue_name,
                type(error).__name__,
            )
            return
        lease.pop_receipt = str(receipt.pop_receipt)
        if not lease.done:
            self._renew_later(lease)

    async def _stop_renewing(self, lease: _Lease) -> None:
        """No renewal after this; one in flight is waited for, so whoever completes the message has the latest
        pop receipt."""
        lease.done = True
        if lease.timer is not None:
            lease.timer.cancel()
        if lease.renewing is not None:
            await lease.renewing

    async def _move_to_poison(self, message: StoredMessage, lease: _Lease) -> None:
        logger.warning(
            "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
            self._options.max_dequeue_count,
            self.poison_queue_name,
        )
        poison = self._clients.get(self._connection_string, self.poison_queue_name)
        await self._clients.ensure_exists(self._connection_string, self.poison_queue_name)
        # The stored text is copied as is, so the poison message keeps the original encoding.
        await asyncio.to_thread(poison.send_message, message.content)
        await asyncio.to_thread(self._queue.delete_message, lease.message_id, lease.pop_receipt)
