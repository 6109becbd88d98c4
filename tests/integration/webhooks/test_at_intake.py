"""POST /api/webhooks/ghl with a database: GHL's echo of our own write is applied by the intake itself (no queue
message, no receive, no delete); anything else is queued untouched for the worker, as is everything the intake
cannot apply in time (an error, a slow database, too many at the same moment)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from shared.services import inbound, webhook_intake
from shared.services.webhook_intake import AT_ONCE_MAX
from shared.store.schema import appointments, webhook_inbox
from shared.work import Work
from tests.fixtures.app import App
from tools.ghl_sandbox.keys import SigningKeys

from .helpers import (
    EVENT,
    appointment_body,
    post_async,
    post_signed,
    queued,
    raw,
    rows,
    signed_headers,
    store_appointment,
)

SYNCED = "2030-03-01T11:00:00.000Z"  # when the stored appointments were pushed (helpers.SYNCED_AT)
LATER = "2030-03-02T09:00:00.000Z"


@pytest.fixture(autouse=True)
def fresh_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pause left over from another test's failure."""
    monkeypatch.setattr(webhook_intake, "_GATE", webhook_intake._AtOnceGate())


def _inbox(app: App) -> list[tuple[bool, str | None]]:
    return [(entry.success, entry.outcome) for entry in rows(app.db, webhook_inbox)]


def test_the_echo_of_our_write_is_applied_at_intake_and_never_queued(
    webhook_app: App, signing_keys: SigningKeys
) -> None:
    store_appointment(webhook_app.db, webhook_app.location_pk)
    [before] = rows(webhook_app.db, appointments)
    body = appointment_body("AppointmentUpdate", dateUpdated=SYNCED)
    for _delivery in range(2):  # GHL's redelivery of it changes nothing either
        answer = post_signed(signing_keys, body)
        assert (answer.status, answer.body["status"]) == (200, "accepted")
    assert queued() == []
    [outcome] = _inbox(webhook_app)
    assert outcome[0] and outcome[1] in ("echo", "known")
    [after] = rows(webhook_app.db, appointments)
    assert (after.version, after.updated_at, after.sync_state) == (before.version, before.updated_at, "synced")


def test_a_change_made_in_ghl_is_queued_untouched_and_the_worker_applies_it(
    webhook_app: App, signing_keys: SigningKeys
) -> None:
    store_appointment(webhook_app.db, webhook_app.location_pk)
    moved = appointment_body(
        "AppointmentUpdate", startTime="2030-03-12T12:00:00-05:00", endTime="2030-03-12T13:00:00-05:00",
        dateUpdated=LATER,
    )  # fmt: skip
    booked = appointment_body(id="ev_booked_in_ghl", dateAdded=LATER, dateUpdated=LATER)
    for body in (moved, booked):
        assert post_signed(signing_keys, body).status == 200
    assert _inbox(webhook_app) == []  # nothing applied, nothing half-stored
    [row] = rows(webhook_app.db, appointments)
    assert row.start_at.hour == 15  # still 10:00 Lima
    waiting = queued()
    assert [m["event"]["appointment"]["id"] for m in waiting] == [EVENT, "ev_booked_in_ghl"]
    assert [inbound.process(m).detail for m in waiting] == ["ghl_won", "created"]
    moved_row = next(r for r in rows(webhook_app.db, appointments) if r.ghl_event_id == EVENT)
    assert moved_row.start_at.hour == 17


def test_when_applying_fails_the_echo_is_queued_and_the_intake_stops_trying_for_a_while(
    webhook_app: App, signing_keys: SigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_appointment(webhook_app.db, webhook_app.location_pk)
    calls: list[str] = []

    def unreachable(work: Work, message: Any) -> bool:
        calls.append(message.dedupe_key)
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(inbound, "apply_if_echo", unreachable)
    first = appointment_body("AppointmentUpdate", dateUpdated=SYNCED)
    second = appointment_body("AppointmentUpdate", dateUpdated=SYNCED)
    assert [post_signed(signing_keys, body).status for body in (first, second)] == [200, 200]
    assert len(calls) == 1  # paused after the failure: the second went straight to the queue
    waiting = queued()
    assert len(waiting) == 2
    assert {inbound.process(m).detail for m in waiting} <= {"echo", "known", "already applied"}


def test_an_echo_applied_too_slowly_is_queued_and_still_applied_once(
    webhook_app: App, signing_keys: SigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_appointment(webhook_app.db, webhook_app.location_pk)
    release, finished = threading.Event(), threading.Event()
    real = inbound.apply_if_echo

    def slow(work: Work, message: Any) -> bool:
        release.wait(10)  # a database lock held long
        try:
            return real(work, message)
        finally:
            finished.set()

    monkeypatch.setattr(inbound, "apply_if_echo", slow)
    monkeypatch.setattr(webhook_intake, "AT_ONCE_DEADLINE_S", 0.05)
    answer = post_signed(signing_keys, appointment_body("AppointmentUpdate", dateUpdated=SYNCED))
    assert answer.status == 200
    [waiting] = queued()  # GHL got its answer without waiting for the database
    release.set()
    assert finished.wait(10)
    assert inbound.process(waiting).detail == "already applied"  # the late transaction committed
    assert len(_inbox(webhook_app)) == 1


def test_a_burst_of_echoes_applies_a_few_at_intake_and_queues_the_rest_each_applied_once(
    webhook_app: App, signing_keys: SigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = AT_ONCE_MAX + 3
    for n in range(count):
        store_appointment(webhook_app.db, webhook_app.location_pk, ghl_event_id=f"ev_{n}")
    bodies = [raw(appointment_body("AppointmentUpdate", id=f"ev_{n}", dateUpdated=SYNCED)) for n in range(count)]
    release = threading.Event()
    applying: list[str] = []
    real = inbound.apply_if_echo

    def held(work: Work, message: Any) -> bool:
        applying.append(message.dedupe_key)
        release.wait(10)
        return real(work, message)

    monkeypatch.setattr(inbound, "apply_if_echo", held)

    async def burst() -> list[int]:
        posts = [asyncio.create_task(post_async(data, signed_headers(signing_keys, data))) for data in bodies]
        for _ in range(500):  # until those beyond AT_ONCE_MAX are queued (the first ones hold their threads)
            if len(queued()) == count - AT_ONCE_MAX:
                break
            await asyncio.sleep(0.01)
        release.set()
        return [(await post).status for post in posts]

    assert asyncio.run(burst()) == [200] * count
    assert len(applying) == AT_ONCE_MAX
    # Turned away once, the intake queues for a moment even with room again: one more echo now is queued.
    data = raw(appointment_body("AppointmentUpdate", id="ev_0", dateUpdated=SYNCED))
    assert asyncio.run(post_async(data, signed_headers(signing_keys, data))).status == 200
    assert len(applying) == AT_ONCE_MAX
    waiting = queued()
    assert len(waiting) == count - AT_ONCE_MAX + 1
    for message in waiting:
        assert inbound.process(message).detail in ("echo", "known")
    assert len(_inbox(webhook_app)) == count + 1


def test_a_webhook_of_an_unconfigured_location_is_queued_and_warned_about_once(
    webhook_app: App, signing_keys: SigningKeys, caplog: pytest.LogCaptureFixture
) -> None:
    body = appointment_body("AppointmentUpdate", locationId="loc_nobody_set_up", dateUpdated=SYNCED)
    body["locationId"] = "loc_nobody_set_up"
    assert post_signed(signing_keys, body).status == 200
    [waiting] = queued()
    assert inbound.process(waiting).detail == "unknown_location"
    warnings = [r for r in caplog.records if "location that is not configured" in r.getMessage()]
    assert len(warnings) == 1  # by the worker that recorded it, not also by the intake that passed it on
