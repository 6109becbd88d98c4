"""The sandbox's ASGI application: Odoo's APIs behind the outage switch and the fault injector, plus the admin
API under /_sandbox/ (which bypasses both)."""

from __future__ import annotations

import asyncio
import json

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from tools.asgi_server import abort_connection, hang

from . import admin
from .config import SandboxConfig
from .dispatch import Answer, Invocation, execute, parse
from .faults import FaultPlan
from .sandbox import Sandbox

# What a proxy in front of Odoo (or the server itself, outside of the dispatcher) answers, as HTML.
_PAGES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _page(status: int) -> HTMLResponse:
    title = f"{status} {_PAGES[status]}"
    return HTMLResponse(f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>", status)


def _response(answer: Answer) -> Response:
    if answer.media_type == "application/json":
        body = json.dumps(answer.body, ensure_ascii=False).encode()
    else:
        body = str(answer.body).encode()
    return Response(body, answer.status, headers=answer.headers, media_type=answer.media_type)


class SandboxApp:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.admin = Starlette(
            routes=admin.ROUTES,
            exception_handlers={ValidationError: admin.invalid_request, ValueError: admin.invalid_request},
        )
        self.admin.state.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(admin.PREFIX):
            await self.admin(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        inv, early = parse(request.method, scope["path"], request.headers, body)
        sandbox = self.sandbox
        outage = sandbox.outage_mode()
        if outage is not None:
            sandbox.record(inv, outcome=f"outage_{outage}", status=503 if outage == "503" else None)
            if outage == "reset":
                await abort_connection(send)
            else:
                await _page(503)(scope, receive, send)
            return
        if early is not None:
            sandbox.record_answer(inv, early)
            await _response(early)(scope, receive, send)
            return
        plan = sandbox.faults.plan(inv.site)
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        if await self._failed_before(plan, inv, scope, receive, send):
            return
        answer = execute(sandbox, inv, plan.kind)
        if plan.kind == "applied_then_dropped" and answer.applied:
            sandbox.record(inv, outcome="dropped", status=None, fault=plan.kind, applied=True)
            await abort_connection(send)
            return
        sandbox.record_answer(inv, answer, plan.kind)
        await _response(answer)(scope, receive, send)

    async def _failed_before(
        self, plan: FaultPlan, inv: Invocation, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """The faults that replace handling the call: nothing is applied."""
        sandbox = self.sandbox
        if plan.kind == "reset":
            sandbox.record(inv, outcome="reset", status=None, fault=plan.kind)
            await abort_connection(send)
        elif plan.kind == "timeout":
            sandbox.record(inv, outcome="timeout", status=None, fault=plan.kind)
            await hang(receive, send, sandbox.config.faults.hang_seconds)
        elif plan.kind == "server_error":
            sandbox.record(inv, outcome=f"http_{plan.status}", status=plan.status, fault=plan.kind)
            await _page(plan.status)(scope, receive, send)
        else:
            return False
        return True


def build_app(sandbox: Sandbox) -> SandboxApp:
    return SandboxApp(sandbox)


def create_app(config: SandboxConfig | None = None) -> SandboxApp:
    """An ASGI app for `uvicorn --factory tools.odoo_sandbox.app:create_app`."""
    return build_app(Sandbox(config or SandboxConfig()))
