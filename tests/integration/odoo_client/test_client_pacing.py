"""Pacing at ODOO_RATE_PER_S through the rate budget every instance shares (the budget's reservations are
asserted, not wall-clock time), and the client built from the app's settings."""

from __future__ import annotations

import contextlib
import itertools
import threading
import uuid
from collections.abc import Iterator

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

from shared.odoo import budget_key, rate_limits
from shared.odoo.client import OdooClient
from shared.odoo.errors import OdooRateLimited
from shared.odoo.rate_budget import TableRateBudget
from shared.settings import load_settings
from shared.tables import RATE_BUDGET_TABLE
from sync_core.retry import ErrorKind
from tools.azurite import Azurite
from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, DEMO_DB, SandboxServer

from .conftest import MakeClient, RecordingBudget

RATE = 40.0  # calls per second: 25 ms apart


def test_every_request_takes_the_next_slot_of_the_database_budget(make_client: MakeClient, protocol: str) -> None:
    budget = RecordingBudget(RATE)
    client = make_client(protocol, budget=budget)
    for _ in range(5):
        client.search_count("crm.stage", [])
    keys = {key for key, _ in budget.reservations}
    starts = [slot.start_at for _, slot in budget.reservations]
    assert keys == {"odoo:miasalud"}
    assert len(starts) == 5 + (protocol == "jsonrpc")  # JSON-RPC's authenticate is paced too
    # Never closer than 1/ODOO_RATE_PER_S (later when the previous call took longer than that).
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 1 / RATE - 1e-6


def test_retries_inside_the_client_take_slots_as_well(make_client: MakeClient, sandbox: SandboxServer) -> None:
    budget = RecordingBudget(RATE)
    sandbox.admin.inject("serialization_failure", methods=["search_count"], count=2)
    make_client("json2", budget=budget).search_count("crm.stage", [])
    assert len(budget.reservations) == 3


def test_clients_sharing_a_budget_get_distinct_slots(make_client: MakeClient) -> None:
    budget = RecordingBudget(RATE)
    clients = [make_client("json2", budget=budget) for _ in range(3)]
    threads = [
        threading.Thread(target=lambda c=c: [c.search_count("crm.stage", []) for _ in range(4)]) for c in clients
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts = sorted(slot.start_at for _, slot in budget.reservations)
    assert len(starts) == 12
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 1 / RATE - 1e-6


def test_a_spent_budget_is_rate_limited_before_anything_is_sent(
    make_client: MakeClient, sandbox: SandboxServer
) -> None:
    budget = RecordingBudget(0.5)  # one call every 2 s
    client = make_client("json2", budget=budget, max_wait_s=0.5)
    client.search_count("crm.stage", [])
    with pytest.raises(OdooRateLimited) as caught:
        client.search_count("crm.stage", [])
    assert caught.value.retry is ErrorKind.rate_limited and caught.value.retry_after > 0
    assert len(sandbox.admin.calls()) == 1


@pytest.fixture
def budget_table(azurite: Azurite) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    table = service.create_table(f"t{uuid.uuid4().hex[:20]}")
    yield table
    table.delete_table()


@pytest.mark.azurite
def test_instances_sharing_the_table_budget_get_distinct_slots_under_the_odoo_key(
    budget_table: TableClient, sandbox: SandboxServer
) -> None:
    limits = rate_limits(RATE)
    hosts = [TableRateBudget(budget_table, limits) for _ in range(2)]  # as if on two hosts: no shared memory
    starts: list[float] = []
    lock = threading.Lock()

    def reserve_many(budget: TableRateBudget) -> None:
        for _ in range(6):
            slot = budget.reserve(budget_key(DEMO_DB), max_wait_s=10)
            with lock:
                starts.append(slot.start_at)

    threads = [threading.Thread(target=reserve_many, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert min(b - a for a, b in itertools.pairwise(sorted(starts))) >= limits.spacing_s - 1e-6
    assert budget_table.get_entity("odoo:miasalud", "budget")["used_today"] == 12


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_from_settings_uses_the_configured_protocol_database_and_pace(
    clean_settings: pytest.MonkeyPatch, sandbox: SandboxServer, protocol: str
) -> None:
    env = {"ODOO_URL": sandbox.url, "ODOO_DB": DEMO_DB, "ODOO_USERNAME": DEMO_API_LOGIN, "ODOO_API_KEY": DEMO_API_KEY,
           "ODOO_PROTOCOL": protocol, "ODOO_RATE_PER_S": "25"}  # fmt: skip
    for name, value in env.items():
        clean_settings.setenv(name, value)
    budget = RecordingBudget(RATE)
    with OdooClient.from_settings(load_settings(), rate_budget=budget) as client:
        assert client.protocol == protocol
        assert client.search_count("crm.stage", []) == 4
    assert {key for key, _ in budget.reservations} == {"odoo:miasalud"}
    assert sandbox.admin.calls()[-1]["protocol"] == protocol
    assert rate_limits(25).spacing_s == pytest.approx(0.04)


@pytest.mark.azurite
def test_without_a_budget_given_the_client_paces_through_the_shared_table(
    clean_settings: pytest.MonkeyPatch, sandbox: SandboxServer, azurite: Azurite
) -> None:
    env = {"ODOO_URL": sandbox.url, "ODOO_DB": DEMO_DB, "ODOO_API_KEY": DEMO_API_KEY, "ODOO_PROTOCOL": "json2",
           "ODOO_RATE_PER_S": "25", "AzureWebJobsStorage": azurite.connection_string}  # fmt: skip
    for name, value in env.items():
        clean_settings.setenv(name, value)
    table = TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(RATE_BUDGET_TABLE)
    with contextlib.suppress(ResourceNotFoundError):
        table.delete_entity("odoo:miasalud", "budget")
    with OdooClient.from_settings(load_settings()) as client:
        for _ in range(3):
            client.search_count("crm.stage", [])
    entity = table.get_entity("odoo:miasalud", "budget")
    assert entity["used_today"] == 3
