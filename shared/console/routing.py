"""Declare a console page or action once: anonymous for the host, its errors rendered as a page.

Kept light (no templates, no settings) so that declaring the routes costs the app's cold start nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import azure.functions as func

from shared.http import ApiError, http_endpoint
from shared.lazy import serial_imports

Handler = Callable[[func.HttpRequest], func.HttpResponse]
# Every console route: anonymous for the host because the console checks the signed-in principal itself.
CONSOLE_ROUTES: list[str] = []


def console_route(bp: func.Blueprint, route: str, *, methods: Sequence[str]) -> Callable[[Handler], Any]:
    """Register `handler` on `bp`. No function key ever reaches a browser: in Azure, App Service Authentication
    signs staff in and the console reads who they are (`shared.console.auth`)."""

    def decorate(handler: Handler) -> Any:
        CONSOLE_ROUTES.append(route)
        endpoint = http_endpoint(handler, render=_error_page)
        return bp.route(route=route, methods=list(methods), auth_level=func.AuthLevel.ANONYMOUS)(endpoint)

    return decorate


def _error_page(error: ApiError) -> func.HttpResponse:
    with serial_imports:
        from shared.console.web import error_page

    return error_page(error)
