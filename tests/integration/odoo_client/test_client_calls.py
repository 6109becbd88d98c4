"""The client's interface against the sandbox, the same over JSON-RPC and JSON-2."""

from __future__ import annotations

import pytest

from shared.odoo.client import OdooClient
from shared.odoo.errors import OdooMissingRecord, OdooValidationError
from tools.odoo_sandbox import SandboxServer

from .conftest import MakeClient, orm_calls


def test_version_answers_the_server_version_in_both_protocols(client: OdooClient) -> None:
    version = client.version()
    assert version["server_version"] == "19.0"
    assert version["server_version_info"][:2] == [19, 0]


def test_a_partner_is_created_found_by_manychat_id_changed_and_removed(client: OdooClient) -> None:
    partner_id = client.create(
        "res.partner", {"name": "Ana García", "phone": "+525512345678", "x_manychat_id": "MC99999"}
    )
    client.write("res.partner", [partner_id], {"email": "ana@example.mx"})
    found = client.search_read("res.partner", [("x_manychat_id", "=", "MC99999")], ["name", "phone", "email"])
    assert found == [{"id": partner_id, "name": "Ana García", "phone": "+525512345678", "email": "ana@example.mx"}]
    assert client.search_count("res.partner", [("x_manychat_id", "in", ["MC99999", "MC1"])]) == 1
    client.unlink("res.partner", [partner_id])
    assert client.search_count("res.partner", [("x_manychat_id", "=", "MC99999")]) == 0


def test_a_lead_reads_back_its_many2one_values_as_id_and_name(client: OdooClient) -> None:
    partner_id = client.create("res.partner", {"name": "Ana", "x_manychat_id": "MC1"})
    (stage,) = client.search_read("crm.stage", [("name", "=", "Calificado")], ["id"])
    lead_id = client.create(
        "crm.lead",
        {"name": "Ana - Campaña 85", "type": "opportunity", "partner_id": partner_id, "stage_id": stage["id"],
         "x_manychat_id": "MC1", "x_campaign_id": 85},
    )  # fmt: skip
    (lead,) = client.search_read(
        "crm.lead", [("id", "=", lead_id)], ["partner_id", "stage_id", "user_id", "x_campaign_id"]
    )
    assert lead["partner_id"] == [partner_id, "Ana"]
    assert lead["stage_id"] == [stage["id"], "Calificado"]
    assert lead["user_id"][0] == 6  # not set: Odoo makes the API user the salesperson
    assert lead["x_campaign_id"] == 85


def test_search_read_pages_and_orders(client: OdooClient) -> None:
    stages = client.search_read("crm.stage", [], ["name"], order="sequence desc", limit=2, offset=1)
    assert [s["name"] for s in stages] == ["Propuesta", "Calificado"]


def test_fields_get_describes_the_custom_fields(client: OdooClient) -> None:
    fields = client.fields_get("crm.lead", ["type"])
    assert fields["x_manychat_id"] == {"type": "char"} and fields["x_campaign_id"] == {"type": "integer"}


def test_writing_mobile_is_a_permanent_validation_error_naming_the_field(client: OdooClient) -> None:
    partner_id = client.create("res.partner", {"name": "Ana"})
    with pytest.raises(OdooValidationError) as caught:
        client.write("res.partner", [partner_id], {"mobile": "+525512345678"})
    error = caught.value
    assert (error.retry, error.code, error.unknown_field) == (None, "rejected", "mobile")
    assert "mobile" in error.reason and "+52" not in error.reason


def test_a_deleted_record_is_missing_for_write_and_unlink(client: OdooClient) -> None:
    for call in (
        lambda: client.write("res.partner", [999], {"name": "X"}),
        lambda: client.unlink("res.partner", [999]),
    ):
        with pytest.raises(OdooMissingRecord) as caught:
            call()
        assert caught.value.retry is None and caught.value.ids == (999,)


def test_writing_or_removing_no_ids_calls_nothing(client: OdooClient, sandbox: SandboxServer) -> None:
    client.write("res.partner", [], {"name": "X"})
    client.unlink("res.partner", [])
    assert orm_calls(sandbox) == []


def test_jsonrpc_authenticates_once_for_many_calls(make_client: MakeClient, sandbox: SandboxServer) -> None:
    client = make_client("jsonrpc")
    for _ in range(3):
        client.search_count("crm.stage", [])
    assert [c["method"] for c in sandbox.admin.calls()] == [
        "authenticate",
        "search_count",
        "search_count",
        "search_count",
    ]


def test_json2_sends_named_arguments_with_no_authenticate(make_client: MakeClient, sandbox: SandboxServer) -> None:
    client = make_client("json2")
    partner_id = client.create("res.partner", {"name": "Ana"})
    client.write("res.partner", [partner_id], {"phone": "+52"})
    create, write = sandbox.admin.calls()
    assert (create["protocol"], create["kwargs"]) == ("json2", {"vals_list": [{"name": "Ana"}]})
    assert (write["ids"], write["kwargs"]) == ([partner_id], {"vals": {"phone": "+52"}})


def test_a_model_name_that_is_not_one_is_refused_before_calling(client: OdooClient) -> None:
    with pytest.raises(ValueError, match="not an Odoo model name"):
        client.search_count("../web/session", [])
