"""The sync protocol of one appointment: what each side holds, what is in flight, and every transition."""

# State (`SyncRecord`): the local appointment (what the clinic holds) and its `SyncFacts`: when and by which side
# the local state was made (the clock of `latest_wins`), what GHL is known to hold and since when (`GhlState`, an
# interval of time because our writes are only known to land between sending and the answer), and every write of
# ours not yet forgotten (`Write`: in flight, accepted or of unknown outcome), so that GHL's echo of any of them,
# early, late or repeated, is known as ours and never counts as an edit.
#
# Transitions are pure functions: `local_edit` (front desk or RV3's table), `plan_push` (what the worker sends,
# recorded BEFORE sending), `push_answered` (accepted / refused / unknown / not sent), `lookup_answered` (the
# search for a create whose outcome is unknown), `observe` (a GHL state seen in a webhook or by reconciliation:
# ours or not, duplicated, late, reordered) and `observe_new` (an event no appointment has). Each returns the new
# record and what to do; adapters load the record, perform the effects and store the result.
#
# Rules, in one place:
# - An edit is a whole state of the synced fields. The newest edit wins (`latest_wins`), whichever side made it:
#   a GHL change is applied when it is newer than the local state's edit. A *true conflict* is a GHL change made
#   while the clinic's latest edit had not reached GHL (or that our write of it overwrote): `rv3_wins` /
#   `ghl_wins` decide it instead of the clocks, and every true conflict is recorded with the side that lost.
# - GHL holds a register ordered by its own clock (`dateUpdated`); its known state only ever moves forward, and
#   becomes unknown when two states overlap in time. The local state is pushed whenever GHL is not known to hold
#   it, and a push always carries every synced field (a cancel after a reschedule also moves the event).
# - A create whose outcome is unknown is looked for in GHL (after it can no longer land) before it is sent again.
# - A deleted GHL event never comes back: its delete stands whatever the policy.
#
# The whole protocol, its invariants and its known limits: docs/sync-protocol.md.

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sync_core.decisions import DELETED_IN_GHL, AppointmentChanges, changes_from_ghl
from sync_core.ghl_appointments import GhlAppointment
from sync_core.hashing import SyncedFields, holds, sync_hash, synced_fields_from_appointment, synced_fields_from_ghl
from sync_core.models import Appointment, AppointmentStatus, ConflictPolicy, Source, SyncState, UtcDatetime

SKEW = timedelta(seconds=2)
"""How far GHL's clock and ours may disagree; instants of different clocks are compared with this margin."""
MAX_REQUEST = timedelta(seconds=40)
"""A write not answered lands within this after it was sent, or never (client timeouts < the sync lease)."""
WRITE_MEMORY = timedelta(hours=6)
"""How long a write is remembered after its answer, for knowing its echo (GHL redelivers for ~70 minutes)."""
MAX_WRITES = 16


class Window(BaseModel):
    """[since, until] of one clock."""

    model_config = ConfigDict(frozen=True)

    since: UtcDatetime
    until: UtcDatetime

    def union(self, other: Window | None) -> Window:
        if other is None:
            return self
        return Window(since=min(self.since, other.since), until=max(self.until, other.until))


class GhlState(BaseModel):
    """What GHL holds as far as the app knows, and when GHL took it: within the `ghl` window of GHL's clock
    (`dateUpdated`) and/or the `app` window of ours (a write lands between its sending and its answer; a read
    shows what GHL holds at the moment it was made).

    `fields` is None when it is not known (two states overlap in time, a write's outcome is unknown); `deleted`
    when the event no longer exists. `ours` says no change made in GHL itself is part of it. `in_doubt`: a state
    GHL was seen holding, taken for a write of ours landing, and that write then did not land (refused, never
    sent): it is a change made in GHL, still to be decided — GHL's event is read again before anything is sent.
    """

    model_config = ConfigDict(frozen=True)

    fields: SyncedFields | None
    ghl: Window | None = None
    app: Window | None = None
    ours: bool = False
    deleted: bool = False
    in_doubt: bool = False

    @classmethod
    def of_ours(cls, fields: SyncedFields | None, since: datetime, until: datetime) -> GhlState:
        return cls(fields=fields, app=Window(since=since, until=until), ours=True)

    def after(self, other: GhlState) -> bool:
        """Whether GHL certainly took this state after `other`: so on some clock both have a window on (each
        window bounds the moment on its clock; instants of different clocks are compared `SKEW` apart)."""
        return any(
            mine.since > theirs.until + (timedelta(0) if mine_clock == their_clock else SKEW)
            for mine_clock, mine in (("ghl", self.ghl), ("app", self.app))
            for their_clock, theirs in (("ghl", other.ghl), ("app", other.app))
            if mine is not None and theirs is not None
        )


class WriteOutcome(StrEnum):
    in_flight = "in_flight"
    accepted = "accepted"
    unknown = "unknown"
    absent = "absent"  # a create of unknown outcome looked for once it could no longer land, and not found


class Write(BaseModel):
    """A write of ours to GHL (create or full update), recorded before it is sent."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: Literal["create", "update"]
    fields: SyncedFields
    sent_at: UtcDatetime
    answered_at: UtcDatetime | None = None
    outcome: WriteOutcome = WriteOutcome.in_flight

    @property
    def lands_by(self) -> datetime:
        """The latest instant (our clock) at which GHL can have applied it: its answer, which comes within the
        request's time limit (a later one is a timeout: unknown)."""
        limit = self.sent_at + MAX_REQUEST
        return min(self.answered_at, limit) if self.answered_at is not None else limit

    def may_have_made(self, fields: SyncedFields, at: datetime) -> bool:
        """Whether GHL's state `fields` at GHL's `at` can be this write landing (its echo)."""
        return holds(self.fields, fields) and self.sent_at - SKEW <= at <= self.lands_by + SKEW

    def made_event(self, event: GhlAppointment) -> bool:
        """For a create: whether GHL's event is the one it made: same calendar, contact and start (to the second),
        added while the create could land. (Family members often share a contact and book the same calendar
        together: the start tells their bookings apart. An event moved in GHL before its id reached us is not
        recognised: a known limit, see docs/sync-protocol.md.)"""
        added = event.date_added or event.date_updated
        start = event.start.replace(microsecond=0) if event.start is not None else None
        return (
            self.kind == "create"
            and added is not None
            and (self.fields.calendar_id, self.fields.contact_id) == (event.calendar_id, event.contact_id)
            and start == self.fields.start
            and self.sent_at - SKEW <= added <= self.lands_by + SKEW
        )


class SyncFacts(BaseModel):
    """The protocol's bookkeeping of one appointment, stored with it (JSON)."""

    model_config = ConfigDict(frozen=True)

    edited_at: UtcDatetime | None = None
    """When the local state was made, by `edited_by`'s clock: the moment `latest_wins` compares."""
    edited_by: Source = Source.rv3
    landed_at: UtcDatetime | None = None
    """From when GHL is known to hold the local state (None: not known to have reached GHL)."""
    ghl: GhlState | None = None
    writes: tuple[Write, ...] = ()
    sent: int = 0
    """Writes ever sent (the next write's id)."""
    refused: str | None = None
    """The sync hash of a local state GHL refused: not sent again until it changes (or a retry clears it)."""


class SyncRecord(BaseModel):
    """One appointment as the protocol sees it: the local state and its facts."""

    model_config = ConfigDict(frozen=True)

    appointment: Appointment
    facts: SyncFacts = Field(default_factory=SyncFacts)

    @property
    def fields(self) -> SyncedFields:
        return synced_fields_from_appointment(self.appointment)

    @property
    def deleted_in_ghl(self) -> bool:
        return DELETED_IN_GHL in self.appointment.flags

    @property
    def ghl_holds_it(self) -> bool:
        """GHL is known to hold the local state (or deleted the event, which takes no state any more)."""
        known = self.facts.ghl
        if self.deleted_in_ghl:
            return True
        return (
            self.appointment.ghl_event_id is not None
            and known is not None
            and known.fields is not None
            and holds(self.fields, known.fields)
        )

    @property
    def needs_push(self) -> bool:
        """GHL must be sent the local state: it is not known to hold it, and GHL did not refuse it."""
        if self.ghl_holds_it or self.facts.refused == sync_hash(self.fields):
            return False
        return not (self.appointment.ghl_event_id is None and self.never_sent)

    @property
    def never_sent(self) -> bool:
        """Cancelled before any create of it can have reached GHL: there is nothing to send."""
        return (
            self.appointment.ghl_event_id is None
            and self.appointment.status == AppointmentStatus.cancelled
            and not any(w.kind == "create" and w.outcome is not WriteOutcome.absent for w in self.facts.writes)
        )

    def state(self) -> SyncState:
        """The `sync_state` staff see."""
        if self.facts.refused is not None and self.facts.refused == sync_hash(self.fields):
            return SyncState.error
        if self.never_sent:
            return SyncState.local_only
        return SyncState.synced if self.ghl_holds_it else SyncState.pending

    def settled(self, **appointment: object) -> SyncRecord:
        """The record with its `sync_state` (and any given appointment values) brought up to date."""
        record = self.model_copy(update={"appointment": self.appointment.model_copy(update=appointment)})
        return record.model_copy(
            update={"appointment": record.appointment.model_copy(update={"sync_state": record.state()})}
        )


def _later(a: datetime, b: datetime | None) -> datetime:
    return a if b is None or a > b else b


def merge_ghl(current: GhlState | None, seen: GhlState) -> GhlState:
    """GHL's known state after learning `seen`: the later of the two, or unknown when their times overlap."""
    if current is None or (seen.deleted and not current.deleted):
        return seen
    if current.deleted or current.after(seen):
        return current
    if seen.after(current):
        return seen
    return GhlState(
        fields=_same_state(current.fields, seen.fields),
        ghl=seen.ghl.union(current.ghl) if seen.ghl is not None else current.ghl,
        app=seen.app.union(current.app) if seen.app is not None else current.app,
        ours=current.ours and seen.ours,
    )


def _same_state(current: SyncedFields | None, seen: SyncedFields | None) -> SyncedFields | None:
    """What GHL holds, known two ways at overlapping times (None: two different states, so not known). `holds`
    is one-sided (a write of ours without an assignee is held by GHL's event with the member GHL assigned), so
    either may hold the other; the fuller one is kept. Whichever came first, a write's answer and its echo
    then agree."""
    if current is None or seen is None:
        return None
    if holds(seen, current):
        return current
    return seen if holds(current, seen) else None


def _landed(facts: SyncFacts, *, made_at: datetime, held_at: datetime) -> SyncFacts:
    """The facts once GHL is seen holding a state equal to the local one, made (sent, or edited in GHL) at
    `made_at` and held from `held_at`: the local edit reached GHL by then, unless that state was made before the
    edit (an older one that happens to be the same). The earliest such moment is kept."""
    if facts.edited_at is not None and made_at < facts.edited_at:
        return facts
    landed = held_at if facts.landed_at is None else min(facts.landed_at, held_at)
    return facts.model_copy(update={"landed_at": landed})


def _remembered(writes: Iterable[Write], now: datetime) -> tuple[Write, ...]:
    """The writes still worth remembering: recent ones, and creates whose outcome is still to be found out."""
    kept = [
        w
        for w in writes
        if w.lands_by + WRITE_MEMORY >= now
        or (w.kind == "create" and w.outcome in (WriteOutcome.in_flight, WriteOutcome.unknown))
    ]
    return tuple(sorted(kept, key=lambda w: w.id)[-MAX_WRITES:])


# --- the clinic's side ---------------------------------------------------------------------------------------


def local_edit(record: SyncRecord, edited: Appointment, *, at: datetime) -> SyncRecord:
    """The clinic changed the appointment (front desk, RV3's table): the newest edit, to be sent to GHL."""
    facts = record.facts.model_copy(
        update={"edited_at": _later(at, record.facts.edited_at), "edited_by": Source.rv3, "landed_at": None}
    )
    if facts.refused is not None and facts.refused != sync_hash(synced_fields_from_appointment(edited)):
        facts = facts.model_copy(update={"refused": None})
    return SyncRecord(appointment=edited, facts=facts).settled(last_error=None)


def new_local(appointment: Appointment, *, at: datetime) -> SyncRecord:
    """An appointment the clinic created: nothing of it is in GHL yet."""
    return SyncRecord(appointment=appointment, facts=SyncFacts(edited_at=at, edited_by=Source.rv3)).settled()


def held_by_ghl(
    fields: SyncedFields, *, since: datetime, edited_at: datetime, landed: bool = True, edited_by: Source = Source.rv3
) -> SyncFacts:
    """The facts of an appointment GHL is known to hold as `fields` since `since` (GHL's clock), its local state
    edited at `edited_at` and, unless `landed`, not in GHL yet (seeds, benchmarks, tests)."""
    state = GhlState(fields=fields, ghl=Window(since=since, until=since))
    return SyncFacts(edited_at=edited_at, edited_by=edited_by, landed_at=since if landed else None, ghl=state)


def retry(record: SyncRecord) -> SyncRecord:
    """Staff ask to send an appointment GHL refused again (after fixing what GHL objected to, e.g. in GHL)."""
    return record.model_copy(update={"facts": record.facts.model_copy(update={"refused": None})}).settled(
        last_error=None
    )


def gave_up(record: SyncRecord, reason: str) -> SyncRecord:
    """Retrying the push was used up: shown as an error, and not sent again until it changes or staff retry."""
    facts = record.facts.model_copy(update={"refused": sync_hash(record.fields)})
    return record.model_copy(update={"facts": facts}).settled(last_error=reason)


# --- pushing -------------------------------------------------------------------------------------------------


class PushKind(StrEnum):
    create = "create"
    update = "update"
    lookup = "lookup"  # look for the event of a create whose outcome is unknown before anything else
    wait = "wait"  # a create of unknown outcome may still land: look only once it no longer can
    read = "read"  # read GHL's event and `observe` it: what GHL holds is a change of its own, not decided yet
    skip = "skip"


class PushPlan(BaseModel):
    """What the worker does for the appointment now. For create/update, store `record` (holding `write` in
    flight) BEFORE sending; for lookup, search GHL for `creates` and call `lookup_answered`."""

    model_config = ConfigDict(frozen=True)

    kind: PushKind
    reason: str
    record: SyncRecord
    write: Write | None = None
    creates: tuple[Write, ...] = ()
    wait_s: float = 0.0


def plan_push(record: SyncRecord, *, now: datetime) -> PushPlan:
    """What to send GHL, decided under the appointment's sync lease (so a write still in flight is a dead or
    superseded worker's, whose outcome is unknown)."""
    record = _in_flight_unknown(record)
    appointment, facts = record.appointment, record.facts
    if record.deleted_in_ghl:
        return PushPlan(kind=PushKind.skip, reason="deleted_in_ghl", record=record.settled())
    first = _before_sending(record, now)
    if first is not None:
        return first
    if not record.needs_push:
        reason = "never_sent" if record.never_sent else "refused_by_ghl" if facts.refused else "ghl_holds_it"
        return PushPlan(kind=PushKind.skip, reason=reason, record=record.settled())
    kind: Literal["create", "update"] = "create" if appointment.ghl_event_id is None else "update"
    write = Write(id=facts.sent + 1, kind=kind, fields=record.fields, sent_at=now)
    facts = facts.model_copy(update={"writes": _remembered((*facts.writes, write), now), "sent": write.id})
    return PushPlan(
        kind=PushKind(kind),
        reason="create" if kind == "create" else "ghl_lacks_local_state",
        record=record.model_copy(update={"facts": facts}).settled(),
        write=write,
    )


def _before_sending(record: SyncRecord, now: datetime) -> PushPlan | None:
    """What must come before a write: finding out whether a create of unknown outcome landed, deciding on a GHL
    change not decided yet, waiting out an update that may still land. None when nothing must."""
    appointment, facts = record.appointment, record.facts
    unknown = [w for w in facts.writes if w.outcome is WriteOutcome.unknown]
    if appointment.ghl_event_id is None:
        creates = tuple(w for w in unknown if w.kind == "create")
        if creates:
            ready = max(w.lands_by for w in creates)
            if now < ready:
                wait = (ready - now).total_seconds()
                return PushPlan(kind=PushKind.wait, reason="create_may_still_land", record=record, wait_s=wait)
            return PushPlan(kind=PushKind.lookup, reason="create_outcome_unknown", record=record, creates=creates)
    if not record.needs_push:
        return None
    if facts.ghl is not None and facts.ghl.in_doubt and appointment.ghl_event_id is not None:
        # Sending now would overwrite a change made in GHL that nobody decided on: read it first.
        return PushPlan(kind=PushKind.read, reason="ghl_change_undecided", record=record)
    landing = [w.lands_by for w in unknown if w.kind == "update" and w.lands_by > now]
    if landing:
        # A write that may still land would leave GHL's state unknown whatever is sent now: send once it cannot.
        wait = (max(landing) - now).total_seconds()
        return PushPlan(kind=PushKind.wait, reason="update_may_still_land", record=record, wait_s=wait)
    return None


def _in_flight_unknown(record: SyncRecord) -> SyncRecord:
    """Writes left in flight by a worker that died or lost its lease: they may or may not have landed."""
    facts = record.facts
    stuck = [w for w in facts.writes if w.outcome is WriteOutcome.in_flight]
    if not stuck:
        return record
    known = facts.ghl
    for write in stuck:
        known = merge_ghl(known, GhlState.of_ours(None, write.sent_at, write.lands_by))
    writes = tuple(
        w.model_copy(update={"outcome": WriteOutcome.unknown}) if w.outcome is WriteOutcome.in_flight else w
        for w in facts.writes
    )
    return record.model_copy(update={"facts": facts.model_copy(update={"writes": writes, "ghl": known})})


class Answer(StrEnum):
    accepted = "accepted"
    refused = "refused"  # GHL rejected it (invalid, not found): it did not land and will not by retrying
    unknown = "unknown"  # timeout, reset or 5xx after sending: it may have landed
    not_sent = "not_sent"  # it never reached GHL (rate limit, connection refused)


def push_answered(
    record: SyncRecord,
    write_id: int,
    answer: Answer,
    *,
    now: datetime,
    event_id: str | None = None,
    reason: str | None = None,
    ghl_at: datetime | None = None,
) -> SyncRecord:
    """Record GHL's answer to write `write_id` on the record as it is NOW (webhooks and edits may have changed it
    since it was sent). Facts only: safe from a worker that lost its lease too. `ghl_at`: the event's
    `dateUpdated` when GHL's answer carries it (its documented schema does not), the write's exact time."""
    facts = record.facts
    write = next((w for w in facts.writes if w.id == write_id), None)
    if write is None or (write.outcome is WriteOutcome.absent and answer is not Answer.accepted):
        return record.settled()  # forgotten, or looked for already once it could no longer land
    others = tuple(w for w in facts.writes if w.id != write_id)
    appointment = record.appointment
    if answer is Answer.accepted:
        done = write.model_copy(update={"answered_at": now, "outcome": WriteOutcome.accepted})
        landed = GhlState.of_ours(write.fields, write.sent_at, now)
        if ghl_at is not None:
            landed = landed.model_copy(update={"ghl": Window(since=ghl_at, until=ghl_at)})
        facts = facts.model_copy(
            update={"writes": _remembered((*others, done), now), "ghl": merge_ghl(facts.ghl, landed)}
        )
        if holds(record.fields, write.fields):
            # Known to be in GHL by our answer's time (our clock): by GHL's, surely within SKEW after it.
            facts = _landed(facts, made_at=write.sent_at, held_at=ghl_at or now + SKEW)
        values: dict[str, object] = {"last_error": None}
        if appointment.ghl_event_id is None and event_id:
            values["ghl_event_id"] = event_id
        return record.model_copy(update={"facts": facts}).settled(**values)
    if answer is Answer.unknown:
        done = write.model_copy(update={"outcome": WriteOutcome.unknown})
        maybe = GhlState.of_ours(None, write.sent_at, write.lands_by)
        facts = facts.model_copy(
            update={"writes": _remembered((*others, done), now), "ghl": merge_ghl(facts.ghl, maybe)}
        )
        return record.model_copy(update={"facts": facts}).settled()
    facts = _did_not_land(facts.model_copy(update={"writes": others}), write)
    if answer is Answer.refused and holds(record.fields, write.fields):
        facts = facts.model_copy(update={"refused": sync_hash(record.fields)})
        return record.model_copy(update={"facts": facts}).settled(last_error=reason)
    return record.model_copy(update={"facts": facts}).settled()


def _did_not_land(facts: SyncFacts, write: Write) -> SyncFacts:
    """The facts once `write` is known not to have landed: a GHL state taken for its echo was GHL's own change
    (unless another write of ours, still remembered, can have made it)."""
    known = facts.ghl
    if known is None or not known.ours or known.fields is None or not holds(write.fields, known.fields):
        return facts
    if any(holds(w.fields, known.fields) for w in facts.writes):
        return facts
    return facts.model_copy(update={"ghl": known.model_copy(update={"ours": False, "in_doubt": True})})


def lookup_answered(
    record: SyncRecord, creates: Sequence[Write], found: GhlAppointment | None, *, now: datetime
) -> tuple[SyncRecord, Observed | None]:
    """After looking for the event of creates whose outcome was unknown: adopt the event one of them made (and
    take what GHL holds of it), or know that none landed (the next plan sends the create again)."""
    ids = {w.id for w in creates}
    if found is None:
        # Kept as absent, not forgotten: should one have landed after all, its webhooks are still known as ours.
        writes = tuple(
            w.model_copy(update={"outcome": WriteOutcome.absent}) if w.id in ids else w for w in record.facts.writes
        )
        facts = record.facts.model_copy(update={"writes": writes})
        return record.model_copy(update={"facts": facts}).settled(), None
    linked = record.settled(ghl_event_id=found.id)
    return linked, observe(linked, observation_of(found, seen_at=now), policy=ConflictPolicy.latest_wins)


def adoptable(creates: Sequence[Write], events: Iterable[GhlAppointment]) -> GhlAppointment | None:
    """Of the contact's GHL events, the one a create of these made (the latest added, if several could be)."""
    made = [event for event in events if any(write.made_event(event) for write in creates)]
    return max(
        made, key=lambda event: event.date_added or event.date_updated or datetime.min.replace(tzinfo=UTC), default=None
    )


# --- what GHL holds ------------------------------------------------------------------------------------------


class GhlObservation(BaseModel):
    """A state of a GHL event: from a webhook, or read by reconciliation (`seen_at`: GHL still held it then)."""

    model_config = ConfigDict(frozen=True)

    appointment: GhlAppointment
    fields: SyncedFields | None  # None: the event is deleted
    at: UtcDatetime  # GHL's dateUpdated (the delivery's time when GHL gave none)
    seen_at: UtcDatetime | None = None

    @property
    def event_id(self) -> str:
        return self.appointment.id

    @property
    def deleted(self) -> bool:
        return self.fields is None

    def change(self, *, ours: bool = False) -> GhlState:
        """The change GHL made at `at` (its clock)."""
        return GhlState(fields=self.fields, ghl=Window(since=self.at, until=self.at), ours=ours, deleted=self.deleted)

    def as_state(self, *, ours: bool) -> GhlState:
        """What GHL is known to hold from this observation: its change, or, read by reconciliation, what GHL
        held at the moment of the read (our clock)."""
        if self.seen_at is None:
            return self.change(ours=ours)
        moment = Window(since=self.seen_at, until=self.seen_at)
        return GhlState(fields=self.fields, app=moment, ours=ours, deleted=self.deleted)


def observation_of(
    appointment: GhlAppointment,
    *,
    deleted: bool = False,
    received_at: datetime | None = None,
    seen_at: datetime | None = None,
) -> GhlObservation:
    """The observation of a GHL event (raises ValueError when a live event has no start or end, or no time)."""
    at = appointment.date_updated or received_at or seen_at
    if at is None:
        raise ValueError("a GHL state without any time")
    fields = None if deleted else synced_fields_from_ghl(appointment)
    return GhlObservation(appointment=appointment, fields=fields, at=at, seen_at=seen_at)


class Decision(StrEnum):
    known = "known"  # GHL's state is already known (a redelivery, a re-read)
    echo = "echo"  # GHL's echo of a write of ours
    same = "same"  # a GHL change to what the clinic already holds
    ghl_won = "ghl_won"  # GHL's change is newer (or wins the conflict by policy): taken locally
    local_won = "local_won"  # the local state is newer (or wins by policy): GHL is sent it
    stale = "stale"  # older than a GHL change already taken
    deleted = "deleted"  # GHL deleted the event: the appointment is cancelled
    already_deleted = "already_deleted"
    created = "created"  # an event first seen in GHL
    duplicate = "duplicate"  # an event a create of ours made although the appointment has another: removed


class Conflict(BaseModel):
    """A true conflict: both sides changed the appointment without seeing each other's change."""

    model_config = ConfigDict(frozen=True)

    winner: Source
    reason: str
    local: SyncedFields
    ghl: SyncedFields | None  # None: deleted in GHL


class Observed(BaseModel):
    """The outcome of `observe`: the record to store, what to apply locally, the conflict to record, and whether
    GHL must be sent the local state (`push`)."""

    model_config = ConfigDict(frozen=True)

    record: SyncRecord
    decision: Decision
    changes: AppointmentChanges | None = None
    conflict: Conflict | None = None
    remove_event: str | None = None
    """A GHL event of ours that must not exist (a second copy of the appointment): delete it."""

    @property
    def push(self) -> bool:
        return self.record.needs_push


def observe(record: SyncRecord, seen: GhlObservation, *, policy: ConflictPolicy) -> Observed:
    """What a GHL state seen in a webhook or by reconciliation does to the appointment it belongs to."""
    if record.deleted_in_ghl:
        return Observed(record=record, decision=Decision.already_deleted)
    if seen.deleted:
        return _deleted(record, seen)
    fields = seen.fields
    assert fields is not None
    facts, known = record.facts, record.facts.ghl
    change = seen.change()
    mine = next((w for w in facts.writes if w.may_have_made(fields, seen.at)), None)
    if mine is None and known is not None and not known.in_doubt and _already_known(known, fields, change):
        return Observed(record=record, decision=Decision.known)
    if mine is not None:
        # A late echo of a write older than one GHL accepted after it could land tells nothing new.
        superseded = any(w.outcome is WriteOutcome.accepted and w.sent_at > mine.lands_by for w in facts.writes)
        if not superseded:
            facts = facts.model_copy(update={"ghl": merge_ghl(known, seen.as_state(ours=True))})
        if holds(record.fields, fields):
            facts = _landed(facts, made_at=mine.sent_at, held_at=seen.at)
        return Observed(record=record.model_copy(update={"facts": facts}).settled(), decision=Decision.echo)
    facts = facts.model_copy(update={"ghl": merge_ghl(known, seen.as_state(ours=False))})
    record = record.model_copy(update={"facts": facts})
    if known is not None and not known.ours and known.after(change):
        # Older than a later change GHL made itself (already decided): superseded inside GHL.
        return Observed(record=record.settled(), decision=Decision.stale)
    return _ghl_change(record, seen, policy)


def _already_known(known: GhlState, fields: SyncedFields, change: GhlState) -> bool:
    """Whether GHL's change is the state GHL is known to hold, at the time it is known to hold it."""
    return known.fields is not None and holds(known.fields, fields) and not (change.after(known) or known.after(change))


def _ghl_change(record: SyncRecord, seen: GhlObservation, policy: ConflictPolicy) -> Observed:
    """A change made in GHL (not ours): taken when it wins against the local state, reported when it is a true
    conflict."""
    facts, local, fields = record.facts, record.fields, seen.fields
    assert fields is not None
    if holds(local, fields):
        # GHL's change is the clinic's state: it is the newest edit of that state if it is newer.
        facts = _landed(facts, made_at=seen.at, held_at=seen.at)
        if facts.edited_at is None or seen.at > facts.edited_at:
            facts = facts.model_copy(update={"edited_at": seen.at, "edited_by": Source.ghl})
        return Observed(record=record.model_copy(update={"facts": facts}).settled(), decision=Decision.same)
    winner, reason, conflict = _winner(facts, seen, policy)
    recorded = Conflict(winner=winner, reason=reason, local=local, ghl=fields) if conflict else None
    if winner is Source.rv3:
        # Against a later GHL change the local state holds, this one was superseded inside GHL.
        decision = Decision.stale if facts.edited_by is Source.ghl else Decision.local_won
        return Observed(record=record.settled(), decision=decision, conflict=recorded)
    changes = changes_from_ghl(seen.appointment, record.appointment)
    facts = facts.model_copy(
        update={"edited_at": _later(seen.at, facts.edited_at), "edited_by": Source.ghl, "landed_at": seen.at,
                "refused": None}
    )  # fmt: skip
    result = SyncRecord(appointment=changes.apply_to(record.appointment), facts=facts).settled(last_error=None)
    return Observed(record=result, decision=Decision.ghl_won, changes=changes, conflict=recorded)


def _winner(facts: SyncFacts, seen: GhlObservation, policy: ConflictPolicy) -> tuple[Source, str, bool]:
    """Which side's state stands against GHL's change `seen`, why, and whether it is a true conflict.

    A change made in GHL after GHL held the clinic's latest edit was made on top of it: it wins, whatever the
    clocks say. One made while that edit had not reached GHL (or that our write of it overwrote) is a true
    conflict: the policy decides, `latest_wins` by the two edits' clocks (ties to the clinic: RV3 is where
    staff work). Against an earlier GHL change, GHL's own clock orders them.
    """
    newer = facts.edited_at is None or seen.at > facts.edited_at
    if facts.edited_by is Source.ghl:
        return (Source.ghl, "later_ghl_change", False) if newer else (Source.rv3, "older_ghl_change", False)
    if facts.landed_at is not None and facts.landed_at <= seen.at:
        return Source.ghl, "changed_in_ghl_after_local", False
    by_policy = {ConflictPolicy.rv3_wins: Source.rv3, ConflictPolicy.ghl_wins: Source.ghl}.get(policy)
    if by_policy is not None:
        return by_policy, f"policy_{policy.value}", True
    return (Source.ghl, "ghl_change_is_newer", True) if newer else (Source.rv3, "rv3_change_is_newer", True)


def _deleted(record: SyncRecord, seen: GhlObservation) -> Observed:
    """GHL deleted the event: the appointment is cancelled and flagged, whatever the policy (a deleted event
    takes no change any more); a clinic edit GHL never got is a conflict GHL won."""
    facts = record.facts
    appointment = record.appointment
    pending = facts.edited_by is Source.rv3 and facts.landed_at is None
    conflict = (
        Conflict(winner=Source.ghl, reason="deleted_in_ghl", local=record.fields, ghl=None)
        if pending and appointment.status != AppointmentStatus.cancelled
        else None
    )
    changes = AppointmentChanges(
        ghl_event_id=seen.event_id,
        calendar_id=appointment.calendar_id,
        contact_id=appointment.contact_id,
        title=None,
        notes=None,
        assigned_user_id=appointment.assigned_user_id,
        start=appointment.start,
        end=appointment.end,
        status=AppointmentStatus.cancelled,
        flags=[DELETED_IN_GHL],
    )
    facts = facts.model_copy(
        update={
            "ghl": merge_ghl(facts.ghl, seen.as_state(ours=False)),
            "edited_at": _later(seen.at, facts.edited_at),
            "edited_by": Source.ghl,
            "landed_at": seen.at,
            "refused": None,
        }
    )
    taken = changes.apply_to(appointment)
    return Observed(
        record=SyncRecord(appointment=taken, facts=facts).settled(last_error=None),
        decision=Decision.deleted,
        changes=changes,
        conflict=conflict,
    )


def is_our_create(record: SyncRecord, seen: GhlObservation) -> bool:
    """Whether GHL's event `seen`, unknown by its id, was made by a create of ours for this appointment."""
    return seen.event_id != record.appointment.ghl_event_id and any(
        w.made_event(seen.appointment) for w in record.facts.writes
    )


def link_our_create(record: SyncRecord, seen: GhlObservation, *, policy: ConflictPolicy) -> Observed:
    """The event of our own create, seen before the create's answer: link it, then take it as any state. Should
    the appointment hold another event already (a create looked for and not found had landed after all), this
    one is a second copy of ours: it is removed, and the clinic's appointment keeps its event."""
    if record.appointment.ghl_event_id is None:
        return observe(record.settled(ghl_event_id=seen.event_id), seen, policy=policy)
    remove = None if seen.deleted else seen.event_id
    return Observed(record=record, decision=Decision.duplicate, remove_event=remove)


def observe_new(seen: GhlObservation, *, location_id: str) -> tuple[Appointment, SyncFacts, Decision]:
    """An event no appointment has: booked in GHL (taken as GHL's edit), or a delete arriving before its create
    (kept as a cancelled, deleted appointment, so that a late create changes nothing)."""
    changes = changes_from_ghl(seen.appointment, None, deleted=seen.deleted)
    appointment = changes.new_appointment(appointment_id="new", location_id=location_id)
    facts = SyncFacts(
        edited_at=seen.at,
        edited_by=Source.ghl,
        landed_at=seen.at,
        ghl=seen.as_state(ours=False),
    )
    record = SyncRecord(appointment=appointment, facts=facts).settled()
    return record.appointment, record.facts, Decision.deleted if seen.deleted else Decision.created
