"""GHL's error bodies (common-schemas.json) raised by handlers and turned into responses in one place."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

INVALID_TOKEN = "Invalid token: access token is invalid"
# Not in the docs: what GHL is widely reported to answer for an expired JWT (same 401 shape).
EXPIRED_TOKEN = "Invalid JWT"
SCOPE_DENIED = "The token is not authorized for this scope."
WRONG_LOCATION = "The token does not have access to this location."


class GhlError(Exception):
    """An error answered with GHL's JSON body for its status code."""

    def __init__(self, status: int, message: str | list[str], **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"statusCode": self.status, "message": self.message}
        error = _ERROR_NAMES.get(self.status)
        if error:
            body["error"] = error
        body.update(self.extra)
        return body


# 403 is absent on purpose: GHL's location-mismatch answer carries no "error" field.
_ERROR_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def bad_request(message: str, **extra: Any) -> GhlError:
    return GhlError(400, message, **extra)


def unprocessable(*messages: str) -> GhlError:
    return GhlError(422, list(messages))


def unauthorized(message: str = INVALID_TOKEN) -> GhlError:
    return GhlError(401, message)


def forbidden_location() -> GhlError:
    return GhlError(403, WRONG_LOCATION)


def trace_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("trace_id", ""))


def error_response(error: GhlError, trace: str) -> JSONResponse:
    body = error.body()
    if trace:
        body["traceId"] = trace
    return JSONResponse(body, status_code=error.status)


async def handle_ghl_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GhlError)
    return error_response(exc, trace_id(request))
