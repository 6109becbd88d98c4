"""Reconciliation at scale: N appointments per side, elapsed time, GHL calls and the run's peak memory.

For each size (default 5,000 then 50,000 in the same run) the GHL sandbox (in this process, its rate limit
scaled up) is seeded in-process and a fresh SQLite database (or --sql-url) through the store with the same
appointments over a 31-day window, plus a fixed amount of drift of each kind. The reconciliation itself runs
in a child process exactly as the queue worker runs it (`start_run` as POST /api/reconciliation/run does, then
the `reconcile` messages from Azurite, continuations included); the child reports its peak RSS during the run
and how far above its RSS before the run that went (and, with --tracemalloc, its Python heap peak: slower).
Memory must stay flat as the count grows: each GHL response and SQL chunk is bounded, not the walk.

With --rv3 the appointments are also RV3's own rows (a SQLite RV3 database, RV3_SQL_URL), linked to the stored
ones as the capture links them, plus a fixed amount of RV3-side drift: the run then also walks RV3's tables.

Usage: python -m tools.bench.reconcile [--sizes 5000 50000] [--max-events 200] [--sql-url URL] [--rv3] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shared.settings import app_setting_names
from shared.store import appointments as appointment_repo
from shared.store import locations as location_repo
from shared.store import rv3 as rv3_store
from shared.store.database import Database
from shared.store.schema import rv3_appointments
from shared.store.tables import metadata
from sync_core.hashing import SyncedFields, sync_hash
from sync_core.reconcile import SlicePlan
from sync_core.rv3_mapping import Cursor, Rv3Snapshot
from sync_core.times import zone
from tests.fixtures.rv3_schema import PENDIENTE, create_rv3_database
from tools.azurite import Azurite
from tools.ghl_sandbox import DEMO_PRIVATE_TOKEN, DEMO_SEED, SandboxConfig, SandboxServer
from tools.ghl_sandbox.config import ContactSeed
from tools.ghl_sandbox.state import Appointment, new_id

APP_DIR = Path(__file__).resolve().parents[2]
LOCATION = "loc_demo"
CALENDARS = ("cal_demo_terapia", "cal_demo_reflexologia")
CONTACT = "ct_bench"
WINDOW_START = datetime(2030, 3, 1, 5, tzinfo=UTC)  # 2030-03-01 00:00 in Lima
WINDOW = timedelta(days=31)
DRIFT_PER_KIND = 20  # the same drift at every size, so the memory compared is the walk's, not the report's
MISSED_BOOKING_IN_SQL, NEVER_SENT_TO_GHL, RETITLED_IN_GHL, CANCELLED_IN_GHL = range(4)
FLAT_RATIO = 1.5  # 10x the appointments may cost at most this much more memory
RV3_STAMP = datetime(2030, 1, 1)  # RV3's rows were saved before the capture's cursor: none is still in flight
RV3_CURSOR = Cursor(updated_at=datetime(2030, 2, 1), id=0)
KINDS = ("faltantes_local", "faltantes_ghl", "canceladas_no_actualizadas", "desincronizadas")
# RV3-side drift with --rv3: rows moved in RV3 that the capture missed, rows it never captured.
RV3_DRIFT = {"desincronizadas": DRIFT_PER_KIND, "faltantes_ghl": DRIFT_PER_KIND}


def seed(sandbox: SandboxServer, db: Database, size: int) -> list[tuple[int, datetime]]:
    """`size` appointments on both sides, synced, spread over the window and the two calendars; then drift.
    The stored appointments without GHL-side drift: (id, start)."""
    sandbox.sandbox.reset()
    state = sandbox.sandbox.state
    now = datetime.now(UTC)
    step = WINDOW / size
    plain: list[tuple[int, datetime]] = []
    with db.transaction() as conn:
        location = location_repo.insert_location(
            conn,
            {
                "ghl_location_id": LOCATION,
                "name": "Sede",
                "timezone": "America/Lima",
                "is_active": True,
                "default_calendar_id": CALENDARS[0],
            },
            now,
        )
        location_repo.replace_calendars(
            conn, location.id, [location_repo.CalendarSnapshot(c, c, None, None, True) for c in CALENDARS], now
        )
        every = size // (4 * DRIFT_PER_KIND)
        for i in range(size):
            start = WINDOW_START + step * i
            event_id = new_id()
            calendar = CALENDARS[i % 2]
            title = f"Sesión {i}"
            drift = (i // every) % 4 if i % every == 0 and i // every < 4 * DRIFT_PER_KIND else None
            if drift != MISSED_BOOKING_IN_SQL:
                fields = SyncedFields(
                    calendar_id=calendar, contact_id=CONTACT, start=start, end=start + timedelta(minutes=30),
                    status="confirmed", title=title, assigned_user_id=None,
                )  # fmt: skip
                synced = drift != NEVER_SENT_TO_GHL
                appointment_id = appointment_repo.insert(
                    conn,
                    {
                        "location_id": location.id, "calendar_id": calendar, "contact_id": CONTACT, "title": title,
                        "start_at": fields.start, "end_at": fields.end, "status": "confirmed",
                        "ghl_event_id": event_id if synced else None, "sync_state": "synced" if synced else "error",
                        "last_synced_hash": sync_hash(fields) if synced else None, "source": "rv3", "flags": [],
                        "created_at": now, "updated_at": now,
                    },
                )  # fmt: skip
                if drift is None:
                    plain.append((appointment_id, start))
            if drift != NEVER_SENT_TO_GHL:
                state.appointments[event_id] = Appointment(
                    id=event_id, location_id=LOCATION, calendar_id=calendar, contact_id=CONTACT,
                    title=title + (" (GHL)" if drift == RETITLED_IN_GHL else ""),
                    status="cancelled" if drift == CANCELLED_IN_GHL else "confirmed", assigned_user_id="", users=[],
                    address="", notes="", description="", start=start, end=start + timedelta(minutes=30),
                    date_added=now, date_updated=now, source="booking_widget",
                )  # fmt: skip
    return plain


def seed_rv3(db: Database, rv3_url: str, plain: list[tuple[int, datetime]]) -> None:
    """RV3's rows of the stored appointments (same ids), linked as the capture links them, the capture's cursor
    past them; then RV3-side drift: rows moved an hour in RV3 behind the cursor, rows never captured."""
    engine = sa.create_engine(rv3_url)
    desk = create_rv3_database(engine)
    lima = zone("America/Lima")
    every = len(plain) // DRIFT_PER_KIND
    rows: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for n, (appointment_id, start) in enumerate(plain):
        local = start.astimezone(lima)
        snapshot = Rv3Snapshot(
            patient_id=1, therapist_id=None, day=local.date(), hour=local.time().replace(microsecond=0),
            status="Pendiente", type="Sesión", room=None, deleted=False,
        )  # fmt: skip
        moved = n % every == every // 2 and n // every < DRIFT_PER_KIND
        shown = (local + timedelta(hours=1)) if moved else local
        rows.append(_rv3_row(appointment_id, shown))
        links.append({"appointment_id": appointment_id, "snapshot": snapshot.model_dump(mode="json"),
                      "created_at": now, "updated_at": now})  # fmt: skip
    last = max(appointment_id for appointment_id, _ in plain)
    for n in range(RV3_DRIFT["faltantes_ghl"]):
        rows.append(_rv3_row(last + 1 + n, (WINDOW_START + WINDOW * (n + 0.5) / DRIFT_PER_KIND).astimezone(lima)))
    appointments = desk.table("appointments")
    with engine.begin() as conn:
        conn.execute(desk.table("patients").insert(), [{"id": 1, "name": "Bench", "updated_at": RV3_STAMP}])
        for chunk in range(0, len(rows), 5000):
            conn.execute(appointments.insert(), rows[chunk : chunk + 5000])
    engine.dispose()
    with db.transaction() as conn:
        location_id = location_repo.find_location(conn, LOCATION).id  # type: ignore[union-attr]
        conn.execute(
            sa.text("UPDATE appointments SET rv3_appointment_id = :rv3 WHERE id = :id"),
            [{"rv3": str(appointment_id), "id": appointment_id} for appointment_id, _ in plain],
        )
        conn.execute(rv3_appointments.insert(), links)
        rv3_store.save_cursor(conn, location_id, rv3_store.APPOINTMENTS, {"mark": RV3_CURSOR}, now)


def _rv3_row(rv3_id: int, local: datetime) -> dict[str, Any]:
    return {
        "id": rv3_id, "patient_id": 1, "appointment_date": datetime.combine(local.date(), datetime.min.time()),
        "hour": local.time().replace(microsecond=0), "appointment_status_id": PENDIENTE,
        "appointment_type": "Sesión", "updated_at": RV3_STAMP,
    }  # fmt: skip


def child_env(storage: Azurite, sandbox: SandboxServer, sql_url: str, rv3_url: str | None) -> dict[str, str]:
    """Every app setting explicit, so a developer's local.settings.json does not leak into the measure."""
    env = {k: v for k, v in os.environ.items() if k not in app_setting_names()}
    env.update({name: "" for name in app_setting_names()})
    env.update(
        AzureWebJobsStorage=storage.connection_string,
        SQL_URL=sql_url,
        GHL_BASE_URL=sandbox.url,
        GHL_PRIVATE_TOKEN=DEMO_PRIVATE_TOKEN,
        GHL_LOCATION_ID=LOCATION,
        GHL_RATE_LIMIT_MAX="1000000",
        PYTHONUNBUFFERED="1",
    )
    if rv3_url is not None:
        env["RV3_SQL_URL"] = rv3_url
    return env


def run_child(max_events: int, trace: bool) -> dict[str, Any]:
    """In the child: one reconciliation of the window through the `reconcile` queue; what it measured."""
    import tracemalloc

    from shared import runtime
    from shared.api.schemas import ReconciliationRunIn
    from shared.queues import RECONCILE
    from shared.services.reconcile import reports, runs, worker
    from shared.work import Work

    runtime.queues().ensure_queues()
    runtime.queues().client(RECONCILE).clear_messages()
    runtime.ghl()  # connections and imports before the baseline
    baseline_kb = _reset_peak_rss()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    request = ReconciliationRunIn(
        location_id=LOCATION,
        desde=WINDOW_START,
        hasta=WINDOW_START + WINDOW,
        max_events_per_slice=max_events,
    )
    run = runs.start_run(Work.current(), request)
    client = runtime.queues().client(RECONCILE)
    messages = 0
    while True:
        batch = list(client.receive_messages(max_messages=1, visibility_timeout=600))
        if not batch:
            break
        for message in batch:
            worker.process(json.loads(message.content), dequeue_count=message.dequeue_count or 1)
            client.delete_message(message)
            messages += 1
    elapsed = time.perf_counter() - started
    heap_peak = tracemalloc.get_traced_memory()[1] if trace else 0
    report = reports.get_report(Work.current(), run.reports[0].id)
    return {
        "elapsed_s": elapsed,
        "messages": messages,
        "status": report.status,
        "totales": report.totales,
        "heap_peak_mb": heap_peak / 2**20,
        "rss_peak_mb": _status_kb("VmHWM") / 1024,
        "rss_growth_mb": (_status_kb("VmHWM") - baseline_kb) / 1024,
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} (Linux only)")


def _reset_peak_rss() -> int:
    """Restart the peak-RSS count (VmHWM) from now; the RSS now. `ru_maxrss` cannot serve: Linux carries it
    over fork and exec, so a child started by a parent holding 50,000 sandbox events would report the parent's."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def measure(size: int, args: argparse.Namespace, storage: Azurite, sandbox: SandboxServer, tmp: Path) -> dict[str, Any]:
    sql_url = args.sql_url or f"sqlite:///{tmp / f'sync-{size}.db'}"
    db = Database.connect_url(sql_url)
    if args.sql_url:
        with db.transaction() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    seeding = time.perf_counter()
    plain = seed(sandbox, db, size)
    rv3_url = f"sqlite:///{tmp / f'rv3-{size}.db'}" if args.rv3 else None
    if rv3_url is not None:
        seed_rv3(db, rv3_url, plain)
    seeded_s = time.perf_counter() - seeding
    with db.transaction() as conn:
        stored = conn.execute(sa.text("SELECT COUNT(*) FROM appointments")).scalar_one()
    db.dispose()
    before = sandbox.sandbox.state.counters.snapshot()["by_endpoint"]
    command = [sys.executable, "-m", "tools.bench.reconcile", "--child", "--max-events", str(args.max_events)]
    if args.tracemalloc:
        command.append("--tracemalloc")
    done = subprocess.run(
        command,
        cwd=APP_DIR,
        env=child_env(storage, sandbox, sql_url, rv3_url),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the reconciliation of {size} appointments failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    after = sandbox.sandbox.state.counters.snapshot()["by_endpoint"]
    calls = {endpoint: after[endpoint] - before.get(endpoint, 0) for endpoint in after}
    result.update(
        size=size,
        stored=stored,
        in_ghl=len(sandbox.sandbox.state.appointments),
        seed_s=seeded_s,
        list_calls=calls.get("GET /calendars/events", 0),
        get_calls=calls.get("GET /calendars/events/appointments/{eventId}", 0),
        ghl_calls=sum(calls.values()),
    )
    return result


def print_results(results: list[dict[str, Any]], trace: bool, rv3: bool) -> int:
    print(
        f"{'appointments':>12} {'in SQL':>7} {'in GHL':>7} {'RV3 rows':>8} {'elapsed s':>9} {'msgs':>5} "
        f"{'GHL calls':>9} {'(list/get)':>11} {'heap peak MB':>12} {'RSS peak MB':>11} {'RSS growth MB':>13} "
        f"{'drift':>6}"
    )
    for r in results:
        print(
            f"{r['size']:>12} {r['stored']:>7} {r['in_ghl']:>7} {r['totales'].get('rv3_tabla', 0):>8} "
            f"{r['elapsed_s']:>9.1f} {r['messages']:>5} {r['ghl_calls']:>9} {r['list_calls']:>5}/{r['get_calls']:<5} "
            f"{format(r['heap_peak_mb'], '12.1f') if trace else '-':>12} "
            f"{r['rss_peak_mb']:>11.1f} {r['rss_growth_mb']:>13.1f} {r['totales']['drift']:>6}"
        )
    expected = {kind: DRIFT_PER_KIND + (RV3_DRIFT.get(kind, 0) if rv3 else 0) for kind in KINDS}
    wrong = [r["size"] for r in results if r["status"] != "completed" or any(
        r["totales"][kind] != count for kind, count in expected.items()
    )]  # fmt: skip
    if wrong:
        print(f"runs that did not report exactly the seeded differences of each kind {expected}: {wrong}")
        return 1
    if len(results) < 2:
        return 0
    small, large = results[0], results[-1]
    key = "heap_peak_mb" if trace else "rss_growth_mb"
    ratio = large[key] / max(small[key], 0.1)
    print(
        f"{large['size'] / small['size']:.0f}x the appointments: {key} x{ratio:.2f} (flat: under x{FLAT_RATIO}), "
        f"time x{large['elapsed_s'] / small['elapsed_s']:.1f}"
    )
    return 0 if ratio < FLAT_RATIO else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 50_000], help="appointments per side")
    parser.add_argument(
        "--max-events", type=int, default=SlicePlan().max_events, help="narrow a GHL time slice at this many events"
    )
    parser.add_argument("--sql-url", help="a PostgreSQL database to use (emptied first) instead of a SQLite file")
    parser.add_argument("--rv3", action="store_true", help="also RV3's own tables (RV3_SQL_URL): its rows and drift")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap (about 2x slower)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.max_events, trace=args.tracemalloc)))
        return 0
    if min(args.sizes) < 4 * DRIFT_PER_KIND:
        parser.error(f"sizes must be at least {4 * DRIFT_PER_KIND}")
    location = DEMO_SEED.locations[0].model_copy(update={"contacts": [ContactSeed(id=CONTACT, firstName="Bench")]})
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        config = SandboxConfig(
            seed=DEMO_SEED.model_copy(update={"locations": [location]}), key_dir=tmp / "keys", rsa_key_bits=2048
        )
        config.rate_limit.max_requests = 1_000_000
        with Azurite.on_free_ports(tmp / "azurite") as storage, SandboxServer(config) as sandbox:
            results = [measure(size, args, storage, sandbox, tmp) for size in args.sizes]
    return print_results(results, trace=args.tracemalloc, rv3=args.rv3)


if __name__ == "__main__":
    sys.exit(main())
