"""A location's reconciliation on SQLite and PostgreSQL against the GHL sandbox, run through the `reconcile`
queue: the drift it reports, the fixes auto-heal sends through the normal sync path, and what it logs."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shared.store.schema import appointments, outbox
from tests.fixtures.app import OTHER_CALENDAR

from .conftest import DAY, SYNCED_AT, Sides

pytestmark = pytest.mark.azurite

H = timedelta(hours=1)
WEEK = timedelta(days=7)


def seed_every_kind_of_drift(sides: Sides) -> dict[str, Any]:
    """One appointment per case (in the 2030-03-04 window unless said otherwise); their ids by name."""
    ids: dict[str, Any] = {}
    sides.ghl("evSame", DAY + 14 * H)
    ids["same"] = sides.sql(DAY + 14 * H, event_id="evSame")
    sides.ghl("evBooked", DAY + 15 * H)  # booked in GHL, its AppointmentCreate never arrived
    ids["never_sent"] = sides.sql(DAY + 16 * H)  # a create RV3 never got into GHL
    sides.ghl("evCancelled", DAY + 17 * H, status="cancelled")  # cancelled in GHL, webhook missed
    ids["cancelled_in_ghl"] = sides.sql(DAY + 17 * H, event_id="evCancelled")
    ids["deleted_in_ghl"] = sides.sql(DAY + 18 * H, event_id="evDeleted")  # gone from GHL
    sides.ghl("evRetitled", DAY + 19 * H, title="Terapia (GHL)")  # edited in GHL
    ids["retitled_in_ghl"] = sides.sql(DAY + 19 * H, event_id="evRetitled")
    sides.ghl("evEdited", DAY + 20 * H, date_updated=SYNCED_AT)  # edited in RV3 after the sync, the push failed
    ids["edited_in_rv3"] = sides.sql(DAY + 21 * H, event_id="evEdited", synced={"start_at": DAY + 20 * H,
                                                                              "end_at": DAY + 21 * H})  # fmt: skip
    sides.ghl("evMoved", DAY + 23 * H, calendar_id=OTHER_CALENDAR)  # moved in GHL to another calendar and hour
    ids["moved_in_ghl"] = sides.sql(DAY + 13 * H, event_id="evMoved")
    sides.ghl("evLater", DAY + 13 * H + WEEK)  # moved in GHL out of the window
    ids["moved_out"] = sides.sql(DAY + 13 * H, event_id="evLater", minutes=30)
    sides.ghl("evEarlier", DAY + 22 * H)  # moved in GHL into the window
    ids["moved_in"] = sides.sql(DAY + 22 * H - WEEK, event_id="evEarlier")
    # Not drift: an edit still on its way to GHL, a cancelled booking RV3 never needed, GHL's own assignee,
    # and ids that only a case-insensitive collation would sort differently.
    sides.ghl("evPending", DAY + 15 * H + 30 * timedelta(minutes=1))
    sides.sql(DAY + 15 * H + 30 * timedelta(minutes=1), event_id="evPending", title="Editada", in_flight=True)
    sides.ghl("evIgnored", DAY + 12 * H, status="cancelled")
    sides.sql(DAY + 12 * H, status="cancelled")
    for event_id, hour in (("ZZcase", 9), ("aacase", 10), ("Abcase", 11)):
        sides.ghl(event_id, DAY + hour * H)
        sides.sql(DAY + hour * H, event_id=event_id, assigned_user_id=None)
    return ids


def listed(report: dict[str, Any], kind: str, key: str = "id") -> list[Any]:
    return sorted(str(entry[key]) for entry in report[kind])


@pytest.mark.parametrize("max_events", [2, 500], ids=["narrow-slices", "one-slice"])
def test_every_kind_of_drift_is_reported_exactly_once(sides: Sides, max_events: int) -> None:
    ids = seed_every_kind_of_drift(sides)
    report = sides.report(sides.run(max_events_per_slice=max_events))

    assert report["status"] == "completed"
    assert listed(report, "faltantes_local", "ghl_event_id") == ["evBooked"]
    assert listed(report, "faltantes_ghl") == [str(ids["never_sent"])]
    cancelled = {
        entry["id"]: (entry["cancelada_en"], entry["motivo"]) for entry in report["canceladas_no_actualizadas"]
    }
    assert cancelled == {
        str(ids["cancelled_in_ghl"]): ("ghl", "cancelled_in_ghl"),
        str(ids["deleted_in_ghl"]): ("ghl", "deleted_in_ghl"),
    }
    drift = {entry["id"]: entry["campos"] for entry in report["desincronizadas"]}
    assert drift == {
        str(ids["retitled_in_ghl"]): {"title": {"rv3": "Terapia", "ghl": "Terapia (GHL)"}},
        str(ids["edited_in_rv3"]): {
            "start": {"rv3": "2030-03-05T02:00:00Z", "ghl": "2030-03-05T01:00:00Z"},
            "end": {"rv3": "2030-03-05T03:00:00Z", "ghl": "2030-03-05T02:00:00Z"},
        },
        str(ids["moved_in_ghl"]): {
            "calendar_id": {"rv3": "cal_demo_terapia", "ghl": OTHER_CALENDAR},
            "start": {"rv3": "2030-03-04T18:00:00Z", "ghl": "2030-03-05T04:00:00Z"},
            "end": {"rv3": "2030-03-04T19:00:00Z", "ghl": "2030-03-05T05:00:00Z"},
        },
        str(ids["moved_out"]): {
            "start": {"rv3": "2030-03-04T18:00:00Z", "ghl": "2030-03-11T18:00:00Z"},
            "end": {"rv3": "2030-03-04T18:30:00Z", "ghl": "2030-03-11T19:00:00Z"},
        },
        str(ids["moved_in"]): {
            "start": {"rv3": "2030-02-26T03:00:00Z", "ghl": "2030-03-05T03:00:00Z"},
            "end": {"rv3": "2030-02-26T04:00:00Z", "ghl": "2030-03-05T04:00:00Z"},
        },
    }
    totals = report["totales"]
    assert (totals["drift"], totals["en_curso"], totals["ignoradas"], totals["coincidentes"]) == (9, 1, 2, 4)
    assert report["drift"] == 9
    assert report["acciones"] == []


def test_auto_heal_fixes_each_difference_through_the_sync_path_and_a_second_run_finds_none(sides: Sides) -> None:
    ids = seed_every_kind_of_drift(sides)
    healed = sides.report(sides.run(heal=True, max_events_per_slice=3))
    actions = {(a["tipo"], a["motivo"], a["id"] or a["ghl_event_id"]) for a in healed["acciones"]}
    # Each difference but the appointment GHL never got is GHL's state handed to the protocol, which keeps the
    # newest edit: GHL's missed changes are taken, RV3's unsent edit is sent (the protocol's own outbox entry).
    assert actions == {
        ("conciliar", "missing_in_rv3", "evBooked"),
        ("enviar_a_ghl", "missing_in_ghl", str(ids["never_sent"])),
        ("conciliar", "differs", str(ids["cancelled_in_ghl"])),
        ("conciliar", "deleted_in_ghl", str(ids["deleted_in_ghl"])),
        ("conciliar", "differs", str(ids["retitled_in_ghl"])),
        ("conciliar", "differs", str(ids["edited_in_rv3"])),
        ("conciliar", "differs", str(ids["moved_in_ghl"])),
        ("conciliar", "differs", str(ids["moved_out"])),
        ("conciliar", "differs", str(ids["moved_in"])),
    }
    with sides.app.db.transaction() as conn:
        queued = conn.execute(sa.select(outbox.c.appointment_id).where(outbox.c.operation == "reconcile")).all()
    assert [row.appointment_id for row in queued] == [ids["never_sent"]]

    sides.sync_both_ways()
    again = sides.report(sides.run())
    assert again["drift"] == 0, again["totales"]
    with sides.app.db.transaction() as conn:
        rows = {row.id: row for row in conn.execute(sa.select(appointments))}
        booked = conn.execute(sa.select(appointments).where(appointments.c.ghl_event_id == "evBooked")).one()
    assert rows[ids["cancelled_in_ghl"]].status == "cancelled"
    assert rows[ids["deleted_in_ghl"]].status == "cancelled"
    assert rows[ids["retitled_in_ghl"]].title == "Terapia (GHL)"
    assert booked.source == "ghl"
    state = {e["id"]: e for e in sides.sandbox.admin.state()["appointments"]}
    assert state["evEdited"]["startTime"].startswith("2030-03-04T21:00:00")
    assert rows[ids["never_sent"]].ghl_event_id in state


def test_the_run_logs_one_completed_event_with_drift_counts_and_a_drift_alert(
    sides: Sides, caplog: pytest.LogCaptureFixture
) -> None:
    seed_every_kind_of_drift(sides)
    with caplog.at_level(logging.INFO, logger="rv3sync.reconcile"):
        sides.run()
    (completed,) = [r for r in caplog.records if getattr(r, "event", None) == "reconciliation.completed"]
    assert completed.drift == 9  # type: ignore[attr-defined]
    assert completed.counts["faltantes_local"] == 1  # type: ignore[attr-defined]
    assert completed.counts["desincronizadas"] == 5  # type: ignore[attr-defined]
    (alert,) = [r for r in caplog.records if getattr(r, "event", None) == "alert.reconciliation_drift"]
    assert (alert.alert, alert.drift) == ("reconciliation_drift", 9)  # type: ignore[attr-defined]
    assert "Terapia" not in caplog.text  # titles can name patients: never logged


def test_a_clean_location_raises_no_drift_alert(sides: Sides, caplog: pytest.LogCaptureFixture) -> None:
    sides.ghl("evSame", DAY + 14 * H)
    sides.sql(DAY + 14 * H, event_id="evSame")
    with caplog.at_level(logging.INFO, logger="rv3sync.reconcile"):
        report = sides.report(sides.run())
    assert report["drift"] == 0
    assert "alert.reconciliation_drift" not in caplog.text
