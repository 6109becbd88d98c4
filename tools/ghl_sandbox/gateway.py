"""What stands in front of every GHL endpoint: trace ids, outage, bearer auth, rate limit, Version, faults.

Admin routes under /_sandbox/ bypass all of it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import HTMLResponse
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tools.asgi_server import abort_connection, hang

from .endpoints import Endpoint
from .errors import SCOPE_DENIED, GhlError, bad_request, error_response, unauthorized
from .faults import Failure
from .oauth import authenticate
from .sandbox import Sandbox
from .state import Grant

ADMIN_PREFIX = "/_sandbox"
_SERVER_ERROR_MESSAGES = {"500": "Internal server error", "503": "Service Unavailable"}


@dataclass
class _Call:
    """One API call as the gateway sees it: headers to add, who called, how it ended."""

    trace_id: str
    headers: dict[str, str] = field(default_factory=dict)
    grant: Grant | None = None
    outcome: str = "reset"

    def wrap(self, send: Send) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.outcome = str(message["status"])
                response_headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    response_headers[name] = value
            await send(message)

        return send_with_headers


class Gateway:
    def __init__(self, app: ASGIApp, sandbox: Sandbox, endpoints: list[Endpoint], routes: list[Route]) -> None:
        self.app = app
        self.sandbox = sandbox
        self.endpoints = {e.key: e for e in endpoints}
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        call = _Call(trace_id=str(uuid.uuid4()))
        call.headers["x-trace-id"] = call.trace_id
        scope.setdefault("state", {})["trace_id"] = call.trace_id
        endpoint = self._match(scope)
        # Counted in the state the call started in, so a call still hanging after a reset counts nowhere new.
        counters = self.sandbox.state.counters
        try:
            await self._serve(scope, receive, send, call, endpoint)
        finally:
            if endpoint is not None:
                counters.record(endpoint.key, call.grant.location_id if call.grant else None, call.outcome)

    def _match(self, scope: Scope) -> Endpoint | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return self.endpoints[route.name]
        return None

    async def _serve(self, scope: Scope, receive: Receive, send: Send, call: _Call, endpoint: Endpoint | None) -> None:
        respond = call.wrap(send)
        outage = self.sandbox.outage_mode()
        if outage is not None:
            await self._fail(outage, scope, receive, send, call)
            return
        if endpoint is None:
            await self.app(scope, receive, respond)
            return
        try:
            self._admit(scope, call, endpoint)
        except GhlError as error:
            await error_response(error, call.trace_id)(scope, receive, respond)
            return
        plan = self.sandbox.faults.plan(endpoint.key, endpoint.is_write)
        if plan.latency_seconds:
            await asyncio.sleep(plan.latency_seconds)
        if plan.before is not None:
            await self._fail(plan.before, scope, receive, send, call)
            return
        if plan.after is None:
            await self.app(scope, receive, respond)
            return
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        await self.app(scope, receive, keep)
        if answer and 200 <= answer[0]["status"] < 300:
            await self._fail(plan.after, scope, receive, send, call)
            return
        for message in answer:  # the write was refused, so there is nothing to lose: answer normally
            await respond(message)

    def _admit(self, scope: Scope, call: _Call, endpoint: Endpoint) -> None:
        """Bearer token, rate limit, scope, Version header, in that order; raises GHL's error on a miss."""
        if endpoint.scope is None:
            return
        headers = Headers(scope=scope)
        sandbox = self.sandbox
        grant = authenticate(sandbox.state, sandbox.clock, headers.get("authorization"))
        call.grant = grant
        scope["state"]["grant"] = grant
        decision = sandbox.limiter.check((grant.client_key, grant.location_id), sandbox.config.rate_limit)
        call.headers.update(decision.headers)
        if not decision.allowed:
            call.headers["Retry-After"] = str(decision.retry_after_seconds)
            raise GhlError(429, "Too Many Requests")
        if endpoint.scope not in grant.scopes:
            raise unauthorized(SCOPE_DENIED)
        version = headers.get("version")
        if not version:
            raise bad_request("Version header was not found")
        if sandbox.config.auth.strict_version and version != endpoint.version:
            raise bad_request(f"Version {version} is not supported by this endpoint, use {endpoint.version}")

    async def _fail(self, failure: Failure, scope: Scope, receive: Receive, send: Send, call: _Call) -> None:
        if failure == "reset":
            call.outcome = "reset"
            await abort_connection(send)
        elif failure == "timeout":
            call.outcome = "timeout"
            await hang(receive, send, self.sandbox.config.faults.hang_seconds)
        elif failure == "502":
            # A gateway in front of GHL answers 502 with an HTML page, not GHL's JSON.
            page = HTMLResponse("<html><head><title>502 Bad Gateway</title></head></html>", status_code=502)
            await page(scope, receive, call.wrap(send))
        elif failure == "rejected":
            refusal = bad_request(self.sandbox.config.faults.rejected_message)
            await error_response(refusal, call.trace_id)(scope, receive, call.wrap(send))
        elif failure == "rate_limit":
            interval_ms = self.sandbox.config.rate_limit.interval_ms
            call.headers["Retry-After"] = str(max(1, -(-interval_ms // 1000)))
            await error_response(GhlError(429, "Too Many Requests"), call.trace_id)(scope, receive, call.wrap(send))
        else:
            error = GhlError(int(failure), _SERVER_ERROR_MESSAGES[failure])
            await error_response(error, call.trace_id)(scope, receive, call.wrap(send))
