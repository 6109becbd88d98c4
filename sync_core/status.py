"""Status mapping between RV3 (stored vocabulary and its table names) and GHL's `appointmentStatus`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sync_core.models import AppointmentStatus
from sync_core.text import fold

_TO_GHL: dict[AppointmentStatus, str] = {
    AppointmentStatus.scheduled: "new",
    AppointmentStatus.confirmed: "confirmed",
    AppointmentStatus.cancelled: "cancelled",
    AppointmentStatus.attended: "showed",
    AppointmentStatus.no_show: "noshow",
}

_FROM_GHL_EXACT: dict[str, AppointmentStatus] = {ghl: rv3 for rv3, ghl in _TO_GHL.items()}

# Values GHL responses (and RV3's earlier integration, which sent its own vocabulary) also use.
# "invalid" marks a booking GHL considers void, so it no longer holds the slot.
_FROM_GHL_ALIASES: dict[str, AppointmentStatus] = {
    "booked": AppointmentStatus.scheduled,
    "active": AppointmentStatus.scheduled,
    "scheduled": AppointmentStatus.scheduled,
    "completed": AppointmentStatus.attended,
    "no_show": AppointmentStatus.no_show,
    "invalid": AppointmentStatus.cancelled,
}

# RV3's `appointment_statuses.name` values (and the older enum), compared without case or accents.
_FROM_RV3_NAME: dict[str, AppointmentStatus] = {
    "pendiente": AppointmentStatus.scheduled,
    "activo": AppointmentStatus.scheduled,
    "completado": AppointmentStatus.attended,
    "cancelado": AppointmentStatus.cancelled,
}

_TO_RV3_NAME: dict[AppointmentStatus, str | None] = {
    AppointmentStatus.scheduled: "Pendiente",
    AppointmentStatus.confirmed: "Pendiente",
    AppointmentStatus.cancelled: "CANCELADO",
    AppointmentStatus.attended: "Completado",
    # RV3 has no no-show status: its appointment simply stays as it was.
    AppointmentStatus.no_show: None,
}


class StatusMapping(BaseModel):
    """The outcome of reading a foreign status: the mapped status, or the raw value kept and flagged."""

    model_config = ConfigDict(frozen=True)

    raw: str
    status: AppointmentStatus | None
    exact: bool

    @property
    def known(self) -> bool:
        return self.status is not None

    @property
    def flag(self) -> str | None:
        """The flag to store on the appointment when the value could not be mapped."""
        return None if self.known else f"unknown_status:{self.raw[:40]}"


def to_ghl(status: AppointmentStatus) -> str:
    """The `appointmentStatus` value GHL accepts for an RV3 status."""
    return _TO_GHL[status]


def from_ghl(raw: str | None) -> StatusMapping:
    """Read GHL's `appointmentStatus`; never raises, unknown values come back with `status=None`."""
    text = (raw or "").strip()
    key = text.lower()
    if key in _FROM_GHL_EXACT:
        return StatusMapping(raw=text, status=_FROM_GHL_EXACT[key], exact=True)
    return StatusMapping(raw=text, status=_FROM_GHL_ALIASES.get(key), exact=False)


def from_rv3_name(raw: str | None) -> StatusMapping:
    """Read an RV3 status name ("Pendiente", "Completado", "CANCELADO", ...); never raises."""
    text = (raw or "").strip()
    status = _FROM_RV3_NAME.get(fold(text))
    return StatusMapping(raw=text, status=status, exact=status is not None)


def to_rv3_name(status: AppointmentStatus) -> str | None:
    """The RV3 status name to write, or None when RV3 has no equivalent and should be left as is."""
    return _TO_RV3_NAME[status]
