"""A model of GHL, the network and the workers, driving `sync_core.protocol` through every interleaving.

One appointment, made at the front desk or booked in GHL, is then edited on both sides while two workers push
it (each renewing a 40 s lease that can lapse, so both may have a write in flight), GHL applies, refuses or
answers late, a worker crashes between sending and recording, webhooks are duplicated, delayed, reordered and
dropped, and reconciliation reads GHL's current state at any moment. After quiescence (in-flight requests
settled, a last reconciliation, the worker run until nothing is left to send):

- both sides hold the same state, which is the newest edit the app could know of, whichever side made it
  (`latest_wins`; an edit in GHL overwritten before any webhook or read reported it cannot be known);
- an echo of our own write is never taken as a GHL edit, and never makes a second appointment;
- GHL never holds two events for the appointment;
- the local state never moves back to an older edit;
- a GHL edit the protocol does not take is recorded as a conflict unless a later GHL edit superseded it.

`python -m tests.unit.protocol_model --minutes 30` soaks it with fresh random seeds (the suite runs it with a
fixed seed and a bounded number of examples).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sync_core import protocol as p
from sync_core.decisions import DELETED_IN_GHL
from sync_core.ghl_appointments import GhlAppointment
from sync_core.hashing import SyncedFields, holds
from sync_core.models import Appointment, AppointmentStatus, ConflictPolicy, Source, SyncState
from sync_core.status import to_ghl

T0 = datetime(2030, 3, 4, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=40)
HOURS = (9, 10, 11, 12)  # few slots, so that a state comes back (A -> B -> A) often
CALENDAR, CONTACT = "cal_1", "con_1"
MAX_OFFSET_MS = 1500  # GHL's clock against ours (within the protocol's SKEW)
MAX_OFFSET = timedelta(milliseconds=MAX_OFFSET_MS)
MEMBER = "usr_member"  # the calendar member GHL assigns to a booking sent without one


def _as_ghl_takes(fields: SyncedFields) -> SyncedFields:
    """What GHL holds after a write of `fields`: the app sends no assignee, GHL assigns the calendar's member."""
    return fields if fields.assigned_user_id else fields.model_copy(update={"assigned_user_id": MEMBER})


def _same_edit(a: SyncedFields, b: SyncedFields) -> bool:
    """The same state as far as anyone edits it (nobody in the model edits the assignee GHL fills in)."""
    a, b = (f.model_copy(update={"assigned_user_id": None}) for f in (a, b))
    return holds(a, b) and holds(b, a)


def _fields(hour: int, status: AppointmentStatus = AppointmentStatus.scheduled) -> SyncedFields:
    start = T0.replace(hour=hour) + timedelta(days=1)
    return SyncedFields(
        calendar_id=CALENDAR,
        contact_id=CONTACT,
        start=start,
        end=start + timedelta(minutes=45),
        status=status.value,
        title="Consulta",
        assigned_user_id=None,
    )


@dataclass
class Event:
    """GHL's event: its state, `dateUpdated` (GHL's clock), and which edit made that state."""

    id: str
    fields: SyncedFields
    date_updated: datetime
    made_by: str  # "user:<n>" or "app:<write id>"
    deleted: bool = False
    date_added: datetime | None = None
    created_by: str = ""

    def __post_init__(self) -> None:
        self.date_added = self.date_added or self.date_updated
        self.created_by = self.created_by or self.made_by

    def appointment(self) -> GhlAppointment:
        return GhlAppointment(
            id=self.id,
            location_id="loc_1",
            calendar_id=self.fields.calendar_id,
            contact_id=self.fields.contact_id,
            title=self.fields.title,
            appointment_status=to_ghl(AppointmentStatus(self.fields.status)),
            assigned_user_id=self.fields.assigned_user_id,
            start=self.fields.start,
            end=self.fields.end,
            date_added=self.date_added,
            date_updated=self.date_updated,
        )


@dataclass
class Webhook:
    seen: p.GhlObservation
    made_by: str


@dataclass
class Request:
    """A write on its way: sent by `worker`, received (applied or refused) by GHL or not yet."""

    worker: int
    write: p.Write
    event_id: str | None
    deadline: datetime
    lease: datetime
    received: bool = False
    result: Literal["applied", "unchanged", "refused", "not_found"] | None = None
    event_made: str | None = None


@dataclass
class Edit:
    side: Source
    at: datetime
    fields: SyncedFields | None  # None: deleted in GHL
    known: bool = False  # the app saw it (local edits always; GHL edits once delivered or read)
    seq: int = 0  # order of making (two front-desk edits may carry the same instant)
    ours_alike: bool = False  # the state of a write of ours landing meanwhile: indistinguishable from its echo
    seen_first: bool = False  # the app saw it before any write of ours of that state existed


@dataclass
class World:
    now: datetime = T0
    ghl_offset: timedelta = timedelta(0)
    events: dict[str, Event] = field(default_factory=dict)
    records: dict[int, p.SyncRecord] = field(default_factory=dict)
    outbox: set[int] = field(default_factory=set)
    lease_until: dict[int, datetime] = field(default_factory=dict)
    webhooks: list[Webhook] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    edits: dict[str, Edit] = field(default_factory=dict)
    conflicts: list[p.Conflict] = field(default_factory=list)
    untaken: list[tuple[str, p.Decision]] = field(default_factory=list)
    users: int = 0
    events_made: int = 0

    def ghl_now(self, previous: datetime | None = None) -> datetime:
        moment = self.now + self.ghl_offset
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if previous is not None and moment <= previous:
            return previous + timedelta(milliseconds=1)
        return moment


class ProtocolMachine(RuleBasedStateMachine):
    policy = ConflictPolicy.latest_wins

    def __init__(self) -> None:
        super().__init__()
        self.w = World()
        self.busy: dict[int, Request | None] = {1: None, 2: None}
        self.refusals = True

    # --- set-up ---------------------------------------------------------------------------------------------

    @initialize(
        origin=st.sampled_from([Source.rv3, Source.ghl]),
        hour=st.sampled_from(HOURS),
        offset_ms=st.integers(-MAX_OFFSET_MS, MAX_OFFSET_MS),
    )
    def start(self, origin: Source, hour: int, offset_ms: int) -> None:
        self.w.ghl_offset = timedelta(milliseconds=offset_ms)
        if origin is Source.rv3:
            appointment = self._appointment(1, _fields(hour))
            self.w.records[1] = p.new_local(appointment, at=self.w.now)
            self.w.outbox.add(1)
            self._edit("rv3:0", Edit(Source.rv3, self.w.now, _fields(hour), known=True))
        else:
            self._ghl_user_book(hour)

    @staticmethod
    def _appointment(local_id: int, fields: SyncedFields) -> Appointment:
        return Appointment(
            id=str(local_id),
            location_id="loc_1",
            calendar_id=CALENDAR,
            contact_id=CONTACT,
            title=fields.title,
            start=fields.start,
            end=fields.end,
            status=AppointmentStatus(fields.status),
        )

    # --- the clock ------------------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.2, 1.0, 3.0, 15.0, 45.0]))
    def tick(self, seconds: float) -> None:
        self.w.now += timedelta(seconds=seconds)
        # A request GHL has not received by its deadline never will (its connection is gone).
        self.w.requests = [r for r in self.w.requests if r.received or r.deadline >= self.w.now]

    # --- the clinic -----------------------------------------------------------------------------------------

    @precondition(lambda self: self._record() is not None)
    @rule(hour=st.sampled_from(HOURS), cancel=st.booleans())
    def front_desk_edit(self, hour: int, cancel: bool) -> None:
        record = self._record()
        assert record is not None
        if record.appointment.status == AppointmentStatus.cancelled:
            return  # the API refuses to edit a cancelled appointment
        status = AppointmentStatus.cancelled if cancel else AppointmentStatus.scheduled
        fields = _fields(hour, status)
        if holds(record.fields, fields) and holds(fields, record.fields):
            return
        self._edit_gap()
        edited = record.appointment.model_copy(
            update={
                "start": fields.start,
                "end": fields.end,
                "status": status,
                "version": record.appointment.version + 1,
            }
        )
        self._store(p.local_edit(record, edited, at=self.w.now))
        self.w.outbox.add(int(record.appointment.id))
        self._edit(f"rv3:{len(self.w.edits)}", Edit(Source.rv3, self.w.now, fields, known=True))

    # --- GHL's users ----------------------------------------------------------------------------------------

    def _ghl_user_book(self, hour: int) -> None:
        event_id = self._new_event_id()
        self.w.users += 1
        made_by = f"user:{self.w.users}"
        event = Event(event_id, _fields(hour), self.w.ghl_now(), made_by)
        self.w.events[event_id] = event
        self._edit(made_by, Edit(Source.ghl, event.date_updated, event.fields))
        self._emit(event)

    def _new_event_id(self) -> str:
        self.w.events_made += 1
        return f"evt_{self.w.events_made}"

    def _editable(self) -> list[Event]:
        """The events a person in GHL edits: ones the app has linked, or booked in GHL. (An event our create
        made, moved or deleted in GHL before its id reached the app by the create's answer, its webhook or a
        lookup, is the documented limit: it may be taken for another booking.)"""
        linked = {r.appointment.ghl_event_id for r in self.w.records.values()}
        return [
            e for e in self.w.events.values() if not e.deleted and (e.id in linked or e.created_by.startswith("user"))
        ]

    @precondition(lambda self: bool(self._editable()))
    @rule(hour=st.sampled_from(HOURS), change=st.sampled_from(["move", "move", "move", "cancel", "delete"]))
    def ghl_user_edit(self, hour: int, change: str) -> None:
        event = self._editable()[0]
        self._edit_gap()
        self.w.users += 1
        made_by = f"user:{self.w.users}"
        if change == "delete":
            event.deleted = True
            event.date_updated = self.w.ghl_now(event.date_updated)
            event.made_by = made_by
            self._edit(made_by, Edit(Source.ghl, event.date_updated, None))
            self._emit(event)
            return
        status = AppointmentStatus.cancelled if change == "cancel" else AppointmentStatus.scheduled
        fields = _fields(hour, status).model_copy(update={"assigned_user_id": event.fields.assigned_user_id})
        if fields == event.fields:
            return
        event.fields, event.made_by = fields, made_by
        event.date_updated = self.w.ghl_now(event.date_updated)
        edit = Edit(Source.ghl, event.date_updated, fields)
        self._indistinguishable(edit)
        self._edit(made_by, edit)
        self._emit(event)

    def _emit(self, event: Event) -> None:
        seen = p.observation_of(event.appointment(), deleted=event.deleted)
        self.w.webhooks.append(Webhook(seen, event.made_by))

    # --- the network ----------------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.w.webhooks))
    @rule(data=st.data(), what=st.sampled_from(["deliver", "deliver", "deliver", "duplicate", "drop"]))
    def network(self, data: st.DataObject, what: str) -> None:
        index = data.draw(st.integers(0, len(self.w.webhooks) - 1))
        webhook = self.w.webhooks[index]
        if what != "duplicate":
            del self.w.webhooks[index]
        if what != "drop":
            self._apply(webhook.seen, webhook.made_by)

    # --- reconciliation -------------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.w.events) or self._record() is not None)
    @rule()
    def reconcile(self) -> None:
        self._reconcile()

    def _reconcile(self) -> None:
        record = self._record()
        for event in list(self.w.events.values()):
            linked = record is not None and record.appointment.ghl_event_id == event.id
            if event.deleted and not linked:
                continue
            self._read(event)

    def _read(self, event: Event) -> None:
        """GHL's event as a read shows it now (reconciliation, or the worker before it overwrites a change)."""
        seen = p.observation_of(event.appointment(), deleted=event.deleted, seen_at=self.w.now)
        if event.deleted:
            seen = seen.model_copy(update={"at": self.w.ghl_now()})
        self._apply(seen, event.made_by)

    # --- the workers ----------------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.w.outbox))
    @rule(worker=st.sampled_from([1, 2]))
    def worker_takes_message(self, worker: int) -> None:
        if self.busy[worker] is not None:
            return
        local_id = next(iter(self.w.outbox))
        held = self.w.lease_until.get(local_id)
        if held is not None and held >= self.w.now:
            return  # another worker holds the sync lease: the message comes back later
        self.w.lease_until[local_id] = self.w.now + LEASE
        record = self.w.records[local_id]
        plan = p.plan_push(record, now=self.w.now)
        self._store(plan.record)
        for edit in self.w.edits.values():
            if edit.side is Source.ghl:
                self._indistinguishable(edit)
        if plan.kind is p.PushKind.skip:
            self._done(local_id)
        elif plan.kind is p.PushKind.wait:
            self.w.lease_until.pop(local_id, None)
        elif plan.kind is p.PushKind.lookup:
            found = p.adoptable(plan.creates, [e.appointment() for e in self.w.events.values() if not e.deleted])
            linked, seen = p.lookup_answered(self.w.records[local_id], plan.creates, found, now=self.w.now)
            self._store(linked)
            if seen is not None:
                assert found is not None
                self._check_decision(seen, self.w.events[found.id].made_by)
                self._take(seen, local_id)

            self.w.lease_until.pop(local_id, None)
        elif plan.kind is p.PushKind.read:
            self._read(self.w.events[plan.record.appointment.ghl_event_id or ""])
            self.w.lease_until.pop(local_id, None)
        else:
            assert plan.write is not None
            lease = self.w.lease_until[local_id]
            event_id = plan.record.appointment.ghl_event_id
            request = Request(worker, plan.write, event_id, self.w.now + p.MAX_REQUEST, lease)
            self.busy[worker] = request
            self.w.requests.append(request)

    @precondition(lambda self: bool(self._deliverable()))
    @rule(data=st.data(), refuse=st.integers(0, 9))
    def ghl_receives(self, data: st.DataObject, refuse: int) -> None:
        pending = self._deliverable()
        self._ghl_receive(pending[data.draw(st.integers(0, len(pending) - 1))], refuse=self.refusals and refuse == 0)

    def _deliverable(self) -> list[Request]:
        """Requests GHL can still receive: a request reaches GHL within `MAX_REQUEST` of its sending or never
        (the client's timeouts; the protocol's assumption)."""
        return [r for r in self.w.requests if not r.received and r.deadline >= self.w.now]

    def _ghl_receive(self, request: Request, *, refuse: bool = False) -> None:
        request.received = True
        if refuse:
            request.result = "refused"
            return
        write = request.write
        if write.kind == "create":
            event_id = self._new_event_id()
            event = Event(event_id, _as_ghl_takes(write.fields), self.w.ghl_now(), f"app:{write.id}")
            self.w.events[event_id] = event
            request.result, request.event_made = "applied", event_id
            self._emit(event)
            return
        assert request.event_id is not None
        event = self.w.events[request.event_id]
        if event.deleted:
            request.result = "not_found"
        elif event.fields == _as_ghl_takes(write.fields):
            request.result = "unchanged"
        else:
            event.fields, event.made_by = _as_ghl_takes(write.fields), f"app:{write.id}"
            event.date_updated = self.w.ghl_now(event.date_updated)
            request.result = "applied"
            self._emit(event)

    @precondition(lambda self: any(r is not None for r in self.busy.values()))
    @rule(worker=st.sampled_from([1, 2]), how=st.sampled_from(["answer", "answer", "answer", "lost", "crash"]))
    def worker_hears_back(self, worker: int, how: str) -> None:
        request = self.busy[worker]
        if request is None:
            return
        self.busy[worker] = None
        local_id = int(self._record_id())
        if how == "crash":
            return  # nothing recorded; the lease lapses and the message comes back
        record = self.w.records[local_id]
        if self.w.now > request.deadline:
            how = "lost"  # the answer would come after the request's time limit: the client gave up
        if how == "lost" or not request.received:
            # Timeout or reset: the request may still reach GHL before its deadline.
            answer = p.Answer.unknown if how == "lost" or self.w.now < request.deadline else p.Answer.not_sent
            record = p.push_answered(record, request.write.id, answer, now=self.w.now)
        elif request.result == "refused":
            record = p.push_answered(record, request.write.id, p.Answer.refused, now=self.w.now, reason="rechazada")
        elif request.result == "not_found":
            record = p.push_answered(record, request.write.id, p.Answer.not_sent, now=self.w.now)
            self._store(record)
            event = self.w.events[request.event_id or ""]
            seen = p.observation_of(event.appointment(), deleted=True, seen_at=self.w.now)
            self._apply(seen.model_copy(update={"at": self.w.ghl_now()}), event.made_by)
            record = self.w.records[local_id]
        else:
            record = p.push_answered(
                record, request.write.id, p.Answer.accepted, now=self.w.now, event_id=request.event_made
            )
        self._store(record)
        if self.w.lease_until.get(local_id) == request.lease:
            self.w.lease_until.pop(local_id, None)  # our lease, not a later worker's
        if not self.w.records[local_id].needs_push:
            self._done(local_id)

    # --- applying what GHL holds ----------------------------------------------------------------------------

    def _apply(self, seen: p.GhlObservation, made_by: str) -> None:
        edit = self.w.edits.get(made_by)
        if edit is not None and made_by.startswith("user:"):
            if not edit.ours_alike:
                edit.seen_first = True
            edit.known = True
        record = next(
            (r for r in self.w.records.values() if r.appointment.ghl_event_id == seen.event_id),
            None,
        )
        if record is None:
            ours = next((r for r in self.w.records.values() if p.is_our_create(r, seen)), None)
            if ours is not None:
                outcome = p.link_our_create(ours, seen, policy=self.policy)
                self._check_decision(outcome, made_by)
                self._take(outcome, int(ours.appointment.id))
                return
            assert not made_by.startswith("app:"), f"our own create was taken for a new booking ({made_by})"
            appointment, facts, _decision = p.observe_new(seen, location_id="loc_1")
            local_id = len(self.w.records) + 1
            self.w.records[local_id] = p.SyncRecord(
                appointment=appointment.model_copy(update={"id": str(local_id)}), facts=facts
            )
            return
        outcome = p.observe(record, seen, policy=self.policy)
        self._check_decision(outcome, made_by)
        self._take(outcome, int(record.appointment.id))

    def _check_decision(self, outcome: p.Observed, made_by: str) -> None:
        if made_by.startswith("app:"):
            assert outcome.decision not in (p.Decision.ghl_won, p.Decision.created), (
                f"an echo of our own write ({made_by}) was taken as a GHL edit: {outcome.decision}"
            )
        elif outcome.decision in (p.Decision.local_won, p.Decision.stale):
            self.w.untaken.append((made_by, outcome.decision))
        if outcome.decision is p.Decision.local_won:
            assert outcome.conflict is not None, f"GHL edit {made_by} lost without a conflict record"

    def _take(self, outcome: p.Observed, local_id: int) -> None:
        if outcome.remove_event is not None:
            event = self.w.events[outcome.remove_event]
            assert event.created_by.startswith("app:"), "the app removed an event it did not make"
            if not event.deleted:
                event.deleted = True
                event.date_updated = self.w.ghl_now(event.date_updated)
                event.made_by = f"app:remove:{event.id}"
                self._emit(event)
        if outcome.conflict is not None:
            self.w.conflicts.append(outcome.conflict)
        self._store(outcome.record)
        if outcome.push:
            self.w.outbox.add(local_id)

    # --- helpers --------------------------------------------------------------------------------------------

    def _record(self) -> p.SyncRecord | None:
        return self.w.records.get(1) or next(iter(self.w.records.values()), None)

    def _record_id(self) -> str:
        record = self._record()
        assert record is not None
        return record.appointment.id

    def _store(self, record: p.SyncRecord) -> None:
        local_id = int(record.appointment.id)
        before = self.w.records.get(local_id)
        if before is not None and before.facts.edited_at is not None:
            assert record.facts.edited_at is not None and record.facts.edited_at >= before.facts.edited_at, (
                "the local state moved back to an older edit"
            )
        self.w.records[local_id] = record

    def _indistinguishable(self, edit: Edit) -> None:
        """A GHL edit setting exactly the state of a write of ours while that write may be landing is, to
        anyone, its echo: the protocol takes it as ours (a documented limit), so it is no edit to expect."""
        if edit.seen_first:
            return  # the app saw it as GHL's edit before the write existed
        for record in self.w.records.values():
            for write in record.facts.writes:
                if edit.fields is not None and write.may_have_made(edit.fields, edit.at):
                    edit.ours_alike = True

    def _edit_gap(self) -> None:
        """People's edits are further apart than the two clocks are: then the edit made last is the newest
        by both clocks (edits closer than that are ordered by their clocks, a limit of `latest_wins`)."""
        self.w.now += 2 * MAX_OFFSET + timedelta(milliseconds=100)

    def _edit(self, name: str, edit: Edit) -> None:
        edit.seq = len(self.w.edits)
        self.w.edits[name] = edit

    def _done(self, local_id: int) -> None:
        self.w.outbox.discard(local_id)
        self.w.lease_until.pop(local_id, None)

    # --- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def at_most_one_appointment_and_one_live_event(self) -> None:
        assert len(self.w.records) <= 1, "a second local appointment for one booking"
        assert sum(not e.deleted for e in self.w.events.values()) <= 1, "two GHL events for one appointment"

    def teardown(self) -> None:
        self._quiesce()
        record = self._record()
        if record is None:
            assert all(e.deleted for e in self.w.events.values()), "GHL has an event the app never took"
            return
        appointment = record.appointment
        live = [e for e in self.w.events.values() if not e.deleted]
        if DELETED_IN_GHL in appointment.flags:
            assert not live and appointment.status == AppointmentStatus.cancelled
        elif appointment.ghl_event_id is None:
            assert record.never_sent and not live, "an appointment that never reached GHL, with an event there"
        else:
            [event] = live
            assert event.id == appointment.ghl_event_id
            assert holds(record.fields, event.fields), f"diverged: local {record.fields} GHL {event.fields}"
        assert record.appointment.sync_state in (SyncState.synced, SyncState.local_only)
        if self.policy is ConflictPolicy.latest_wins:
            self._newest_edit_won(record)

    def _newest_edit_won(self, record: p.SyncRecord) -> None:
        # A write GHL refused (or that never reached it) is forgotten: an equal GHL edit is then distinguishable.
        for edit in self.w.edits.values():
            if edit.ours_alike and not edit.seen_first:
                edit.ours_alike = any(
                    edit.fields is not None and w.may_have_made(edit.fields, edit.at) for w in record.facts.writes
                )
        known = [e for e in self.w.edits.values() if e.known and not e.ours_alike]
        deletes = [e for e in known if e.fields is None]
        if deletes:
            assert DELETED_IN_GHL in record.appointment.flags
            return
        newest = max(known, key=lambda e: e.seq)
        assert newest.fields is not None
        assert _same_edit(record.fields, newest.fields), (
            f"the newest edit ({newest.side} at {newest.at}) did not win: {record.fields}"
        )

    def _quiesce(self) -> None:
        self.refusals = False
        for worker, request in self.busy.items():
            if request is not None:
                if not request.received and request.deadline >= self.w.now:
                    self._receive(request)
                self.worker_hears_back(worker, "answer")
        for request in [r for r in self.w.requests if not r.received]:
            self._receive(request)
        while self.w.webhooks:
            self.network_in_order()
        record = self._record()
        if record is not None and record.appointment.sync_state is SyncState.error:
            self._store(p.retry(record))
            self.w.outbox.add(int(record.appointment.id))
        for _round in range(12):
            self.w.now += LEASE + p.MAX_REQUEST
            self._reconcile()
            spins = 0
            while self.w.outbox:
                spins += 1
                if spins > 50:
                    raise AssertionError(f"no quiescence: {self._record()}")
                self.w.now += timedelta(seconds=1)
                self.worker_takes_message(1)
                request = self.busy[1]
                if request is not None:
                    self._receive(request)
                    self.worker_hears_back(1, "answer")
                while self.w.webhooks:
                    self.network_in_order()
                if self.w.outbox and self.busy[1] is None and request is None:
                    break  # waiting for a create's outcome: the next round is later
            if not self.w.outbox and not self.w.webhooks:
                self._reconcile()
                if not self.w.outbox:
                    return
        raise AssertionError("no quiescence: something keeps being sent")

    def _receive(self, request: Request) -> None:
        if not request.received and request.deadline >= self.w.now:
            self._ghl_receive(request)

    def network_in_order(self) -> None:
        webhook = self.w.webhooks.pop(0)
        self._apply(webhook.seen, webhook.made_by)


class RvThreeWinsMachine(ProtocolMachine):
    policy = ConflictPolicy.rv3_wins


class GhlWinsMachine(ProtocolMachine):
    policy = ConflictPolicy.ghl_wins


CI_SETTINGS = settings(
    max_examples=300,
    stateful_step_count=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def soak(minutes: float) -> int:
    """Run the machines with fresh random seeds until `minutes` have passed; returns the examples run."""
    stop = time.monotonic() + minutes * 60
    runs = 0
    soak_settings = settings(
        max_examples=2000,
        stateful_step_count=80,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    while time.monotonic() < stop:
        for machine in (ProtocolMachine, RvThreeWinsMachine, GhlWinsMachine):
            run_state_machine_as_test(machine, settings=soak_settings)
            runs += soak_settings.max_examples
            print(f"{machine.__name__}: {runs} examples so far, {max(0.0, stop - time.monotonic()) / 60:.1f} min left")
    return runs


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    arguments = parser.parse_args()
    started = time.monotonic()
    total = soak(arguments.minutes)
    print(f"soak done: {total} examples in {(time.monotonic() - started) / 60:.1f} min, nothing found")
