"""Azure Storage queues of the app: names, and a sender whose messages the Functions trigger can decode."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from shared.lazy import serial_imports

if TYPE_CHECKING:
    from collections.abc import Callable

    from azure.storage.queue import QueueClient, QueueServiceClient

    from shared.settings import Settings

RV3_TO_GHL = "rv3-to-ghl"
GHL_TO_RV3 = "ghl-to-rv3"
RECONCILE = "reconcile"
MANYCHAT_CONTACT = "manychat-contact"
MANYCHAT_CAMPAIGN = "manychat-campaign"
ODOO_PUSH = "odoo-push"  # a MiaSalud contact or campaign contact to push to Odoo
APP_QUEUES = (RV3_TO_GHL, GHL_TO_RV3, RECONCILE, MANYCHAT_CONTACT, MANYCHAT_CAMPAIGN, ODOO_PUSH)
POISON_SUFFIX = "-poison"
MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount: the last delivery before `<queue>-poison`

# Short timeouts: the webhook intake must answer GHL fast (429 when storage is down), never hang.
CONNECTION_TIMEOUT_S = 5
READ_TIMEOUT_S = 10
MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600 - 1
RETRY_BACKOFF_S = 0.4
RETRY_JITTER_S = 0.3
# A queue message holds at most 64 KiB of base64, i.e. 48 KiB of JSON; a group stays well under it.
GROUP_KEY = "group"
MAX_GROUP_BYTES = 40 * 1024
MAX_GROUP_MESSAGES = 32
GROUP_SENDERS = 2  # sends of groups in flight at once per queue


class QueueMessage(BaseModel):
    """What every message of ours carries besides its content: its retry counters and trace context."""

    model_config = ConfigDict(extra="ignore")

    attempt: int = 1  # failures so far + 1 (bounded by the worker kernel, `shared.worker`)
    requeues: int = 0  # waits that are not failures (rate limits, leases held by another worker)
    correlation_id: str | None = None
    traceparent: str | None = None


class QueueUnavailable(RuntimeError):
    """Storage could not take the message; the caller must keep it (or answer 429 so GHL redelivers)."""


class Queues:
    """Sends JSON messages base64-encoded, as the queue trigger expects (host.json `messageEncoding: base64`)."""

    def __init__(self, service: QueueServiceClient) -> None:
        self._service = service
        self._clients: dict[str, QueueClient] = {}
        self._groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, GroupedSender]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Queues:
        with serial_imports:
            from azure.storage.queue import LinearRetry, QueueServiceClient

        options: dict[str, Any] = {
            "transport": storage_transport(connection_timeout=CONNECTION_TIMEOUT_S, read_timeout=READ_TIMEOUT_S),
            # The storage SDK ignores `retry_backoff_factor`; its default policy waits 15 s and more between
            # tries, far beyond what a webhook may take before GHL gives up on it. (It annotates the backoff as
            # int but draws it with random.uniform, so sub-second values work.)
            "retry_policy": LinearRetry(
                backoff=RETRY_BACKOFF_S,  # type: ignore[arg-type]
                random_jitter_range=RETRY_JITTER_S,  # type: ignore[arg-type]
                retry_total=2,
            ),
        }
        conn = settings.storage_connection_string
        if conn is not None:
            return cls(QueueServiceClient.from_connection_string(conn, **options))
        return cls(
            QueueServiceClient(
                settings.storage_service_uri("queue"), credential=storage_credential(settings), **options
            )
        )

    def client(self, queue: str) -> QueueClient:
        with serial_imports:
            from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

        with self._lock:
            if queue not in self._clients:
                # Given to each queue client: the service client does not pass its own policies on to them.
                self._clients[queue] = self._service.get_queue_client(
                    queue,
                    message_encode_policy=TextBase64EncodePolicy(),
                    message_decode_policy=TextBase64DecodePolicy(),
                )
            return self._clients[queue]

    def send(self, queue: str, message: dict[str, Any], *, delay_s: float = 0) -> None:
        """Enqueue `message`; `delay_s` keeps it invisible that long (rate limits, retry-later)."""
        self.send_text(queue, _json(message), delay_s=delay_s)

    def send_text(self, queue: str, body: str, *, delay_s: float = 0) -> None:
        """Enqueue a message already serialized as JSON."""
        with serial_imports:
            from azure.core.exceptions import AzureError

        delay = max(0, min(round(delay_s), MAX_VISIBILITY_DELAY_S))
        try:
            self.client(queue).send_message(body, visibility_timeout=delay or None)
        except AzureError as exc:
            raise QueueUnavailable(f"could not enqueue to {queue}: {type(exc).__name__}") from exc

    async def send_grouped(self, queue: str, message: dict[str, Any]) -> None:
        """Enqueue `message`, in one queue message with others sent at the same moment (see `GroupedSender`);
        returns once it is in the queue, raises `QueueUnavailable` when it is not."""
        loop = asyncio.get_running_loop()
        with self._lock:
            senders = self._groups.setdefault(loop, {})
            if queue not in senders:
                senders[queue] = GroupedSender(lambda body: self.send_text(queue, body))
            sender = senders[queue]
        await sender.send(message)

    def ensure_queues(self, names: tuple[str, ...] = APP_QUEUES) -> None:
        """Create the app's queues and their poison queues when missing (local stack; infra creates them in Azure)."""
        with serial_imports:
            from azure.core.exceptions import ResourceExistsError

        for name in (*names, *(n + POISON_SUFFIX for n in names)):
            with contextlib.suppress(ResourceExistsError):
                self.client(name).create_queue()

    def depth(self, queue: str) -> int:
        """Approximate number of messages waiting (visible or not) in `queue`; 0 when it does not exist."""
        with serial_imports:
            from azure.core.exceptions import ResourceNotFoundError

        try:
            return int(self.client(queue).get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def ping(self) -> None:
        """Reach the queue service (raises an AzureError when storage is down or the identity lacks access)."""
        self._service.get_service_properties(timeout=READ_TIMEOUT_S)


def grouped_messages(data: dict[str, Any]) -> list[Any] | None:
    """The messages of a group sent by `GroupedSender`, or None for an ordinary message."""
    group = data.get(GROUP_KEY)
    return group if isinstance(group, list) and len(data) == 1 else None


@dataclass
class _Waiting:
    body: str
    sent: asyncio.Future[None]


class GroupedSender:
    """Group commit for one queue, on one event loop: messages sent while an earlier send is in flight leave
    together, as one queue message `{"group": [...]}`, instead of one storage request each.

    A lone message goes out at once and alone (no waiting for company); under a burst, each storage request
    carries what arrived during the previous ones, so storage requests per message fall as the load rises
    (the webhook intake under a burst of GHL deliveries). `send` returns only once the queue holds the message,
    so a caller may acknowledge it then, exactly as after a plain send; when the send fails, every message of
    that group gets the `QueueUnavailable`. The storage call itself runs in a worker thread, at most `senders`
    at a time: waiting callers hold no thread.
    """

    def __init__(
        self,
        send_text: Callable[[str], None],
        *,
        max_bytes: int = MAX_GROUP_BYTES,
        max_messages: int = MAX_GROUP_MESSAGES,
        senders: int = GROUP_SENDERS,
    ) -> None:
        self._send_text = send_text
        self._max_bytes = max_bytes
        self._max_messages = max_messages
        self._senders = senders
        self._sending: set[asyncio.Task[None]] = set()
        self._waiting: deque[_Waiting] = deque()

    async def send(self, message: dict[str, Any]) -> None:
        me = _Waiting(_json(message), asyncio.get_running_loop().create_future())
        # Read the outcome even when the caller has gone, so asyncio does not log it as never retrieved.
        me.sent.add_done_callback(lambda sent: sent.cancelled() or sent.exception())
        self._waiting.append(me)
        self._start_sends()
        await asyncio.shield(me.sent)  # a caller that gives up does not take its group's send down with it

    def _start_sends(self) -> None:
        while self._waiting and len(self._sending) < self._senders:
            task = asyncio.create_task(self._send_group(self._take()))
            self._sending.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._start_sends()

    def _take(self) -> list[_Waiting]:
        """The oldest waiting messages that fit in one queue message (at least one)."""
        group = [self._waiting.popleft()]
        size = len(group[0].body.encode())
        while self._waiting and len(group) < self._max_messages:
            size += len(self._waiting[0].body.encode()) + 1
            if size > self._max_bytes:
                break
            group.append(self._waiting.popleft())
        return group

    async def _send_group(self, group: list[_Waiting]) -> None:
        body = group[0].body if len(group) == 1 else f'{{"{GROUP_KEY}":[{",".join(w.body for w in group)}]}}'
        error: QueueUnavailable | None = None
        try:
            await asyncio.to_thread(self._send_text, body)
        except QueueUnavailable as exc:
            error = exc
        except BaseException as exc:  # noqa: BLE001 - every caller of the group must hear that it is not queued
            error = QueueUnavailable(f"could not enqueue a group: {type(exc).__name__}")
        for waiting in group:
            if not waiting.sent.done():
                if error is None:
                    waiting.sent.set_result(None)
                else:
                    waiting.sent.set_exception(error)


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def storage_transport(*, connection_timeout: float, read_timeout: float) -> Any:
    """The HTTP transport of a storage client. requests, trusting the environment, looks for ~/.netrc and reads
    the proxy variables again on every request (a file lookup per queue or table call, measured by the
    throughput benchmark); this one reads the proxies once and never asks for netrc credentials, which a storage
    account does not use."""
    with serial_imports:
        import urllib.request

        import requests
        from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.trust_env = False
    session.proxies.update(urllib.request.getproxies())
    return RequestsTransport(
        session=session,
        session_owner=True,
        use_env_settings=False,
        connection_timeout=connection_timeout,
        read_timeout=read_timeout,
    )


def storage_credential(settings: Settings) -> Any:
    """The token credential of an identity-based storage connection (the app's managed identity in Azure)."""
    with serial_imports:
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = settings.storage_client_id or settings.azure_client_id
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()
