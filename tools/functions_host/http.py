"""The HTTP front end: a raw ASGI app that routes, checks keys, builds `func.HttpRequest` and answers
with the function's `func.HttpResponse`, the way the Functions host does."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

from tools.functions_host.indexing import FunctionDescriptor, HttpTrigger
from tools.functions_host.invocation import Invoker
from tools.functions_host.keys import HostKeys
from tools.functions_host.routing import Router

logger = logging.getLogger("Host.Http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HTTP_REASON = "This function was programmatically called via the host APIs."
# The real host's request body limit (app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, in bytes): 100 MB.
BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"
DEFAULT_BODY_LIMIT = 100 * 1024 * 1024


@dataclass(frozen=True)
class BodyLimits:
    """How request bodies are read. Size and rate as Kestrel, under the real host: a body over the limit is refused
    by its Content-Length or as soon as it grows past it (413), and one arriving slower than `min_rate` bytes/s
    after `grace_s` is cut off (408). `anonymous_readers`: bodies of anonymous functions read at once; one more
    is refused with 429, so clients that stall their bodies cannot hold every connection the host serves."""

    max_bytes: int = DEFAULT_BODY_LIMIT
    min_rate: float = 240.0
    grace_s: float = 5.0
    anonymous_readers: int = 32


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Repeated names arrive joined with ',' (ASP.NET's StringValues.ToString())."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def encode_http_result(value: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers (repeated ones kept) and body of what an HTTP function returned, as the worker encodes
    it; anything but an HttpResponse or a string fails the invocation, as it does on Azure."""
    if isinstance(value, str):
        value = func.HttpResponse(value)
    if not isinstance(value, func.HttpResponse):
        raise TypeError(
            f"unable to encode outgoing TypedData: unsupported type for Python type {type(value).__name__!r}"
        )
    headers = [
        (name.lower().encode("latin-1"), str(header).encode("latin-1")) for name, header in value.headers.items()
    ]
    if not any(name == b"content-type" for name, _ in headers):
        mimetype = value.mimetype
        content_type = f"{mimetype}; charset={value.charset}" if mimetype.startswith("text/") else mimetype
        headers.append((b"content-type", content_type.encode("latin-1")))
    return int(value.status_code), headers, value.get_body() or b""


class HttpFrontend:
    """ASGI application serving every HTTP-triggered function under the host.json route prefix."""

    def __init__(
        self,
        functions: list[FunctionDescriptor],
        invoker: Invoker,
        keys: HostKeys,
        route_prefix: str,
        max_outstanding: int | None = None,
        *,
        body_limits: BodyLimits | None = None,
    ) -> None:
        self._router = Router(
            (f.trigger.route, f.trigger.methods, f) for f in functions if isinstance(f.trigger, HttpTrigger)
        )
        self._prefix = [segment.lower() for segment in route_prefix.split("/") if segment]
        self._invoker = invoker
        self._keys = keys
        self._max_outstanding = max_outstanding
        self._limits = body_limits or BodyLimits()
        # One event loop: no lock needed for either count.
        self._outstanding = 0
        self._anonymous_readers = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off; websockets are not served by Functions
            return
        try:
            await self._serve(scope, receive, send)
        except _Refused as refusal:
            await _respond(send, refusal.status, [(b"connection", b"close")])

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        route_path = self._strip_prefix(raw_path)
        match = self._router.resolve(scope["method"], route_path) if route_path is not None else None
        if match is None:
            await _respond(send, 404)
            return
        function = match.target
        assert isinstance(function.trigger, HttpTrigger)
        headers = _joined([(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]])
        query_string = scope.get("query_string", b"").decode("latin-1")
        if not self._keys.authorizes(function.trigger.auth_level, headers, query_string):
            await _respond(send, 401)
            return
        body = await self._body(function.trigger.auth_level == "anonymous", headers, receive)
        if self._max_outstanding is not None and self._outstanding >= self._max_outstanding:
            # host.json http.maxOutstandingRequests: an overloaded instance says 429 at once instead of answering
            # late (GHL retries a webhook only after a 429, never after a timeout). Counted from a complete request
            # on, so a client still sending its body holds no slot.
            await _respond(send, 429)
            return
        request = func.HttpRequest(
            method=scope["method"],
            url=_url(scope, headers, raw_path, query_string),
            headers=headers,
            params=_joined(parse_qsl(query_string, keep_blank_values=True)),
            route_params=match.route_params,
            body=body,
        )
        self._outstanding += 1
        try:
            await self._invoke(function, request, send)
        finally:
            self._outstanding -= 1

    async def _invoke(self, function: FunctionDescriptor, request: func.HttpRequest, send: Send) -> None:
        outcome = await self._invoker.invoke(function, lambda: request, HTTP_REASON, encode_result=encode_http_result)
        if not outcome.succeeded:
            await _respond(send, 500)  # details stay in the log, never in the response
            return
        status, response_headers, body = outcome.value
        await _respond(send, status, response_headers, body)

    async def _body(self, anonymous: bool, headers: dict[str, str], receive: Receive) -> bytes:
        """The whole body within the limits, or `_Refused` (413 too large, 408 too slow, 429 too many readers)."""
        length = headers.get("content-length", "").strip()
        if length and not (length.isascii() and length.isdigit()):
            raise _Refused(400)
        if length and int(length) > self._limits.max_bytes:
            raise _Refused(413)
        has_body = length not in ("", "0") or "transfer-encoding" in headers
        if not (anonymous and has_body):
            return await _read_body(receive, self._limits)
        if self._anonymous_readers >= self._limits.anonymous_readers:
            raise _Refused(429)
        self._anonymous_readers += 1
        try:
            return await _read_body(receive, self._limits)
        finally:
            self._anonymous_readers -= 1

    def _strip_prefix(self, raw_path: str) -> str | None:
        segments = raw_path.strip("/").split("/")
        if [s.lower() for s in segments[: len(self._prefix)]] != self._prefix:
            return None
        return "/".join(segments[len(self._prefix) :])


def _url(scope: Scope, headers: dict[str, str], raw_path: str, query_string: str) -> str:
    host = headers.get("host")
    if host is None:
        server_host, server_port = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server_host}:{server_port}"
    return f"{scope.get('scheme', 'http')}://{host}{raw_path}" + (f"?{query_string}" if query_string else "")


async def _read_body(receive: Receive, limits: BodyLimits) -> bytes:
    chunks = []
    size = 0
    started = time.monotonic()
    while True:
        # Kestrel's MinRequestBodyDataRate: after the grace period the body must keep arriving at `min_rate`.
        deadline = started + limits.grace_s + size / limits.min_rate
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise _Refused(408) from None
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits.max_bytes:
            raise _Refused(413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b""
) -> None:
    headers = [h for h in headers or [] if h[0] != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
