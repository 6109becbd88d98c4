"""Serving the local stand-ins (GHL and Odoo sandboxes): uvicorn on a socket of ours, in a thread or in the
foreground, and the socket-level failures their fault injectors need (a reset, a request left hanging)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp, Receive, Send


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket for uvicorn: connections queue from here on, before uvicorn accepts them.

    TCP_NODELAY avoids a 40 ms delayed-ACK stall on every keep-alive request.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def uvicorn_server(app: ASGIApp, log_level: str) -> uvicorn.Server:
    # h11: the fault injectors reset connections through its transport.
    config = uvicorn.Config(app, http="h11", lifespan="on", log_level=log_level, timeout_graceful_shutdown=1)
    return uvicorn.Server(config)


class ThreadedServer:
    """Any ASGI app served by uvicorn on 127.0.0.1 in a background thread; `port=0` picks a free port."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = listening_socket(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn_server(app, "warning")
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


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
