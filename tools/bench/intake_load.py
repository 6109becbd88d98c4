"""Webhook intake under load: signed GHL webhooks at a fixed rate at the local host, then proof each accepted
one was applied exactly once.

Starts Azurite, the GHL sandbox (demo location, one contact), a PostgreSQL database (or --sql-url) holding the
location, and one local Functions host. Every webhook is an AppointmentCreate (a booking made in GHL) with its
own webhookId and event id, signed with Ed25519 as GHL signs (the host trusts the key), prepared before the
clock starts. They are sent open-loop at --rate per second for --seconds (each at its scheduled moment,
whatever the answers before it, on the first free of --concurrency keep-alive connections) to
POST /api/webhooks/ghl, with GHL's 5 s delivery timeout. Printed: accepted (2xx), rejected (by status),
no answer, the achieved send rate, and p50/p99 ack latency (from sending to the answer, and from the
scheduled moment: the queueing a late sender hides). The `ghl-to-rv3` worker of the same host applies them
meanwhile and drains the rest; then the inbox and the appointments are checked: every accepted webhook has
one inbox row and made one appointment, none twice, and no rejected one was applied.

Exit 1 when an accepted webhook was not applied exactly once, or when one got no answer within GHL's timeout
(GHL redelivers only after a 429: a webhook left unanswered is lost for it).

Usage: python -m tools.bench.intake_load [--rate 1000] [--seconds 30] [--concurrency 1000] [--sql-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from tools.azurite import Azurite
from tools.bench.stack import (
    FUNCTION_KEY,
    app_env,
    cpu_seconds,
    hosts,
    machine_load,
    percentile,
    postgres_database,
    stop_cleanly_on_sigterm,
)
from tools.ghl_sandbox import DEMO_PRIVATE_TOKEN, DEMO_SEED, SandboxConfig, SandboxServer
from tools.ghl_sandbox.config import DEMO_LOCATION_ID, ContactSeed
from tools.ghl_sandbox.keys import SigningKeys

CALENDAR = "cal_demo_terapia"
CONTACT = "ct_bench_intake"
GHL_TIMEOUT_S = 5.0  # GHL gives up on a delivery after this long (the sandbox's default, as GHL)
FIRST_START = datetime(2031, 1, 6, 13, tzinfo=UTC)  # 08:00 in Lima, far from anything else
DRAIN_TIMEOUT_S = 1800.0
POLL_S = 1.0
PROGRESS_S = 15.0
WEBHOOK_PATH = "/api/webhooks/ghl"


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    event_id: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Results:
    scheduled: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)  # webhook ids answered 2xx
    rejected: set[str] = field(default_factory=set)  # answered with another status
    unanswered: set[str] = field(default_factory=set)  # no answer within GHL's timeout, or the connection failed
    ack_ms: list[float] = field(default_factory=list)  # from sending to the answer (answered ones)
    late_ms: list[float] = field(default_factory=list)  # from the scheduled moment to the answer
    send_lag_ms: list[float] = field(default_factory=list)  # scheduled moment to the actual send
    sending_s: float = 0.0  # from the first scheduled moment to the last actual send


def deliveries(keys: SigningKeys, count: int) -> list[Delivery]:
    """`count` distinct AppointmentCreate webhooks as GHL sends them, signed (Ed25519) over the exact bytes."""
    made = []
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for i in range(count):
        start = FIRST_START + timedelta(minutes=30 * i)
        event_id = f"evbench{uuid.uuid4().hex[:13]}"
        webhook_id = str(uuid.uuid4())
        body = {
            "type": "AppointmentCreate",
            "locationId": DEMO_LOCATION_ID,
            "webhookId": webhook_id,
            "timestamp": stamp,
            "appointment": {
                "id": event_id,
                "calendarId": CALENDAR,
                "contactId": CONTACT,
                "locationId": DEMO_LOCATION_ID,
                "title": "Reserva en línea",
                "appointmentStatus": "confirmed",
                "startTime": start.isoformat(),
                "endTime": (start + timedelta(minutes=30)).isoformat(),
                "dateAdded": stamp,
                "dateUpdated": stamp,
            },
        }
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-GHL-Signature": keys.sign_ed25519(data)}
        made.append(Delivery(webhook_id, event_id, data, headers))
    return made


def _request_bytes(host: str, delivery: Delivery) -> bytes:
    """The whole HTTP/1.1 request, built before the clock starts (the sender must not be the bottleneck)."""
    head = [f"POST {WEBHOOK_PATH} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(delivery.body)}"]
    head += [f"{name}: {value}" for name, value in delivery.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + delivery.body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and whether the server keeps the connection open, reading the whole answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    fields = {name.strip().lower(): value.strip() for name, value in headers.items()}
    await reader.readexactly(int(fields.get("content-length", "0")))
    return status, fields.get("connection", "").lower() != "close"


async def send_all(base_url: str, planned: list[Delivery], rate: float, concurrency: int) -> Results:
    """Open loop: delivery i is due at start + i/rate and goes out on the first free keep-alive connection
    (at most `concurrency`), answered within GHL's timeout or counted as unanswered (the connection is then
    dropped, as a client that gave up does). Requests are pre-built bytes over asyncio streams: an HTTP
    client library costs milliseconds per request, which made the sender, not the host, the limit."""
    results = Results(scheduled=len(planned))
    address = urlsplit(base_url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    requests = [_request_bytes(f"{host}:{port}", delivery) for delivery in planned]
    due: asyncio.Queue[int | None] = asyncio.Queue()
    start = time.perf_counter() + 0.5

    async def connection() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (i := await due.get()) is not None:
            delivery = planned[i]
            sent = time.perf_counter()
            results.send_lag_ms.append((sent - start - i / rate) * 1000)
            results.sending_s = max(results.sending_s, sent - start)
            try:
                async with asyncio.timeout(GHL_TIMEOUT_S):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    assert reader is not None
                    writer.write(requests[i])
                    status, keep = await _read_answer(reader)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
                kind = "timeout" if isinstance(error, TimeoutError) else type(error).__name__
                results.statuses[f"no answer ({kind})"] += 1
                results.unanswered.add(delivery.webhook_id)
                _close(writer)
                writer = None
                continue
            done = time.perf_counter()
            if not keep:
                _close(writer)
                writer = None
            results.ack_ms.append((done - sent) * 1000)
            results.late_ms.append((done - start - i / rate) * 1000)
            results.statuses[str(status)] += 1
            if 200 <= status < 300:
                results.accepted.add(delivery.webhook_id)
            else:
                results.rejected.add(delivery.webhook_id)
        _close(writer)

    workers = [asyncio.create_task(connection()) for _ in range(concurrency)]
    for i in range(len(planned)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait(i)
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    return results


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()


def seed_database(sql_url: str) -> None:
    from shared.store import locations as location_repo
    from shared.store.database import Database

    db = Database.connect_url(sql_url)
    now = datetime.now(UTC)
    with db.transaction() as conn:
        location = location_repo.insert_location(
            conn,
            {
                "ghl_location_id": DEMO_LOCATION_ID,
                "name": "Sede Principal",
                "timezone": "America/Lima",
                "is_active": True,
                "default_calendar_id": CALENDAR,
            },
            now,
        )
        location_repo.replace_calendars(
            conn, location.id, [location_repo.CalendarSnapshot(CALENDAR, "Terapia", None, "America/Lima", True)], now
        )
    db.dispose()


@dataclass
class Applied:
    inbox_rows: int
    inbox_duplicates: int
    accepted_in_inbox: int
    accepted_applied: int
    appointments_twice: int
    rejected_applied: int
    unanswered_applied: int
    drain_s: float


def wait_and_check(engine: sa.Engine, storage: Azurite, planned: list[Delivery], results: Results) -> Applied:
    """Wait until the worker has taken every queued webhook, then compare the database with the answers."""
    from azure.storage.queue import QueueClient

    from shared.queues import GHL_TO_RV3
    from shared.store.schema import appointments, webhook_inbox

    queue = QueueClient.from_connection_string(storage.connection_string, GHL_TO_RV3)
    started = time.monotonic()
    settled_rows, settled_since, shown = -1, time.monotonic(), 0.0
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        depth = queue.get_queue_properties().approximate_message_count
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(webhook_inbox)).scalar_one()
            open_rows = conn.execute(
                sa.select(sa.func.count()).select_from(webhook_inbox).where(webhook_inbox.c.processed_at.is_(None))
            ).scalar_one()
        if rows != settled_rows:
            settled_rows, settled_since = rows, time.monotonic()
        # Done when the queue is empty, nothing is half-applied, and nothing new arrived for a few seconds
        # (a message being processed is invisible, so an empty queue alone proves nothing).
        if depth == 0 and open_rows == 0 and time.monotonic() - settled_since > 5:
            break
        if time.monotonic() - shown >= PROGRESS_S:
            print(f"  draining: {depth} queued, {rows} in the inbox", file=sys.stderr, flush=True)
            shown = time.monotonic()
        time.sleep(POLL_S)
    drain_s = time.monotonic() - started
    by_webhook = {d.webhook_id: d.event_id for d in planned}
    with engine.connect() as conn:
        inbox = conn.execute(sa.select(webhook_inbox.c.webhook_id, webhook_inbox.c.success)).all()
        events = Counter(
            conn.execute(sa.select(appointments.c.ghl_event_id).where(appointments.c.ghl_event_id.is_not(None)))
            .scalars()
            .all()
        )
    seen = Counter(row.webhook_id for row in inbox)
    applied_ids = {w for w, event in by_webhook.items() if events.get(event)}
    return Applied(
        inbox_rows=len(inbox),
        inbox_duplicates=sum(n - 1 for n in seen.values() if n > 1),
        accepted_in_inbox=sum(1 for w in results.accepted if seen.get(w) == 1),
        accepted_applied=sum(1 for w in results.accepted if events.get(by_webhook[w]) == 1),
        appointments_twice=sum(1 for n in events.values() if n > 1),
        rejected_applied=len(results.rejected & applied_ids),
        unanswered_applied=len(results.unanswered & applied_ids),
        drain_s=drain_s,
    )


def _ms(samples: list[float]) -> str:
    return f"{percentile(samples, 0.5):.1f} / {percentile(samples, 0.99):.1f} ms"


def _print(lines: list[tuple[str, str, str]]) -> None:
    for name, value, note in lines:
        print(f"{name:<27} {value:>22}  {note}", flush=True)


def report_intake(results: Results, args: argparse.Namespace, cores: tuple[float, ...]) -> None:
    """The intake's figures, printed as soon as the sending is over (the drain may take long)."""
    print(
        f"{results.scheduled} signed webhooks scheduled at {args.rate:g}/s for {args.seconds:g} s "
        f"(at most {args.concurrency} in flight)"
    )
    _print(
        [
            ("achieved send rate", f"{results.scheduled / results.sending_s:.1f} /s", ""),
            ("accepted (2xx)", f"{len(results.accepted)}", ""),
            ("rejected (non-2xx)", f"{len(results.rejected)}", ""),
            ("no answer", f"{len(results.unanswered)}", f"within GHL's {GHL_TIMEOUT_S:g} s"),
            ("answers by status", "", str(dict(sorted(results.statuses.items())))),
            ("ack latency p50 / p99", _ms(results.ack_ms), "sent -> answer"),
            ("from schedule p50 / p99", _ms(results.late_ms), "scheduled moment -> answer (queueing included)"),
            ("send lag p50 / p99", _ms(results.send_lag_ms), "scheduled moment -> sent (client-side delay)"),
            ("host CPU while sending", f"{cores[0]:.2f} cores", "one Python process: its code runs on 1 core"),
            ("sender CPU while sending", f"{cores[1]:.2f} cores", "this process (near 1.0: the sender is the limit)"),
            ("Azurite CPU while sending", f"{cores[2]:.2f} cores", "one Node.js process (near 1.0: it is the limit)"),
        ]
    )


def report_applied(results: Results, applied: Applied, load: str) -> int:
    accepted = len(results.accepted)
    _print(
        [
            ("drain of ghl-to-rv3", f"{applied.drain_s:.1f} s", "after the last answer"),
            ("inbox rows", f"{applied.inbox_rows}", f"duplicates {applied.inbox_duplicates}"),
            ("accepted with 1 inbox row", f"{applied.accepted_in_inbox} of {accepted}", ""),
            ("accepted applied once", f"{applied.accepted_applied} of {accepted}", ""),
            ("appointments made twice", f"{applied.appointments_twice}", "must be 0"),
            ("rejected but applied", f"{applied.rejected_applied}", "must be 0"),
            ("unanswered but applied", f"{applied.unanswered_applied}", "taken after GHL gave up: once, nothing lost"),
        ]
    )
    exact = (
        applied.accepted_in_inbox == accepted
        and applied.accepted_applied == accepted
        and applied.inbox_duplicates == 0
        and applied.appointments_twice == 0
        and applied.rejected_applied == 0
    )
    print(f"every accepted webhook applied exactly once: {'yes' if exact else 'NO'}")
    print(f"every webhook answered within GHL's {GHL_TIMEOUT_S:g} s: {'yes' if not results.unanswered else 'NO'}")
    print(f"machine: {load}")
    return 0 if exact and not results.unanswered else 1


def _allow_open_files(wanted: int) -> None:
    """Raise this process's open-file limit (often 1,024 by default) towards `wanted`, within the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=1000.0, help="webhooks per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send (default 30)")
    parser.add_argument(
        "--concurrency", type=int, default=1000, help="connections, so requests in flight at most (default 1000)"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an app setting for the host, e.g. AzureFunctionsJobHost__extensions__http__maxOutstandingRequests=100",
    )
    parser.add_argument("--sql-url", help="the sync database (default: a fresh PostgreSQL database on 127.0.0.1)")
    args = parser.parse_args(argv)
    stop_cleanly_on_sigterm()
    _allow_open_files(args.concurrency + 1024)  # the sender's connections, and the host's (it inherits the limit)
    load_before = machine_load()
    count = round(args.rate * args.seconds)
    keys = SigningKeys.generate()
    planned = deliveries(keys, count)
    config = SandboxConfig(seed=DEMO_SEED.model_copy(deep=True))
    config.seed.locations[0].contacts = [ContactSeed(id=CONTACT, firstName="Paciente", lastName="Reserva")]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="intake-load-")))
        storage = stack.enter_context(Azurite.on_free_ports(tmp / "azurite"))
        config.key_dir = tmp / "keys"
        sandbox = stack.enter_context(SandboxServer(config))
        sql_url = args.sql_url or stack.enter_context(postgres_database())
        seed_database(sql_url)
        public = keys.public_keys()
        env = app_env(
            {
                "AzureWebJobsStorage": storage.connection_string,
                "SQL_URL": sql_url,
                "GHL_BASE_URL": sandbox.url,
                "GHL_PRIVATE_TOKEN": DEMO_PRIVATE_TOKEN,
                "GHL_LOCATION_ID": DEMO_LOCATION_ID,
                "GHL_WEBHOOK_VERIFY": "true",
                "GHL_WEBHOOK_ED25519_KEY": public.ed25519_pem,
                "GHL_WEBHOOK_RSA_KEY": public.rsa_pem,
                "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
                "PYTHON_THREADPOOL_THREAD_COUNT": "32",
            }
            | dict(item.split("=", 1) for item in args.setting)
        )
        engine = sa.create_engine(sql_url)
        stack.callback(engine.dispose)
        with hosts(1, env, tmp, "intake") as (host,):
            httpx.post(f"{host.base_url}/api/webhooks/ghl", content=b"{}", timeout=10)  # warm the route
            before = (host.cpu_seconds(), time.process_time(), cpu_seconds(storage.pid), time.monotonic())
            results = asyncio.run(send_all(host.base_url, planned, args.rate, args.concurrency))
            after = (host.cpu_seconds(), time.process_time(), cpu_seconds(storage.pid), time.monotonic())
            wall = after[3] - before[3]
            cores = tuple((a - b) / wall for a, b in zip(after[:3], before[:3], strict=True))
            report_intake(results, args, cores)
            applied = wait_and_check(engine, storage, planned, results)
    return report_applied(results, applied, f"{load_before} before, {machine_load()} after")


if __name__ == "__main__":
    sys.exit(main())
