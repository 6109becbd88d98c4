"""Anonymous routes cannot take the host down: clients that send headers and stall their bodies, or send too much,
never keep /api/health or the keyed API from answering (the app on the local Functions host)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.stack import Stack

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

STALLED = 100


@contextlib.contextmanager
def stalled_bodies(port: int, count: int, path: str = "/api/webhooks/ghl") -> Iterator[list[socket.socket]]:
    """`count` connections that announce a JSON body, send its first bytes and then nothing."""
    sockets = []
    try:
        for _ in range(count):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 20000\r\n\r\n{".encode()
            )
            sockets.append(conn)
        yield sockets
    finally:
        for conn in sockets:
            conn.close()


def _status(conn: socket.socket) -> int | None:
    """The status the host answered on `conn`, or None if it has answered nothing yet."""
    conn.settimeout(0.01)
    try:
        head = conn.recv(64)
    except TimeoutError:
        return None
    return int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1") else None


def test_stalled_anonymous_bodies_leave_health_and_the_keyed_api_answering(stack: Stack) -> None:
    with stalled_bodies(stack.host.port, STALLED) as sockets, stack.api() as api:
        time.sleep(0.5)  # every stalled request has reached the host
        started = time.monotonic()
        for _ in range(5):
            assert httpx.get(f"{stack.host.base_url}/api/health", timeout=5).status_code == 200
            assert api.get("/ghl/citas").status_code == 200
        assert time.monotonic() - started < 5, "health and the keyed API answered late"
        refused = [_status(conn) for conn in sockets]
        # The host reads a bounded number of anonymous bodies at once and refuses the rest at once (GHL retries a
        # 429); the ones it reads it cuts off once they fall below the minimum data rate (408).
        assert refused.count(429) >= STALLED - 32
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and None in refused:
            time.sleep(0.5)
            refused = [
                status if status is not None else _status(conn) for status, conn in zip(refused, sockets, strict=True)
            ]
        assert set(refused) <= {408, 429}, refused
    assert "Executing 'Functions.ghl_webhook'" not in stack.host.log_tail(1_000_000)


def test_a_body_over_the_host_limit_is_refused_before_it_is_read(stack: Stack) -> None:
    with socket.create_connection(("127.0.0.1", stack.host.port), timeout=5) as conn:
        conn.sendall(
            b"POST /api/webhooks/ghl HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857601\r\n\r\n"
        )
        assert conn.recv(64).startswith(b"HTTP/1.1 413")


def test_a_streamed_body_is_cut_off_once_it_passes_the_limit(stack: Stack) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        block = b" " * 1024 * 1024
        for _ in range(200):  # 200 MB, far past the 100 MB limit
            sent += len(block)
            yield block

    with contextlib.suppress(httpx.TransportError):
        response = httpx.post(f"{stack.host.base_url}/api/webhooks/ghl", content=chunks(), timeout=30)
        assert response.status_code == 413
    assert sent < 150 * 1024 * 1024
