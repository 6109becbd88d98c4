"""Builds the sandbox's ASGI application: GHL endpoints behind the gateway, plus the admin API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from . import admin, calendars, contacts, locations, oauth
from .config import SandboxConfig
from .errors import GhlError, error_response, handle_ghl_error, trace_id
from .gateway import Gateway
from .sandbox import Sandbox

ENDPOINTS = [*calendars.ENDPOINTS, *contacts.ENDPOINTS, *locations.ENDPOINTS, *oauth.ENDPOINTS]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods, answered the way GHL's NestJS services do."""
    assert isinstance(exc, HTTPException)
    message = f"Cannot {request.method} {request.url.path}"
    return error_response(GhlError(exc.status_code, message), trace_id(request))


def build_app(sandbox: Sandbox) -> Gateway:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        worker = asyncio.create_task(sandbox.outbox.run())
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    api_routes = [route for endpoint in ENDPOINTS for route in endpoint.routes()]
    app = Starlette(
        routes=[*admin.ROUTES, *api_routes],
        exception_handlers={
            GhlError: handle_ghl_error,
            HTTPException: _http_error,
            ValidationError: admin.invalid_request,
            ValueError: admin.invalid_request,
        },
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return Gateway(app, sandbox, ENDPOINTS, api_routes)


def create_app(config: SandboxConfig | None = None) -> Gateway:
    """An ASGI app for `uvicorn --factory tools.ghl_sandbox.app:create_app`."""
    return build_app(Sandbox(config or SandboxConfig()))
