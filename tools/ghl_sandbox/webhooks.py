"""Signed webhook deliveries, sent in the background and retried on 429 only, as GHL's marketplace does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from .config import WebhookConfig
from .keys import KeyStore
from .render import iso_utc
from .state import Clock

DeliveryState = Literal["pending", "delivered", "failed"]


@dataclass
class Attempt:
    at: str
    status: int | None = None
    error: str | None = None


@dataclass
class Delivery:
    id: str
    webhook_id: str
    type: str
    location_id: str
    body: bytes
    due_at: float
    state: DeliveryState = "pending"
    attempts: list[Attempt] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhookId": self.webhook_id,
            "type": self.type,
            "locationId": self.location_id,
            "state": self.state,
            "attempts": [vars(a) for a in self.attempts],
            "body": json.loads(self.body),
        }


class WebhookOutbox:
    """Deliveries in creation order; a worker task on the server's loop sends those that are due."""

    def __init__(self, clock: Clock, keys: KeyStore, config: WebhookConfig) -> None:
        self.clock = clock
        self.keys = keys
        self.config = config
        self.deliveries: list[Delivery] = []
        self._rng = random.Random(0)
        self._wakeup: asyncio.Event | None = None
        self._sending: asyncio.Lock | None = None

    def reset(self, config: WebhookConfig) -> None:
        self.config = config
        self.deliveries.clear()
        self._rng = random.Random(0)
        self.wake()

    def enqueue(self, event_type: str, location_id: str, payload: dict[str, Any]) -> Delivery | None:
        """Queue one event unless the app is not subscribed to its type; the body is frozen here."""
        if event_type not in self.config.events:
            return None
        webhook_id = str(uuid.uuid4())
        body = {
            "type": event_type,
            "locationId": location_id,
            **payload,
            "webhookId": webhook_id,
            "timestamp": iso_utc(self.clock.now()),
        }
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        delivery = Delivery(uuid.uuid4().hex, webhook_id, event_type, location_id, raw, self.clock.monotonic())
        self.deliveries.append(delivery)
        self.wake()
        return delivery

    def wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def signature_headers(self, body: bytes) -> dict[str, str]:
        keys = self.keys.impostor if self.config.bad_signature else self.keys.signing
        headers: dict[str, str] = {}
        if self.config.signing in ("both", "ed25519"):
            headers["X-GHL-Signature"] = keys.sign_ed25519(body)
        if self.config.signing in ("both", "rsa"):
            headers["x-wh-signature"] = keys.sign_rsa(body)
        return headers

    async def run(self) -> None:
        """Send due deliveries until cancelled; sleeps until the next retry is due or something changes."""
        self._wakeup = asyncio.Event()
        self._sending = asyncio.Lock()
        async with httpx.AsyncClient() as client:
            while True:
                self._wakeup.clear()
                if not self.config.paused and self.config.url:
                    async with self._sending:
                        for delivery in self._due(self.clock.monotonic()):
                            await self._attempt(client, delivery)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._idle_seconds())

    async def flush(self) -> list[Delivery]:
        """Attempt every pending delivery now, paused or not, ignoring retry delays; returns those tried."""
        if not self.config.url:
            return []
        assert self._sending is not None, "the outbox worker is not running"
        async with self._sending, httpx.AsyncClient() as client:
            tried = [d for d in self.deliveries if d.state == "pending"]
            for delivery in tried:
                await self._attempt(client, delivery)
        return tried

    def _due(self, now: float) -> list[Delivery]:
        return [d for d in self.deliveries if d.state == "pending" and d.due_at <= now]

    def _idle_seconds(self) -> float:
        pending = [d.due_at for d in self.deliveries if d.state == "pending"]
        if self.config.paused or not self.config.url or not pending:
            return 60.0
        return max(0.0, min(pending) - self.clock.monotonic())

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        url = self.config.url
        forgotten = not any(d is delivery for d in self.deliveries)  # dropped by a reset mid-batch
        if url is None or delivery.state != "pending" or forgotten:
            return
        attempt = Attempt(at=iso_utc(self.clock.now()))
        delivery.attempts.append(attempt)
        headers = {"Content-Type": "application/json", **self.signature_headers(delivery.body)}
        try:
            response = await client.post(
                url, content=delivery.body, headers=headers, timeout=self.config.timeout_seconds
            )
        except httpx.HTTPError as exc:
            # Only a 429 answer is retried by GHL; a timeout or refused connection loses the event.
            attempt.error = f"{type(exc).__name__}: {exc}"
            delivery.state = "failed"
            return
        attempt.status = response.status_code
        if response.status_code == 429 and len(delivery.attempts) <= self.config.max_retries:
            delay = self.config.retry_interval_seconds + self._rng.uniform(0, self.config.retry_jitter_seconds)
            delivery.due_at = self.clock.monotonic() + delay * self.config.time_scale
        else:
            delivery.state = "delivered" if response.is_success else "failed"
