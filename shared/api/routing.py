"""Declare an HTTP function once: the route Azure serves and the operation the OpenAPI document describes.

Model names are strings resolved in `shared.api.schemas` only when the document is built, so declaring a
route never imports pydantic (cold start).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from shared.http import http_endpoint

Handler = Callable[[func.HttpRequest], func.HttpResponse]


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
    headers: Sequence[tuple[str, str]] = ()


OPERATIONS: list[Operation] = []


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
    headers: Sequence[tuple[str, str]] = (),
    anonymous: bool = False,
) -> Callable[[Handler], Any]:
    """Register `handler` as an HTTP function on `bp` (errors mapped by `http_endpoint`) and document it."""

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
            )
        )
        level = func.AuthLevel.ANONYMOUS if anonymous else func.AuthLevel.FUNCTION
        return bp.route(route=route, methods=list(methods), auth_level=level)(http_endpoint(handler))

    return decorate
