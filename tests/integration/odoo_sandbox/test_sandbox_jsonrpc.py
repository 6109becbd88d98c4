"""JSON-RPC (/jsonrpc): Odoo's envelopes for the common and object services, errors as HTTP 200 with data.name."""

from __future__ import annotations

from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, DEMO_DB, SandboxServer

from .conftest import Odoo, error_data


def test_version_answers_the_rpc_version_of_odoo_19(odoo: Odoo) -> None:
    assert odoo.rpc("common", "version")["result"] == {
        "server_version": "19.0",
        "server_version_info": [19, 0, 0, "final", 0, ""],
        "server_serie": "19.0",
        "protocol_version": 1,
    }


def test_authenticate_with_the_api_key_answers_the_uid(odoo: Odoo) -> None:
    assert odoo.rpc("common", "authenticate", DEMO_DB, DEMO_API_LOGIN, DEMO_API_KEY, {})["result"] == 6


def test_authenticate_with_a_wrong_key_answers_false_not_an_error(odoo: Odoo) -> None:
    assert odoo.rpc("common", "authenticate", DEMO_DB, DEMO_API_LOGIN, "0" * 40, {}) == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": False,
    }


def test_authenticate_on_an_unknown_database_is_psycopg2s_operational_error(odoo: Odoo) -> None:
    data = error_data(odoo.rpc("common", "authenticate", "otra", DEMO_API_LOGIN, DEMO_API_KEY, {}))
    assert data["name"] == "psycopg2.OperationalError"
    assert 'database "otra" does not exist' in data["message"]


def test_execute_kw_with_a_wrong_key_is_access_denied_without_traceback(odoo: Odoo) -> None:
    data = error_data(odoo.execute("res.partner", "search_read", [[]], {"fields": ["name"]}, key="f" * 40, uid=6))
    assert data == {
        "name": "odoo.exceptions.AccessDenied",
        "message": "Access Denied",
        "arguments": ["Access Denied"],
        "context": {},
        "debug": "odoo.exceptions.AccessDenied: Access Denied",
    }


def test_create_with_one_dict_answers_its_id_and_with_a_list_their_ids(odoo: Odoo) -> None:
    one = odoo.execute("res.partner", "create", [{"name": "Ana García", "phone": "+525512345678"}])["result"]
    many = odoo.execute("res.partner", "create", [[{"name": "Luis"}, {"name": "Marta"}]])["result"]
    assert isinstance(one, int)
    assert many == [one + 1, one + 2]


def test_a_lead_created_without_salesperson_belongs_to_the_api_user_and_gets_the_first_stage(odoo: Odoo) -> None:
    lead_id = odoo.execute("crm.lead", "create", [{"name": "Ana", "type": "opportunity", "x_campaign_id": 85}])[
        "result"
    ]
    (lead,) = odoo.execute("crm.lead", "read", [[lead_id], ["user_id", "stage_id", "type", "x_campaign_id"]])["result"]
    assert lead == {
        "id": lead_id,
        "user_id": [6, "Integración ManyChat"],
        "stage_id": [1, "Nuevo"],
        "type": "opportunity",
        "x_campaign_id": 85,
    }


def test_a_lead_linked_to_a_partner_takes_its_contact_details(odoo: Odoo) -> None:
    partner_id = odoo.execute(
        "res.partner", "create", [{"name": "Ana", "phone": "+525512345678", "email": "ana@x.mx"}]
    )["result"]
    lead_id = odoo.execute(
        "crm.lead", "create", [{"name": "Ana", "type": "lead", "partner_id": partner_id, "user_id": False}]
    )["result"]
    (lead,) = odoo.execute(
        "crm.lead", "read", [[lead_id]], {"fields": ["partner_id", "contact_name", "phone", "email_from", "user_id"]}
    )["result"]
    assert lead["partner_id"] == [partner_id, "Ana"]
    assert (lead["contact_name"], lead["phone"], lead["email_from"], lead["user_id"]) == (
        "Ana",
        "+525512345678",
        "ana@x.mx",
        False,
    )


def test_writing_the_mobile_field_fails_as_an_unknown_field_in_odoo_19(odoo: Odoo, sandbox: SandboxServer) -> None:
    partner_id = odoo.execute("res.partner", "create", [{"name": "Ana"}])["result"]
    data = error_data(odoo.execute("res.partner", "write", [[partner_id], {"mobile": "+525512345678"}]))
    assert data["name"] == "builtins.ValueError"
    assert data["message"] == "Invalid field 'mobile' on model 'res.partner'"
    created = error_data(odoo.execute("res.partner", "create", [{"name": "Luis", "mobile": "+52"}]))
    assert created["message"] == "Invalid field 'mobile' in 'res.partner'"
    assert [p["name"] for p in sandbox.admin.records("res.partner")].count("Luis") == 0


def test_writing_a_deleted_record_is_a_missing_error(odoo: Odoo) -> None:
    data = error_data(odoo.execute("res.partner", "write", [[999], {"name": "X"}]))
    assert data["name"] == "odoo.exceptions.MissingError"
    assert data["message"].startswith("Record does not exist or has been deleted.")


def test_an_unknown_model_and_a_private_method_are_refused(odoo: Odoo) -> None:
    assert error_data(odoo.execute("res.nothing", "search", [[]]))["name"] == "odoo.exceptions.UserError"
    assert error_data(odoo.execute("res.partner", "_secret", [[]]))["name"] == "odoo.exceptions.AccessError"
    assert error_data(odoo.execute("res.partner", "frobnicate", [[]]))["name"] == "builtins.AttributeError"


def test_search_read_renders_many2one_as_id_and_name_and_honours_limit_offset_order(odoo: Odoo) -> None:
    stages = odoo.execute(
        "crm.stage",
        "search_read",
        [[]],
        {"fields": ["name", "sequence"], "order": "sequence desc", "limit": 2, "offset": 1},
    )["result"]
    assert [s["name"] for s in stages] == ["Propuesta", "Calificado"]
    users = odoo.execute("res.users", "search_read", [[["login", "=", DEMO_API_LOGIN]]], {"fields": ["partner_id"]})[
        "result"
    ]
    assert users == [{"id": 6, "partner_id": [7, "Integración ManyChat"]}]


def test_the_recording_keeps_the_call_but_never_the_key(odoo: Odoo, sandbox: SandboxServer) -> None:
    odoo.execute("res.partner", "search_count", [[["name", "ilike", "ana"]]])
    authenticate, count = sandbox.admin.calls()
    assert (authenticate["method"], authenticate["args"], authenticate["user"]) == (
        "authenticate",
        [DEMO_DB, DEMO_API_LOGIN],
        DEMO_API_LOGIN,
    )
    assert count["protocol"] == "jsonrpc" and count["model"] == "res.partner" and count["method"] == "search_count"
    assert count["args"] == [[["name", "ilike", "ana"]]] and count["outcome"] == "ok"
    assert DEMO_API_KEY not in str(sandbox.admin.calls())
