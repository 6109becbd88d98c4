"""Every failure of the Odoo client becomes a status an API caller can act on (never a 500), with a code in English
and a Spanish message that carries nothing of Odoo's own text (which may quote personal data)."""

from __future__ import annotations

import pytest

from shared.odoo.errors import (
    OdooAccessDenied,
    OdooAuthFailed,
    OdooConflict,
    OdooDatabaseMissing,
    OdooError,
    OdooMissingRecord,
    OdooOutcomeUnknown,
    OdooRateLimited,
    OdooUnavailable,
    OdooValidationError,
)
from shared.services.miasalud.odoo_errors import api_error_from_odoo

SECRET = "ana@example.com +525512345678"  # what Odoo's message may quote


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OdooMissingRecord("x", model="res.partner", ids=[7], odoo_message=SECRET), 404, "odoo_record_not_found"),
        (OdooValidationError("x", model="res.partner", odoo_message=SECRET), 422, "odoo_rejected"),
        (
            OdooValidationError("x", model="res.partner", odoo_message="Invalid field 'x_manychat_id' on model"),
            502,
            "odoo_field_missing",
        ),
        (OdooAuthFailed("x", odoo_message=SECRET), 502, "odoo_auth_failed"),
        (OdooDatabaseMissing("x"), 502, "odoo_database_not_found"),
        (OdooAccessDenied("x", model="res.partner", method="write", odoo_message=SECRET), 502, "odoo_access_denied"),
        (OdooConflict("x", odoo_message=SECRET), 503, "odoo_conflict"),
        (OdooUnavailable("x", odoo_message=SECRET), 503, "odoo_unavailable"),
        (OdooRateLimited(2.2), 503, "odoo_rate_limited"),
        (OdooOutcomeUnknown("x", model="res.partner", method="create"), 504, "odoo_outcome_unknown"),
        (OdooError("x", odoo_message=SECRET), 502, "odoo_error"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_odoo_failure_answers_its_status_and_code(error: OdooError, status: int, code: str) -> None:
    answer = api_error_from_odoo(error)
    assert (answer.status, answer.code) == (status, code)
    assert answer.message and SECRET not in answer.message


def test_a_retryable_failure_says_when_to_come_back() -> None:
    assert api_error_from_odoo(OdooRateLimited(2.2)).headers == {"Retry-After": "3"}
    assert api_error_from_odoo(OdooUnavailable("x")).headers["Retry-After"] == "5"
    assert api_error_from_odoo(OdooOutcomeUnknown("x")).headers == {}  # not a retry: look first
