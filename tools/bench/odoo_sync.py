"""The push to Odoo, measured: Odoo calls per ManyChat event, and the share of `ODOO_RATE_PER_S` reached while a
backlog drains.

Starts Azurite, the Odoo sandbox (`tools.odoo_sandbox`, demo database, no faults), a temporary SQLite sync
database per phase and one local Functions host. Two phases, each with the same seed-shaped events
(`tools.bench.manychat_intake`: contact and campaign events, some older, some repeated byte for byte) for
--contacts contacts, sent open loop at --offered per second with `X-API-KEY`:

1. live: the host pushes as the events arrive (`ODOO_SYNC` --sync). Figures: Odoo calls per accepted event
   (every call the sandbox recorded, sign-in included) and per push made.
2. backlog: the events are taken with Odoo not configured (every row waits, `pending`); then the host restarts
   with Odoo configured and a sweep every 2 s that queues every waiting row at once. Figure: calls Odoo received
   per second from the first call to the last (the sandbox's own timestamps) ÷ `ODOO_RATE_PER_S` (--rate).

Goals (issue 18): ≤ 1.5 calls per event on average with `both`; ≥ 95% of the rate while draining. The figures
are printed, never held against a time; exit 1 only when a row did not end `success` or Odoo holds a double.

Usage: python -m tools.bench.odoo_sync [--events 1000] [--contacts 150] [--rate 10] [--offered 20]
       [--sync both|leads|contacts] [--protocol jsonrpc|json2] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tools.azurite import Azurite
from tools.bench.chaos import clear_queues
from tools.bench.manychat_intake import API_KEY, Event, manychat_events
from tools.bench.stack import FUNCTION_KEY, Answers, app_env, hosts, machine_load, send_open_loop
from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, SandboxServer

PARTNER, LEAD = "res.partner", "crm.lead"
SETTLE_TIMEOUT_S = 900.0


@dataclass
class Phase:
    name: str
    accepted: int
    calls: list[dict[str, Any]]
    pushes: int  # rows Odoo took: partners and leads written or created
    drain_s: float
    doubles: int
    unsettled: int

    @property
    def calls_per_event(self) -> float:
        return len(self.calls) / max(1, self.accepted)

    def calls_per_s(self) -> float | None:
        """Calls from the first to the last, per second, by the sandbox's clock."""
        stamps = sorted(call["at"] for call in self.calls)
        if len(stamps) < 2 or stamps[-1] <= stamps[0]:
            return None
        return float((len(stamps) - 1) / (stamps[-1] - stamps[0]))


def host_env(storage: Azurite, sql_url: str, odoo: SandboxServer | None, args: argparse.Namespace) -> dict[str, str]:
    settings = {
        "AzureWebJobsStorage": storage.connection_string,
        "SQL_URL": sql_url,
        "MANYCHAT_API_KEYS": API_KEY,
        "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
        "PYTHON_THREADPOOL_THREAD_COUNT": "32",
    }
    if odoo is not None:
        settings |= {
            "ODOO_URL": odoo.url,
            "ODOO_DB": odoo.db,
            "ODOO_USERNAME": DEMO_API_LOGIN,
            "ODOO_API_KEY": DEMO_API_KEY,
            "ODOO_PROTOCOL": args.protocol,
            "ODOO_SYNC": args.sync,
            "ODOO_RATE_PER_S": str(args.rate),
            "ODOO_SWEEP_SCHEDULE": "*/2 * * * * *",  # the backlog is queued at once, not a minute later
            "ODOO_SWEEP_AFTER_S": "0",
        }
    return app_env(settings)


@contextlib.contextmanager
def fresh_database(tmp: Path, name: str) -> Iterator[tuple[str, sa.Engine]]:
    url = f"sqlite:///{tmp / (name + '.db')}"
    from shared.store.database import Database

    engine = Database.connect_url(url).engine  # SQLite migrates itself as it opens
    try:
        yield url, engine
    finally:
        engine.dispose()


def send(base_url: str, events: list[Event], args: argparse.Namespace) -> Answers:
    answers = send_open_loop(base_url, [e.request for e in events], args.offered, 32, timeout_s=30)
    if answers.rejected or answers.unanswered:
        raise RuntimeError(f"events refused or unanswered: {answers.statuses}")
    return answers


def wait(engine: sa.Engine, what: str, done: sa.Select[Any]) -> float:
    """Seconds until `done` counts 0 (bounded)."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        with engine.connect() as conn:
            if conn.execute(done).scalar_one() == 0:
                return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not done within {SETTLE_TIMEOUT_S:.0f}s")


def events_waiting() -> sa.Select[Any]:
    from shared.store import miasalud as store
    from shared.store.miasalud_schema import miasalud_events

    return (
        sa.select(sa.func.count())
        .select_from(miasalud_events)
        .where(miasalud_events.c.status.in_([store.QUEUED, store.HELD]))
    )


def rows_waiting(args: argparse.Namespace) -> sa.Select[Any]:
    from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts
    from sync_core.miasalud.odoo import pushed

    tables = {"contact": miasalud_contacts, "campaign_contact": miasalud_campaign_contacts}
    waiting = [
        sa.select(sa.func.count()).select_from(t).where(t.c.odoo_sync_status != "success").scalar_subquery()
        for kind, t in tables.items()
        if pushed(args.sync, kind)  # type: ignore[arg-type]
    ]
    return sa.select(sum(waiting, sa.literal(0)))


def settle(phase: str, odoo: SandboxServer, engine: sa.Engine, args: argparse.Namespace, accepted: int) -> Phase:
    drain_s = wait(engine, f"{phase}: rows in Odoo", rows_waiting(args))
    calls = odoo.admin.calls()
    partners = [r["x_manychat_id"] for r in odoo.admin.records(PARTNER) if r.get("x_manychat_id")]
    leads = [(r["x_manychat_id"], r["x_campaign_id"]) for r in odoo.admin.records(LEAD) if r.get("x_manychat_id")]
    doubles = sum(n - 1 for n in Counter(partners).values()) + sum(n - 1 for n in Counter(leads).values())
    writes = sum(1 for c in calls if c["method"] in ("create", "write") and c["applied"])
    return Phase(phase, accepted, calls, writes, drain_s, doubles, 0)


def live(storage: Azurite, odoo: SandboxServer, tmp: Path, events: list[Event], args: argparse.Namespace) -> Phase:
    odoo.admin.reset()
    clear_queues(storage)
    with (
        fresh_database(tmp, "live") as (url, engine),
        hosts(1, host_env(storage, url, odoo, args), tmp, "live") as (host,),
    ):
        answers = send(host.base_url, events, args)
        wait(engine, "live: events applied", events_waiting())
        return settle("live", odoo, engine, args, len(answers.accepted))


def backlog(storage: Azurite, odoo: SandboxServer, tmp: Path, events: list[Event], args: argparse.Namespace) -> Phase:
    odoo.admin.reset()
    clear_queues(storage)
    with fresh_database(tmp, "backlog") as (url, engine):
        with hosts(1, host_env(storage, url, None, args), tmp, "taken") as (host,):
            answers = send(host.base_url, events, args)
            wait(engine, "backlog: events applied", events_waiting())
        clear_queues(storage)  # nothing of the first host's is left for the second
        with hosts(1, host_env(storage, url, odoo, args), tmp, "drain"):
            return settle("backlog", odoo, engine, args, len(answers.accepted))


def report(phases: list[Phase], args: argparse.Namespace, load: str) -> int:
    print(
        f"odoo sync benchmark: {args.events} events for {args.contacts} contacts (seed {args.seed}), "
        f"ODOO_SYNC={args.sync}, {args.protocol}, ODOO_RATE_PER_S={args.rate:g}, offered {args.offered:g}/s"
    )
    print(f"{'phase':<10}{'events':>8}{'calls':>8}{'calls/event':>13}{'rows taken':>12}{'calls/s':>9}{'of rate':>9}")
    failed = False
    for phase in phases:
        per_s = phase.calls_per_s()
        share = f"{per_s / args.rate:.1%}" if per_s is not None else "-"
        print(
            f"{phase.name:<10}{phase.accepted:>8}{len(phase.calls):>8}{phase.calls_per_event:>13.2f}"
            f"{phase.pushes:>12}{per_s or 0:>9.2f}{share:>9}"
        )
        kinds = Counter(f"{c['model']}.{c['method']}" for c in phase.calls)
        print("          " + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()))
        if phase.doubles:
            print(f"  FAILED: {phase.doubles} doubles in Odoo ({phase.name})")
            failed = True
    print(f"machine: {load} before, {machine_load()} after")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.odoo_sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--contacts", type=int, default=150)
    parser.add_argument("--rate", type=float, default=10.0, help="ODOO_RATE_PER_S")
    parser.add_argument("--offered", type=float, default=20.0, help="ManyChat events sent per second")
    parser.add_argument("--sync", choices=("both", "leads", "contacts"), default="both")
    parser.add_argument("--protocol", choices=("jsonrpc", "json2"), default="jsonrpc")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phase", choices=("live", "backlog", "both"), default="both")
    args = parser.parse_args(argv)
    load = machine_load()
    events = manychat_events(args.events, args.seed, contacts=args.contacts)
    phases: list[Phase] = []
    try:
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="odoo-sync-")))
            storage = stack.enter_context(Azurite.on_free_ports(tmp / "azurite"))
            odoo = stack.enter_context(SandboxServer())
            if args.phase in ("live", "both"):
                phases.append(live(storage, odoo, tmp, events, args))
            if args.phase in ("backlog", "both"):
                phases.append(backlog(storage, odoo, tmp, events, args))
    except RuntimeError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return report(phases, args, load)


if __name__ == "__main__":
    sys.exit(main())
