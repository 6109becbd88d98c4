"""The RV3 source port: what the sync reads from and writes to RV3's own data, whatever holds it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Protocol

from sync_core.rv3_mapping import (
    Cursor,
    NewRv3Appointment,
    NewRv3Patient,
    Rv3Appointment,
    Rv3Patient,
    Rv3Therapist,
    Rv3Unreadable,
    Rv3Write,
)
from sync_core.rv3_statuses import Rv3Status

Decide = Callable[[Rv3Appointment | None], Rv3Write | None]


class Rv3Unavailable(RuntimeError):
    """RV3's database cannot be reached or does not look like RV3's; the message never holds the URL."""


class Rv3Refused(RuntimeError):
    """RV3's database refused a write (a NOT NULL column without a default, a duplicate, a foreign key...): told
    from an outage by the database's error code; retrying the same write will not change it. `reason` is the
    database's own message (it names the column, never the URL)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"RV3 refused the write ({code}): {reason}" if code else f"RV3 refused the write: {reason}")
        self.code = code
        self.reason = reason


class Rv3Source(Protocol):
    def changed_appointments(self, *, after: Cursor, limit: int) -> list[Rv3Appointment | Rv3Unreadable]:
        """Appointments whose (`updated_at`, `id`) is past `after`, in that order; a row that cannot be mapped
        comes as `Rv3Unreadable` (never an exception: the rows after it go on)."""
        ...

    def appointments(self, ids: Sequence[int]) -> list[Rv3Appointment | Rv3Unreadable]:
        """The rows with these ids that still exist (soft-deleted ones included, marked `deleted`)."""
        ...

    def appointments_on(self, day: date, *, after_id: int, limit: int) -> list[Rv3Appointment]:
        """The appointments filed on one day (`appointment_date`), soft-deleted ones included, by id after
        `after_id` (the reconciliation reads a day page by page)."""
        ...

    def find_appointments(self, *, patient_id: int, day: date) -> list[Rv3Appointment]:
        """A patient's live appointments on one day (to adopt a create whose outcome was lost)."""
        ...

    def changed_patients(self, *, after: Cursor, limit: int) -> list[Rv3Patient]: ...

    def patients(self, ids: Sequence[int]) -> list[Rv3Patient]: ...

    def find_patients(self, *, email: str | None, phone_digits: str | None) -> list[Rv3Patient]:
        """Live patients with this email, or whose phone ends with these digits (candidates, not matches)."""
        ...

    def therapists(self) -> list[Rv3Therapist]: ...

    def statuses(self) -> list[Rv3Status]: ...

    def write_appointment(
        self, appointment_id: int, decide: Decide, *, stamp: datetime
    ) -> tuple[Rv3Appointment | None, Rv3Appointment | None]:
        """Lock the row, let `decide` look at it, write what it returns; (row before, row after), one transaction.
        `stamp` is RV3's `updated_at` for the write (`sync_core.rv3_mapping.rv3_wall_clock`)."""
        ...

    def create_appointment(self, new: NewRv3Appointment, *, stamp: datetime) -> Rv3Appointment: ...

    def create_patient(self, new: NewRv3Patient, *, stamp: datetime) -> Rv3Patient: ...

    def ping(self) -> None: ...
