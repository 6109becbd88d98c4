"""Reconciliation with RV3's own tables (RV3_SQL_URL): drift between RV3's `appointments` and the sync that the
capture or the write-back left behind is reported beside the GHL walk's, marked `origen: "rv3"`, and auto-heal
fixes it through the capture and the write-back (RV3 on SQLite and MariaDB, the GHL sandbox over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shared import runtime
from shared.api.schemas import ReconciliationRunIn
from shared.queues import RECONCILE
from shared.services import rv3_capture
from shared.services.reconcile import runs, worker
from shared.store.schema import appointments, contacts, rv3_appointments
from shared.work import Work
from tests.fixtures.rv3_schema import CANCELADO, FrontDesk, Rv3Clock
from tests.integration.webhooks.helpers import appointment_body, deliver
from tools.ghl_sandbox.render import appointment_webhook

from .conftest import DAY, Sides, drain

pytestmark = pytest.mark.azurite
# The sync store and RV3 each on their two engines, paired: SQLite with SQLite, PostgreSQL with MariaDB.
ENGINES = ("db", "rv3_url")
ON_EACH_ENGINE = pytest.mark.parametrize(ENGINES, [("sqlite", "sqlite"), ("postgres", "mariadb")], indirect=True)
ON_SQLITE = pytest.mark.parametrize(ENGINES, [("sqlite", "sqlite")], indirect=True)

H = timedelta(hours=1)
RV3_DAY = date(2030, 3, 4)  # the window of `Sides.run`, as RV3 files it
BEHIND_THE_CURSOR = Rv3Clock(skew=-H)  # saves the capture never reads again (a late commit, a bulk fix)


@dataclass
class Rv3Sides:
    sides: Sides
    desk: FrontDesk

    def sync(self) -> None:
        """A capture run (it writes pending write-backs first, then reads RV3), then the queue workers."""
        report = rv3_capture.run(Work.current())
        assert report.error is None, report.error
        self.sides.sync_both_ways()

    def sync_row(self, rv3_id: int) -> sa.Row[Any]:
        with self.sides.app.db.transaction() as conn:
            return conn.execute(sa.select(appointments).where(appointments.c.rv3_appointment_id == str(rv3_id))).one()

    def ghl_webhook(self, event_type: str, event_id: str) -> None:
        """GHL's webhook about its event as it now is, through the `ghl-to-rv3` worker."""
        state = self.sides.sandbox.sandbox.state
        deliver(appointment_body(event_type, **appointment_webhook(state, state.appointments[event_id])))

    def lose_writeback(self, appointment_id: int) -> None:
        """The write-back the GHL change recorded never happens (lost, as by a bug or a restore)."""
        with self.sides.app.db.transaction() as conn:
            query = rv3_appointments.update().where(rv3_appointments.c.appointment_id == appointment_id)
            assert conn.execute(query.values(writeback=None)).rowcount == 1


@pytest.fixture
def rv3(sides: Sides, front_desk: FrontDesk, rv3_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rv3Sides]:
    monkeypatch.setenv("RV3_SQL_URL", rv3_url)
    runtime.reset()
    yield Rv3Sides(sides, front_desk)
    runtime.reset()


def seed_rv3_drift(rv3: Rv3Sides) -> dict[str, Any]:
    """One appointment per case, synced first; then what the capture and the write-back missed. Ids by name."""
    desk, sides = rv3.desk, rv3.sides
    patient = desk.add_patient(name="María", last_name_paternal="Quispe", phone1="987654321", email="m@example.pe")
    ids: dict[str, Any] = {
        name: desk.book(patient, RV3_DAY, time(hour))
        for name, hour in (("same", 9), ("edited", 10), ("cancelled", 11), ("deleted", 12), ("rescheduled", 13))
    }
    ids["pending"] = desk.book(patient, RV3_DAY, time(14))
    desk.book(patient, RV3_DAY + timedelta(days=1), time(9))  # outside the window
    rv3.sync()

    desk.clock = BEHIND_THE_CURSOR
    newcomer = desk.add_patient(name="Lucía", last_name_paternal="Ramos", phone1="955000111")
    ids["never_captured"] = desk.book(newcomer, RV3_DAY, time(15))  # a patient the sync has never seen either
    desk.move(ids["edited"], hour=time(16))
    desk.set_status(ids["cancelled"], CANCELADO)
    desk.book(patient, RV3_DAY, time(17), status_id=CANCELADO)  # cancelled before any sync: never goes to GHL
    desk.hard_delete(ids["deleted"])  # after the capture's last sweep
    desk.clock = Rv3Clock()
    desk.move(ids["pending"], hour=time(18))  # the next capture run reads it: in flight, not drift

    rescheduled = rv3.sync_row(ids["rescheduled"])
    event = sides.sandbox.sandbox.state.appointments[rescheduled.ghl_event_id]
    event.start, event.end, event.date_updated = DAY + 19 * H, DAY + 20 * H, sides.sandbox.sandbox.state.stamp()
    rv3.ghl_webhook("AppointmentUpdate", event.id)
    rv3.lose_writeback(rescheduled.id)

    with sides.app.db.transaction() as conn:
        contact = conn.execute(sa.select(contacts.c.ghl_contact_id).where(contacts.c.rv3_patient_id == str(patient)))
        contact_id = contact.scalar_one()
    sides.ghl("evWeb", DAY + 8 * H, contact_id=contact_id)  # booked on GHL's widget for RV3's patient
    rv3.ghl_webhook("AppointmentCreate", "evWeb")
    with sides.app.db.transaction() as conn:
        ids["web"] = conn.execute(sa.select(appointments.c.id).where(appointments.c.ghl_event_id == "evWeb")).scalar()
    rv3.lose_writeback(ids["web"])
    return ids


def from_rv3(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    entries = report[kind]
    assert all(entry.get("origen") == "rv3" for entry in entries), entries  # the GHL walk finds nothing here
    return entries


@ON_EACH_ENGINE
def test_each_kind_of_rv3_side_drift_is_reported_once_beside_the_ghl_walk(rv3: Rv3Sides) -> None:
    ids = seed_rv3_drift(rv3)
    report = rv3.sides.report(rv3.sides.run())

    assert report["status"] == "completed"
    (missing_in_ghl,) = from_rv3(report, "faltantes_ghl")
    assert (missing_in_ghl["rv3_id"], missing_in_ghl["id"], missing_in_ghl["start"]) == (
        ids["never_captured"],
        None,
        "2030-03-04T20:00:00Z",
    )
    (missing_in_rv3,) = from_rv3(report, "faltantes_local")
    assert (missing_in_rv3["rv3_id"], missing_in_rv3["id"], missing_in_rv3["ghl_event_id"]) == (
        None,
        str(ids["web"]),
        "evWeb",
    )
    cancelled = {
        entry["rv3_id"]: (entry["cancelada_en"], entry["motivo"], entry["estado"])
        for entry in from_rv3(report, "canceladas_no_actualizadas")
    }
    assert cancelled == {
        ids["cancelled"]: ("rv3", "cancelled_in_rv3", {"rv3": "cancelled", "ghl": "scheduled"}),
        ids["deleted"]: ("rv3", "deleted_in_rv3", {"rv3": "eliminada", "ghl": "scheduled"}),
    }
    drift = {entry["rv3_id"]: entry["campos"] for entry in from_rv3(report, "desincronizadas")}
    assert drift == {
        ids["edited"]: {
            "start": {"rv3": "2030-03-04T21:00:00Z", "ghl": "2030-03-04T15:00:00Z"},
            "end": {"rv3": "2030-03-04T22:00:00Z", "ghl": "2030-03-04T16:00:00Z"},
        },
        ids["rescheduled"]: {"start": {"rv3": "2030-03-04T18:00:00Z", "ghl": "2030-03-05T00:00:00Z"}},
    }
    totals = report["totales"]
    # RV3's rows in the window: 6 booked + 1 never captured + 1 cancelled before sync, less the deleted one.
    assert (totals["rv3_tabla"], totals["drift"], totals["en_curso"], totals["ignoradas"]) == (7, 6, 1, 1)
    assert report["acciones"] == []


@ON_EACH_ENGINE
def test_auto_heal_sends_rv3_side_fixes_through_the_capture_and_the_write_back_and_a_second_run_finds_none(
    rv3: Rv3Sides,
) -> None:
    ids = seed_rv3_drift(rv3)
    healed = rv3.sides.report(rv3.sides.run(heal=True))
    actions = {(a["tipo"], a["motivo"], a["rv3_id"] or a["ghl_event_id"]) for a in healed["acciones"]}
    assert actions == {
        ("enviar_a_ghl", "missing_in_ghl", ids["never_captured"]),
        ("enviar_a_ghl", "changed_in_rv3", ids["edited"]),
        ("enviar_a_ghl", "changed_in_rv3", ids["cancelled"]),
        ("enviar_a_ghl", "deleted_in_rv3", ids["deleted"]),
        ("aplicar_en_rv3", "changed_in_ghl", ids["rescheduled"]),
        ("aplicar_en_rv3", "missing_in_rv3", "evWeb"),
    }
    assert all(a["origen"] == "rv3" and a["referencia"] for a in healed["acciones"])

    rv3.sync()
    again = rv3.sides.report(rv3.sides.run())
    assert again["drift"] == 0, again
    assert again["acciones"] == []

    ghl = rv3.sides.sandbox.sandbox.state.appointments
    created_in_ghl = ghl[rv3.sync_row(ids["never_captured"]).ghl_event_id]
    assert created_in_ghl.start == DAY + 15 * H
    contact = rv3.sides.sandbox.sandbox.state.contacts[created_in_ghl.contact_id]
    assert (contact.fields["firstName"], contact.fields["phone"]) == ("Lucía", "+51955000111")
    assert ghl[rv3.sync_row(ids["edited"]).ghl_event_id].start == DAY + 16 * H
    assert ghl[rv3.sync_row(ids["cancelled"]).ghl_event_id].status == "cancelled"
    assert ghl[rv3.sync_row(ids["deleted"]).ghl_event_id].status == "cancelled"
    rescheduled = rv3.desk.appointment(ids["rescheduled"])
    assert rescheduled is not None and rescheduled.hour == time(19)
    with rv3.sides.app.db.transaction() as conn:
        web = conn.execute(sa.select(appointments).where(appointments.c.id == ids["web"])).one()
    created = rv3.desk.appointment(int(web.rv3_appointment_id))
    assert created is not None and (created.appointment_date.date(), created.hour) == (RV3_DAY, time(8))


@ON_SQLITE
def test_a_run_handed_over_day_by_day_lists_and_fixes_each_rv3_difference_once(
    rv3: Rv3Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = rv3.desk
    patient = desk.add_patient(name="Ana", phone1="912345678")
    deleted = desk.book(patient, RV3_DAY + timedelta(days=1), time(9))
    rv3.sync()
    desk.clock = BEHIND_THE_CURSOR
    missed = [desk.book(patient, RV3_DAY + timedelta(days=d), time(10)) for d in (0, 1)]
    desk.hard_delete(deleted)

    monkeypatch.setattr(worker, "RUN_BUDGET_S", 0.0)  # one slice, or one RV3 day, per message
    started = runs.start_run(
        Work.current(), ReconciliationRunIn(desde=RV3_DAY, hasta=RV3_DAY + timedelta(days=1), heal=True)
    )
    outcomes: list[str] = []
    drain(RECONCILE, lambda body, **kw: outcomes.append(worker.process(body, **kw).result))
    assert outcomes[-1] == "applied" and outcomes.count("continued") >= 2

    report = rv3.sides.report(started.reports[0].id)
    assert sorted(entry["rv3_id"] for entry in from_rv3(report, "faltantes_ghl")) == missed
    assert [entry["rv3_id"] for entry in from_rv3(report, "canceladas_no_actualizadas")] == [deleted]
    assert sorted(action["rv3_id"] for action in report["acciones"]) == sorted([*missed, deleted])


@ON_SQLITE
def test_an_unreachable_rv3_database_resumes_the_run_later_instead_of_failing_it(
    rv3: Rv3Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RV3_SQL_URL", "mysql+pymysql://sync:pw@127.0.0.1:9/reflexo")
    runtime.reset()
    started = runs.start_run(Work.current(), ReconciliationRunIn(desde=RV3_DAY, hasta=RV3_DAY))
    outcomes: list[str] = []
    drain(RECONCILE, lambda body, **kw: outcomes.append(worker.process(body, **kw).result))
    assert outcomes and set(outcomes) == {"requeued"}  # back later (jittered), from its checkpoint
    assert rv3.sides.report(started.reports[0].id)["status"] == "running"


@ON_SQLITE
def test_a_write_back_rv3_could_not_take_is_drift_with_its_reason_not_in_progress(rv3: Rv3Sides) -> None:
    desk = rv3.desk
    desk.remove_status(CANCELADO)  # the clinic has no cancel status yet
    patient = desk.add_patient(name="Rosa", phone1="912345678")
    rv3_id = desk.book(patient, RV3_DAY, time(9))
    rv3.sync()
    event_id = rv3.sync_row(rv3_id).ghl_event_id
    event = rv3.sides.sandbox.sandbox.state.appointments[event_id]
    event.status, event.date_updated = "cancelled", rv3.sides.sandbox.sandbox.state.stamp()
    rv3.ghl_webhook("AppointmentUpdate", event_id)
    rv3.sync()  # the write-back fails for good: RV3 has no status for it

    report = rv3.sides.report(rv3.sides.run())
    (entry,) = from_rv3(report, "canceladas_no_actualizadas")
    assert (entry["rv3_id"], entry["cancelada_en"], entry["estado"]) == (
        rv3_id,
        "ghl",
        {"rv3": "scheduled", "ghl": "cancelled"},
    )
    assert "«cancelada»" in entry["rechazo_rv3"]
    assert report["totales"]["en_curso"] == 0
