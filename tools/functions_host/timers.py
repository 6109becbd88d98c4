"""Timer triggers: NCRONTAB schedules in UTC, runOnStartup, past-due runs from the schedule monitor, and a
storage lease so that, as on Azure, only one of several hosts of the same app fires each timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from azure.functions.timer import TimerRequest
from croniter import croniter

from tools.functions_host.config import HostConfigError
from tools.functions_host.indexing import FunctionDescriptor, TimerTrigger
from tools.functions_host.invocation import Invoker

logger = logging.getLogger("Host.Timers")

HOST_STATE_TABLE = "azurewebjobshosts"
LISTENER_LEASE = timedelta(seconds=15)
NEVER = datetime.min.replace(tzinfo=UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class NcrontabSchedule:
    """`sec min hour day month day-of-week` (or the 5 fields without seconds), evaluated in UTC. Like
    NCrontab, a restricted day-of-month AND day-of-week must both match (classic cron ORs them)."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(expression, second_at_beginning=len(fields) == 6):
            raise HostConfigError(
                f"timer schedule {expression!r} is not an NCRONTAB expression like '0 */5 * * * *' "
                "(TimeSpan schedules are not supported by the local host)"
            )
        self.expression = expression
        self._with_seconds = len(fields) == 6

    def next_after(self, moment: datetime) -> datetime:
        iterator = croniter(
            self.expression,
            moment.astimezone(UTC),
            ret_type=datetime,
            day_or=False,
            second_at_beginning=self._with_seconds,
        )
        result: datetime = iterator.get_next(datetime)
        return result

    def shortest_interval(self, moment: datetime) -> timedelta:
        first = self.next_after(moment)
        return self.next_after(first) - first


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


class TableLease:
    """A lease held on one Table entity through ETag-conditional writes, the local stand-in for the blob lease
    the real host takes: whoever holds an unexpired lease runs the listener; the others keep trying."""

    def __init__(self, table: TableClient, partition: str, row: str, duration: timedelta = LISTENER_LEASE) -> None:
        self._table = table
        self._partition = partition
        self._row = row
        self.duration = duration
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._table_ready = False

    def _entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": self._partition,
            "RowKey": self._row,
            "Owner": self.owner,
            "ExpiresAt": (_utcnow() + self.duration).isoformat(),
        }

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it or it has expired; renew it if we hold it."""
        if not self._table_ready:
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table()
            self._table_ready = True
        try:
            current = self._table.get_entity(self._partition, self._row)
        except ResourceNotFoundError:
            try:
                self._table.create_entity(self._entity())
            except ResourceExistsError:
                return False
            return True
        expires = _parse_time(current.get("ExpiresAt"))
        if current.get("Owner") != self.owner and expires is not None and expires > _utcnow():
            return False
        try:
            self._table.update_entity(
                self._entity(),
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except AzureError:  # someone else wrote it first (412) or it vanished: not ours this round
            return False
        return True

    def release(self) -> None:
        with contextlib.suppress(AzureError):
            current = self._table.get_entity(self._partition, self._row)
            if current.get("Owner") == self.owner:
                self._table.delete_entity(
                    self._partition,
                    self._row,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )


@dataclass(frozen=True)
class ScheduleStatus:
    last: datetime
    next: datetime
    last_updated: datetime

    def as_trigger_status(self) -> dict[str, str]:
        return {
            "Last": self.last.isoformat(),
            "Next": self.next.isoformat(),
            "LastUpdated": self.last_updated.isoformat(),
        }


class ScheduleMonitor:
    """Remembers each timer's last and next occurrence in storage, so a run missed while no host was up is
    fired at start-up with `past_due=True` (the host's `useMonitor`)."""

    def __init__(self, table: TableClient, partition: str, row: str) -> None:
        self._table = table
        self._partition = partition
        self._row = row

    def read(self) -> ScheduleStatus | None:
        try:
            entity = self._table.get_entity(self._partition, self._row)
        except ResourceNotFoundError:
            return None
        times = [_parse_time(entity.get(key)) for key in ("Last", "Next", "LastUpdated")]
        if any(moment is None for moment in times):
            return None
        last, next_, updated = times
        assert last is not None and next_ is not None and updated is not None
        return ScheduleStatus(last, next_, updated)

    def write(self, status: ScheduleStatus) -> None:
        self._table.upsert_entity(
            {
                "PartitionKey": self._partition,
                "RowKey": self._row,
                "Last": status.last.isoformat(),
                "Next": status.next.isoformat(),
                "LastUpdated": status.last_updated.isoformat(),
            },
            mode=UpdateMode.REPLACE,
        )


class TimerListener:
    """Fires one timer function; a failed run is logged and not retried, as on Azure."""

    def __init__(
        self,
        function: FunctionDescriptor,
        invoker: Invoker,
        lease: TableLease | None,
        monitor: ScheduleMonitor | None,
    ) -> None:
        assert isinstance(function.trigger, TimerTrigger)
        self.function = function
        self.trigger = function.trigger
        self.schedule = NcrontabSchedule(function.trigger.schedule)
        self._invoker = invoker
        self._lease = lease
        self._monitor = monitor

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if self._lease is None:
                await self._run_schedule(stopping, asyncio.Event())
                return
            if not await self._acquire():
                await _sleep(stopping, self._lease.duration.total_seconds() / 3 * random.uniform(0.8, 1.2))
                continue
            lost = asyncio.Event()
            keeper = asyncio.create_task(self._keep_lease(stopping, lost))
            try:
                await self._run_schedule(stopping, lost)
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
                if not lost.is_set():
                    await asyncio.to_thread(self._lease.release)

    async def _acquire(self) -> bool:
        assert self._lease is not None
        try:
            return await asyncio.to_thread(self._lease.try_acquire)
        except AzureError as error:
            logger.warning("Timer '%s': could not reach the lease store: %s", self.function.name, type(error).__name__)
            return False

    async def _keep_lease(self, stopping: asyncio.Event, lost: asyncio.Event) -> None:
        assert self._lease is not None
        while not stopping.is_set():
            await _sleep(stopping, self._lease.duration.total_seconds() / 3)
            if stopping.is_set():
                return
            if not await self._acquire():
                logger.warning("Timer '%s': lost its listener lease; another host fires it now", self.function.name)
                lost.set()
                return

    async def _run_schedule(self, stopping: asyncio.Event, lost: asyncio.Event) -> None:
        status = await self._read_status()
        past_due = status is not None and status.next < _utcnow()
        if status is None and self._monitor is not None:
            now = _utcnow()
            await self._write_status(ScheduleStatus(NEVER, self.schedule.next_after(now), now))
        if self.trigger.run_on_startup or past_due:
            status = await self._fire(_utcnow(), past_due, status)
        while not stopping.is_set() and not lost.is_set():
            due = self.schedule.next_after(_utcnow())
            while not stopping.is_set() and not lost.is_set() and _utcnow() < due:
                await _sleep(stopping, min(1.0, (due - _utcnow()).total_seconds()), lost)
            if stopping.is_set() or lost.is_set():
                return
            status = await self._fire(due, False, status)

    async def _read_status(self) -> ScheduleStatus | None:
        if self._monitor is None:
            return None
        try:
            return await asyncio.to_thread(self._monitor.read)
        except AzureError as error:
            logger.warning(
                "Timer '%s': could not read its schedule status: %s", self.function.name, type(error).__name__
            )
            return None

    async def _write_status(self, status: ScheduleStatus) -> None:
        assert self._monitor is not None
        try:
            await asyncio.to_thread(self._monitor.write, status)
        except AzureError as error:
            logger.warning(
                "Timer '%s': could not save its schedule status: %s", self.function.name, type(error).__name__
            )

    async def _fire(self, moment: datetime, past_due: bool, status: ScheduleStatus | None) -> ScheduleStatus | None:
        """Invoke once; success or failure, the next run is the next occurrence (the host never retries)."""
        request = TimerRequest(
            past_due=past_due,
            schedule_status=status.as_trigger_status() if status else {},
            schedule={"AdjustForDST": True},
        )
        await self._invoker.invoke(self.function, lambda: request, reason=f"Timer fired at {moment.isoformat()}")
        if self._monitor is None:
            return None
        now = _utcnow()
        new_status = ScheduleStatus(moment, self.schedule.next_after(now), now)
        await self._write_status(new_status)
        return new_status


async def _sleep(stopping: asyncio.Event, seconds: float, also: asyncio.Event | None = None) -> None:
    """Sleep up to `seconds`, waking early when `stopping` (or `also`) is set."""
    waiters = {asyncio.create_task(stopping.wait())}
    if also is not None:
        waiters.add(asyncio.create_task(also.wait()))
    try:
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def uses_monitor(trigger: TimerTrigger, schedule: NcrontabSchedule) -> bool:
    """The host's default: monitor schedules that recur at most once a minute."""
    if trigger.use_monitor is not None:
        return trigger.use_monitor
    return schedule.shortest_interval(_utcnow()) >= timedelta(minutes=1)
