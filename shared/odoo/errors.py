"""Errors of the Odoo client, decided by the name of Odoo's exception (never by the HTTP status alone), each with
how a worker retries it (`retry`, as GhlError), an English snake_case `code`, and a Spanish `reason` for staff
that carries no secret and no personal data (Odoo's own message, which may quote field values, stays in
`odoo_message` for logs)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sync_core.retry import ErrorKind


class OdooError(Exception):
    """An Odoo call that did not give the expected answer. Odoo rolls back every call that raises, so an
    unrecognised server error changed nothing: a bounded retry later is safe."""

    code = "odoo_error"
    retry: ErrorKind | None = ErrorKind.server_error
    """How a worker retries after it (`shared.worker.later_for`); None: retrying cannot help."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        method: str | None = None,
        ids: Sequence[int] = (),
        odoo_name: str | None = None,
        odoo_message: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.method = method
        self.ids = tuple(ids)
        self.odoo_name = odoo_name
        self.odoo_message = odoo_message
        self.status = status

    @property
    def where(self) -> str:
        """`crm.lead.create`, or the name of the service call."""
        return ".".join(part for part in (self.model, self.method) if part) or "Odoo"

    @property
    def reason(self) -> str:
        return f"Odoo respondió un error inesperado en {self.where}; se reintentará más tarde."


class OdooAuthFailed(OdooError):
    """Odoo refuses the integration's credentials (wrong, revoked or expired API key; unknown login): nothing is
    retried until someone fixes them, so the caller pauses its pushes."""

    code = "auth_failed"
    retry = None

    @property
    def reason(self) -> str:
        return (
            "Odoo rechazó las credenciales de la integración (clave API inválida, revocada o vencida: las claves "
            "de Odoo duran como máximo 3 meses). Genere una clave nueva para el usuario de la integración y "
            "actualice ODOO_API_KEY; los envíos a Odoo quedan en pausa hasta entonces."
        )


class OdooDatabaseMissing(OdooAuthFailed):
    """The configured database (or the API's path) does not exist on that server: a setting to fix."""

    code = "database_not_found"

    @property
    def reason(self) -> str:
        return (
            "Odoo no encuentra la base de datos configurada (o la ruta de su API): revise ODOO_URL y ODOO_DB; "
            "los envíos a Odoo quedan en pausa hasta entonces."
        )


class OdooAccessDenied(OdooError):
    """AccessError: the user may not do this on this model or record; its rights must change, not the data."""

    code = "access_denied"
    retry = None

    @property
    def reason(self) -> str:
        return (
            f"El usuario de la integración no tiene permiso en Odoo para {self.where}: pida al administrador de "
            "Odoo que le dé los permisos necesarios."
        )


_UNKNOWN_FIELD = re.compile(r"Invalid field '([^']+)'")


class OdooValidationError(OdooError):
    """Odoo refused the data or the call itself (ValidationError, UserError, an unknown field, arguments the method
    does not take, a model that is not installed): sending the same again cannot work."""

    code = "rejected"
    retry = None

    @property
    def unknown_field(self) -> str | None:
        found = _UNKNOWN_FIELD.search(self.odoo_message or "")
        return found.group(1) if found else None

    @property
    def reason(self) -> str:
        if self.unknown_field:
            return f"Odoo no tiene el campo «{self.unknown_field}» en {self.model}: revise la configuración de campos."
        return f"Odoo rechazó los datos enviados a {self.where}: revise el registro y vuelva a intentarlo."


class OdooMissingRecord(OdooError):
    """MissingError: the record was deleted in Odoo (or its user cannot see it); permanent for that id."""

    code = "missing_record"
    retry = None

    @property
    def reason(self) -> str:
        ids = ", ".join(map(str, self.ids)) or "indicado"
        return f"El registro {self.model} {ids} ya no existe en Odoo (fue borrado o el usuario no puede verlo)."


class OdooConflict(OdooError):
    """A serialization failure (another transaction wrote the same rows): Odoo rolled back, so the client already
    retried it, reads and writes alike; still failing after that, a worker retries it later."""

    code = "conflict"
    retry = ErrorKind.server_error

    def __init__(self, message: str, *, attempts: int = 1, **details: Any) -> None:
        super().__init__(message, **details)
        self.attempts = attempts

    @property
    def reason(self) -> str:
        return (
            f"Odoo rechazó {self.where} por una escritura concurrente en el mismo registro, {self.attempts} veces "
            "seguidas; se reintentará más tarde."
        )


class OdooUnavailable(OdooError):
    """Odoo could not be reached or failed, and nothing was changed by this call (not sent, refused before any
    work, a read, or an error Odoo rolled back): safe to retry."""

    code = "unavailable"
    retry = ErrorKind.connection

    def __init__(self, message: str, *, retry: ErrorKind = ErrorKind.connection, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry = retry

    @property
    def reason(self) -> str:
        return "No se pudo contactar con Odoo (sin conexión, sin respuesta o error del servidor); se reintentará."


class OdooOutcomeUnknown(OdooError):
    """A create, write or unlink was sent and its answer was lost (timeout, dropped connection, a gateway's 5xx):
    it may have been applied. Never retried blindly: the caller looks the record up (by x_manychat_id) first."""

    code = "outcome_unknown"
    retry = ErrorKind.outcome_unknown

    @property
    def reason(self) -> str:
        return (
            f"Se envió {self.where} a Odoo pero su respuesta se perdió; antes de reintentar se comprueba si el "
            "registro quedó guardado, para no duplicarlo."
        )


class OdooRateLimited(OdooError):
    """Our own pacing (ODOO_RATE_PER_S, shared by every instance) or the server says: wait `retry_after` seconds."""

    code = "rate_limited"
    retry = ErrorKind.rate_limited

    def __init__(self, retry_after: float, message: str = "", **details: Any) -> None:
        super().__init__(message or f"rate limited, retry after {retry_after:.1f}s", **details)
        self.retry_after = retry_after

    @property
    def reason(self) -> str:
        wait = f"{self.retry_after:.0f} s"
        return f"Se alcanzó el ritmo máximo de llamadas a Odoo (ODOO_RATE_PER_S); se reintentará en {wait}."


# Odoo's exception names (`data.name` in JSON-RPC, `name` in JSON-2) by what the caller can do about them.
_BY_NAME: dict[str, type[OdooError]] = {
    "odoo.exceptions.AccessDenied": OdooAuthFailed,
    "werkzeug.exceptions.Unauthorized": OdooAuthFailed,
    "odoo.http.SessionExpiredException": OdooAuthFailed,
    "odoo.exceptions.AccessError": OdooAccessDenied,
    "werkzeug.exceptions.Forbidden": OdooAccessDenied,
    "odoo.exceptions.MissingError": OdooMissingRecord,
    "odoo.exceptions.ValidationError": OdooValidationError,
    "odoo.exceptions.UserError": OdooValidationError,
    "odoo.exceptions.RedirectWarning": OdooValidationError,
    "builtins.ValueError": OdooValidationError,  # an unknown field, a wrong selection value (JSON-2: a 500)
    "builtins.TypeError": OdooValidationError,  # arguments the method does not take
    "builtins.AttributeError": OdooValidationError,  # a method the model does not have
    "werkzeug.exceptions.BadRequest": OdooValidationError,
    "werkzeug.exceptions.NotFound": OdooValidationError,  # a model or method that is not installed
    "werkzeug.exceptions.UnprocessableEntity": OdooValidationError,
    "odoo.exceptions.ConcurrencyError": OdooConflict,
    "odoo.exceptions.LockError": OdooConflict,
}
# PostgreSQL's concurrency errors as psycopg2 (Odoo 19) or psycopg 3 name them, once Odoo's own retries are spent.
_CONFLICTS = ("SerializationFailure", "DeadlockDetected", "LockNotAvailable")


def error_for(
    name: str,
    message: str,
    *,
    model: str | None = None,
    method: str | None = None,
    ids: Sequence[int] = (),
    status: int | None = None,
) -> OdooError:
    """The client's error for Odoo's exception `name` (an unknown name: a server error Odoo rolled back)."""
    details: dict[str, Any] = {
        "model": model, "method": method, "ids": ids, "status": status, "odoo_name": name, "odoo_message": message,
    }  # fmt: skip
    text = f"{'.'.join(p for p in (model, method) if p) or 'Odoo'}: {name}"
    if name.startswith(("psycopg2.", "psycopg.")):
        if name.rsplit(".", 1)[-1] in _CONFLICTS:
            return OdooConflict(text, **details)
        if "database" in message and "does not exist" in message:
            return OdooDatabaseMissing(text, **details)
        return OdooUnavailable(text, retry=ErrorKind.server_error, **details)
    error = _BY_NAME.get(name, OdooError)(text, **details)
    if isinstance(error, OdooValidationError) and error.unknown_field:
        error.args = (f"{text} (unknown field {error.unknown_field!r})",)
    return error
