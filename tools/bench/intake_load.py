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
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from tools.azurite import Azurite
from tools.bench.ghl_webhooks import (
    GHL_TIMEOUT_S,
    Applied,
    Delivery,
    check_applied,
    deliveries,
    ghl_settings,
    sandbox_config,
    seed_location,
)
from tools.bench.stack import (
    FUNCTION_KEY,
    Answers,
    allow_open_files,
    app_env,
    cpu_seconds,
    hosts,
    machine_load,
    percentile,
    postgres_database,
    send_open_loop,
    stop_cleanly_on_sigterm,
)
from tools.ghl_sandbox import SandboxServer
from tools.ghl_sandbox.keys import SigningKeys

DRAIN_TIMEOUT_S = 1800.0
POLL_S = 1.0
PROGRESS_S = 15.0


def wait_and_check(
    engine: sa.Engine, storage: Azurite, planned: list[Delivery], answers: Answers
) -> tuple[Applied, float]:
    """Wait until the worker has taken every queued webhook, then compare the database with the answers; the
    check and how long the drain took."""
    from azure.storage.queue import QueueClient

    from shared.queues import GHL_TO_RV3
    from shared.store.schema import webhook_inbox

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
    return check_applied(engine, planned, answers), drain_s


def _ms(samples: list[float]) -> str:
    return f"{percentile(samples, 0.5):.1f} / {percentile(samples, 0.99):.1f} ms"


def _print(lines: list[tuple[str, str, str]]) -> None:
    for name, value, note in lines:
        print(f"{name:<27} {value:>22}  {note}", flush=True)


def report_intake(results: Answers, args: argparse.Namespace, cores: tuple[float, ...]) -> None:
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


def report_applied(results: Answers, applied: Applied, drain_s: float, load: str) -> int:
    accepted = len(results.accepted)
    _print(
        [
            ("drain of ghl-to-rv3", f"{drain_s:.1f} s", "after the last answer"),
            ("inbox rows", f"{applied.inbox_rows}", f"duplicates {applied.inbox_duplicates}"),
            ("accepted with 1 inbox row", f"{applied.accepted_in_inbox} of {accepted}", ""),
            ("accepted applied once", f"{applied.accepted_applied} of {accepted}", ""),
            ("appointments made twice", f"{applied.appointments_twice}", "must be 0"),
            ("rejected but applied", f"{applied.rejected_applied}", "must be 0"),
            ("unanswered but applied", f"{applied.unanswered_applied}", "taken after GHL gave up: once, nothing lost"),
        ]
    )
    exact = applied.exactly_once
    print(f"every accepted webhook applied exactly once: {'yes' if exact else 'NO'}")
    print(f"every webhook answered within GHL's {GHL_TIMEOUT_S:g} s: {'yes' if not results.unanswered else 'NO'}")
    print(f"machine: {load}")
    return 0 if exact and not results.unanswered else 1


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
    allow_open_files(args.concurrency + 1024)  # the sender's connections, and the host's (it inherits the limit)
    load_before = machine_load()
    count = round(args.rate * args.seconds)
    keys = SigningKeys.generate()
    planned = deliveries(keys, count)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="intake-load-")))
        storage = stack.enter_context(Azurite.on_free_ports(tmp / "azurite"))
        sandbox = stack.enter_context(SandboxServer(sandbox_config(tmp / "keys")))
        sql_url = args.sql_url or stack.enter_context(postgres_database())
        seed_location(sql_url)
        env = app_env(
            {
                "AzureWebJobsStorage": storage.connection_string,
                "SQL_URL": sql_url,
                **ghl_settings(sandbox.url, keys),
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
            requests = [delivery.request for delivery in planned]
            results = send_open_loop(host.base_url, requests, args.rate, args.concurrency, GHL_TIMEOUT_S)
            after = (host.cpu_seconds(), time.process_time(), cpu_seconds(storage.pid), time.monotonic())
            wall = after[3] - before[3]
            cores = tuple((a - b) / wall for a, b in zip(after[:3], before[:3], strict=True))
            report_intake(results, args, cores)
            applied, drain_s = wait_and_check(engine, storage, planned, results)
    return report_applied(results, applied, drain_s, f"{load_before} before, {machine_load()} after")


if __name__ == "__main__":
    sys.exit(main())
