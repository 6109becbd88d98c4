"""RV3's appointment statuses as the sync reads and writes them: by the location's mapping, else by name."""

# RV3 seeds no statuses: each clinic creates its own (`appointment_statuses.name` is not even unique) and cancels
# by choosing one of them. Each location says what its statuses mean through the API (by id, checked against the
# statuses RV3 has); a status it did not map is read by its name (RV3's own Pendiente / Completado / CANCELADO and
# the usual Spanish synonyms). A status that means nothing to the sync, and a sync status with no RV3 status to
# write, are reported (`problems`), never guessed.

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from sync_core.models import AppointmentStatus
from sync_core.status import from_rv3_name, to_rv3_name
from sync_core.text import collapse_spaces, fold

# Names a clinic commonly gives its statuses, compared folded (no accents, no case). RV3's own code needs
# "Pendiente" and "Completado"; "CANCELADO" is its cancel status; the rest are what clinics create.
_SYNONYMS: dict[str, AppointmentStatus] = {
    **{name: AppointmentStatus.scheduled for name in ("programado", "programada", "reservado", "reservada")},
    **{name: AppointmentStatus.confirmed for name in ("confirmado", "confirmada")},
    **{name: AppointmentStatus.cancelled for name in ("cancelada", "anulado", "anulada")},
    **{name: AppointmentStatus.attended for name in ("completada", "atendido", "atendida", "asistio")},
    **{name: AppointmentStatus.no_show for name in ("no asistio", "inasistencia", "no show", "noshow", "falto")},
}

# What a GHL change may need to write into RV3. A no-show is optional: RV3 has none unless the clinic made one,
# and then its appointment simply stays as it was.
NEEDED_FOR_WRITE = (AppointmentStatus.scheduled, AppointmentStatus.cancelled, AppointmentStatus.attended)


def needs_row(status: AppointmentStatus) -> bool:
    """Whether writing this status into RV3 needs an RV3 status row (a confirmed one is RV3's pending)."""
    return (AppointmentStatus.scheduled if status is AppointmentStatus.confirmed else status) in NEEDED_FOR_WRITE


# How the front desk reads a sync status (Spanish, as in the API's messages).
LABELS: dict[AppointmentStatus, str] = {
    AppointmentStatus.scheduled: "pendiente",
    AppointmentStatus.confirmed: "confirmada",
    AppointmentStatus.cancelled: "cancelada",
    AppointmentStatus.attended: "atendida",
    AppointmentStatus.no_show: "no asistió",
}


class Rv3Status(BaseModel):
    """A row of RV3's `appointment_statuses`."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str

    @property
    def key(self) -> str:
        return status_key(self.name)


def status_key(name: str) -> str:
    """How status names are compared: without accents, case or extra spaces."""
    return fold(collapse_spaces(name))


def status_by_name(name: str | None) -> AppointmentStatus | None:
    """The sync status an RV3 status name means by itself ("Pendiente", "CANCELADO", a clinic's "Cancelada")."""
    known = from_rv3_name(name).status
    if known is None and name is not None:
        return _SYNONYMS.get(status_key(name))
    return known


class StatusChoice(BaseModel):
    """One line of a location's mapping: RV3's status `rv3_status_id` means `status`; `write`: it is the one
    written when a GHL change sets that status (needed only when several RV3 statuses mean the same)."""

    model_config = ConfigDict(frozen=True)

    rv3_status_id: int
    status: AppointmentStatus
    write: bool = False


class StatusEntry(BaseModel):
    """An RV3 status as the sync reads it: what it means, and whether by the location's mapping or by its name."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    status: AppointmentStatus | None
    source: str | None  # "mapping" | "name" | None (not understood)
    write: bool  # the status written for `status`


class Rv3StatusMap(BaseModel):
    """RV3's statuses (`rows`) with one location's mapping (`choices`): the status of a name RV3 shows, and the
    status row to write for a sync status."""

    model_config = ConfigDict(frozen=True)

    rows: tuple[Rv3Status, ...] = ()
    choices: tuple[StatusChoice, ...] = ()

    @classmethod
    def of(cls, rows: Iterable[Rv3Status], choices: Iterable[StatusChoice] = ()) -> Rv3StatusMap:
        return cls(rows=tuple(sorted(rows, key=lambda row: row.id)), choices=tuple(choices))

    def _mapped(self) -> dict[int, StatusChoice]:
        ids = {row.id for row in self.rows}
        return {choice.rv3_status_id: choice for choice in self.choices if choice.rv3_status_id in ids}

    def _by_key(self) -> dict[str, AppointmentStatus]:
        mapped = self._mapped()
        return {row.key: mapped[row.id].status for row in self.rows if row.id in mapped}

    def status_of(self, name: str | None) -> AppointmentStatus | None:
        """What an RV3 row's status (its name, as the sync reads rows) means; None when nothing says.

        Rows are read by name, so RV3 statuses sharing a name mean the same (the mapping refuses otherwise)."""
        if name is None:
            return None
        mapped = self._by_key().get(status_key(name))
        return mapped if mapped is not None else status_by_name(name)

    def row_for(self, status: AppointmentStatus) -> Rv3Status | None:
        """RV3's status row to write for a sync status; None when RV3 has none (the status is then left)."""
        wanted = [status, AppointmentStatus.scheduled] if status is AppointmentStatus.confirmed else [status]
        mapped = self._mapped()
        taken = self._by_key()  # an unmapped row named like a mapped one reads as that one: never written for another
        for target in wanted:
            chosen = [row for row in self.rows if row.id in mapped and mapped[row.id].status is target]
            marked = [row for row in chosen if mapped[row.id].write]
            if marked or chosen:
                return (marked or chosen)[0]
            free = [row for row in self.rows if row.id not in mapped and row.key not in taken]
            canonical = to_rv3_name(target)
            for row in free:
                if canonical is not None and row.key == fold(canonical):
                    return row
            for row in free:
                if status_by_name(row.name) is target:
                    return row
        return None

    def entries(self) -> list[StatusEntry]:
        mapped = self._mapped()
        written = {row.id for row in (self.row_for(status) for status in AppointmentStatus) if row is not None}
        out: list[StatusEntry] = []
        for row in self.rows:
            status = mapped[row.id].status if row.id in mapped else self.status_of(row.name)
            source = "mapping" if row.id in mapped else ("name" if status is not None else None)
            out.append(StatusEntry(id=row.id, name=row.name, status=status, source=source, write=row.id in written))
        return out

    def unmapped(self) -> list[Rv3Status]:
        """RV3's statuses the sync does not understand: rows with them cannot be synced faithfully."""
        return [row for row in self.rows if self.status_of(row.name) is None]

    def missing(self) -> list[AppointmentStatus]:
        """Sync statuses a GHL change may need and RV3 has no status for."""
        return [status for status in NEEDED_FOR_WRITE if self.row_for(status) is None]

    def problems(self) -> list[str]:
        """What the front desk must fix, in Spanish, for `GET /api/rv3/status` and the logs."""
        lines = [
            f"El estado «{row.name}» (id {row.id}) de Reflexo V3 no está asignado: las citas con ese estado se "
            "sincronizan sin cambiar su estado en GoHighLevel. Asígnelo en PUT /api/rv3/statuses."
            for row in self.unmapped()
        ]
        lines += [
            f"Reflexo V3 no tiene un estado para «{LABELS[status]}»: ese cambio de GoHighLevel no se puede escribir "
            "en Reflexo V3. Cree el estado en Reflexo V3 y asígnelo en PUT /api/rv3/statuses."
            for status in self.missing()
        ]
        return lines


class MappingRefused(ValueError):
    """A mapping the API refuses (422): each line says why, in Spanish."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


def checked_choices(rows: Sequence[Rv3Status], choices: Sequence[StatusChoice]) -> tuple[StatusChoice, ...]:
    """The mapping, if it can be applied to RV3's statuses `rows`; raises MappingRefused otherwise."""
    by_id = {row.id: row for row in rows}
    reasons: list[str] = []
    seen: dict[int, StatusChoice] = {}
    for choice in choices:
        if choice.rv3_status_id not in by_id:
            reasons.append(f"El estado {choice.rv3_status_id} no existe en Reflexo V3.")
        elif choice.rv3_status_id in seen:
            reasons.append(f"El estado {choice.rv3_status_id} aparece más de una vez.")
        seen.setdefault(choice.rv3_status_id, choice)
    meaning: dict[str, tuple[Rv3Status, AppointmentStatus]] = {}
    for status_id, choice in seen.items():
        row = by_id.get(status_id)
        if row is None:
            continue
        first = meaning.setdefault(row.key, (row, choice.status))
        if first[1] is not choice.status:
            reasons.append(
                f"Los estados {first[0].id} y {row.id} se llaman «{row.name}»: no pueden significar cosas distintas."
            )
    writers: dict[AppointmentStatus, list[int]] = {}
    for choice in seen.values():
        if choice.write:
            writers.setdefault(choice.status, []).append(choice.rv3_status_id)
    for status, ids in writers.items():
        if len(ids) > 1:
            listed = ", ".join(str(i) for i in sorted(ids))
            reasons.append(f"Solo un estado puede escribirse como «{LABELS[status]}» (marcados: {listed}).")
    if reasons:
        raise MappingRefused(reasons)
    return tuple(sorted(seen.values(), key=lambda choice: choice.rv3_status_id))


def changed_meanings(before: Rv3StatusMap, after: Rv3StatusMap) -> set[str]:
    """RV3 status names (folded) whose meaning a new mapping changed: rows with them are to be read again."""
    return {row.key for row in after.rows if before.status_of(row.name) is not after.status_of(row.name)}


__all__ = [
    "LABELS",
    "NEEDED_FOR_WRITE",
    "MappingRefused",
    "Rv3Status",
    "Rv3StatusMap",
    "StatusChoice",
    "StatusEntry",
    "changed_meanings",
    "checked_choices",
    "needs_row",
    "status_by_name",
    "status_key",
]
