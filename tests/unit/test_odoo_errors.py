"""The Odoo client's errors by Odoo's exception name (never by HTTP status), and how a worker retries each."""

from __future__ import annotations

import pytest

from shared.odoo.errors import (
    OdooAccessDenied,
    OdooAuthFailed,
    OdooConflict,
    OdooDatabaseMissing,
    OdooError,
    OdooMissingRecord,
    OdooRateLimited,
    OdooUnavailable,
    OdooValidationError,
    error_for,
)
from shared.worker import later_for
from sync_core.retry import ErrorKind


@pytest.mark.parametrize(
    ("name", "kind", "retry"),
    [
        ("odoo.exceptions.AccessDenied", OdooAuthFailed, None),
        ("werkzeug.exceptions.Unauthorized", OdooAuthFailed, None),
        ("odoo.exceptions.AccessError", OdooAccessDenied, None),
        ("odoo.exceptions.ValidationError", OdooValidationError, None),
        ("odoo.exceptions.UserError", OdooValidationError, None),
        ("builtins.ValueError", OdooValidationError, None),
        ("odoo.exceptions.MissingError", OdooMissingRecord, None),
        ("psycopg2.errors.SerializationFailure", OdooConflict, ErrorKind.server_error),
        ("psycopg.errors.DeadlockDetected", OdooConflict, ErrorKind.server_error),
        ("odoo.exceptions.ConcurrencyError", OdooConflict, ErrorKind.server_error),
        ("psycopg2.OperationalError", OdooUnavailable, ErrorKind.server_error),
        ("builtins.RuntimeError", OdooError, ErrorKind.server_error),
    ],
)
def test_odoos_exception_name_decides_the_error_and_its_retry(
    name: str, kind: type[OdooError], retry: ErrorKind | None
) -> None:
    error = error_for(name, "something", model="crm.lead", method="write", ids=[7], status=500)
    assert type(error) is kind
    assert error.retry == retry
    assert (error.model, error.method, error.ids, error.odoo_name) == ("crm.lead", "write", (7,), name)


def test_a_missing_database_is_told_apart_from_other_database_errors() -> None:
    message = 'connection to server failed: FATAL:  database "otra" does not exist\n'
    assert isinstance(error_for("psycopg2.OperationalError", message), OdooDatabaseMissing)


def test_the_reason_for_staff_never_quotes_odoos_message() -> None:
    error = error_for(
        "odoo.exceptions.ValidationError", "Email ana@example.mx is invalid", model="res.partner", method="create"
    )
    assert "ana@example.mx" not in error.reason + str(error)
    assert error.odoo_message == "Email ana@example.mx is invalid"


def test_an_unknown_field_is_named_in_the_reason() -> None:
    error = error_for(
        "builtins.ValueError", "Invalid field 'mobile' on model 'res.partner'", model="res.partner", method="write"
    )
    assert isinstance(error, OdooValidationError) and error.unknown_field == "mobile"
    assert "«mobile»" in error.reason


def test_a_worker_retries_an_odoo_error_by_its_kind() -> None:
    later = later_for(OdooConflict("crm.lead.write: conflict", model="crm.lead", method="write"))
    assert (later.kind, later.note) == (ErrorKind.server_error, "Odoo conflict")
    waiting = later_for(OdooRateLimited(3.5))
    assert (waiting.kind, waiting.retry_after) == (ErrorKind.rate_limited, 3.5)
    with pytest.raises(ValueError, match="cannot be retried"):
        later_for(OdooAuthFailed("bad key"))
