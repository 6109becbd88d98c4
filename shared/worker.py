"""The one worker kernel: every queue function's message becomes an outcome, a later retry or the poison queue.

A handler gets its validated message and the unit of work and returns a `Result`. To come back later it
raises `Later` (a rate limit, an outage, a lease held by another worker), or lets a GHL or Odoo error with a retry
kind through (its class carries it, `later_for`): the kernel re-enqueues a copy with a
jittered delay, bounded per kind (`sync_core.retry.decide_retry`), and when the bound is used up calls the
job's `exhausted` (which records the failure for staff). A message that does not match its model goes
straight to `<queue>-poison` (no retry can fix it). Anything else raises, so the host retries it and, after
`maxDequeueCount`, moves it to the poison queue (`shared.triggers` raises the alert); told the delivery's
dequeue count, the kernel calls `exhausted` on that last delivery first, so the failure is recorded too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import ValidationError

from shared import telemetry
from shared.ghl.errors import GhlError
from shared.odoo.errors import OdooError
from shared.queues import MAX_DEQUEUE_COUNT, POISON_SUFFIX, QueueMessage
from shared.work import Work
from sync_core.retry import ErrorKind, RetryAction, decide_retry

log = telemetry.get_logger("worker")

MAX_ATTEMPTS = 12  # transient failures: with backoff capped at 5 min, about an hour of outage


class Outcome(StrEnum):
    applied = "applied"  # the message did its work
    skipped = "skipped"  # nothing was left to do
    duplicate = "duplicate"  # already processed (a redelivery)
    requeued = "requeued"  # comes back later (`Later`)
    continued = "continued"  # part of the work done: a new message carries on with the rest
    failed = "failed"  # permanently: recorded where staff see it
    malformed = "malformed"  # not a message of this queue: moved to the poison queue


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str = ""

    @property
    def result(self) -> str:
        return self.outcome.value


class Later(Exception):
    """Not a failure: try this message again later. `kind` bounds how often; `retry_after` sets the delay."""

    def __init__(self, kind: ErrorKind, note: str, *, retry_after: float | None = None) -> None:
        super().__init__(note)
        self.kind = kind
        self.note = note
        self.retry_after = retry_after


M = TypeVar("M", bound=QueueMessage)


@dataclass(frozen=True)
class Job(Generic[M]):
    """One queue's work: its message model, its handler, and what to do once retrying is used up."""

    queue: str
    model: type[M]
    handle: Callable[[Work, M], Result]
    exhausted: Callable[[Work, M, str], Result] | None = None
    subject: Callable[[M], Mapping[str, Any]] = lambda message: {}
    max_attempts: int = MAX_ATTEMPTS


def run(job: Job[M], raw: Mapping[str, Any], work: Work, *, dequeue_count: int = 1) -> Result:
    """Handle one message of `job.queue`; raises only for what the host's own retry may fix."""
    started = time.perf_counter()
    try:
        message = job.model.model_validate(raw)
    except ValidationError:
        return _malformed(job, raw, work, started)
    subject = dict(job.subject(message))
    try:
        result = job.handle(work, message)
    except Later as later:
        result = _later(job, message, work, later)
    except sa.exc.OperationalError:
        # The database is unreachable: retry later without spending the message's delivery budget.
        result = _later(job, message, work, Later(ErrorKind.connection, "database unavailable"))
    except (GhlError, OdooError) as error:
        if error.retry is None:
            raise
        # Whichever call of the handler met it (a lookup, a read): its class says how to retry, bounded.
        result = _later(job, message, work, later_for(error))
    except Exception as exc:
        if dequeue_count >= MAX_DEQUEUE_COUNT and job.exhausted is not None:
            job.exhausted(work, message, type(exc).__name__)
        raise
    telemetry.log_operation(
        log,
        f"worker.{job.queue}",
        success=result.outcome is not Outcome.failed,
        started=started,
        queue=job.queue,
        outcome=result.outcome.value,
        detail=result.detail,
        correlation_id=message.correlation_id,
        **subject,
    )
    return result


def _later(job: Job[M], message: M, work: Work, later: Later) -> Result:
    waiting = later.kind is ErrorKind.rate_limited
    counter = message.requeues + 1 if waiting else message.attempt
    decision = decide_retry(
        later.kind, attempt=counter, rng=random.Random(), retry_after_s=later.retry_after, max_attempts=job.max_attempts
    )
    if decision.action is RetryAction.permanent:
        if job.exhausted is None:
            raise RuntimeError(f"{job.queue}: retries used up ({later.note})") from later
        return job.exhausted(work, message, later.note)
    counters = {"requeues": message.requeues + 1} if waiting else {"attempt": message.attempt + 1}
    following = message.model_copy(update=counters)
    work.queues.send(job.queue, following.model_dump(mode="json", exclude_none=True), delay_s=decision.delay_s)
    return Result(Outcome.requeued, f"{later.note}; retry in {decision.delay_s:.1f}s")


def _malformed(job: Job[Any], raw: Mapping[str, Any], work: Work, started: float) -> Result:
    """Straight to `<queue>-poison`, where `python -m shared.poison` shows and replays it."""
    work.queues.send(job.queue + POISON_SUFFIX, dict(raw))
    telemetry.log_operation(
        log, f"worker.{job.queue}", success=False, started=started, queue=job.queue, outcome=Outcome.malformed.value
    )
    telemetry.alert("poison_message", f"a {job.queue} message is malformed", queue=job.queue, detail="malformed")
    return Result(Outcome.malformed, "does not match the queue's message")


def later_for(error: GhlError | OdooError, *, note: str | None = None) -> Later:
    """The retry a GHL or Odoo failure calls for (its class says which); only for errors that have one. `note` is
    what `exhausted` is told should it come to that (by default `GHL <code>` / `Odoo <code>`)."""
    if error.retry is None:
        raise ValueError(f"{type(error).__name__} cannot be retried")
    service = "GHL" if isinstance(error, GhlError) else "Odoo"
    return Later(error.retry, note or f"{service} {error.code}", retry_after=getattr(error, "retry_after", None))
