"""The operations console's pages on the local stack with 10,000 appointments: how fast each answers, how heavy.

Starts Azurite, the GHL sandbox (demo location), the sync database (a temporary SQLite file) holding --size
appointments (a day's worth today, the rest spread over a year, a share of them failed or pending, each with
its patient and outbox history), a few reconciliation reports, and one local Functions host with the
development sign-in on. Signs in as an operator the way a browser does, then requests each page --requests
times one after the other (after two warm-up requests) and prints per page p50, p95 and max latency and the
HTML size, against the target of 300 ms. Only printed, never held against a time (a benchmark, not a test).

Usage: python -m tools.bench.console [--size 10000] [--requests 30]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from tools.azurite import Azurite
from tools.bench.ghl_webhooks import insert_demo_location
from tools.bench.stack import Host, app_env, machine_load, percentile, stop_cleanly_on_sigterm
from tools.ghl_sandbox import DEMO_SEED, SandboxConfig, SandboxServer
from tools.ghl_sandbox.config import DEMO_LOCATION_ID, DEMO_PRIVATE_TOKEN

TARGET_MS = 300.0
CALENDAR = "cal_demo_terapia"
LIMA = ZoneInfo("America/Lima")
TODAY_SHARE = 40  # appointments today


def seed(sql_url: str, size: int) -> int:
    """`size` appointments of one location, each with a patient and an outbox entry; returns a failed one's id."""
    import sqlalchemy as sa

    from shared.store.database import Database
    from shared.store.schema import appointments, contacts, outbox

    db = Database.connect_url(sql_url)
    now = datetime.now(UTC)
    today = datetime.now(LIMA).replace(hour=8, minute=0, second=0, microsecond=0)
    with db.transaction() as conn:
        location = insert_demo_location(conn, now)
        people = [
            {
                "location_id": location.id,
                "patient_key": f"bench:{i}",
                "full_name": f"Paciente {i}",
                "phone": f"+5198{i:07d}",
                "flags": [],
                "created_at": now,
                "updated_at": now,
            }
            for i in range(size)
        ]
        conn.execute(contacts.insert(), people)
        first_contact = conn.execute(sa.select(sa.func.min(contacts.c.id))).scalar_one()
        rows = []
        for i in range(size):
            start = today + timedelta(minutes=15 * i) if i < TODAY_SHARE else today + timedelta(hours=7 * i)
            state = "error" if i % 97 == 0 else "pending" if i % 53 == 0 else "synced"
            rows.append(
                {
                    "location_id": location.id,
                    "calendar_id": CALENDAR,
                    "patient_contact_id": first_contact + i,
                    "title": f"Sesión {i}",
                    "start_at": start.astimezone(UTC),
                    "end_at": (start + timedelta(minutes=45)).astimezone(UTC),
                    "status": "scheduled",
                    "ghl_event_id": None if state == "error" else f"evt{i:06d}",
                    "sync_state": state,
                    "last_error": "GoHighLevel rechazó la cita: el horario ya no está disponible en su calendario."
                    if state == "error"
                    else None,
                    "source": "rv3" if i % 3 else "ghl",
                    "flags": [],
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for chunk in range(0, size, 2000):
            conn.execute(appointments.insert(), rows[chunk : chunk + 2000])
        ids = conn.execute(sa.select(appointments.c.id).order_by(appointments.c.id)).scalars().all()
        entries = [
            {
                "op_id": f"00000000-0000-0000-0000-{appointment_id:012d}",
                "appointment_id": appointment_id,
                "operation": "create",
                "appointment_version": 1,
                "status": "failed" if rows[n]["sync_state"] == "error" else "done",
                "attempts": 1,
                "created_at": now,
            }
            for n, appointment_id in enumerate(ids)
        ]
        for chunk in range(0, size, 2000):
            conn.execute(outbox.insert(), entries[chunk : chunk + 2000])
    db.dispose()
    return int(ids[0])


def sign_in(client: httpx.Client) -> None:
    """The development sign-in, as a browser does it: the form's token, then the form."""
    form = client.get("/api/console/entrar")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text[:300]
    signed = client.post(
        "/api/console/entrar", data={"csrf_token": token[1], "nombre": "Bench", "rol": "operator", "next": ""}
    )
    assert signed.status_code == 303, signed.text[:300]


def measure(client: httpx.Client, path: str, requests: int) -> tuple[list[float], int]:
    for _ in range(2):
        client.get(path)
    samples = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
        size = len(answer.content)
    return samples, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.console", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)
    stop_cleanly_on_sigterm()
    load_before = machine_load()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="console-bench-")))
        storage = stack.enter_context(Azurite.on_free_ports(tmp / "azurite"))
        sandbox = stack.enter_context(SandboxServer(SandboxConfig(seed=DEMO_SEED, key_dir=tmp / "keys")))
        sql_url = f"sqlite:///{tmp / 'sync.db'}"
        started = time.perf_counter()
        failed = seed(sql_url, args.size)
        seeding = time.perf_counter() - started
        env = app_env(
            {
                "AzureWebJobsStorage": storage.connection_string,
                "SQL_URL": sql_url,
                "GHL_BASE_URL": sandbox.url,
                "GHL_PRIVATE_TOKEN": DEMO_PRIVATE_TOKEN,
                "GHL_LOCATION_ID": DEMO_LOCATION_ID,
                "GHL_WEBHOOK_ED25519_KEY": sandbox.public_keys.ed25519_pem,
                "GHL_WEBHOOK_RSA_KEY": sandbox.public_keys.rsa_pem,
                "CONSOLE_DEV_SIGNIN": "true",
                "LOCAL_FUNCTION_KEY": "bench-function-key",
            }
        )
        host = Host(env, tmp / "host.log")
        host.start()
        stack.callback(host.stop)
        host.wait_ready()
        pages = {
            "citas de hoy": "/api/console/citas?vista=hoy",
            "todas las citas": "/api/console/citas?vista=todas",
            "todas, página 150": "/api/console/citas?vista=todas&pagina=150",
            "con error": "/api/console/citas?vista=todas&estado=error",
            "próximas": "/api/console/citas?vista=proximas",
            "una cita": f"/api/console/citas/{failed}",
            "por revisar": "/api/console/revision",
            "conciliación": "/api/console/conciliacion",
            "mensajes atascados": "/api/console/mensajes",
            "salud": "/api/console/salud",
        }
        results = []
        with httpx.Client(base_url=host.base_url, timeout=30) as client:
            sign_in(client)
            for name, path in pages.items():
                samples, size = measure(client, path, args.requests)
                results.append((name, percentile(samples, 0.5), percentile(samples, 0.95), max(samples), size))
        load_after = machine_load()
    print(f"console pages, {args.size:,} appointments (SQLite, seeded in {seeding:.1f}s), {args.requests} each")
    print(f"{'page':<20} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'HTML KB':>8}  p95 / {TARGET_MS:.0f} ms")
    worst = 0.0
    for name, p50, p95, top, size in results:
        worst = max(worst, p95)
        print(f"{name:<20} {p50:8.1f} {p95:8.1f} {top:8.1f} {size / 1024:8.1f}  {p95 / TARGET_MS:.2f}")
    print(f"slowest p95 {worst:.1f} ms: {worst / TARGET_MS:.2f} of the target")
    print(f"machine: {load_before} before, {load_after} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
