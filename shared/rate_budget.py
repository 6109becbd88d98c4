"""Rate budgets an API client takes a slot from before each call, in memory or shared in a Table: GHL's per
location (keyed by the location id), Odoo's per database (keyed `odoo:<db>`)."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from shared import telemetry
from shared.lazy import serial_imports
from shared.tables import ensure_table
from sync_core.rate_budget import (
    BudgetLimits,
    BudgetState,
    RateLimitHeaders,
    Reservation,
    after_rate_limited,
    after_response,
    reserve_several,
    retry_after_refusal,
    too_late,
)

if TYPE_CHECKING:
    from azure.data.tables import TableClient

# The math is `sync_core.rate_budget`; these adapters keep its state. `TableRateBudget` shares it between all
# workers of all hosts through one Table entity per key, updated with ETag optimistic concurrency. A client
# subclasses it to fail with its own errors (`_contended`, `_unavailable`), which its callers know how to retry.

log = telemetry.get_logger("rate_budget")

T = TypeVar("T")
# A change of the state at a moment, and what to answer the caller.
Decision = Callable[[BudgetState, float], tuple[BudgetState, T]]

ROW_KEY = "budget"
MAX_CONFLICTS = 25
CONFLICT_BACKOFF_S = 0.004
MAX_SLOTS_PER_WRITE = 8  # slots one write may take for the threads of a process waiting on the same key


LATE_SLOTS = 3  # slots a starved process may miss in a row before it sends anyway


def wait_for_slot(
    budget: RateBudget,
    key: str,
    max_wait_s: float,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    refused: Callable[[float, str], Exception],
    following: int = 0,
) -> None:
    """Wait for the next call's slot; `refused(retry_after_s, message)` is raised when it is too far away.
    `following`: calls this thread makes right after on the same key, whose slots are taken in the same reservation.

    A slot missed by more than the pacing's slack (the process was not scheduled in time) is given up for a new
    one, up to LATE_SLOTS times, so late wake-ups do not pile up in the API's window; then the call goes (the
    client handles a 429 like any other)."""
    for _ in range(LATE_SLOTS + 1):
        slot = budget.reserve(key, max_wait_s, following=following)
        following = 0  # a slot missed is replaced alone: those kept after it are as late
        if not slot.granted:
            retry_after = retry_after_refusal(slot, clock(), max_wait_s, random.random())
            raise refused(retry_after, f"rate budget {key} is spent for {slot.wait_s:.1f}s")
        delay = slot.start_at - clock()
        if delay > 0:
            sleep(delay)
        if not too_late(slot, clock(), budget.limits):
            return
    log.info("call sent after %d missed slots in a row", LATE_SLOTS + 1, extra={"detail": key})


class BudgetContended(Exception):
    """Too many instances raced for the shared budget: come back after `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str = "rate budget contended") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetUnavailable(Exception):
    """The storage holding the shared budget could not be reached."""


class RateBudget(Protocol):
    """Where a client takes a slot before each call and reports what the API said about its limits."""

    limits: BudgetLimits

    def reserve(self, key: str, max_wait_s: float, *, following: int = 0) -> Reservation:
        """Take the next slot if it comes within `max_wait_s`; a refused reservation takes nothing. `following`:
        the calling thread's next calls on `key`, which may find their slots kept for them (a hint: a budget that
        keeps none lets them reserve their own)."""
        ...

    def drop_kept(self, key: str) -> None:
        """The calling thread makes no more of the calls it took slots for (those slots go unused)."""
        ...

    def observe(self, key: str, headers: RateLimitHeaders) -> None:
        """Adapt to the `X-RateLimit-*` headers of a response."""
        ...

    def rate_limited(self, key: str, retry_after_s: float) -> None:
        """The API answered 429: hold every worker of the key for `retry_after_s`."""
        ...

    def state(self, key: str) -> BudgetState:
        """The key's current budget (metrics, checks)."""
        ...


class MemoryRateBudget:
    """A budget for one process (the connection checks, tests); hosts sharing a key need TableRateBudget."""

    def __init__(self, limits: BudgetLimits | None = None, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or BudgetLimits()
        self._clock = clock
        self._states: dict[str, BudgetState] = {}
        self._lock = threading.Lock()

    def _apply(self, key: str, decide: Decision[T]) -> T:
        with self._lock:
            state, result = decide(self._states.get(key, BudgetState()), self._clock())
            self._states[key] = state
            return result

    def reserve(self, key: str, max_wait_s: float, *, following: int = 0) -> Reservation:
        # In memory a reservation costs no request: each call takes its own.
        return self._apply(key, _reserving(self.limits, max_wait_s, 1))[0]

    def drop_kept(self, key: str) -> None:
        return None

    def observe(self, key: str, headers: RateLimitHeaders) -> None:
        self._apply(key, _observing(self.limits, headers))

    def rate_limited(self, key: str, retry_after_s: float) -> None:
        self._apply(key, _holding(retry_after_s))

    def state(self, key: str) -> BudgetState:
        with self._lock:
            return self._states.get(key, BudgetState())


@dataclass
class _Lane:
    """One key's turn-taking inside a process: the lock, who waits for it, and slots taken for them."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: int = 0  # threads wanting a slot (holding or waiting for `lock`), under the budget's guard
    handed: deque[Reservation] = field(default_factory=deque)  # taken by the last writer for those waiting
    kept: dict[int, deque[Reservation]] = field(default_factory=dict)  # a thread's slots for its own next calls


class TableRateBudget:
    """One entity per key in Table storage (`ghlratebudget`), read-modify-written under its ETag.

    Threads of one process take turns per key (so they do not fight over the ETag), and the last entity seen
    is kept, so an uncontended reservation costs one conditional write. The thread whose turn it is takes a
    slot for each thread of the process waiting behind it, in the same write: under a backlog one Table
    request serves several API calls instead of one. It also takes one for each call it says it makes right
    after (`following`: a contact upsert, then the create it is for), kept for that thread alone.
    """

    def __init__(
        self,
        table: TableClient,
        limits: BudgetLimits | None = None,
        clock: Callable[[], float] = time.time,
        max_conflicts: int = MAX_CONFLICTS,
    ) -> None:
        self.limits = limits or BudgetLimits()
        self._table = table
        self._clock = clock
        self._max_conflicts = max_conflicts
        self._known: dict[str, tuple[BudgetState, str | None]] = {}
        self._lanes: dict[str, _Lane] = {}
        self._guard = threading.Lock()
        self._table_ready = False

    def reserve(self, key: str, max_wait_s: float, *, following: int = 0) -> Reservation:
        lane = self._lane(key)
        me = threading.get_ident()
        with self._guard:
            lane.waiting += 1
        try:
            with lane.lock:
                kept = self._fresh(lane.kept.get(me, deque()))
                if kept is not None:
                    return kept
                handed = self._fresh(lane.handed)
                if handed is not None:
                    return handed
                with self._guard:
                    wanted = min(lane.waiting + following, MAX_SLOTS_PER_WRITE)
                first, *others = self._transact_locked(key, _reserving(self.limits, max_wait_s, wanted))
                mine = min(following, len(others))
                if mine:
                    lane.kept[me] = deque(others[:mine])
                lane.handed.extend(others[mine:])
                return first
        finally:
            with self._guard:
                lane.waiting -= 1

    def drop_kept(self, key: str) -> None:
        lane = self._lane(key)
        with lane.lock:
            lane.kept.pop(threading.get_ident(), None)

    def observe(self, key: str, headers: RateLimitHeaders) -> None:
        decide = _observing(self.limits, headers)
        lane = self._lane(key)
        with lane.lock:
            known = self._known.get(key)
            if known is not None and decide(known[0], self._clock())[0] == known[0]:
                return  # the usual case: nothing to adapt, no write
            self._transact_locked(key, decide)
            lane.handed.clear()  # slots taken before the API said we are ahead of our pacing: taken again
            lane.kept.clear()

    def rate_limited(self, key: str, retry_after_s: float) -> None:
        lane = self._lane(key)
        with lane.lock:
            self._transact_locked(key, _holding(retry_after_s))
            lane.handed.clear()  # nobody sends before Retry-After, not even on a slot taken earlier
            lane.kept.clear()

    def state(self, key: str) -> BudgetState:
        with self._lane(key).lock:
            return self._load(key)[0]

    def _lane(self, key: str) -> _Lane:
        with self._guard:
            return self._lanes.setdefault(key, _Lane())

    def _fresh(self, slots: deque[Reservation]) -> Reservation | None:
        """The first of `slots` taken earlier (for us, or by us for this call) whose moment has not long passed;
        older ones are dropped (sending on them now could bunch with the slots taken since)."""
        now = self._clock()
        while slots:
            slot = slots.popleft()
            if slot.start_at >= now - self.limits.spacing_s:
                return slot
        return None

    def _transact_locked(self, key: str, decide: Decision[T]) -> T:
        """Apply `decide` to the shared state (the caller holds the key's lane lock)."""
        with serial_imports:
            from azure.core.exceptions import AzureError

        try:
            for attempt in range(self._max_conflicts):
                known = self._known.get(key)
                state, etag = known if known is not None else self._load(key)
                # `now` per attempt: a reservation retried after a lost race must not start in the past.
                new_state, result = decide(state, self._clock())
                if new_state == state:
                    return result
                if self._store(key, new_state, etag):
                    return result
                self._known.pop(key, None)
                time.sleep(random.uniform(0, CONFLICT_BACKOFF_S * (attempt + 1)))
        except AzureError as exc:
            self._known.pop(key, None)
            raise self._unavailable(f"rate budget storage unavailable ({type(exc).__name__})") from exc
        log.warning("rate budget %s contended %d times", key, self._max_conflicts)
        raise self._contended(self.limits.spacing_s * self._max_conflicts)

    def _contended(self, retry_after: float) -> Exception:
        """What to raise when instances raced for the entity `max_conflicts` times (a client's own error)."""
        return BudgetContended(retry_after)

    def _unavailable(self, detail: str) -> Exception:
        """What to raise when Table storage failed (a client's own error)."""
        return BudgetUnavailable(detail)

    def _load(self, key: str) -> tuple[BudgetState, str | None]:
        with serial_imports:
            from azure.core.exceptions import ResourceNotFoundError

        self._ensure_table()
        try:
            entity = self._table.get_entity(key, ROW_KEY)
        except ResourceNotFoundError:
            loaded: tuple[BudgetState, str | None] = (BudgetState(), None)
        else:
            loaded = (_state_of(entity), entity.metadata["etag"])
        self._known[key] = loaded
        return loaded

    def _store(self, key: str, state: BudgetState, etag: str | None) -> bool:
        """Write `state` if nobody changed the entity since `etag` was read; False on a lost race."""
        with serial_imports:
            from azure.core import MatchConditions
            from azure.core.exceptions import HttpResponseError, ResourceExistsError
            from azure.data.tables import UpdateMode

        entity = {"PartitionKey": key, "RowKey": ROW_KEY, **_entity_of(state)}
        try:
            if etag is None:
                written = self._table.create_entity(entity)
            else:
                written = self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError:
            return False
        except HttpResponseError as exc:
            if exc.status_code == 412:
                return False
            raise
        self._known[key] = (state, written.get("etag"))
        return True

    def _ensure_table(self) -> None:
        if not self._table_ready:
            ensure_table(self._table)
            self._table_ready = True


def _reserving(limits: BudgetLimits, max_wait_s: float, count: int) -> Decision[list[Reservation]]:
    def decide(state: BudgetState, now: float) -> tuple[BudgetState, list[Reservation]]:
        return reserve_several(state, limits, now, max_wait_s, count)

    return decide


def _observing(limits: BudgetLimits, headers: RateLimitHeaders) -> Decision[None]:
    def decide(state: BudgetState, now: float) -> tuple[BudgetState, None]:
        return after_response(state, limits, now, headers), None

    return decide


def _holding(retry_after_s: float) -> Decision[None]:
    def decide(state: BudgetState, now: float) -> tuple[BudgetState, None]:
        return after_rate_limited(state, now, retry_after_s), None

    return decide


def _entity_of(state: BudgetState) -> dict[str, Any]:
    # Floats throughout: Table storage returns large integers as typed wrappers, floats as plain floats.
    return {
        "next_slot_at": float(state.next_slot_at),
        "hold_until": float(state.hold_until),
        "day": float(state.day),
        "used_today": float(state.used_today),
    }


def _state_of(entity: Any) -> BudgetState:
    return BudgetState(
        next_slot_at=float(entity.get("next_slot_at", 0.0)),
        hold_until=float(entity.get("hold_until", 0.0)),
        day=int(entity.get("day", 0)),
        used_today=int(entity.get("used_today", 0)),
    )
