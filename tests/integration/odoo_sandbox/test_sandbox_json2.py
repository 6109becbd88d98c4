"""JSON-2 (/json/2/<model>/<method>, Odoo 19): bearer key, named arguments, errors as 4xx/5xx {name, message, ...}."""

from __future__ import annotations

from typing import Any

import pytest

from tools.odoo_sandbox import SandboxServer

from .conftest import Odoo


def error(response: Any, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"name", "message", "arguments", "context", "debug"}
    assert body["name"] == name
    return body


def test_a_missing_or_unknown_key_is_401_invalid_apikey(odoo: Odoo) -> None:
    for key in (None, "0" * 40):
        response = odoo.json2("res.partner", "search_read", key=key, domain=[], fields=["name"])
        body = error(response, 401, "werkzeug.exceptions.Unauthorized")
        assert (body["message"], body["arguments"]) == ("Invalid apikey", ["Invalid apikey", 401])
        assert response.headers["www-authenticate"] == "bearer"


def test_create_write_read_unlink_with_named_arguments(odoo: Odoo) -> None:
    created = odoo.json2("res.partner", "create", vals_list=[{"name": "Ana", "x_manychat_id": "MC99999"}])
    assert created.status_code == 200
    (partner_id,) = created.json()
    assert odoo.json2("res.partner", "write", ids=[partner_id], vals={"phone": "+525512345678"}).json() is True
    read = odoo.json2(
        "res.partner", "read", ids=[partner_id], fields=["name", "phone", "x_manychat_id", "email"]
    ).json()
    assert read == [
        {"id": partner_id, "name": "Ana", "phone": "+525512345678", "x_manychat_id": "MC99999", "email": False}
    ]
    assert odoo.json2("res.partner", "unlink", ids=[partner_id]).json() is True
    error(odoo.json2("res.partner", "read", ids=[partner_id], fields=["name"]), 404, "odoo.exceptions.MissingError")


@pytest.mark.parametrize(
    ("domain", "names"),
    [
        ([["x_manychat_id", "=", "MC1"]], ["Ana"]),
        ([["x_manychat_id", "in", ["MC1", "MC2"]]], ["Ana", "Beto"]),
        ([["x_manychat_id", "!=", False]], ["Ana", "Beto"]),
        ([["name", "ilike", "an"], ["x_manychat_id", "!=", False]], ["Ana"]),
        (["|", ["x_manychat_id", "=", "MC2"], ["name", "=", "Carla"]], ["Beto", "Carla"]),
        (["&", ["phone", "=", False], "!", ["x_manychat_id", "=", False]], ["Beto"]),
    ],
)
def test_domains_with_the_operators_the_client_uses(
    odoo: Odoo, sandbox: SandboxServer, domain: list[Any], names: list[str]
) -> None:
    sandbox.admin.create(
        "res.partner",
        {"name": "Ana", "x_manychat_id": "MC1", "phone": "+52551"},
        {"name": "Beto", "x_manychat_id": "MC2"},
        {"name": "Carla"},
    )
    found = odoo.json2("res.partner", "search_read", domain=domain, fields=["name"], order="name").json()
    assert [p["name"] for p in found] == names


def test_an_unknown_field_is_a_500_value_error(odoo: Odoo) -> None:
    body = error(
        odoo.json2("res.partner", "create", vals_list=[{"name": "Ana", "mobile": "+52"}]), 500, "builtins.ValueError"
    )
    assert body["message"] == "Invalid field 'mobile' in 'res.partner'"
    error(
        odoo.json2("res.partner", "search_read", domain=[["mobile", "=", "1"]], fields=["name"]),
        500,
        "builtins.ValueError",
    )


def test_arguments_that_do_not_fit_the_method_are_422(odoo: Odoo) -> None:
    error(odoo.json2("res.partner", "create", values={"name": "Ana"}), 422, "werkzeug.exceptions.UnprocessableEntity")
    body = error(
        odoo.json2("res.partner", "search", ids=[1], domain=[]), 422, "werkzeug.exceptions.UnprocessableEntity"
    )
    assert body["message"] == "cannot call res.partner.search with ids"


def test_an_unknown_model_or_method_is_404(odoo: Odoo) -> None:
    body = error(odoo.json2("res.nothing", "search", domain=[]), 404, "werkzeug.exceptions.NotFound")
    assert body["message"] == "the model 'res.nothing' does not exist"
    error(odoo.json2("res.partner", "frobnicate"), 404, "werkzeug.exceptions.NotFound")


def test_a_required_field_left_out_is_a_422_validation_error_and_nothing_is_created(
    odoo: Odoo, sandbox: SandboxServer
) -> None:
    before = len(sandbox.admin.records("crm.lead"))
    error(
        odoo.json2("crm.lead", "create", vals_list=[{"name": "Ana", "type": "lead"}, {"type": "lead"}]),
        422,
        "odoo.exceptions.ValidationError",
    )
    assert len(sandbox.admin.records("crm.lead")) == before  # the whole call was rolled back


def test_another_database_in_the_header_finds_no_route(odoo: Odoo) -> None:
    response = odoo.json2("res.partner", "search", db="otra", domain=[])
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_search_count_and_fields_get(odoo: Odoo) -> None:
    assert odoo.json2("crm.stage", "search_count", domain=[["is_won", "=", False]]).json() == 3
    fields = odoo.json2("crm.lead", "fields_get", attributes=["type", "relation"]).json()
    assert fields["x_campaign_id"] == {"type": "integer"}
    assert fields["stage_id"] == {"type": "many2one", "relation": "crm.stage"}
    assert "mobile" not in odoo.json2("res.partner", "fields_get", attributes=["type"]).json()


def test_version_over_http_needs_no_key(odoo: Odoo) -> None:
    assert odoo.http.get("/web/version").json() == {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}
