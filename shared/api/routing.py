"""Declare an HTTP function once: the route Azure serves and the operation the OpenAPI document describes.

Model names are strings resolved in `shared.api.schemas` only when the document is built, so declaring a
route never imports pydantic (cold start).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import azure.functions as func

from shared.http import http_endpoint
from shared.lazy import serial_imports

Handler = Callable[[func.HttpRequest], func.HttpResponse]


@dataclass(frozen=True)
class Header:
    """A request header an operation reads, and the values it accepts (JSON schema)."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    route: str
    methods: tuple[str, ...]
    name: str
    summary: str
    tag: str
    anonymous: bool
    body: str | None = None
    responses: Mapping[int, str | None] = field(default_factory=dict)
    query: str | None = None
    headers: Sequence[Header] = ()
    body_required: bool = True
    # Checked against MANYCHAT_API_KEYS (`X-API-KEY`) by the app, anonymous for the host (the MiaSalud wing).
    api_key: bool = False
    # False for an operation that touches no setting, database or service, and so can never answer 503.
    dependencies: bool = True

    @cached_property
    def path_pattern(self) -> re.Pattern[str]:
        """The paths the route serves (after the `api/` prefix), as the host matches them: literal segments in any
        case, `{id:int}` in ASCII digits."""
        parts = []
        for segment in self.route.split("/"):
            found = re.fullmatch(r"\{(\w+)(?::(\w+))?\}", segment)
            if found is None:
                parts.append(re.escape(segment))
            else:
                parts.append("[+-]?[0-9]+" if found[2] == "int" else "[^/]+")
        return re.compile("/".join(parts), re.IGNORECASE)


OPERATIONS: list[Operation] = []

# What a route that calls GHL answers when GHL does not serve it (shared.services.ghl_errors).
GHL_FAILURES: dict[int, str | None] = {
    404: "ErrorResponse",
    409: "ErrorResponse",
    422: "ErrorResponse",
    429: "ErrorResponse",
    503: "ErrorResponse",
}


def allowed_methods(path: str) -> list[str]:
    """The methods some declared route serves at `path` (what follows `api/`, no slashes around it)."""
    served = {method for op in OPERATIONS if op.path_pattern.fullmatch(path) for method in op.methods}
    return sorted(served)


def api_route(
    bp: func.Blueprint,
    route: str,
    *,
    methods: Sequence[str],
    summary: str,
    tag: str,
    body: str | None = None,
    responses: Mapping[int, str | None] | None = None,
    query: str | None = None,
    headers: Sequence[Header] = (),
    anonymous: bool = False,
    body_required: bool = True,
    dependencies: bool = True,
    api_key: bool = False,
) -> Callable[[Handler], Any]:
    """Register `handler` as an HTTP function on `bp` (errors mapped by `http_endpoint`) and document it.

    `responses` names what the handler itself answers; the document adds what every such route may answer
    (`shared.api.openapi.common_responses`). `api_key`: the route takes `X-API-KEY` (`shared.api.keys`) instead of a
    function key."""

    def decorate(handler: Handler) -> Any:
        OPERATIONS.append(
            Operation(
                route=route,
                methods=tuple(methods),
                name=handler.__name__,
                summary=summary,
                tag=tag,
                anonymous=anonymous,
                body=body,
                responses=dict(responses or {200: None}),
                query=query,
                headers=tuple(headers),
                body_required=body_required,
                dependencies=dependencies,
                api_key=api_key,
            )
        )
        level = func.AuthLevel.ANONYMOUS if anonymous or api_key else func.AuthLevel.FUNCTION
        endpoint = http_endpoint(_keyed(handler) if api_key else handler)
        return bp.route(route=route, methods=list(methods), auth_level=level)(endpoint)

    return decorate


def _keyed(handler: Handler) -> Any:
    """`handler` behind the `X-API-KEY` check (sync or async, like the handler)."""
    with serial_imports:
        from shared.api.keys import require_api_key

    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def checked_async(req: func.HttpRequest) -> func.HttpResponse:
            require_api_key(req)
            return await handler(req)  # type: ignore[no-any-return]

        return checked_async

    @functools.wraps(handler)
    def checked(req: func.HttpRequest) -> func.HttpResponse:
        require_api_key(req)
        return handler(req)

    return checked
