"""Chaos run: changes flow both ways while GHL fails, hosts are killed, storage restarts and the database goes
away; afterwards nothing may be lost, duplicated, drifting or stuck in a poison queue.

The stack is the real one, locally: two Functions hosts (`python -m tools.functions_host`, child processes)
behind a TCP proxy (the load balancer: GHL's webhooks and the front desk reach whichever host is alive), Azurite,
the GHL sandbox (signed webhooks to the app), and PostgreSQL behind a second TCP proxy that can drop every
connection and refuse new ones (an Azure SQL failover, seen from the app). Changes:

- RV3 side, through the citas API as the front desk: creates, reschedules, cancels (retried by the client on
  5xx / lost connections, creates with an Idempotency-Key, as RV3's integration does);
- GHL side, through the sandbox's simulate_* endpoints (bookings, UI edits, cancellations, deletions), which
  send signed webhooks to the app.

An appointment changes sides only once its last change reached the other side (no concurrent edits: the
expected final state is then exact). On a timeline during the changes: GHL faults all along (429, 5xx, write
applied then connection reset), one GHL outage, kill -9 of each host in turn (restarted), one Azurite restart
(same data), one database outage. Then: the queues drain (bounded), reconciliation runs over the whole window
with auto-heal off and must find zero drift; every appointment's final state must be the expected one in SQL
and in GHL; one GHL event per appointment and one contact per patient; the poison queues empty.

Usage: python -m tools.bench.chaos [--changes 2000] [--ghl-outage 60] [--db-outage 30] [--gap 20] [--seed N]
Prints the counts; exits 1 when a check fails. The fast variant is tests/e2e/test_chaos.py.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from shared.store.schema import appointments, outbox
from tools.azurite import Azurite
from tools.bench.stack import app_env, postgres_database
from tools.functions_host.process import HostProcess
from tools.ghl_sandbox import DEMO_SEED, SandboxConfig, SandboxServer
from tools.ghl_sandbox.config import DEMO_LOCATION_ID, DEMO_PRIVATE_TOKEN
from tools.ports import free_port
from tools.tcp_proxy import TcpProxy

LIMA = timezone(timedelta(hours=-5))
LOCATION = DEMO_LOCATION_ID
CALENDARS = ("cal_demo_terapia", "cal_demo_reflexologia")
FIRST_DAY = date(2030, 3, 4)
PAIRS_PER_DAY = 6  # each appointment owns two slots (even hour, next odd hour) of one calendar and day
FUNCTION_KEY = "chaos-function-key"
POSTGRES_ADMIN_URL = (
    os.environ.get("BENCH_POSTGRES_URL")
    or os.environ.get("TEST_POSTGRES_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
QUEUES = ("rv3-to-ghl", "ghl-to-rv3", "reconcile")
RECONCILE_MAX_DAYS = 31  # the API's longest window
_DRIFT_LISTS = ("faltantes_local", "faltantes_ghl", "canceladas_no_actualizadas", "desincronizadas")
RV3_PATIENTS = 40
GHL_CONTACTS = 20

# Each appointment follows one script; a step's side is who makes the change. Cycled in this order.
SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("rv3_create", "rv3_move"),
    ("ghl_book", "ghl_move"),
    ("rv3_create", "rv3_move", "ghl_move"),
    ("ghl_book", "rv3_move"),
    ("rv3_create", "rv3_cancel"),
    ("ghl_book", "ghl_delete"),
    ("rv3_create", "ghl_cancel"),
    ("ghl_book", "ghl_move", "rv3_cancel"),
    ("rv3_create", "ghl_delete"),
    ("ghl_book", "ghl_cancel"),
    ("rv3_create",),
    ("ghl_book",),
)


@dataclass
class ChaosOptions:
    """Sizes and durations of one run; the defaults are the full run, the test scales them down."""

    changes: int = 2000
    gap_s: float = 20.0  # calm time before each fault
    ghl_outage_s: float = 60.0
    db_outage_s: float = 30.0
    storage_down_s: float = 5.0
    kills: int = 2
    rate_limit: float = 0.05  # GHL faults on every endpoint, all along the change phase
    server_error: float = 0.05
    reset_after_apply: float = 0.03
    rate_interval_ms: int = 1000  # GHL's 100 requests / 10 s scaled to 100 / 1 s (same shape)
    message_lease_s: float = 20.0  # a killed host's messages come back after this (10 min on Azure)
    drain_timeout_s: float = 900.0
    handoff_timeout_s: float = 300.0  # a change not on the other side after this long counts as lost
    client_workers: int = 6
    seed: int = field(default_factory=lambda: random.randrange(1_000_000))
    work_dir: Path | None = None
    azurite: Azurite | None = None  # reuse a running emulator (the test session's); restarted all the same
    log: Callable[[str], None] = print
    keep_db: bool = False  # leave the database for inspection (its name is printed)
    on_finish: Callable[[ChaosStack], None] | None = None  # runs before the stack stops (the test's log check)


@dataclass
class Expected:
    """What one appointment must look like on both sides once everything settled."""

    key: str
    script: tuple[str, ...]
    calendar: str
    day: date
    hour: int
    title: str
    sql_id: int | None = None
    event_id: str | None = None
    contact_id: str | None = None  # the GHL contact of a GHL booking
    patient: int = 0
    moves: int = 0
    version: int = 0  # the SQL version the API last answered
    status: str = "scheduled"
    deleted: bool = False
    done: int = 0  # steps made
    busy: bool = False
    waiting_since: float | None = None  # for its previous change to reach the other side

    def times(self) -> tuple[datetime, datetime]:
        """Even hour at first, then the odd hour and back on every move, 5 minutes shorter each time."""
        start = datetime(self.day.year, self.day.month, self.day.day, self.hour + self.moves % 2, tzinfo=LIMA)
        return start, start + timedelta(minutes=45 - 5 * self.moves)

    @property
    def next_step(self) -> str | None:
        return self.script[self.done] if self.done < len(self.script) else None


@dataclass
class Figures:
    counts: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def plan(changes: int) -> list[Expected]:
    """Appointments whose scripts add up to `changes` changes (the last script cut short if needed)."""
    planned: list[Expected] = []
    total = 0
    while total < changes:
        index = len(planned)
        script = SCRIPTS[index % len(SCRIPTS)][: changes - total]
        day = FIRST_DAY + timedelta(days=index // (2 * PAIRS_PER_DAY))
        calendar = CALENDARS[index % 2]
        hour = 8 + 2 * ((index // 2) % PAIRS_PER_DAY)
        planned.append(
            Expected(
                key=f"a{index}", script=script, calendar=calendar, day=day, hour=hour, title=f"Sesión {index}",
                patient=index % RV3_PATIENTS,
            )
        )  # fmt: skip
        total += len(script)
    return planned


class FrontDesk:
    """RV3's side: the citas API through the load balancer, retried as a careful client would (bounded)."""

    def __init__(self, base_url: str, figures: Figures, give_up_s: float = 240.0) -> None:
        self._http = httpx.Client(
            base_url=f"{base_url}/api", headers={"x-functions-key": FUNCTION_KEY}, timeout=httpx.Timeout(20, connect=5)
        )
        self._figures = figures
        self._give_up_s = give_up_s

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self._give_up_s
        delay = 0.3
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
                if response.status_code < 500 and response.status_code != 429:
                    return response
                self._figures.counts[f"api retried after {response.status_code}"] += 1
            except httpx.TransportError as exc:
                self._figures.counts[f"api retried after {type(exc).__name__}"] += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path} kept failing for {self._give_up_s:.0f}s")
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 3.0)


def _body(appt: Expected) -> dict[str, Any]:
    start, end = appt.times()
    body: dict[str, Any] = {
        "title": appt.title,
        "ghl_calendar_id": appt.calendar,
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
    }
    if appt.contact_id:
        body["contact_id"] = appt.contact_id
    else:
        body["patient"] = {"name": f"Paciente Número {appt.patient}", "phone": f"98765{appt.patient:04d}"}
    return body


class Driver:
    """Makes the planned changes at a steady pace, each appointment's steps in order, one at a time."""

    def __init__(  # noqa: PLR0917 - the run's parts, named once here
        self,
        planned: list[Expected],
        desk: FrontDesk,
        sandbox: SandboxServer,
        observer: sa.Engine,
        ghl_contacts: list[str],
        figures: Figures,
        workers: int,
        log: Callable[[str], None],
        handoff_timeout_s: float,
    ) -> None:
        self.planned = planned
        self.desk = desk
        self.admin = sandbox.admin
        self.observer = observer
        self.ghl_contacts = ghl_contacts
        self.figures = figures
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="chaos-client")
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._shown = time.monotonic()
        self.log = log
        self.handoff_timeout_s = handoff_timeout_s
        self.stalled: dict[str, str] = {}  # appointment → its GHL event, whose last change never crossed over

    def run(self, pace_s: float, stop_at: float) -> None:
        """Issue steps no faster than one per `pace_s` seconds until every script is done or `stop_at`."""
        started = time.monotonic()
        issued = 0
        pending: list[Future[None]] = []
        while time.monotonic() < stop_at:
            todo = [a for a in self.planned if a.next_step is not None]
            if not todo:
                break
            rows = self._sql_rows()
            for appt in todo:
                if issued >= (time.monotonic() - started) / pace_s + 1:
                    break
                if appt.busy or not self._waited(appt, rows):
                    continue
                appt.busy = True
                issued += 1
                pending.append(self._pool.submit(self._step, appt))
            pending = [f for f in pending if not f.done()]
            if time.monotonic() - self._shown > 10:
                waiting = [f"{a.key}:{a.next_step}" for a in todo if not a.busy][:8]
                self.log(f"  changes: {issued} made, {len(todo)} appointments to go, waiting e.g. {waiting}")
                self._shown = time.monotonic()
            time.sleep(0.2)
        for future in pending:
            future.result()
        self._pool.shutdown(wait=True)
        self.figures.failures.extend(self._errors)
        left = sum(1 for a in self.planned if a.next_step is not None)
        if left:
            self.figures.failures.append(f"{left} appointments did not get all their planned changes in time")

    def _sql_rows(self) -> dict[str, sa.Row[Any]]:
        """Rows by our key (`id:N` / `ev:ID`); empty while the database is away (the driver waits)."""
        try:
            with self.observer.connect() as conn:
                found = conn.execute(
                    sa.select(
                        appointments.c.id, appointments.c.ghl_event_id, appointments.c.version,
                        appointments.c.sync_state, appointments.c.start_at, appointments.c.end_at,
                        appointments.c.status,
                    )
                ).all()  # fmt: skip
        except sa.exc.OperationalError:
            return {}
        rows = {f"id:{r.id}": r for r in found}
        rows.update({f"ev:{r.ghl_event_id}": r for r in found if r.ghl_event_id})
        return rows

    def _waited(self, appt: Expected, rows: dict[str, sa.Row[Any]]) -> bool:
        """Ready for its next step; an appointment whose last change never arrives is dropped as a finding."""
        if self._ready(appt, rows):
            appt.waiting_since = None
            return True
        now = time.monotonic()
        appt.waiting_since = appt.waiting_since or now
        if now - appt.waiting_since > self.handoff_timeout_s:
            # Judged after reconciliation: a lost webhook explains it, anything else is a lost change.
            self.stalled[appt.key] = f"{appt.event_id}"
            appt.script = appt.script[: appt.done]
        return False

    def _ready(self, appt: Expected, rows: dict[str, sa.Row[Any]]) -> bool:  # noqa: PLR0911
        """A step on the other side than the previous one waits until that change arrived there."""
        step = appt.next_step
        if step is None:
            return False
        if appt.done == 0 or step.split("_")[0] == appt.script[appt.done - 1].split("_")[0]:
            return True
        if step.startswith("ghl_"):  # the RV3 change must be in GHL: synced, latest version
            row = rows.get(f"id:{appt.sql_id}")
            start, end = appt.times()
            arrived = row is not None and row.sync_state == "synced" and row.ghl_event_id is not None
            if not arrived or (row.start_at, row.end_at, row.status, row.version) != (
                start, end, appt.status, appt.version,
            ):  # fmt: skip
                return False
            appt.event_id = row.ghl_event_id
            return True
        row = rows.get(f"ev:{appt.event_id}")  # the GHL change must be in SQL
        if row is None:
            return False
        start, end = appt.times()
        if (row.start_at, row.end_at, row.status) != (start, end, appt.status):
            return False
        appt.sql_id = row.id
        return True

    def _step(self, appt: Expected) -> None:
        step = appt.next_step
        before = (appt.moves, appt.status, appt.deleted)
        try:
            assert step is not None
            getattr(self, f"_{step}")(appt)
            appt.done += 1
            self.figures.counts[f"change {step}"] += 1
        except (RuntimeError, httpx.HTTPError, AssertionError) as exc:  # a failed change is a finding: go on
            with self._lock:
                self._errors.append(f"{appt.key} {step}: {type(exc).__name__}: {str(exc)[:300]}")
            appt.moves, appt.status, appt.deleted = before  # not made: expect what was there before
            appt.script = appt.script[: appt.done]
        finally:
            appt.busy = False

    def _expect_ok(self, response: httpx.Response, appt: Expected) -> dict[str, Any]:
        if response.status_code not in (200, 201):
            raise RuntimeError(f"API answered {response.status_code}: {response.text[:200]}")
        data: dict[str, Any] = response.json()
        appt.version = int(data["version"])
        return data

    def _rv3_create(self, appt: Expected) -> None:
        created = self.desk.call("POST", "/ghl/citas", json=_body(appt), headers={"Idempotency-Key": appt.key})
        appt.sql_id = int(self._expect_ok(created, appt)["id"])

    def _rv3_move(self, appt: Expected) -> None:
        appt.moves += 1
        self._expect_ok(self.desk.call("PUT", f"/ghl/citas/{appt.sql_id}", json=_body(appt)), appt)

    def _rv3_cancel(self, appt: Expected) -> None:
        appt.status = "cancelled"
        self._expect_ok(self.desk.call("POST", f"/ghl/citas/{appt.sql_id}/cancel"), appt)

    def _ghl_book(self, appt: Expected) -> None:
        appt.contact_id = self.ghl_contacts[appt.patient % len(self.ghl_contacts)]
        start, end = appt.times()
        booked = self.admin.simulate_booking(
            locationId=LOCATION, calendarId=appt.calendar, contactId=appt.contact_id, title=appt.title,
            startTime=start.isoformat(), endTime=end.isoformat(), appointmentStatus="new",
        )  # fmt: skip
        appt.event_id = str(booked["id"])

    def _ghl_move(self, appt: Expected) -> None:
        appt.moves += 1
        start, end = appt.times()
        assert appt.event_id is not None
        self.admin.simulate_appointment_edit(appt.event_id, startTime=start.isoformat(), endTime=end.isoformat())

    def _ghl_cancel(self, appt: Expected) -> None:
        appt.status = "cancelled"
        assert appt.event_id is not None
        self.admin.simulate_appointment_edit(appt.event_id, appointmentStatus="cancelled")

    def _ghl_delete(self, appt: Expected) -> None:
        appt.status = "cancelled"
        appt.deleted = True
        assert appt.event_id is not None
        self.admin.simulate_appointment_delete(appt.event_id)


class HostSlots:
    """Hosts on fixed ports behind the `front` proxy, each slot killed with -9 and restarted on its port (a stack
    dataclass of a chaos run provides the attributes)."""

    env: dict[str, str]
    work: Path
    front: TcpProxy
    hosts: list[HostProcess]  # every process started, restarts included
    live: dict[int, HostProcess]  # the one running on each slot
    options: Any  # the run's options: `message_lease_s`, how long a killed host's messages stay invisible

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.front.port}"

    def start_host(self, slot: int, port: int) -> HostProcess:
        host = HostProcess(self.env, port, self.work / f"host-{slot}.log", self.options.message_lease_s)
        self.hosts.append(host)
        host.start(timeout=90)
        self.live[slot] = host
        return host

    def kill_and_restart(self, slot: int) -> None:
        """kill -9 one host (its messages come back to the others after their lease), then start it again."""
        host = self.live[slot]
        host.kill()
        self.start_host(slot, host.port)

    def stop_hosts(self) -> None:
        for host in self.hosts:
            host.stop()


@dataclass
class ChaosStack(HostSlots):
    """Everything the run starts, and how to break each part."""

    options: ChaosOptions
    work: Path
    azurite: Azurite
    sandbox: SandboxServer
    db_proxy: TcpProxy
    front: TcpProxy
    observer: sa.Engine
    db_name: str
    env: dict[str, str]
    hosts: list[HostProcess] = field(default_factory=list)  # every process started, restarts included
    live: dict[int, HostProcess] = field(default_factory=dict)  # the one running on each backend port


def _host_env(azurite: Azurite, sandbox: SandboxServer, sql_url: str, options: ChaosOptions) -> dict[str, str]:
    """Every app setting explicit (empty = unset), so no developer setting leaks into the run."""
    keys = sandbox.public_keys
    return app_env(
        {
            "AzureWebJobsStorage": azurite.connection_string,
            "SQL_URL": sql_url,
            "GHL_BASE_URL": sandbox.url,
            "GHL_MARKETPLACE_URL": sandbox.url,
            "GHL_PRIVATE_TOKEN": DEMO_PRIVATE_TOKEN,
            "GHL_LOCATION_ID": LOCATION,
            "GHL_WEBHOOK_ED25519_KEY": keys.ed25519_pem,
            "GHL_WEBHOOK_RSA_KEY": keys.rsa_pem,
            "GHL_WEBHOOK_VERIFY": "true",
            "GHL_RATE_LIMIT_INTERVAL_MS": str(options.rate_interval_ms),
            "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
            "PYTHON_THREADPOOL_THREAD_COUNT": "16",
            # An outbox entry storage could not take is swept after 10 s (not 1 min), checked every 5 s.
            "OUTBOX_SWEEP_SCHEDULE": "*/5 * * * * *",
            "OUTBOX_SWEEP_AFTER_S": "10",
        }
    )


@contextlib.contextmanager
def chaos_stack(options: ChaosOptions) -> Iterator[ChaosStack]:
    """Start PostgreSQL's throw-away database, the proxies, Azurite, the sandbox and two hosts; stop them all."""
    with contextlib.ExitStack() as cleanup:
        work = options.work_dir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        direct = sa.make_url(
            cleanup.enter_context(
                postgres_database(
                    "rv3sync_chaos", admin_url=POSTGRES_ADMIN_URL, keep=options.keep_db, connect_timeout_s=5
                )
            )
        )
        if options.keep_db:
            options.log(f"database kept: {direct.database}")
        observer = sa.create_engine(direct, pool_pre_ping=True, connect_args={"connect_timeout": 5})
        cleanup.callback(observer.dispose)
        db_proxy = cleanup.enter_context(TcpProxy([(direct.host or "127.0.0.1", direct.port or 5432)]))
        through_proxy = direct.set(host="127.0.0.1", port=db_proxy.port).render_as_string(hide_password=False)

        azurite = options.azurite
        if azurite is None:
            azurite = cleanup.enter_context(Azurite.on_free_ports(work / "azurite"))
        ports = [free_port(), free_port()]
        front = cleanup.enter_context(TcpProxy([("127.0.0.1", port) for port in ports]))
        config = SandboxConfig(seed=DEMO_SEED, key_dir=work / "keys", rsa_key_bits=2048)
        config.webhooks.url = f"http://127.0.0.1:{front.port}/api/webhooks/ghl"
        # GHL redelivers a webhook answered 429 six times ~10 min apart; scaled so they span the storage restart.
        retry_s = max(1.0, options.storage_down_s)
        config.webhooks.time_scale = retry_s / 600
        config.webhooks.retry_jitter_seconds = 60
        config.rate_limit.interval_ms = options.rate_interval_ms
        sandbox = cleanup.enter_context(SandboxServer(config))
        env = _host_env(azurite, sandbox, through_proxy, options)
        stack = ChaosStack(options, work, azurite, sandbox, db_proxy, front, observer, str(direct.database), env)
        cleanup.callback(stack.stop_hosts)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda slot: stack.start_host(slot, ports[slot]), range(2)))
        yield stack


def queue_depths(azurite: Azurite, names: tuple[str, ...]) -> dict[str, int]:
    from azure.core.exceptions import AzureError
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(azurite.connection_string, connection_timeout=5)
    depths = {}
    for name in names:
        try:
            depths[name] = service.get_queue_client(name).get_queue_properties().approximate_message_count or 0
        except AzureError:
            depths[name] = 0
    return depths


def poison_messages(azurite: Azurite, queues: tuple[str, ...] = QUEUES) -> list[dict[str, Any]]:
    """What sits in the poison queues of `queues` (peeked, not removed), decoded for the report."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    found = []
    for name in queues:
        with contextlib.suppress(ResourceNotFoundError):
            for message in service.get_queue_client(f"{name}-poison").peek_messages(max_messages=32):
                try:
                    body = json.loads(base64.b64decode(message.content))
                except ValueError:
                    body = message.content
                found.append({"queue": f"{name}-poison", "body": body})
    return found


def unsettled(stack: ChaosStack) -> dict[str, int]:
    """What is left to do (empty when settled): open outbox entries, unsynced appointments, queued messages,
    webhooks GHL still has to send."""
    left: dict[str, int] = {}
    try:
        with stack.observer.connect() as conn:
            left["open outbox entries"] = conn.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status.in_(["pending", "dispatched"]))
            ).scalar_one()
            left["pending appointments"] = conn.execute(
                sa.select(sa.func.count()).select_from(appointments).where(appointments.c.sync_state == "pending")
            ).scalar_one()
    except sa.exc.OperationalError:
        left["database unreachable"] = 1
    left.update(queue_depths(stack.azurite, QUEUES))
    left["webhooks to send"] = stack.sandbox.admin.state()["webhooks"]["pending"]
    return {what: n for what, n in left.items() if n}


class Timeline:
    """The faults, one after another with calm gaps between, in a thread beside the changes."""

    def __init__(self, stack: ChaosStack, figures: Figures) -> None:
        self.stack = stack
        self.figures = figures
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-timeline", daemon=True)

    def duration_estimate(self) -> float:
        o = self.stack.options
        return o.gap_s * (3 + o.kills + 1) + o.ghl_outage_s + o.db_outage_s + o.storage_down_s + 5 * o.kills

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _mark(self, what: str, started: float) -> None:
        self.figures.timings[what] = round(time.monotonic() - started, 1)
        self.stack.options.log(f"  [{time.monotonic() - self._t0:6.1f}s] {what}")

    def _run(self) -> None:
        o = self.stack.options
        admin = self.stack.sandbox.admin
        self._t0 = time.monotonic()
        try:
            admin.configure("faults", {"seed": o.seed, "hang_seconds": 5, "all_endpoints": {
                "rate_limit": o.rate_limit, "server_error": o.server_error,
                "applied_then_failed": o.reset_after_apply, "applied_then_failed_outcome": "reset",
            }})  # fmt: skip
            kills = [slot % 2 for slot in range(o.kills)]
            steps: list[tuple[str, Callable[[], None]]] = []
            if kills:
                steps.append(("kill -9 host 0 + restart", lambda: self.stack.kill_and_restart(kills[0])))
            steps.append((f"GHL outage {o.ghl_outage_s:.0f}s", lambda: self._ghl_outage(o.ghl_outage_s)))
            steps.append((f"Azurite restart ({o.storage_down_s:.0f}s down)", self._storage_restart))
            steps.append((f"database outage {o.db_outage_s:.0f}s", self._db_outage))
            for number, slot in enumerate(kills[1:], start=1):
                steps.append(
                    (f"kill -9 host {slot} + restart ({number + 1})", lambda s=slot: self.stack.kill_and_restart(s))
                )  # type: ignore[misc]
            for what, action in steps:
                time.sleep(o.gap_s)
                started = time.monotonic()
                action()
                self._mark(what, started)
            time.sleep(o.gap_s)
            admin.configure("faults", {})
            self._mark("GHL faults off", self._t0)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread by join()
            self.error = exc
        finally:
            self.done.set()

    def _ghl_outage(self, seconds: float) -> None:
        self.stack.sandbox.admin.start_outage(seconds, mode="503")
        time.sleep(seconds)
        self.stack.sandbox.admin.end_outage()

    def _storage_restart(self) -> None:
        self.stack.azurite.stop()
        time.sleep(self.stack.options.storage_down_s)
        self.stack.azurite.start()

    def _db_outage(self) -> None:
        with self.stack.db_proxy.outage():
            time.sleep(self.stack.options.db_outage_s)
        self.figures.counts["database connections refused"] = self.stack.db_proxy.refused


def reconcile(stack: ChaosStack, desk: FrontDesk, first: date, last: date, *, heal: bool) -> dict[str, Any]:
    """POST /api/reconciliation/run over the window; the finished report."""
    started = desk.call(
        "POST",
        "/reconciliation/run",
        json={"location_id": LOCATION, "desde": first.isoformat(), "hasta": last.isoformat(), "heal": heal},
    )
    if started.status_code != 202:
        raise RuntimeError(f"reconciliation not started: {started.status_code} {started.text[:300]}")
    (ref,) = started.json()["reports"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        report: dict[str, Any] = desk.call("GET", f"/reconciliation/reports/{ref['id']}").json()
        if report["status"] in ("completed", "failed"):
            return report
        time.sleep(0.5)
    raise RuntimeError("the reconciliation report did not finish in 300s")


def reconcile_all(
    stack: ChaosStack, desk: FrontDesk, last_day: date, figures: Figures, *, heal: bool, count_matching: bool = True
) -> dict[str, str]:
    """Reconcile FIRST_DAY..last_day in runs of at most 31 days; the drift found, by GHL event (or `id:N`)."""
    drift: dict[str, str] = {}
    first_day = FIRST_DAY
    while first_day <= last_day:
        window_end = min(first_day + timedelta(days=RECONCILE_MAX_DAYS - 1), last_day)
        report = reconcile(stack, desk, first_day, window_end, heal=heal)
        figures.counts["reconciliation runs"] += 1
        if report["status"] != "completed":
            figures.failures.append(f"reconciliation {first_day}..{window_end} {report['status']}")
        if not heal and count_matching:
            figures.counts["reconciliation matching"] += int(report.get("totales", {}).get("coincidentes", 0))
        for kind in _DRIFT_LISTS:
            for entry in report.get(kind) or []:
                drift[entry.get("ghl_event_id") or _event_of(stack, entry.get("id"))] = kind
        first_day = window_end + timedelta(days=1)
    return drift


def _event_of(stack: ChaosStack, appointment_id: object) -> str:
    """The GHL event of an appointment a report names by its id (`id:N` when it has none)."""
    with stack.observer.connect() as conn:
        event = conn.execute(
            sa.select(appointments.c.ghl_event_id).where(appointments.c.id == int(str(appointment_id)))
        ).scalar_one_or_none()
    return str(event) if event else f"id:{appointment_id}"


def _webhooks_given_up(stack: ChaosStack) -> set[str]:
    """GHL events whose webhook GHL stopped delivering (a final failure: anything but a 429)."""
    failed = stack.sandbox.admin.webhooks(state="failed")
    return {str((d["body"].get("appointment") or {}).get("id")) for d in failed}


def _drain(stack: ChaosStack, options: ChaosOptions, figures: Figures, what: str) -> None:
    """Wait (bounded) until nothing is left to do; the wait is one of the run's figures."""
    started = shown = time.monotonic()
    while left := unsettled(stack):
        if time.monotonic() - started > options.drain_timeout_s:
            figures.failures.append(f"{what}: not drained within {options.drain_timeout_s:.0f}s: {left}")
            break
        if time.monotonic() - shown > 10:
            options.log(f"  {what}: {left}")
            shown = time.monotonic()
        time.sleep(1)
    figures.timings[what] = round(time.monotonic() - started, 1)


def verify(stack: ChaosStack, planned: list[Expected], figures: Figures) -> None:
    """Final state of every appointment in SQL (as made) and in GHL (as SQL); duplicates; failures left."""
    from sync_core.models import AppointmentStatus
    from sync_core.status import to_ghl

    count, fail = figures.counts, figures.failures
    with stack.observer.connect() as conn:
        rows = conn.execute(sa.select(appointments)).all()
        failed_entries = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == "failed")
        ).scalar_one()
    state = stack.sandbox.admin.state()
    live = {e["id"]: e for e in state["appointments"]}
    deleted = {e["id"]: e for e in state["deleted_appointments"]}
    by_id = {row.id: row for row in rows}
    by_event: dict[str, list[sa.Row[Any]]] = {}
    for row in rows:
        if row.ghl_event_id:
            by_event.setdefault(row.ghl_event_id, []).append(row)
    matched: set[int] = set()
    lost: list[str] = []
    for appt in planned:
        if appt.done == 0:
            continue
        row = by_id.get(appt.sql_id) if appt.sql_id else next(iter(by_event.get(appt.event_id or "", [])), None)
        if row is None:
            lost.append(f"{appt.key}: not in SQL")
            continue
        matched.add(row.id)
        start, end = appt.times()
        if (row.start_at, row.end_at, row.status) != (start, end, appt.status):
            lost.append(
                f"{appt.key}: SQL holds {row.start_at}/{row.end_at}/{row.status}, made {start}/{end}/{appt.status}"
            )
            continue
        if row.ghl_event_id is None:
            if row.status == "cancelled" and not appt.script[0].startswith("ghl") and row.sync_state == "local_only":
                count["cancelled before GHL heard of them"] += 1
            else:
                lost.append(f"{appt.key}: never reached GHL")
            continue
        event = live.get(row.ghl_event_id) or deleted.get(row.ghl_event_id)
        if event is None or appt.deleted != (row.ghl_event_id in deleted):
            lost.append(f"{appt.key}: GHL event {row.ghl_event_id} missing or wrongly deleted")
            continue
        if not appt.deleted:
            held = (
                datetime.fromisoformat(event["startTime"]), datetime.fromisoformat(event["endTime"]),
                event["appointmentStatus"], event["calendarId"], event["title"],
            )  # fmt: skip
            wanted = (row.start_at, row.end_at, to_ghl(AppointmentStatus(row.status)), row.calendar_id, row.title)
            if held != wanted:
                lost.append(f"{appt.key}: GHL holds {held}, SQL {wanted}")
    count["appointments"] = sum(1 for a in planned if a.done)
    count["lost changes"] = len(lost)
    if lost:
        fail.append(f"{len(lost)} lost changes, e.g. {lost[:5]}")
    extra_rows = [row.id for row in rows if row.id not in matched]
    count["unexpected SQL rows"] = len(extra_rows)
    if extra_rows:
        fail.append(f"{len(extra_rows)} SQL appointments nobody made (duplicates?): ids {extra_rows[:10]}")
    shared_events = [event for event, group in by_event.items() if len(group) > 1]
    stray = [event for event in live if event not in by_event]
    count["duplicate GHL events"] = len(shared_events) + len(stray)
    if shared_events or stray:
        fail.append(f"duplicates in GHL: {len(stray)} events without an appointment, {len(shared_events)} shared")
    phones = Counter(c.get("phone") for c in state["contacts"] if c.get("phone"))
    count["duplicate GHL contacts"] = sum(n - 1 for n in phones.values() if n > 1)
    if count["duplicate GHL contacts"]:
        fail.append(f"{count['duplicate GHL contacts']} patients got more than one GHL contact")
    # Cancelled before ever reaching GHL is `local_only` (checked above); every other appointment is in GHL.
    errors = [row.id for row in rows if row.sync_state != ("local_only" if row.ghl_event_id is None else "synced")]
    count["appointments not synced"] = len(errors)
    count["outbox entries failed"] = failed_entries
    if errors or failed_entries:
        fail.append(
            f"{len(errors)} appointments not synced (ids {errors[:10]}), {failed_entries} outbox entries failed"
        )
    count["GHL events"] = len(live)
    count["GHL events deleted"] = len(deleted)
    count["GHL contacts"] = len(state["contacts"])
    by_outcome = state["counts"]["by_outcome"]
    for outcome, n in sorted(by_outcome.items()):
        count[f"GHL calls {outcome}"] = n
    attempts = Counter(a["status"] for d in stack.sandbox.admin.webhooks() for a in d["attempts"])
    for status, n in sorted(attempts.items(), key=lambda item: str(item[0])):
        count[f"webhook attempts answered {status}"] = n
    hooks = state["webhooks"]
    count["webhooks delivered"] = hooks["delivered"]
    count["webhooks failed"] = hooks["failed"]
    poison = poison_messages(stack.azurite)
    count["poison messages"] = len(poison)
    if poison:
        fail.append(f"{len(poison)} messages in poison queues: {poison[:5]}")


def run(options: ChaosOptions) -> Figures:
    """The whole scenario; `Figures.failures` lists every check that failed (empty: green)."""
    figures = Figures()
    planned = plan(options.changes)
    log = options.log
    began = time.monotonic()
    with chaos_stack(options) as stack:
        figures.details["stack"] = stack
        clear_queues(stack.azurite)
        figures.timings["stack start"] = round(time.monotonic() - began, 1)
        desk = FrontDesk(stack.url, figures)
        try:
            ready = desk.call("GET", "/ghl/calendars")  # provisions the demo location (private integration)
            if ready.status_code != 200:
                raise RuntimeError(f"calendars: {ready.status_code} {ready.text[:200]}")
            contacts = [
                str(stack.sandbox.admin.simulate_contact_create(
                    locationId=LOCATION, firstName="Cliente", lastName=f"Web {i}", phone=f"+5199{i:07d}"
                )["id"])
                for i in range(GHL_CONTACTS)
            ]  # fmt: skip
            timeline = Timeline(stack, figures)
            duration = timeline.duration_estimate()
            log(f"chaos: {options.changes} changes over ~{duration:.0f}s, seed {options.seed}, work dir {stack.work}")
            started = time.monotonic()
            timeline.start()
            driver = Driver(
                planned,
                desk,
                stack.sandbox,
                stack.observer,
                contacts,
                figures,
                options.client_workers,
                log,
                options.handoff_timeout_s,
            )
            driver.run(duration / options.changes, stop_at=started + duration + options.drain_timeout_s)
            figures.timings["changes made"] = round(time.monotonic() - started, 1)
            timeline.join()
            figures.timings["fault timeline"] = round(time.monotonic() - started, 1)
            _drain(stack, options, figures, "drain after the faults")
            last_day = max(a.day for a in planned)
            reconciled = time.monotonic()
            drift = reconcile_all(stack, desk, last_day, figures, heal=False)
            # GHL retries a webhook only after a 429: one whose connection died with a killed host is gone, and
            # only reconciliation can bring it back. Such drift is expected (and listed); any other is a bug.
            given_up = _webhooks_given_up(stack)
            figures.counts["webhooks GHL gave up on (host killed mid-request)"] = len(given_up)
            unexplained = {event: kind for event, kind in drift.items() if event not in given_up}
            figures.counts["reconciliation drift"] = len(drift)
            figures.counts["reconciliation drift unexplained"] = len(unexplained)
            if unexplained:
                figures.failures.append(f"reconciliation drift not explained by a lost webhook: {unexplained}")
            stuck = {key: event for key, event in driver.stalled.items() if event not in given_up}
            figures.counts["changes that never crossed over"] = len(stuck)
            if stuck:
                figures.failures.append(f"changes that never reached the other side: {stuck}")
            if drift:
                reconcile_all(stack, desk, last_day, figures, heal=True)
                _drain(stack, options, figures, "drain after auto-heal")
                healed = reconcile_all(stack, desk, last_day, figures, heal=False, count_matching=False)
                figures.counts["reconciliation drift after auto-heal"] = len(healed)
                if healed:
                    figures.failures.append(f"drift left after auto-heal: {healed}")
            figures.timings["reconciliation"] = round(time.monotonic() - reconciled, 1)
            verify(stack, planned, figures)
        finally:
            desk.close()
        if options.on_finish is not None:
            options.on_finish(stack)
        figures.counts["host processes started"] = len(stack.hosts)
        figures.counts["hosts killed -9"] = options.kills
        if figures.failures:
            figures.details["host log tail"] = "\n".join(h.log_tail(1500) for h in stack.live.values())
    figures.timings["total"] = round(time.monotonic() - began, 1)
    return figures


def clear_queues(azurite: Azurite, queues: tuple[str, ...] = QUEUES) -> None:
    """Start from empty queues (a test session shares its Azurite)."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    for name in (*queues, *(f"{q}-poison" for q in queues)):
        with contextlib.suppress(ResourceNotFoundError):
            service.get_queue_client(name).clear_messages()


def report_text(figures: Figures) -> str:
    lines = ["", "chaos run: " + ("GREEN" if figures.ok else "FAILED")]
    lines += [f"  {name:<44} {value}" for name, value in sorted(figures.counts.items())]
    lines += [f"  {'seconds: ' + name:<44} {value}" for name, value in figures.timings.items()]
    lines += [f"  FAILED: {failure}" for failure in figures.failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=2000, help="changes made, both sides together")
    parser.add_argument("--gap", type=float, default=20.0, help="calm seconds before each fault")
    parser.add_argument("--ghl-outage", type=float, default=60.0, help="seconds GHL answers 503 to everything")
    parser.add_argument("--db-outage", type=float, default=30.0, help="seconds the database drops and refuses")
    parser.add_argument("--storage-down", type=float, default=5.0, help="seconds Azurite is stopped")
    parser.add_argument("--kills", type=int, default=2, help="kill -9 of a host (alternating between the two)")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="bound on waiting for the queues")
    parser.add_argument("--keep-db", action="store_true", help="leave the PostgreSQL database for inspection")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep logs and Azurite data here")
    args = parser.parse_args(argv)
    options = ChaosOptions(
        changes=args.changes, gap_s=args.gap, ghl_outage_s=args.ghl_outage, db_outage_s=args.db_outage,
        storage_down_s=args.storage_down, kills=args.kills, work_dir=args.work_dir, drain_timeout_s=args.drain_timeout,
        keep_db=args.keep_db,
    )  # fmt: skip
    if args.seed is not None:
        options.seed = args.seed
    figures = run(options)
    print(report_text(figures))
    if not figures.ok and "host log tail" in figures.details:
        print("\n--- host log tail ---\n" + figures.details["host log tail"], file=sys.stderr)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
