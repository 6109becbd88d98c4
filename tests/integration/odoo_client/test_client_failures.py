"""Each error class from the sandbox's corresponding fault, in both protocols: what is retried inside the client
(serialization failures, calls that changed nothing), what never is (a write whose answer was lost), and the
JSON-RPC re-authentication."""

from __future__ import annotations

import httpx
import pytest

from shared.odoo.client import CONFLICT_ATTEMPTS
from shared.odoo.errors import (
    OdooAccessDenied,
    OdooAuthFailed,
    OdooConflict,
    OdooDatabaseMissing,
    OdooOutcomeUnknown,
    OdooUnavailable,
    OdooValidationError,
)
from sync_core.retry import ErrorKind
from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, SandboxServer
from tools.ports import free_port

from .conftest import MakeClient, orm_calls

SHORT_READ = httpx.Timeout(connect=2.0, read=0.3, write=2.0, pool=2.0)


def partners(sandbox: SandboxServer, name: str) -> int:
    return sum(p["name"] == name for p in sandbox.admin.records("res.partner"))


def test_a_wrong_key_is_auth_failed_and_not_retried(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str
) -> None:
    client = make_client(protocol, key="0" * 40)
    with pytest.raises(OdooAuthFailed) as caught:
        client.search_count("crm.stage", [])
    error = caught.value
    assert (error.retry, error.code) == (None, "auth_failed")
    assert "ODOO_API_KEY" in error.reason and "0" * 40 not in error.reason + str(error)
    assert len(sandbox.admin.calls()) == 1  # one authenticate (JSON-RPC) or one call (JSON-2): no storm


def test_a_key_that_expires_mid_session_is_auth_failed_after_one_reauthentication(
    make_client: MakeClient, sandbox: SandboxServer
) -> None:
    client = make_client("jsonrpc")
    client.search_count("crm.stage", [])
    sandbox.admin.expire_keys(DEMO_API_LOGIN)
    with pytest.raises(OdooAuthFailed):
        client.search_count("crm.stage", [])
    outcomes = [(c["method"], c["outcome"]) for c in sandbox.admin.calls()]
    assert outcomes == [
        ("authenticate", "ok"),
        ("search_count", "ok"),
        ("search_count", "odoo.exceptions.AccessDenied"),
        ("authenticate", "ok"),  # common.authenticate answers false: no error, no uid
    ]


def test_an_access_denied_on_a_kept_uid_authenticates_again_and_the_call_goes_through(
    make_client: MakeClient, sandbox: SandboxServer
) -> None:
    client = make_client("jsonrpc")
    client.search_count("crm.stage", [])
    sandbox.admin.inject("access_denied", models=["crm.stage"], count=1)
    assert client.search_count("crm.stage", []) == 4
    assert [c["method"] for c in sandbox.admin.calls()] == [
        "authenticate",
        "search_count",
        "search_count",
        "authenticate",
        "search_count",
    ]


def test_a_rotated_key_is_picked_up_by_a_new_client(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str
) -> None:
    sandbox.admin.add_key(DEMO_API_LOGIN, "2" * 40)
    sandbox.admin.expire_keys(DEMO_API_LOGIN, DEMO_API_KEY)
    assert make_client(protocol, key="2" * 40).search_count("crm.stage", []) == 4


def test_an_unknown_database_is_database_missing(make_client: MakeClient, protocol: str) -> None:
    with pytest.raises(OdooDatabaseMissing) as caught:
        make_client(protocol, db="otra").search_count("crm.stage", [])
    assert caught.value.retry is None and "ODOO_DB" in caught.value.reason


def test_an_access_error_is_permanent(make_client: MakeClient, sandbox: SandboxServer, protocol: str) -> None:
    sandbox.admin.inject("access_error", models=["crm.lead"])
    with pytest.raises(OdooAccessDenied) as caught:
        make_client(protocol).create("crm.lead", {"name": "Ana", "type": "lead"})
    assert (caught.value.retry, caught.value.model, caught.value.method) == (None, "crm.lead", "create")
    assert len(orm_calls(sandbox, "create")) == 1


def test_a_validation_error_on_create_is_permanent_and_sent_once(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str
) -> None:
    sandbox.admin.inject("validation_error", methods=["create"])
    with pytest.raises(OdooValidationError) as caught:
        make_client(protocol).create("res.partner", {"name": "Ana"})
    assert caught.value.retry is None
    assert len(orm_calls(sandbox, "create")) == 1


def test_serialization_failures_are_retried_inside_then_the_write_goes_through(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str
) -> None:
    client = make_client(protocol)
    partner_id = client.create("res.partner", {"name": "Ana"})
    sandbox.admin.inject("serialization_failure", methods=["write"], count=CONFLICT_ATTEMPTS - 1)
    client.write("res.partner", [partner_id], {"phone": "+525512345678"})
    writes = orm_calls(sandbox, "write")
    assert [w["outcome"] for w in writes] == ["psycopg2.errors.SerializationFailure"] * (CONFLICT_ATTEMPTS - 1) + ["ok"]
    (partner,) = [p for p in sandbox.admin.records("res.partner") if p["id"] == partner_id]
    assert partner["phone"] == "+525512345678"


@pytest.mark.parametrize("method", ["write", "search_read"])
def test_serialization_retries_are_bounded_then_a_conflict_for_the_worker(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str, method: str
) -> None:
    client = make_client(protocol)
    partner_id = client.create("res.partner", {"name": "Ana"})
    sandbox.admin.inject("serialization_failure", methods=[method])
    with pytest.raises(OdooConflict) as caught:
        if method == "write":
            client.write("res.partner", [partner_id], {"phone": "+52"})
        else:
            client.search_read("res.partner", [], ["name"])
    assert (caught.value.retry, caught.value.attempts) == (ErrorKind.server_error, CONFLICT_ATTEMPTS)
    assert len(orm_calls(sandbox, method)) == CONFLICT_ATTEMPTS


def test_connection_refused_is_unavailable_for_reads_and_writes(make_client: MakeClient, protocol: str) -> None:
    client = make_client(protocol, url=f"http://127.0.0.1:{free_port()}", attempts=2)
    for call in (lambda: client.search_count("crm.stage", []), lambda: client.create("res.partner", {"name": "Ana"})):
        with pytest.raises(OdooUnavailable) as caught:
            call()
        assert caught.value.retry is ErrorKind.connection


def test_a_503_before_a_create_is_retried_because_nothing_was_applied(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str
) -> None:
    sandbox.admin.inject("server_error", status=503, methods=["create"], count=1)
    partner_id = make_client(protocol).create("res.partner", {"name": "Ana"})
    assert [c["outcome"] for c in orm_calls(sandbox, "create")] == ["http_503", "ok"]
    assert partners(sandbox, "Ana") == 1 and partner_id > 0


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_gateway_error_after_a_create_was_sent_leaves_its_outcome_unknown(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str, status: int
) -> None:
    sandbox.admin.inject("server_error", status=status, methods=["create"], count=1)
    with pytest.raises(OdooOutcomeUnknown) as caught:
        make_client(protocol).create("res.partner", {"name": "Ana"})
    assert caught.value.retry is ErrorKind.outcome_unknown
    assert len(orm_calls(sandbox, "create")) == 1


def test_an_outage_is_unavailable_after_the_bounded_retries(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str
) -> None:
    client = make_client(protocol, attempts=2)
    client.version()
    sandbox.admin.start_outage(60)
    with pytest.raises(OdooUnavailable) as caught:
        client.search_count("crm.stage", [])
    assert caught.value.retry is ErrorKind.server_error
    assert [c["outcome"] for c in sandbox.admin.calls()][-2:] == ["outage_503", "outage_503"]


@pytest.mark.parametrize("fault", ["reset", "server_error"])
def test_a_failed_read_is_retried_and_succeeds(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str, fault: str
) -> None:
    sandbox.admin.inject(fault, status=500, methods=["search_count"], count=1)
    assert make_client(protocol).search_count("crm.stage", []) == 4
    assert len(orm_calls(sandbox, "search_count")) == 2


def test_a_create_applied_then_dropped_is_outcome_unknown_and_never_sent_again(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str
) -> None:
    sandbox.admin.inject("applied_then_dropped", methods=["create"], count=1)
    client = make_client(protocol)
    with pytest.raises(OdooOutcomeUnknown) as caught:
        client.create("res.partner", {"name": "Ana", "x_manychat_id": "MC99999"})
    assert caught.value.retry is ErrorKind.outcome_unknown
    (create,) = orm_calls(sandbox, "create")
    assert (create["applied"], create["outcome"]) == (True, "dropped")
    # What the caller does next: look the record up before creating again.
    assert client.search_count("res.partner", [("x_manychat_id", "=", "MC99999")]) == 1


@pytest.mark.parametrize("method", ["write", "unlink"])
def test_a_write_or_unlink_applied_then_dropped_is_outcome_unknown(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str, method: str
) -> None:
    client = make_client(protocol)
    partner_id = client.create("res.partner", {"name": "Ana"})
    sandbox.admin.inject("applied_then_dropped", methods=[method], count=1)
    with pytest.raises(OdooOutcomeUnknown):
        if method == "write":
            client.write("res.partner", [partner_id], {"phone": "+52"})
        else:
            client.unlink("res.partner", [partner_id])
    assert len(orm_calls(sandbox, method)) == 1


def test_a_timeout_retries_a_read_but_not_a_write(
    make_client: MakeClient, sandbox: SandboxServer, protocol: str
) -> None:
    client = make_client(protocol, timeout=SHORT_READ)
    sandbox.admin.inject("timeout", methods=["search_count"], count=1)
    sandbox.admin.inject("timeout", methods=["create"], count=1)
    assert client.search_count("crm.stage", []) == 4
    with pytest.raises(OdooOutcomeUnknown):
        client.create("res.partner", {"name": "Ana"})
    assert [c["outcome"] for c in orm_calls(sandbox, "search_count")] == ["timeout", "ok"]
    assert [c["outcome"] for c in orm_calls(sandbox, "create")] == ["timeout"]
