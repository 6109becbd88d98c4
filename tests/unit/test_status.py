"""Status mapping between RV3 and GHL, including the values neither side documents."""

from __future__ import annotations

import pytest

from sync_core.models import AppointmentStatus
from sync_core.status import from_ghl, from_rv3_name, to_ghl, to_rv3_name

PAIRS = [
    (AppointmentStatus.scheduled, "new"),
    (AppointmentStatus.confirmed, "confirmed"),
    (AppointmentStatus.cancelled, "cancelled"),
    (AppointmentStatus.attended, "showed"),
    (AppointmentStatus.no_show, "noshow"),
]


@pytest.mark.parametrize(("rv3", "ghl"), PAIRS)
def test_each_rv3_status_maps_to_its_ghl_status_and_back(rv3: AppointmentStatus, ghl: str) -> None:
    assert to_ghl(rv3) == ghl
    mapping = from_ghl(ghl)
    assert mapping.status == rv3 and mapping.exact and mapping.flag is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("booked", AppointmentStatus.scheduled),
        ("active", AppointmentStatus.scheduled),
        ("completed", AppointmentStatus.attended),
        ("invalid", AppointmentStatus.cancelled),
        ("scheduled", AppointmentStatus.scheduled),
        ("CONFIRMED", AppointmentStatus.confirmed),
        (" showed ", AppointmentStatus.attended),
    ],
)
def test_other_values_ghl_responses_use_are_understood(raw: str, expected: AppointmentStatus) -> None:
    assert from_ghl(raw).status == expected


@pytest.mark.parametrize("raw", ["rescheduled", "pending_payment", "", None])
def test_unknown_ghl_status_is_kept_and_flagged_without_crashing(raw: str | None) -> None:
    mapping = from_ghl(raw)
    assert mapping.status is None and not mapping.known
    assert mapping.raw == (raw or "")
    assert mapping.flag == f"unknown_status:{raw or ''}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Pendiente", AppointmentStatus.scheduled),
        ("PENDIENTE", AppointmentStatus.scheduled),
        ("ACTIVO", AppointmentStatus.scheduled),
        ("Completado", AppointmentStatus.attended),
        ("COMPLETADO", AppointmentStatus.attended),
        ("CANCELADO", AppointmentStatus.cancelled),
        ("cancelado", AppointmentStatus.cancelled),
    ],
)
def test_rv3_table_status_names_are_understood(name: str, expected: AppointmentStatus) -> None:
    assert from_rv3_name(name).status == expected


def test_unknown_rv3_status_name_is_flagged() -> None:
    mapping = from_rv3_name("Reprogramado")
    assert mapping.status is None and mapping.flag == "unknown_status:Reprogramado"


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (AppointmentStatus.scheduled, "Pendiente"),
        (AppointmentStatus.confirmed, "Pendiente"),
        (AppointmentStatus.attended, "Completado"),
        (AppointmentStatus.cancelled, "CANCELADO"),
        (AppointmentStatus.no_show, None),
    ],
)
def test_status_written_back_to_rv3_uses_its_names(status: AppointmentStatus, name: str | None) -> None:
    assert to_rv3_name(status) == name
