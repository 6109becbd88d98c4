"""What the front desk gets when the database is down: a 503 to retry, not a 500 incident."""

from __future__ import annotations

import json

import azure.functions as func
import pytest
import sqlalchemy as sa

from shared.http import http_endpoint


def _call(error: Exception) -> func.HttpResponse:
    def citas_create(req: func.HttpRequest) -> func.HttpResponse:
        raise error

    request = func.HttpRequest("POST", "http://localhost/api/ghl/citas", body=b"{}", headers={})
    return http_endpoint(citas_create)(request)


@pytest.mark.parametrize(
    "error",
    [
        sa.exc.OperationalError("INSERT INTO appointments", {}, ConnectionRefusedError("connection refused")),
        sa.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        sa.exc.TimeoutError("QueuePool limit of size 16 overflow 0 reached"),
    ],
)
def test_an_unreachable_database_is_503_with_retry_after_and_a_spanish_message(error: Exception) -> None:
    response = _call(error)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    body = json.loads(response.get_body())
    assert body["error"]["code"] == "database_unavailable"
    assert "no se guardó nada" in body["error"]["message"]


def test_a_bad_statement_is_still_an_incident_500() -> None:
    response = _call(sa.exc.ProgrammingError("SELECT nope", {}, Exception("no such column")))
    assert response.status_code == 500
    assert json.loads(response.get_body())["error"]["code"] == "internal_error"
