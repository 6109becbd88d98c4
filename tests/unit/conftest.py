"""Shared builders for the pure-domain unit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sync_core.models import Appointment, AppointmentStatus

LIMA = ZoneInfo("America/Lima")

AppointmentFactory = Callable[..., Appointment]


@pytest.fixture
def make_appointment() -> AppointmentFactory:
    """Builds a stored appointment (Mon 22 Dec 2025, 10:00-11:00 Lima) with any field overridden."""

    def build(**overrides: Any) -> Appointment:
        values: dict[str, Any] = {
            "id": "a1",
            "location_id": "loc1",
            "calendar_id": "cal1",
            "contact_id": "con1",
            "title": "Terapia - Ana",
            "start": datetime(2025, 12, 22, 10, tzinfo=LIMA),
            "end": datetime(2025, 12, 22, 11, tzinfo=LIMA),
            "status": AppointmentStatus.scheduled,
        }
        values.update(overrides)
        return Appointment(**values)

    return build
