"""Chaos run of the MiaSalud flow: ManyChat's events reach SQL and Odoo while Odoo fails, hosts are killed and
storage restarts; afterwards every event is in SQL once, Odoo holds exactly what SQL holds, and nothing is
doubled or stuck in a poison queue.

The stack is the real one, locally: two Functions hosts (`python -m tools.functions_host`, child processes)
behind a TCP proxy (the load balancer: ManyChat reaches whichever host is alive), Azurite, a throw-away
PostgreSQL database, and the Odoo sandbox (`tools.odoo_sandbox`, JSON-RPC or JSON-2) with fault injection.

- ManyChat's side: seed-shaped contact and campaign-assignment events (`tools.bench.manychat_intake`: some
  late, some repeated byte for byte) for `--contacts` contacts, sent through the proxy with `X-API-KEY`.
  ManyChat itself never retries; the run's sender does, on a lost connection or a 5xx, so that a request a
  killed host never answered is delivered all the same (the same body again: it must be stored once).
- Odoo faults all along: a share of every ORM call fails with a serialization failure (Odoo rolled back), and
  a share of the creates is applied and then the connection is cut before the answer (the outcome unknown).
- On a timeline during the events: kill -9 of each host in turn (restarted), one Odoo outage (every request
  answered 503), one Azurite restart (same data).

Then the faults stop, the queues drain (bounded), and the checks: every accepted event applied once in SQL
(`miasalud_events`), every contact and campaign contact `success` in SQL, the reconciliation
(`POST /api/v1/reconciliation/odoo/run`, no heal) finds zero differences and nothing in flight, Odoo holds one
partner per contact and one lead per campaign contact (none without its SQL row), the Odoo sandbox's recorded
calls show no create of an `x_manychat_id` Odoo already held, `type` and `user_id` set on every lead created,
and the poison queues are empty.

Usage: python -m tools.bench.odoo_chaos [--events 2000] [--contacts 300] [--odoo-outage 60] [--gap 20]
       [--protocol jsonrpc|json2] [--sync both|leads|contacts] [--seed N]
Prints the counts; exits 1 when a check fails. The fast variant is tests/e2e/test_odoo_chaos.py.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from shared.queues import MANYCHAT_CAMPAIGN, MANYCHAT_CONTACT, ODOO_PUSH
from tools.azurite import Azurite
from tools.bench.chaos import (
    POSTGRES_ADMIN_URL,
    Figures,
    FrontDesk,
    HostSlots,
    clear_queues,
    poison_messages,
    queue_depths,
)
from tools.bench.manychat_intake import API_KEY, Event, check_manychat, manychat_events
from tools.bench.stack import Answers, app_env
from tools.functions_host.process import HostProcess
from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, SandboxConfig, SandboxServer
from tools.ports import free_port
from tools.tcp_proxy import TcpProxy

QUEUES = (MANYCHAT_CONTACT, MANYCHAT_CAMPAIGN, ODOO_PUSH)
FUNCTION_KEY = "odoo-chaos-function-key"
PARTNER, LEAD = "res.partner", "crm.lead"


@dataclass
class OdooChaosOptions:
    """Sizes and durations of one run; the defaults are the full run, the test scales them down."""

    events: int = 2000
    contacts: int = 300
    gap_s: float = 20.0  # calm time before each fault
    odoo_outage_s: float = 60.0
    storage_down_s: float = 5.0
    kills: int = 2
    serialization_failure: float = 0.3  # of every ORM call, all along the events
    applied_then_dropped: float = 0.1  # of the creates, all along the events
    protocol: str = "jsonrpc"
    sync: str = "both"
    rate_per_s: float = 50.0  # ODOO_RATE_PER_S
    message_lease_s: float = 20.0  # a killed host's messages come back after this (10 min on Azure)
    push_lease_s: float | None = None  # ODOO_PUSH_LEASE_S: a killed host's rows are pushed again after it (120 s)
    drain_timeout_s: float = 900.0
    client_workers: int = 6
    seed: int = field(default_factory=lambda: random.randrange(1_000_000))
    work_dir: Path | None = None
    azurite: Azurite | None = None  # reuse a running emulator (the test session's); restarted all the same
    log: Callable[[str], None] = print
    keep_db: bool = False
    on_finish: Callable[[OdooChaosStack], None] | None = None  # runs before the stack stops (the test's log check)

    def duration_estimate(self) -> float:
        """How long the fault timeline takes, over which the events are spread."""
        return self.gap_s * (self.kills + 3) + self.odoo_outage_s + self.storage_down_s + 5 * self.kills


@dataclass
class OdooChaosStack(HostSlots):
    """Everything the run starts, and how to break each part."""

    options: OdooChaosOptions
    work: Path
    azurite: Azurite
    odoo: SandboxServer
    front: TcpProxy
    observer: sa.Engine
    env: dict[str, str]
    hosts: list[HostProcess] = field(default_factory=list)  # every process started, restarts included
    live: dict[int, HostProcess] = field(default_factory=dict)


def host_env(azurite: Azurite, odoo: SandboxServer, sql_url: str, options: OdooChaosOptions) -> dict[str, str]:
    """Every app setting explicit (empty = unset): the MiaSalud wing on, pushing to the sandbox."""
    return app_env(
        {
            "AzureWebJobsStorage": azurite.connection_string,
            "SQL_URL": sql_url,
            "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
            "MANYCHAT_API_KEYS": API_KEY,
            "ODOO_URL": odoo.url,
            "ODOO_DB": odoo.db,
            "ODOO_USERNAME": DEMO_API_LOGIN,
            "ODOO_API_KEY": DEMO_API_KEY,
            "ODOO_PROTOCOL": options.protocol,
            "ODOO_SYNC": options.sync,
            "ODOO_RATE_PER_S": str(options.rate_per_s),
            "PYTHON_THREADPOOL_THREAD_COUNT": "16",
            # What storage could not take is swept after 10 s (not 1 min), checked every 5 s.
            "ODOO_SWEEP_SCHEDULE": "*/5 * * * * *",
            "ODOO_SWEEP_AFTER_S": "10",
            "MANYCHAT_HELD_SWEEP_SCHEDULE": "*/5 * * * * *",
            "ODOO_PUSH_LEASE_S": str(options.push_lease_s) if options.push_lease_s else "",
        }
    )


@contextlib.contextmanager
def odoo_chaos_stack(options: OdooChaosOptions) -> Iterator[OdooChaosStack]:
    """Start the throw-away database, Azurite, the Odoo sandbox, the proxy and two hosts; stop them all."""
    from tools.bench.stack import postgres_database

    with contextlib.ExitStack() as cleanup:
        work = options.work_dir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="odoo-chaos-")))
        url = cleanup.enter_context(
            postgres_database("rv3sync_odoo_chaos", admin_url=POSTGRES_ADMIN_URL, keep=options.keep_db)
        )
        if options.keep_db:
            options.log(f"database kept: {sa.make_url(url).database}")
        observer = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
        cleanup.callback(observer.dispose)
        azurite = options.azurite
        if azurite is None:
            azurite = cleanup.enter_context(Azurite.on_free_ports(work / "azurite"))
        odoo = cleanup.enter_context(SandboxServer(SandboxConfig(), port=0))
        ports = [free_port(), free_port()]
        front = cleanup.enter_context(TcpProxy([("127.0.0.1", port) for port in ports]))
        stack = OdooChaosStack(options, work, azurite, odoo, front, observer, host_env(azurite, odoo, url, options))
        cleanup.callback(stack.stop_hosts)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda slot: stack.start_host(slot, ports[slot]), range(2)))
        yield stack


class Timeline:
    """The faults, one after another with calm gaps between, in a thread beside the events."""

    def __init__(self, stack: OdooChaosStack, figures: Figures) -> None:
        self.stack = stack
        self.figures = figures
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="odoo-chaos-timeline", daemon=True)
        self._t0 = time.monotonic()

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
        admin = self.stack.odoo.admin
        try:
            admin.configure("faults", {"seed": o.seed, "hang_seconds": 5, "rules": []})
            admin.inject("serialization_failure", probability=o.serialization_failure)
            admin.inject("applied_then_dropped", methods=["create"], probability=o.applied_then_dropped)
            kills = [slot % 2 for slot in range(o.kills)]
            steps: list[tuple[str, Callable[[], None]]] = []
            if kills:
                steps.append(("kill -9 host 0 + restart", lambda: self.stack.kill_and_restart(kills[0])))
            steps.append((f"Odoo outage {o.odoo_outage_s:.0f}s", self._odoo_outage))
            steps.append((f"Azurite restart ({o.storage_down_s:.0f}s down)", self._storage_restart))
            for number, slot in enumerate(kills[1:], start=1):
                steps.append(
                    (f"kill -9 host {slot} + restart ({number + 1})", partial(self.stack.kill_and_restart, slot))
                )
            for what, action in steps:
                time.sleep(o.gap_s)
                started = time.monotonic()
                action()
                self._mark(what, started)
            time.sleep(o.gap_s)
            admin.clear_faults()
            self._mark("Odoo faults off", self._t0)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread by join()
            self.error = exc

    def _odoo_outage(self) -> None:
        admin = self.stack.odoo.admin
        admin.start_outage(self.stack.options.odoo_outage_s, mode="503")
        time.sleep(self.stack.options.odoo_outage_s)
        admin.end_outage()

    def _storage_restart(self) -> None:
        self.stack.azurite.stop()
        time.sleep(self.stack.options.storage_down_s)
        self.stack.azurite.start()


def send_events(stack: OdooChaosStack, planned: list[Event], figures: Figures, duration_s: float) -> Answers:
    """Every planned event, spread over `duration_s`, each retried until answered (bounded by FrontDesk)."""
    answers = Answers(scheduled=len(planned))
    sender = FrontDesk(stack.url, figures, give_up_s=stack.options.drain_timeout_s)
    lock = threading.Lock()
    started = time.monotonic()
    interval = duration_s / max(1, len(planned))

    def deliver(index: int) -> None:
        time.sleep(max(0.0, started + index * interval - time.monotonic()))
        event = planned[index]
        try:
            answer = sender.call(
                "POST",
                event.request.path.removeprefix("/api"),
                content=event.request.body,
                headers=event.request.headers,
            )
        except RuntimeError as exc:
            with lock:
                answers.unanswered.add(index)
                figures.failures.append(f"event {index} never answered: {exc}")
            return
        with lock:
            answers.statuses[str(answer.status_code)] += 1
            if answer.status_code == 202:
                answers.accepted[index] = answer.content
            else:
                answers.rejected.add(index)

    try:
        with ThreadPoolExecutor(stack.options.client_workers) as pool:
            list(pool.map(deliver, range(len(planned))))
    finally:
        sender.close()
    for status, count in answers.statuses.items():
        figures.counts[f"events answered {status}"] = count
    if answers.rejected:
        figures.failures.append(f"{len(answers.rejected)} events refused: {sorted(answers.rejected)[:10]}")
    return answers


def unsettled(stack: OdooChaosStack) -> dict[str, int]:
    """What is left to do (empty when settled): events not applied, rows Odoo does not hold yet, queued messages."""
    from shared.store import miasalud as store
    from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts, miasalud_events

    left: dict[str, int] = {}
    try:
        with stack.observer.connect() as conn:
            left["events not applied"] = conn.execute(
                sa.select(sa.func.count())
                .select_from(miasalud_events)
                .where(miasalud_events.c.status.in_([store.QUEUED, store.HELD]))
            ).scalar_one()
            for name, table in (("contacts", miasalud_contacts), ("campaign contacts", miasalud_campaign_contacts)):
                left[f"{name} not in Odoo"] = conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.odoo_sync_status != "success")
                ).scalar_one()
    except sa.exc.OperationalError:
        left["database unreachable"] = 1
    left.update(queue_depths(stack.azurite, QUEUES))
    return {what: n for what, n in left.items() if n}


def drain(stack: OdooChaosStack, figures: Figures, what: str) -> None:
    """Wait (bounded) until nothing is left to do; the wait is one of the run's figures."""
    options = stack.options
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


def reconcile(stack: OdooChaosStack, figures: Figures) -> None:
    """One reconciliation without heal: no difference, nothing in flight."""
    with httpx.Client(base_url=f"{stack.url}/api", headers={"X-API-KEY": API_KEY}, timeout=300) as client:
        answer = client.post("/v1/reconciliation/odoo/run", params={"heal": "false"})
    if answer.status_code != 200:
        figures.failures.append(f"reconciliation answered {answer.status_code}: {answer.text[:300]}")
        return
    report = answer.json()
    counts = report["counts"]
    for name, value in counts.items():
        figures.counts[f"reconciliation {name}"] = value
    drift = len(report["differences"])
    figures.counts["reconciliation drift"] = drift
    if report["status"] != "completed" or drift or counts.get("in_flight"):
        figures.failures.append(
            f"reconciliation {report['status']}: {drift} differences, {counts.get('in_flight', 0)} in flight, "
            f"e.g. {report['differences'][:3]}"
        )


def verify(stack: OdooChaosStack, planned: list[Event], answers: Answers, figures: Figures) -> None:
    """SQL once, Odoo equal to SQL and without doubles, the calls Odoo received, the poison queues."""
    from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts

    count, fail = figures.counts, figures.failures
    check = check_manychat(stack.observer, planned, answers)
    count["events accepted"] = check.accepted
    count["events held by SQL (storage down)"] = check.held
    count["distinct events applied once"] = check.applied_once
    count["events applied as unchanged (older or repeated)"] = check.unchanged
    if not check.exactly_once:
        fail.append(f"not every accepted event is in SQL exactly once: {check}")
    with stack.observer.connect() as conn:
        contacts = {row.id: row for row in conn.execute(sa.select(miasalud_contacts))}
        campaign_contacts = conn.execute(sa.select(miasalud_campaign_contacts)).all()
    count["contacts in SQL"] = len(contacts)
    count["campaign contacts in SQL"] = len(campaign_contacts)
    admin = stack.odoo.admin
    partners = [p for p in admin.records(PARTNER) if p.get("x_manychat_id")]
    leads = [lead for lead in admin.records(LEAD) if lead.get("x_manychat_id")]
    by_manychat = Counter(p["x_manychat_id"] for p in partners)
    by_assignment = Counter((lead["x_manychat_id"], lead["x_campaign_id"]) for lead in leads)
    count["Odoo partners"] = len(partners)
    count["Odoo leads"] = len(leads)
    count["duplicate partners"] = sum(n - 1 for n in by_manychat.values())
    count["duplicate leads"] = sum(n - 1 for n in by_assignment.values())
    if count["duplicate partners"] or count["duplicate leads"]:
        fail.append(f"doubles in Odoo: {count['duplicate partners']} partners, {count['duplicate leads']} leads")
    if stack.options.sync in ("contacts", "both"):
        wanted = {row.manychat_id for row in contacts.values()}
        if set(by_manychat) != wanted:
            fail.append(
                f"partners ≠ contacts: {len(set(by_manychat) - wanted)} extra, {len(wanted - set(by_manychat))} missing"
            )
    if stack.options.sync in ("leads", "both") and len(by_assignment) != len(campaign_contacts):
        fail.append(f"{len(by_assignment)} leads in Odoo for {len(campaign_contacts)} campaign contacts in SQL")
    _check_calls(admin.calls(), figures)
    poison = poison_messages(stack.azurite, QUEUES)
    count["poison messages"] = len(poison)
    if poison:
        fail.append(f"{len(poison)} messages in poison queues: {poison[:5]}")


def _check_calls(calls: list[dict[str, Any]], figures: Figures) -> None:
    """Through the recorded calls: no create of an x_manychat_id Odoo held; every lead created says its type
    and its salesperson; how many calls, of which kinds, and the faults met."""
    count, fail = figures.counts, figures.failures
    held: set[tuple[str, str, Any]] = set()
    repeated: list[str] = []
    undecided = 0
    for call in calls:
        count[f"Odoo calls {call['outcome']}"] += 1
        if call.get("fault"):
            count[f"Odoo faults {call['fault']}"] += 1
        if call["method"] != "create" or not call["applied"]:
            continue
        values_list = _created_values(call)
        for values in values_list:
            key = (call["model"], str(values.get("x_manychat_id")), values.get("x_campaign_id"))
            if key in held:
                repeated.append(str(key))
            held.add(key)
            if call["model"] == LEAD and ("type" not in values or "user_id" not in values):
                undecided += 1
    count["Odoo calls"] = len(calls)
    count["creates of a record Odoo held"] = len(repeated)
    count["leads created without type or user_id"] = undecided
    if repeated:
        fail.append(f"{len(repeated)} creates of a record Odoo already held, e.g. {repeated[:3]}")
    if undecided:
        fail.append(f"{undecided} leads created without `type` or `user_id`")


def _created_values(call: dict[str, Any]) -> list[dict[str, Any]]:
    """The values of a recorded create, whichever protocol carried them (JSON-RPC args, JSON-2 kwargs)."""
    raw = call["args"][0] if call["args"] else call["kwargs"].get("vals_list") or call["kwargs"].get("values")
    if isinstance(raw, dict):
        return [raw]
    return [values for values in raw or [] if isinstance(values, dict)]


def run(options: OdooChaosOptions) -> Figures:
    """The whole scenario; `Figures.failures` lists every check that failed (empty: green)."""
    figures = Figures()
    planned = manychat_events(options.events, options.seed, contacts=options.contacts)
    log = options.log
    began = time.monotonic()
    with odoo_chaos_stack(options) as stack:
        clear_queues(stack.azurite, QUEUES)
        figures.timings["stack start"] = round(time.monotonic() - began, 1)
        duration = options.duration_estimate()
        log(
            f"odoo chaos: {options.events} events for {options.contacts} contacts over ~{duration:.0f}s, "
            f"{options.protocol}, ODOO_SYNC={options.sync}, seed {options.seed}, work dir {stack.work}"
        )
        timeline = Timeline(stack, figures)
        started = time.monotonic()
        timeline.start()
        answers = send_events(stack, planned, figures, duration)
        figures.timings["events sent"] = round(time.monotonic() - started, 1)
        timeline.join()
        figures.timings["fault timeline"] = round(time.monotonic() - started, 1)
        drain(stack, figures, "drain after the faults")
        reconcile(stack, figures)
        verify(stack, planned, answers, figures)
        if options.on_finish is not None:
            options.on_finish(stack)
        figures.counts["host processes started"] = len(stack.hosts)
        figures.counts["hosts killed -9"] = options.kills
        if figures.failures:
            figures.details["host log tail"] = "\n".join(h.log_tail(1500) for h in stack.live.values())
    figures.timings["total"] = round(time.monotonic() - began, 1)
    return figures


def report_text(figures: Figures) -> str:
    lines = ["", "odoo chaos run: " + ("GREEN" if figures.ok else "FAILED")]
    lines += [f"  {name:<48} {value}" for name, value in sorted(figures.counts.items())]
    lines += [f"  {'seconds: ' + name:<48} {value}" for name, value in figures.timings.items()]
    lines += [f"  FAILED: {failure}" for failure in figures.failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.odoo_chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--gap", type=float, default=20.0, help="calm seconds before each fault")
    parser.add_argument("--odoo-outage", type=float, default=60.0, help="seconds Odoo answers 503 to everything")
    parser.add_argument("--storage-down", type=float, default=5.0, help="seconds Azurite is stopped")
    parser.add_argument("--kills", type=int, default=2, help="kill -9 of a host (alternating between the two)")
    parser.add_argument("--serialization", type=float, default=0.3, help="share of ORM calls rolled back")
    parser.add_argument("--dropped-creates", type=float, default=0.1, help="share of creates applied, then cut")
    parser.add_argument("--protocol", choices=("jsonrpc", "json2"), default="jsonrpc")
    parser.add_argument("--sync", choices=("both", "leads", "contacts"), default="both")
    parser.add_argument("--rate", type=float, default=50.0, help="ODOO_RATE_PER_S")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--keep-db", action="store_true", help="leave the PostgreSQL database for inspection")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep logs and Azurite data here")
    args = parser.parse_args(argv)
    options = OdooChaosOptions(
        events=args.events, contacts=args.contacts, gap_s=args.gap, odoo_outage_s=args.odoo_outage,
        storage_down_s=args.storage_down, kills=args.kills, serialization_failure=args.serialization,
        applied_then_dropped=args.dropped_creates, protocol=args.protocol, sync=args.sync, rate_per_s=args.rate,
        drain_timeout_s=args.drain_timeout, keep_db=args.keep_db, work_dir=args.work_dir,
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
