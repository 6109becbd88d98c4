"""The GHL endpoints the sandbox serves, with the Version header and OAuth scope each one requires."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import bad_request

CALENDARS_VERSION = "2021-04-15"
CONTACTS_VERSION = "2021-07-28"  # also Locations

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # exactly as in the OpenAPI file
    handler: Handler
    version: str | None = None  # None: no Version header (OAuth token endpoint, consent page)
    scope: str | None = None  # None: no bearer token

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "DELETE", "PATCH")

    def routes(self) -> list[Route]:
        """The spec path, plus its twin without the trailing slash, which GHL answers too."""
        paths = [self.path]
        if self.path.endswith("/") and len(self.path) > 1:
            paths.append(self.path.rstrip("/"))
        return [Route(p, self.handler, methods=[self.method], name=self.key) for p in paths]


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        raise bad_request("Unexpected token in JSON body") from None
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object")
    return data
