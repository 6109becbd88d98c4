"""One location's reconciliation run in progress: its lease on the run and what the walk has found so far (what
`compare` works on and `worker` drives)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.ghl.errors import NotFound
from shared.services.reconcile.runs import ReconcileMessage
from shared.store import locations as location_repo
from shared.store import reconciliation as stored
from shared.store import reports
from shared.work import Work
from sync_core.ghl_appointments import parse_ghl_appointment
from sync_core.models import ConflictPolicy
from sync_core.reconcile import Finding, GhlRecord, Heal, ReconciliationReport
from sync_core.rv3_reconcile import Rv3Context, Rv3Finding

RUN_LEASE = timedelta(seconds=90)


class LeaseLost(RuntimeError):
    """Another worker took over the run (our lease expired): stop without writing anything more."""


@dataclass
class Lease:
    """Our hold on the run; renewed at each checkpoint and before GHL calls once half of it has passed."""

    work: Work
    report_id: int
    until: datetime
    held: bool = True

    def keep(self) -> None:
        now = self.work.now()
        if self.until - now > RUN_LEASE / 2:
            return
        until = now + RUN_LEASE
        with self.work.transaction() as conn:
            renewed = reports.renew(conn, self.report_id, self.until, until)
        if not renewed:
            self.held = False
            raise LeaseLost(f"reconciliation report {self.report_id}")
        self.until = until


@dataclass
class Run:
    """One location's run in progress: its inputs, its report so far, and the fixes of the current slice."""

    work: Work
    message: ReconcileMessage
    location: location_repo.LocationRecord
    row: reports.RunRecord
    lease: Lease
    report: ReconciliationReport
    calendars: list[str]
    policy: ConflictPolicy
    to_ghl: list[tuple[Finding, Heal]] = field(default_factory=list)
    to_rv3: list[tuple[Finding, Heal]] = field(default_factory=list)
    rv3_fixes: list[Rv3Finding] = field(default_factory=list)
    rv3: Rv3Context | None = None  # RV3's rules for this run, when RV3's own tables are synced here

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.message.desde, self.message.hasta

    def in_scope(self, appointment: stored.StoredAppointment) -> bool:
        """Whether the stored walk of this run meets the appointment (its start in the window)."""
        start, end = self.window
        return appointment.calendar_id in self.calendars and start <= appointment.start_at < end

    def fetch(self, calendar_id: str) -> Callable[[datetime, datetime], Sequence[Mapping[str, object]]]:
        def events(start: datetime, end: datetime) -> list[dict[str, Any]]:
            self.lease.keep()
            found = self.work.ghl.list_events(
                self.location.ghl_location_id, calendar_id=calendar_id, start=start, end=end
            )
            return [event.model_dump() for event in found]

        return events

    def ghl_event(self, event_id: str) -> GhlRecord | None:
        """GHL's event by id, None when GHL no longer has it (deleted)."""
        self.lease.keep()
        try:
            event = self.work.ghl.get_event(self.location.ghl_location_id, event_id)
        except NotFound:
            return None
        return GhlRecord.of(parse_ghl_appointment(event.model_dump(), tz=self.location.timezone))
