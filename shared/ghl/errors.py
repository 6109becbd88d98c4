"""Errors of the GHL client, by what the caller can do about them (retry later, re-install, fix the input...)."""

from __future__ import annotations

from sync_core.retry import ErrorKind


class GhlError(Exception):
    """A GHL call that did not give the expected answer; `status` and GHL's `trace_id` when there was a response."""

    code = "ghl_error"
    retry: ErrorKind | None = ErrorKind.server_error
    """How a worker retries after it (`shared.worker.Later`); None: retrying cannot help."""

    def __init__(self, message: str, *, status: int | None = None, trace_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.trace_id = trace_id


class RateLimited(GhlError):
    """GHL (or our own budget, before calling) says wait `retry_after` seconds; re-enqueue with that delay."""

    code = "rate_limited"
    retry = ErrorKind.rate_limited

    def __init__(
        self, retry_after: float, message: str = "", *, status: int | None = None, trace_id: str | None = None
    ) -> None:
        super().__init__(message or f"rate limited, retry after {retry_after:.1f}s", status=status, trace_id=trace_id)
        self.retry_after = retry_after


class AuthExpired(GhlError):
    """No valid token for the location even after a refresh: the app must be re-installed (or the token fixed)."""

    code = "auth_expired"
    retry = ErrorKind.auth_expired


class TokenRejected(AuthExpired):
    """GHL's token endpoint refused an authorization code or refresh token for good (used, expired, revoked)."""

    code = "token_rejected"


class Forbidden(GhlError):
    """The token is valid but may not touch this location or resource (wrong location, missing scope)."""

    code = "forbidden"
    retry = ErrorKind.auth_expired


class NotFound(GhlError):
    """The calendar, event, contact or location does not exist (GHL often answers 400 for unknown ids)."""

    code = "not_found"
    retry = None


class Invalid(GhlError):
    """GHL rejected the request's content (400/422); `details` holds its messages."""

    code = "invalid"
    retry = None

    def __init__(
        self, details: list[str], message: str = "", *, status: int | None = None, trace_id: str | None = None
    ) -> None:
        super().__init__(message or "; ".join(details) or "invalid request", status=status, trace_id=trace_id)
        self.details = details


class Unavailable(GhlError):
    """GHL could not be reached or failed, and nothing was changed by this call: safe to retry later."""

    code = "unavailable"
    retry = ErrorKind.connection


class OutcomeUnknown(GhlError):
    """A write that may or may not have been applied (timeout, reset or 5xx after it was sent): look before retrying."""

    code = "outcome_unknown"
    retry = ErrorKind.outcome_unknown
