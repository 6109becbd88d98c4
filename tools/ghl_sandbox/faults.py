"""Seeded fault decisions per endpoint, and the two ways of failing a connection at the socket level."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from dataclasses import dataclass
from typing import Literal

from starlette.types import Receive, Send

from .config import FaultConfig

Failure = Literal["rate_limit", "500", "502", "503", "timeout", "reset"]


_SERVER_ERRORS: dict[int, Failure] = {500: "500", 502: "502", 503: "503"}


@dataclass(frozen=True)
class FaultPlan:
    latency_seconds: float = 0.0
    before: Failure | None = None  # instead of handling the request
    after: Failure | None = None  # after a write was applied, instead of its answer


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def plan(self, endpoint: str, is_write: bool) -> FaultPlan:
        """Draw the same numbers for every request, so a seed replays the same faults in the same order."""
        rule = self.config.endpoints.get(endpoint, self.config.all_endpoints)
        rng = self._rng
        draws = {kind: rng.random() for kind in ("rate_limit", "server_error", "timeout", "reset", "applied")}
        status = rng.choice(rule.server_error_statuses) if rule.server_error_statuses else 500
        latency = (rule.latency_ms + rng.uniform(0, rule.latency_jitter_ms)) / 1000
        before: Failure | None = None
        if draws["reset"] < rule.reset:
            before = "reset"
        elif draws["timeout"] < rule.timeout:
            before = "timeout"
        elif draws["server_error"] < rule.server_error:
            before = _SERVER_ERRORS[status]
        elif draws["rate_limit"] < rule.rate_limit:
            before = "rate_limit"
        after: Failure | None = None
        if before is None and is_write and draws["applied"] < rule.applied_then_failed:
            after = rule.applied_then_failed_outcome
        return FaultPlan(latency, before, after)


async def abort_connection(send: Send) -> None:
    """Close the client's socket with a TCP reset and no response (needs uvicorn's HTTP protocol)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("connection reset faults need the sandbox to run under uvicorn")
    if transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout turns close() into a RST instead of an orderly FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    for _ in range(10):  # let uvicorn see the loss, so it does not try to answer 500 on a dead socket
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)


async def hang(receive: Receive, send: Send, seconds: float) -> None:
    """Never answer: wait until the client gives up (or `seconds` pass), then drop the connection."""

    async def until_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(until_disconnect(), timeout=seconds)
    except TimeoutError:
        await abort_connection(send)
