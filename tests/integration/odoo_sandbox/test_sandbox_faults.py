"""Fault injection: each fault as Odoo (or the network in front of it) shows it, with a count or a seeded
probability; the outage switch; expired API keys; and what the record of calls says about each."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, DEMO_DB, SandboxServer

from .conftest import Odoo, error_data


def create_partner(odoo: Odoo, protocol: str, name: str = "Ana") -> tuple[int, dict[str, Any]]:
    """(HTTP status, Odoo's error or result) of a res.partner create in `protocol`, normalized."""
    if protocol == "json2":
        response = odoo.json2("res.partner", "create", vals_list=[{"name": name}])
        return response.status_code, response.json() if response.status_code != 200 else {"result": response.json()}
    envelope = odoo.execute("res.partner", "create", [{"name": name}])
    return 200, envelope["error"]["data"] if "error" in envelope else {"result": envelope["result"]}


def partners_named(sandbox: SandboxServer, name: str) -> int:
    return sum(p["name"] == name for p in sandbox.admin.records("res.partner"))


ORM_FAULTS = [
    ("access_error", 403, "odoo.exceptions.AccessError"),
    ("validation_error", 422, "odoo.exceptions.ValidationError"),
    ("serialization_failure", 500, "psycopg2.errors.SerializationFailure"),
]


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
@pytest.mark.parametrize("fault", ORM_FAULTS, ids=[kind for kind, _, _ in ORM_FAULTS])
def test_orm_faults_answer_odoos_error_and_change_nothing(
    odoo: Odoo, sandbox: SandboxServer, protocol: str, fault: tuple[str, int, str]
) -> None:
    kind, json2_status, name = fault
    sandbox.admin.inject(kind, models=["res.partner"], methods=["create"], count=1)
    status, answer = create_partner(odoo, protocol)
    assert answer["name"] == name
    assert status == (json2_status if protocol == "json2" else 200)
    assert partners_named(sandbox, "Ana") == 0
    assert create_partner(odoo, protocol)[1]["result"]  # the count is spent: the next create goes through
    assert partners_named(sandbox, "Ana") == 1


def test_a_serialization_failure_carries_psycopg2s_message(odoo: Odoo, sandbox: SandboxServer) -> None:
    sandbox.admin.inject("serialization_failure", methods=["search_read"], count=1)
    data = error_data(odoo.execute("res.partner", "search_read", [[]], {"fields": ["name"]}))
    assert data["message"] == "could not serialize access due to concurrent update\n"


def test_access_denied_refuses_the_key_in_each_protocol(odoo: Odoo, sandbox: SandboxServer) -> None:
    sandbox.admin.inject("access_denied", count=3)
    assert odoo.rpc("common", "authenticate", DEMO_DB, DEMO_API_LOGIN, DEMO_API_KEY, {})["result"] is False
    assert error_data(odoo.execute("res.partner", "search", [[]], uid=6))["name"] == "odoo.exceptions.AccessDenied"
    assert odoo.json2("res.partner", "search", domain=[]).status_code == 401
    assert odoo.json2("res.partner", "search", domain=[]).status_code == 200


def test_validation_faults_skip_reads_and_wait_for_their_turn(odoo: Odoo, sandbox: SandboxServer) -> None:
    sandbox.admin.inject("validation_error", methods=["create", "search_read"], after=1, count=1)
    odoo.json2("res.partner", "search_read", domain=[], fields=["name"])  # a read: never a validation fault
    assert [create_partner(odoo, "json2", name)[0] for name in ("a", "b", "c")] == [200, 422, 200]
    faults = [c["fault"] for c in sandbox.admin.calls(method="create")]
    assert faults == [None, "validation_error", None]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_an_html_page_and_nothing_is_applied(odoo: Odoo, sandbox: SandboxServer, status: int) -> None:
    sandbox.admin.inject("server_error", status=status, count=1)
    response = odoo.json2("res.partner", "create", vals_list=[{"name": "Ana"}])
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert partners_named(sandbox, "Ana") == 0


def test_a_reset_drops_the_connection_before_anything_is_done(odoo: Odoo, sandbox: SandboxServer) -> None:
    sandbox.admin.inject("reset", count=1)
    with pytest.raises(httpx.TransportError):
        odoo.json2("res.partner", "create", vals_list=[{"name": "Ana"}])
    assert partners_named(sandbox, "Ana") == 0
    assert sandbox.admin.calls()[-1]["outcome"] == "reset"


def test_applied_then_dropped_creates_the_record_and_cuts_the_answer(odoo: Odoo, sandbox: SandboxServer) -> None:
    sandbox.admin.inject("applied_then_dropped", methods=["create"], count=1)
    with pytest.raises(httpx.TransportError):
        odoo.json2("res.partner", "create", vals_list=[{"name": "Ana"}])
    assert partners_named(sandbox, "Ana") == 1
    (call,) = sandbox.admin.calls(method="create")
    assert (call["outcome"], call["applied"], call["fault"]) == ("dropped", True, "applied_then_dropped")


def test_a_timeout_holds_the_answer_until_the_client_gives_up(sandbox: SandboxServer) -> None:
    sandbox.admin.inject("timeout", count=1)
    with (
        httpx.Client(base_url=sandbox.url, timeout=httpx.Timeout(5, read=0.2)) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.get("/web/version")
    assert sandbox.admin.calls()[-1]["outcome"] == "timeout"


def test_a_slow_answer_still_answers(sandbox: SandboxServer) -> None:
    sandbox.admin.inject("slow", delay_ms=1500, count=1)
    with httpx.Client(base_url=sandbox.url, timeout=httpx.Timeout(5, read=0.2)) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("/web/version")
        assert http.get("/web/version").status_code == 200


def test_a_seeded_probability_replays_the_same_faults(odoo: Odoo, sandbox: SandboxServer) -> None:
    def pattern() -> list[int]:
        return [odoo.json2("crm.stage", "search_count", domain=[]).status_code for _ in range(24)]

    rule = {"kind": "server_error", "probability": 0.5, "status": 503}
    sandbox.admin.configure("faults", {"seed": 42, "rules": [rule]})
    first = pattern()
    sandbox.admin.configure("faults", {"seed": 42, "rules": [rule]})
    assert pattern() == first
    assert set(first) == {200, 503}


@pytest.mark.parametrize(("mode", "status"), [("503", 503), ("reset", None)])
def test_an_outage_answers_every_call_until_it_ends(
    odoo: Odoo, sandbox: SandboxServer, mode: str, status: int | None
) -> None:
    sandbox.admin.start_outage(60, mode=mode)
    if status is None:
        with pytest.raises(httpx.TransportError):
            odoo.http.get("/web/version")
    else:
        assert odoo.http.get("/web/version").status_code == status
    sandbox.admin.end_outage()
    assert odoo.http.get("/web/version").status_code == 200


def test_an_expired_key_stops_working_and_a_new_one_takes_over(odoo: Odoo, sandbox: SandboxServer) -> None:
    assert sandbox.admin.expire_keys(DEMO_API_LOGIN) == 1
    assert odoo.rpc("common", "authenticate", DEMO_DB, DEMO_API_LOGIN, DEMO_API_KEY, {})["result"] is False
    assert odoo.json2("res.partner", "search", domain=[]).status_code == 401
    sandbox.admin.add_key(DEMO_API_LOGIN, "1" * 40)
    assert odoo.json2("res.partner", "search", key="1" * 40, domain=[]).status_code == 200


def test_reset_forgets_faults_records_and_calls(odoo: Odoo, sandbox: SandboxServer) -> None:
    sandbox.admin.inject("server_error")
    sandbox.admin.create("res.partner", {"name": "Ana"})
    odoo.http.get("/web/version")
    sandbox.admin.reset()
    assert odoo.http.get("/web/version").status_code == 200
    assert partners_named(sandbox, "Ana") == 0
    assert len(sandbox.admin.calls()) == 1
