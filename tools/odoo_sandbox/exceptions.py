"""Odoo's errors as the sandbox raises them: the exception's qualified name, message and arguments, and the HTTP
status JSON-2 answers it with, as odoo/http.py `serialize_exception` and the JSON-2 dispatcher build them."""

from __future__ import annotations

from typing import Any

# psycopg2's message, trailing newline included, as Odoo passes it on once its own retries are spent.
CONCURRENT_UPDATE = "could not serialize access due to concurrent update\n"


class OdooFault(Exception):
    """UserError and its subclasses answer JSON-2 with their `http_status`, werkzeug's HTTP exceptions with their
    code (arguments `[description, code]`), anything else (ValueError, psycopg2's errors) with 500."""

    def __init__(
        self,
        name: str,
        message: str,
        *,
        status: int = 500,
        arguments: list[Any] | None = None,
        headers: dict[str, str] | None = None,
        traceback: bool = True,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = status
        self.arguments = arguments if arguments is not None else [message]
        self.headers = headers or {}
        self.traceback = traceback

    @property
    def is_http_exception(self) -> bool:
        return self.name.startswith("werkzeug.exceptions.")

    def serialized(self) -> dict[str, Any]:
        """`serialize_exception`: the JSON-2 error body and the JSON-RPC error's `data`."""
        shown = self.name.removeprefix("builtins.")
        last_line = f"{shown}: {self.message}" if self.message else shown
        debug = f"Traceback (most recent call last):\n  (Odoo sandbox)\n{last_line}\n" if self.traceback else last_line
        return {
            "name": self.name,
            "message": self.message,
            "arguments": list(self.arguments),
            "context": {},
            "debug": debug,
        }


def user_error(message: str) -> OdooFault:
    return OdooFault("odoo.exceptions.UserError", message, status=422)


def access_denied(message: str = "Access Denied") -> OdooFault:
    # AccessDenied suppresses its traceback (odoo/exceptions.py): no frames in `debug`.
    return OdooFault("odoo.exceptions.AccessDenied", message, status=403, traceback=False)


def access_error(message: str) -> OdooFault:
    return OdooFault("odoo.exceptions.AccessError", message, status=403)


def missing_error(message: str) -> OdooFault:
    return OdooFault("odoo.exceptions.MissingError", message, status=404)


def validation_error(message: str) -> OdooFault:
    return OdooFault("odoo.exceptions.ValidationError", message, status=422)


def builtin_error(kind: str, message: str) -> OdooFault:
    """A Python exception reaching the RPC layer (an unknown field is a ValueError): 500 in JSON-2."""
    return OdooFault(f"builtins.{kind}", message)


def serialization_failure() -> OdooFault:
    return OdooFault("psycopg2.errors.SerializationFailure", CONCURRENT_UPDATE)


def database_missing(db: str) -> OdooFault:
    socket = "/var/run/postgresql/.s.PGSQL.5432"
    message = f'connection to server on socket "{socket}" failed: FATAL:  database "{db}" does not exist\n'
    return OdooFault("psycopg2.OperationalError", message)


def http_exception(class_name: str, code: int, description: str, headers: dict[str, str] | None = None) -> OdooFault:
    return OdooFault(
        f"werkzeug.exceptions.{class_name}", description, status=code, arguments=[description, code], headers=headers
    )


def unauthorized() -> OdooFault:
    """`ir.http._auth_method_bearer` on a missing, unknown or expired key (Odoo's docs show this body)."""
    return http_exception("Unauthorized", 401, "Invalid apikey", {"WWW-Authenticate": "bearer"})


def not_found(description: str) -> OdooFault:
    return http_exception("NotFound", 404, description)


def unprocessable(description: str) -> OdooFault:
    return http_exception("UnprocessableEntity", 422, description)


def bad_request(description: str) -> OdooFault:
    return http_exception("BadRequest", 400, description)
