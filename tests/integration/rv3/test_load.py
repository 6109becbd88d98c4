"""1,000 front-desk edits made while the sync runs: GHL ends up with each appointment once, as RV3 has it."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from tests.fixtures.rv3_schema import CANCELADO, COMPLETADO, PENDIENTE

from .conftest import DAY, TEN, World

APPOINTMENTS = 20
EDITS = 1000
GHL_STATUS = {PENDIENTE: "new", COMPLETADO: "showed", CANCELADO: "cancelled"}


@pytest.mark.parametrize("rv3_url", ["mariadb"], indirect=True)  # RV3's own engine: concurrent writers
def test_a_thousand_rv3_edits_during_a_sync_run_reach_ghl_exactly_once_in_effect(world: World) -> None:
    desk = world.desk
    patients = [desk.add_patient(name=f"Paciente {i}", phone1=f"9870001{i:02d}") for i in range(5)]
    ids = [desk.book(patients[i % 5], DAY, TEN) for i in range(APPOINTMENTS)]
    world.sync()
    assert world.ghl.creates == APPOINTMENTS

    def front_desk_at_work() -> None:
        rng = random.Random(8)
        for _ in range(EDITS):
            rv3_id = rng.choice(ids)
            kind = rng.random()
            if kind < 0.5:
                desk.move(rv3_id, hour=TEN.replace(hour=rng.randint(8, 19)))
            elif kind < 0.8:
                desk.move(rv3_id, day=DAY + timedelta(days=rng.randint(0, 10)))
            else:
                desk.set_status(rv3_id, rng.choice([PENDIENTE, COMPLETADO, CANCELADO]))

    editing = threading.Thread(target=front_desk_at_work)
    editing.start()
    runs = 0
    while editing.is_alive():
        world.sync()
        runs += 1
        editing.join(timeout=0.5)  # the next run soon after, while the front desk keeps working
    world.sync()
    assert runs >= 2

    assert world.ghl.creates == APPOINTMENTS and len(world.ghl.events) == APPOINTMENTS
    for rv3_id in ids:
        row = desk.appointment(rv3_id)
        event = world.ghl_event(rv3_id)
        assert row is not None and event is not None
        assert event["appointmentStatus"] == GHL_STATUS[row.appointment_status_id]
        if row.appointment_status_id != CANCELADO:  # GHL keeps a cancelled event where it was
            expected = f"{row.appointment_date.date().isoformat()}T{row.hour.isoformat()}-05:00"
            assert event["startTime"] == expected
    sent = len(world.ghl.requests)
    world.sync()
    assert len(world.ghl.requests) == sent
