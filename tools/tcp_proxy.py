"""A local TCP proxy that can fail on purpose: the chaos run puts one in front of the database (an outage that
drops every open connection and refuses new ones, as an Azure SQL failover does) and one in front of the
Functions hosts (a load balancer: a host killed with -9 leaves the others serving, as on a scaled-out app).

Not deployed. Runs its own asyncio loop in a background thread, so blocking callers can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from types import TracebackType

CONNECT_TIMEOUT_S = 3.0
CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a failed server or a dropped route looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """Listens on 127.0.0.1:`port` (0 = a free one) and pipes each connection to the first backend that accepts,
    taking them in turn (round robin). `down()` resets every open connection and refuses new ones until `up()`."""

    def __init__(self, backends: list[tuple[str, int]], host: str = "127.0.0.1", port: int = 0) -> None:
        if not backends:
            raise ValueError("a proxy needs at least one backend")
        self.backends = list(backends)
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(256)
        self.port = int(self._sock.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._down = False
        self._next = 0
        self.refused = 0  # connections refused while down, for the run's figures

    @property
    def is_down(self) -> bool:
        return self._down

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, sock=self._sock), self._loop
        ).result(timeout=10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._open):
                _reset(writer)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._sock.close()

    def down(self) -> None:
        """Drop every open connection (reset) and refuse new ones."""

        async def drop() -> None:
            self._down = True
            for writer in list(self._open):
                _reset(writer)
            self._open.clear()

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(timeout=10)

    def up(self) -> None:
        self._down = False

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.down()
        try:
            yield
        finally:
            self.up()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            self.refused += 1
            _reset(writer)
            return
        upstream = await self._connect()
        if upstream is None:
            _reset(writer)
            return
        up_reader, up_writer = upstream
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._open.discard(writer)
            self._open.discard(up_writer)
            for end in (writer, up_writer):
                end.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The first backend that accepts, starting after the one the previous connection got."""
        for offset in range(len(self.backends)):
            host, port = self.backends[(self._next + offset) % len(self.backends)]
            try:
                connection = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError):
                continue
            self._next = (self._next + offset + 1) % len(self.backends)
            return connection
        return None

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(CHUNK):
                sink.write(data)
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()
        except (OSError, RuntimeError):
            # One side went away (or was reset on purpose): drop the other side the same way.
            _reset(sink)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
