"""Azure Storage queues of the app: names, and a sender whose messages the Functions trigger can decode."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueServiceClient

    from shared.settings import Settings

RV3_TO_GHL = "rv3-to-ghl"
GHL_TO_RV3 = "ghl-to-rv3"
RECONCILE = "reconcile"
APP_QUEUES = (RV3_TO_GHL, GHL_TO_RV3, RECONCILE)
POISON_SUFFIX = "-poison"

# Short timeouts: the webhook intake must answer GHL fast (429 when storage is down), never hang.
CONNECTION_TIMEOUT_S = 5
READ_TIMEOUT_S = 10
MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600 - 1
RETRY_BACKOFF_S = 0.4
RETRY_JITTER_S = 0.3


class QueueUnavailable(RuntimeError):
    """Storage could not take the message; the caller must keep it (or answer 429 so GHL redelivers)."""


class Queues:
    """Sends JSON messages base64-encoded, as the queue trigger expects (host.json `messageEncoding: base64`)."""

    def __init__(self, service: QueueServiceClient) -> None:
        self._service = service
        self._clients: dict[str, QueueClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Queues:
        from azure.storage.queue import LinearRetry, QueueServiceClient

        options: dict[str, Any] = {
            "connection_timeout": CONNECTION_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S,
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
            QueueServiceClient(settings.storage_service_uri("queue"), credential=_credential(settings), **options)
        )

    def client(self, queue: str) -> QueueClient:
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
        from azure.core.exceptions import AzureError

        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        delay = max(0, min(round(delay_s), MAX_VISIBILITY_DELAY_S))
        try:
            self.client(queue).send_message(body, visibility_timeout=delay or None)
        except AzureError as exc:
            raise QueueUnavailable(f"could not enqueue to {queue}: {type(exc).__name__}") from exc

    def ensure_queues(self, names: tuple[str, ...] = APP_QUEUES) -> None:
        """Create the app's queues and their poison queues when missing (local stack; infra creates them in Azure)."""
        from azure.core.exceptions import ResourceExistsError

        for name in (*names, *(n + POISON_SUFFIX for n in names)):
            with contextlib.suppress(ResourceExistsError):
                self.client(name).create_queue()

    def depth(self, queue: str) -> int:
        """Approximate number of messages waiting (visible or not) in `queue`; 0 when it does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return int(self.client(queue).get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def ping(self) -> None:
        """Reach the queue service (raises an AzureError when storage is down or the identity lacks access)."""
        self._service.get_service_properties(timeout=READ_TIMEOUT_S)


def _credential(settings: Settings) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = settings.storage_client_id or settings.azure_client_id
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()
