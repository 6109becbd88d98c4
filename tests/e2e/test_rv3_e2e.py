"""RV3's own tables ⇄ GHL end to end: the front desk works in RV3's database, the app on the local Functions host
(its timer every second, Azurite queues, SQLite) keeps the GHL sandbox in step, and GHL's changes come back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from starlette.types import Message, Receive, Scope, Send

from shared.store.database import Database
from tests.fixtures.app import CALENDAR, LOCATION, seed_location
from tests.fixtures.rv3_schema import CLINICAL, FrontDesk, create_rv3_database, throwaway_mariadb
from tests.fixtures.stack import HostProcess, Stack, assert_logs_clean, call_json, clear_queues, free_port, stack_env
from tools.azurite import Azurite
from tools.ghl_sandbox import DEMO_SEED, SandboxConfig, SandboxServer
from tools.ghl_sandbox.gateway import Gateway

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

T = TypeVar("T")
DNI = "45678912"


@dataclass
class RequestLog:
    """Every request the app sent to GHL (the sandbox's API, admin routes aside): method, path, query, body."""

    entries: list[str] = field(default_factory=list)

    def install(self, sandbox: SandboxServer) -> None:
        # The sandbox has no request journal; wrap its gateway's per-call step, which sees every API request
        # (also the ones it refuses), on the in-process server the stack runs.
        gateway = sandbox._server._server.config.app
        assert isinstance(gateway, Gateway)
        serve = gateway._serve

        async def recorded(scope: Scope, receive: Receive, send: Send, *args: Any) -> None:
            chunks: list[bytes] = []

            async def keep(message: Message | None = None) -> Message:
                received = await receive()
                if received["type"] == "http.request":
                    chunks.append(received.get("body", b""))
                return received

            try:
                await serve(scope, keep, send, *args)
            finally:
                query = scope.get("query_string", b"").decode(errors="replace")
                body = b"".join(chunks).decode(errors="replace")
                self.entries.append(f"{scope['method']} {scope['path']}?{query} {body}")

        gateway._serve = recorded  # type: ignore[method-assign,assignment]

    def text(self) -> str:
        return "\n".join(self.entries)


@dataclass
class Rv3Stack:
    stack: Stack
    desk: FrontDesk
    requests: RequestLog

    @property
    def admin(self) -> Any:
        return self.stack.sandbox.admin

    def wait(self, probe: Callable[[], T | None], what: str) -> T:
        return self.stack.wait_until(probe, timeout=40, what=what)

    def events(self) -> list[dict[str, Any]]:
        return list(self.admin.state()["appointments"])

    def event_at(self, start: str) -> dict[str, Any] | None:
        found = [e for e in self.events() if e["startTime"].startswith(start)]
        return found[0] if found else None

    def event(self, event_id: str) -> dict[str, Any]:
        [found] = [e for e in self.events() if e["id"] == event_id]
        return found

    def rv3_row(self, rv3_id: int) -> sa.Row[Any]:
        row = self.desk.appointment(rv3_id)
        assert row is not None
        return row


@pytest.fixture(params=["sqlite", "mariadb"])
def rv3_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """RV3's database on the engine a clinic runs (MariaDB, for MySQL) and on SQLite."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rv3.db'}"
        return
    with throwaway_mariadb() as url:
        yield url


@pytest.fixture
def rv3_stack(azurite: Azurite, tmp_path: Path, rv3_url: str) -> Iterator[Rv3Stack]:
    """The E2E stack (tests/fixtures/stack.py) with RV3's own database built like RV3's real one (no statuses
    seeded, no `deleted_at` on appointments: see tests/fixtures/rv3_schema.py) and a capture run every second."""
    clear_queues(azurite)
    port = free_port()
    config = SandboxConfig(seed=DEMO_SEED, key_dir=tmp_path / "keys", rsa_key_bits=2048)
    config.webhooks.url = f"http://127.0.0.1:{port}/api/webhooks/ghl"
    config.webhooks.time_scale = 0.0002
    rv3_engine = sa.create_engine(rv3_url)
    desk = create_rv3_database(rv3_engine, soft_delete=False, seed_statuses=False)
    with SandboxServer(config) as sandbox:
        requests = RequestLog()
        requests.install(sandbox)
        sql_url = f"sqlite:///{tmp_path / 'sync.db'}"
        env = {
            **stack_env(azurite, sandbox, sql_url),
            "RV3_SQL_URL": rv3_url,
            "RV3_POLL_SCHEDULE": "* * * * * *",
            "RV3_SWEEP_SECONDS": "2",
        }
        stack = Stack(sandbox=sandbox, azurite=azurite, db=Database.connect_url(sql_url), env=env, tmp=tmp_path)
        seed_location(stack.db)  # loc_demo, default calendar cal_demo_terapia
        try:
            stack.start_host(port)
            yield Rv3Stack(stack, desk, requests)
            assert_logs_clean(stack.hosts, stack.db)
        finally:
            for host in stack.hosts:
                host.stop()
            stack.db.dispose()
            rv3_engine.dispose()


def _last_run(api: httpx.Client) -> datetime | None:
    stamp = call_json(api.get("/rv3/status"))["last_run_at"]
    return datetime.fromisoformat(stamp) if stamp else None


def _ran_since(api: httpx.Client, before: datetime | None) -> bool:
    last = _last_run(api)
    return last is not None and (before is None or last > before)


def _after_two_runs(rv3_stack: Rv3Stack, api: httpx.Client) -> None:
    """Wait for two more capture runs: the second began after this call (the first may have begun before)."""
    for _ in range(2):
        rv3_stack.wait(partial(_ran_since, api, _last_run(api)), "a capture run")


def test_front_desk_work_in_rv3_and_changes_in_ghl_stay_in_step_across_a_restart(rv3_stack: Rv3Stack) -> None:
    desk, api = rv3_stack.desk, rv3_stack.stack.api()
    # RV3 ships no statuses: the clinic creates its own, and says which one it cancels with.
    pendiente, completado, baja = (desk.add_status(name) for name in ("Pendiente", "Completado", "Baja"))
    assert call_json(api.get("/rv3/statuses"))["missing"] == ["cancelled"]
    mapped = api.put("/rv3/statuses", json={"statuses": [{"rv3_status_id": baja, "status": "cancelled"}]})
    assert mapped.status_code == 200, mapped.text
    assert (mapped.json()["missing"], mapped.json()["problems"]) == ([], [])

    maria = desk.add_patient(
        name="María",
        last_name_paternal="Quispe",
        last_name_maternal="Huamán",
        phone1="987654321",
        email="maria@example.pe",
        document_number=DNI,
    )
    ana = desk.add_therapist(first_name="Ana", last_name_paternal="Torres")
    therapist = api.put(f"/rv3/therapists/{ana}", json={"ghl_user_id": "usr_demo_luis"})
    assert therapist.status_code == 200, therapist.text

    # The front desk books: GHL gets the appointment at its Lima time, for the patient, assigned to the therapist.
    first = desk.book(maria, date(2030, 4, 2), time(10, 0), therapist_id=ana, status_id=pendiente)
    event = rv3_stack.wait(lambda: rv3_stack.event_at("2030-04-02T10:00:00"), "the booking in GHL")
    assert (event["calendarId"], event["assignedUserId"], event["title"]) == (
        CALENDAR,
        "usr_demo_luis",
        "Reflexología - Consultorio 2",
    )
    [contact] = rv3_stack.admin.state()["contacts"]
    assert (contact["firstName"], contact["lastName"], contact["phone"]) == ("María", "Quispe Huamán", "+51987654321")
    assert event["contactId"] == contact["id"]

    # ...moves it...
    desk.move(first, hour=time(12, 30))
    rv3_stack.wait(lambda: rv3_stack.event_at("2030-04-02T12:30:00"), "the move in GHL")

    # GHL reschedules it (the patient, in GHL's UI): RV3's row follows, and that is not sent back to GHL.
    rv3_stack.admin.simulate_appointment_edit(
        event["id"], startTime="2030-04-03T16:00:00-05:00", endTime="2030-04-03T17:00:00-05:00"
    )
    row = rv3_stack.wait(
        lambda: (r := rv3_stack.rv3_row(first)).hour == time(16, 0) and r, "the reschedule in RV3's table"
    )
    assert row.appointment_date.date() == date(2030, 4, 3)
    updated = rv3_stack.event(event["id"])["dateUpdated"]
    _after_two_runs(rv3_stack, api)
    assert rv3_stack.event(event["id"])["dateUpdated"] == updated

    # GHL marks it attended: RV3's "Completado".
    rv3_stack.admin.simulate_appointment_edit(event["id"], appointmentStatus="showed")
    rv3_stack.wait(lambda: rv3_stack.rv3_row(first).appointment_status_id == completado, "the attendance in RV3")

    # GHL cancels a second one: RV3 gets the clinic's own cancel status.
    second = desk.book(maria, date(2030, 4, 4), time(9, 0), status_id=pendiente)
    other = rv3_stack.wait(lambda: rv3_stack.event_at("2030-04-04T09:00:00"), "the second booking in GHL")
    rv3_stack.admin.simulate_appointment_edit(other["id"], appointmentStatus="cancelled")
    rv3_stack.wait(lambda: rv3_stack.rv3_row(second).appointment_status_id == baja, "the cancellation in RV3")

    # The front desk cancels a third one with that status, and deletes a fourth (RV3 deletes rows): both cancel
    # in GHL.
    third = desk.book(maria, date(2030, 4, 5), time(9, 0), status_id=pendiente)
    fourth = desk.book(maria, date(2030, 4, 5), time(15, 0), status_id=pendiente)
    booked = rv3_stack.wait(lambda: rv3_stack.event_at("2030-04-05T09:00:00"), "the third booking in GHL")
    deleted = rv3_stack.wait(lambda: rv3_stack.event_at("2030-04-05T15:00:00"), "the fourth booking in GHL")
    desk.set_status(third, baja)
    desk.hard_delete(fourth)
    for cancelled, what in ((booked, "the front desk's cancellation"), (deleted, "the deletion")):
        rv3_stack.wait(lambda e=cancelled: rv3_stack.event(e["id"])["appointmentStatus"] == "cancelled", what)

    # RV3 takes an appointment without a date: it is reported, and what the front desk does next still syncs.
    dateless = desk.book(maria, date(2030, 4, 7), time(9, 0), status_id=pendiente, appointment_date=None)
    later = desk.book(maria, date(2030, 4, 7), time(11, 0), status_id=pendiente)
    rv3_stack.wait(lambda: rv3_stack.event_at("2030-04-07T11:00:00"), "the booking after a dateless one")
    rejected = call_json(api.get("/rv3/status"))["rejected_rows"]
    assert [(r["rv3_id"], r["table"]) for r in rejected] == [(dateless, "appointments")] and later

    # The patient's new phone, saved as RV3 saves patient edits (`update_fields`, `updated_at` untouched).
    desk.edit_patient_fields(maria, phone1="912 345 678")
    rv3_stack.wait(lambda: rv3_stack.admin.state()["contacts"][0]["phone"] == "+51912345678", "the new phone in GHL")

    # Someone books online as a contact RV3 does not know: it waits for the front desk, who names the patient.
    lucia = rv3_stack.admin.simulate_contact_create(
        locationId=LOCATION, firstName="Lucía", lastName="Ramos", phone="+51955000111"
    )
    rv3_stack.admin.simulate_booking(
        locationId=LOCATION,
        calendarId=CALENDAR,
        contactId=lucia["id"],
        assignedUserId="usr_demo_luis",
        startTime="2030-04-06T11:00:00-05:00",
        endTime="2030-04-06T12:00:00-05:00",
        title="Reserva web",
    )
    review = rv3_stack.wait(lambda: call_json(api.get("/rv3/review/"))["results"], "the booking listed for review")
    assert review[0]["contact"]["name"] == "Lucía Ramos"
    patient = desk.add_patient(name="Lucía", last_name_paternal="Ramos", phone1="955000111")
    resolved = api.post(f"/rv3/review/{review[0]['id']}/resolve", json={"rv3_patient_id": patient})
    assert resolved.status_code == 200, resolved.text
    [web] = [r for r in desk.rows("appointments") if r.patient_id == patient]
    # Pending, and without a therapist: in RV3 a therapist is given when the patient is attended.
    assert (web.appointment_date.date(), web.hour, web.appointment_status_id, web.therapist_id) == (
        date(2030, 4, 6),
        time(11, 0),
        pendiente,
        None,
    )
    assert web.social_benefit is not None and not web.social_benefit  # NOT NULL in RV3, no DB default

    # The app restarts; what the front desk does meanwhile arrives once, and nothing is sent twice.
    host = rv3_stack.stack.host
    host.stop()
    fifth = desk.book(maria, date(2030, 4, 8), time(8, 0), status_id=pendiente)
    restarted = HostProcess(host.env, host.port, rv3_stack.stack.tmp / "host-restarted.log", host.message_lease_s)
    rv3_stack.stack.hosts.append(restarted)
    restarted.start()
    rv3_stack.wait(lambda: rv3_stack.event_at("2030-04-08T08:00:00"), "the booking made while the app was down")
    _after_two_runs(rv3_stack, api)
    assert len(rv3_stack.events()) == 7  # first to fourth, the one after the dateless row, the web booking, fifth
    assert len(desk.rows("appointments")) == 7 and fifth  # the fourth is deleted; the dateless one stays in RV3
    status = call_json(api.get("/rv3/status"))
    assert (status["failed_writes"], status["status_problems"], status["last_error"]) == ([], [], None)

    # Not one clinical or billing value, nor the DNI, left for GHL.
    sent = rv3_stack.requests.text()
    assert "/contacts/upsert" in sent and "/calendars/events/appointments" in sent
    for value in [*CLINICAL.values(), DNI]:
        assert value not in sent
