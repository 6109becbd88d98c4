"""ManyChat intake beside GHL's, in one run on one host: how many events each accepts per second, how fast each
answers, how fast its workers apply them to SQL, and the ManyChat figures against the seed's 1,000 events/hour.

Starts Azurite, the GHL sandbox (demo location, one contact), the sync database (a temporary SQLite file, or
--sql-url) and one local Functions host with both integrations on. Two phases, one after the other, each sending
the same number of events open-loop at --rate per second on at most --concurrency keep-alive connections (the
sender of `tools.bench.stack`):

1. ManyChat: seed-shaped bodies to `POST /api/v1/manychat/webhook/contact` and `.../campaign-assignment` with
   `X-API-KEY`, a random mix (--seed) over one manychat_id per 10 events: contact and campaign events, some
   older than what the contact already holds (applied as `unchanged`), some repeated byte for byte (the same
   event_id, applied once), each answered within ManyChat's ~10 s wait. Applied by the `manychat-contact` and
   `manychat-campaign` workers.
2. GHL: signed AppointmentCreate webhooks to `POST /api/webhooks/ghl` (as `tools.bench.intake_load` sends them),
   each answered within GHL's 5 s, applied by the `ghl-to-rv3` worker.

Before each phase one event warms its route and its worker. Printed side by side: accepted per second (from the
first scheduled send to the last answer), p50/p99 ack latency, applied per second (distinct accepted events ÷
the time from the first scheduled send until SQL holds every one of them applied: one `miasalud_events` row
`applied`/`unchanged` per event_id the 202s returned; one successful `webhook_inbox` row per webhook), the host's
CPU, the ratios ManyChat/GHL, and ManyChat's events per hour ÷ 1,000. The figures are only printed, never held
against a time.

Exit 1 when an accepted event of either intake was not applied exactly once: for ManyChat, an event_id without
its applied row (or left queued or held), a 202 without an event_id, repeats that did not share one, a contact or
campaign contact missing; for GHL, the checks of `tools.bench.intake_load`.

Usage: python -m tools.bench.manychat_intake [--events 2000 | --seconds S] [--rate 200] [--concurrency 1000]
       [--seed 1] [--sql-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from tools.azurite import Azurite
from tools.bench.ghl_webhooks import (
    GHL_TIMEOUT_S,
    Applied,
    check_applied,
    deliveries,
    ghl_settings,
    sandbox_config,
    seed_location,
)
from tools.bench.stack import (
    FUNCTION_KEY,
    Answers,
    Host,
    Request,
    allow_open_files,
    app_env,
    cpu_seconds,
    hosts,
    machine_load,
    percentile,
    send_open_loop,
    stop_cleanly_on_sigterm,
)
from tools.ghl_sandbox import SandboxServer
from tools.ghl_sandbox.keys import SigningKeys

API_KEY = "bench-manychat-key-0001"
MANYCHAT_TIMEOUT_S = 10.0  # ManyChat's External Request waits about this long, and never retries
CONTACT_PATH = "/api/v1/manychat/webhook/contact"
CAMPAIGN_PATH = "/api/v1/manychat/webhook/campaign-assignment"
EVENTS_PER_CONTACT = 10
CAMPAIGN_SHARE = 0.45
REPEAT_SHARE = 0.05  # a flow that ran twice: the same body again
LATE_SHARE = 0.15  # an event older than the contact's newest (ManyChat's events are not ordered)
SEED_CLAIM_PER_HOUR = 1000.0  # seed 004: "más de 1,000 eventos por hora"
FIRST_EVENT = datetime(2031, 3, 2, 15, tzinfo=UTC)
POLL_S = 0.25
STALL_S = 90.0  # nothing applied for this long: what is missing will not come (the worker's retries are shorter)
DRAIN_TIMEOUT_S = 1800.0
PROGRESS_S = 15.0

FIRST_NAMES = ("Ana", "Luis", "María", "José", "Guadalupe", "Fernanda", "Carlos", "{{nombre_lead}}", "")
LAST_NAMES = ("García", "Hernández", "López", "Martínez", "  Pérez ", "")
CHANNELS = ("Facebook", "Instagram", "WhatsApp", "TikTok", " facebook ")
STATES = ("Nuevo Lead", "Contactado", "Asignado a campaña", "Cita agendada", "Sin respuesta")
CAMPAIGNS = tuple(range(80, 90))
COMMERCIAL = tuple(str(n) for n in range(700, 708))
MEDICAL = tuple(str(n) for n in range(100, 115))


@dataclass(frozen=True)
class Event:
    """One ManyChat request: the body as ManyChat sends it, and what it names."""

    kind: str  # contact | campaign
    manychat_id: str
    campaign: int | None
    request: Request


def manychat_events(count: int, seed: int, contacts: int | None = None) -> list[Event]:
    """`count` ManyChat requests over `contacts` contacts (by default one per 10 events): contact and campaign
    events, some late, some repeats."""
    rng = random.Random(seed)
    people = [f"MCB{n:05d}" for n in range(max(1, contacts or count // EVENTS_PER_CONTACT))]
    made: list[Event] = []
    for n in range(count):
        if made and rng.random() < REPEAT_SHARE:
            made.append(rng.choice(made))
            continue
        at = FIRST_EVENT + timedelta(seconds=30 * n)
        if rng.random() < LATE_SHARE:
            at -= timedelta(minutes=rng.randint(1, 600), seconds=rng.randint(0, 59))
        manychat_id = rng.choice(people)
        if rng.random() < CAMPAIGN_SHARE:
            made.append(_campaign_event(rng, manychat_id, at))
        else:
            made.append(_contact_event(rng, manychat_id, at))
    return made


def _contact_event(rng: random.Random, manychat_id: str, at: datetime) -> Event:
    subscribed = at - timedelta(days=rng.randint(0, 30), minutes=rng.randint(0, 1439))
    # WhatsApp's legacy +521 form, E.164, or a local number; sometimes left unfilled
    phone = rng.choice(("+52155", "+5255", "55")) + f"{rng.randrange(10**8):08d}"
    # ManyChat's display form ("20 Oct 2025, 05:41pm") or ISO-8601: flows send either
    display = subscribed.strftime("%d %b %Y, %I:%M") + ("pm" if subscribed.hour >= 12 else "am")
    body = {
        "manychat_id": manychat_id,
        "nombre_lead": rng.choice(FIRST_NAMES),
        "apellido_lead": rng.choice(LAST_NAMES),
        "whatsapp": phone if rng.random() > 0.1 else "",
        "datetime_suscripcion": display if rng.random() < 0.3 else _iso(subscribed),
        "datetime_actual": _iso(at),
        "ultimo_estado": rng.choice(STATES),
        "canal_entrada": rng.choice(CHANNELS),
        "estado_inicial": "Nuevo",
    }
    return Event("contact", manychat_id, None, _request(CONTACT_PATH, body))


def _campaign_event(rng: random.Random, manychat_id: str, at: datetime) -> Event:
    campaign = rng.choice(CAMPAIGNS)
    body = {
        "manychat_id": manychat_id,
        "campaign_id": campaign,
        "comercial_id": rng.choice(COMMERCIAL),
        "medico_id": rng.choice(MEDICAL),
        "datetime_actual": _iso(at),
        "ultimo_estado": rng.choice(STATES),
        "tipo_asignacion": rng.choice(("medico", "comercial")),
        "summary": f"El cliente preguntó por el producto {rng.choice('XYZ')} y mostró interés en agendar una cita.",
    }
    return Event("campaign", manychat_id, campaign, _request(CAMPAIGN_PATH, body))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _request(path: str, body: dict[str, Any]) -> Request:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Request(path, data, {"Content-Type": "application/json", "X-API-KEY": API_KEY})


def manychat_applied(engine: sa.Engine) -> set[str]:
    """The event keys `miasalud_events` holds as applied (`applied` or `unchanged`)."""
    from shared.store import miasalud as store
    from shared.store.miasalud_schema import miasalud_events

    query = sa.select(miasalud_events.c.event_key).where(miasalud_events.c.status.in_((store.APPLIED, store.UNCHANGED)))
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def ghl_applied(engine: sa.Engine) -> set[str]:
    """The webhook ids the inbox holds as applied."""
    from shared.store.schema import webhook_inbox

    query = sa.select(webhook_inbox.c.webhook_id).where(webhook_inbox.c.success.is_(True))
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def receipt(body: bytes) -> dict[str, Any]:
    """A 202's body (`{status, event_id, manychat_id}`); empty when it is not a JSON object."""
    with contextlib.suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict):
            return data
    return {}


def event_ids(answers: Answers) -> set[str]:
    """The distinct event_ids the 202s returned."""
    return {key for body in answers.accepted.values() if isinstance(key := receipt(body).get("event_id"), str)}


@dataclass(frozen=True)
class Intake:
    """One intake as a phase drives it."""

    name: str
    requests: list[Request]
    timeout_s: float  # how long its caller waits for an answer
    to_apply: Callable[[Answers], set[str]]  # what the accepted requests must leave applied in SQL
    applied: Callable[[], set[str]]  # what SQL holds applied now
    warm_up: Request
    warm_up_key: Callable[[bytes], str]  # what `applied` will hold once the warm-up (this answer) is applied


@dataclass
class Phase:
    """One intake's run: the answers, what its workers had to apply, and when it was all in SQL."""

    name: str
    answers: Answers
    to_apply: set[str]
    applied_s: float | None  # from the first scheduled send until SQL held every event of `to_apply`
    host_cores: float  # the host's CPU during sending and applying

    @property
    def accepted_per_s(self) -> float:
        return len(self.answers.accepted) / self.answers.answering_s if self.answers.answering_s else 0.0

    @property
    def applied_per_s(self) -> float | None:
        return len(self.to_apply) / self.applied_s if self.applied_s else None


def run_phase(host: Host, intake: Intake, args: argparse.Namespace) -> Phase:
    """Warm the route and its worker with one event (so neither phase pays for first imports and connections),
    then send the requests at the rate and wait until SQL holds what the accepted ones must apply."""
    answer = httpx.post(
        f"{host.base_url}{intake.warm_up.path}", content=intake.warm_up.body, headers=dict(intake.warm_up.headers)
    )
    if not answer.is_success:
        raise RuntimeError(f"the {intake.name} warm-up answered {answer.status_code}: {answer.text[:300]}")
    if wait_until_applied(f"{intake.name} warm-up", {intake.warm_up_key(answer.content)}, intake.applied) is None:
        raise RuntimeError(f"the {intake.name} warm-up was not applied:\n{host.log_tail()}")
    cpu_before, wall_before = host.cpu_seconds(), time.monotonic()
    answers = send_open_loop(host.base_url, intake.requests, args.rate, args.concurrency, intake.timeout_s)
    wanted = intake.to_apply(answers)
    done = wait_until_applied(intake.name, wanted, intake.applied)
    cores = (host.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
    return Phase(intake.name, answers, wanted, done - answers.started if done is not None else None, cores)


def wait_until_applied(name: str, wanted: set[str], applied: Callable[[], set[str]]) -> float | None:
    """The time.perf_counter() of the first look that found every `wanted` applied; None when that stopped
    progressing for STALL_S (or took longer than DRAIN_TIMEOUT_S)."""
    started = progressed = shown = time.monotonic()
    missing = len(wanted)
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        looked = time.perf_counter()
        left = len(wanted - applied())
        if left == 0:
            return looked
        if left < missing:
            missing, progressed = left, time.monotonic()
        elif time.monotonic() - progressed > STALL_S:
            break
        if time.monotonic() - shown >= PROGRESS_S:
            print(f"  {name}: {left} of {len(wanted)} events still to apply", file=sys.stderr, flush=True)
            shown = time.monotonic()
        time.sleep(POLL_S)
    print(f"  {name}: gave up with {missing} events not applied", file=sys.stderr, flush=True)
    return None


@dataclass
class ManychatCheck:
    accepted: int
    held: int  # answered 202 `held`: SQL kept it, the sweep queues it
    without_id: int
    distinct_bodies: int
    distinct_ids: int
    applied_once: int
    unchanged: int
    not_finished: int  # our events still `queued` or `held` in miasalud_events
    contacts_missing: int
    campaign_contacts_missing: int

    @property
    def exactly_once(self) -> bool:
        return (
            self.without_id == 0
            and self.distinct_ids == self.distinct_bodies
            and self.applied_once == self.distinct_ids
            and self.not_finished == 0
            and self.contacts_missing == 0
            and self.campaign_contacts_missing == 0
        )


def check_manychat(engine: sa.Engine, planned: list[Event], answers: Answers) -> ManychatCheck:
    """Compare `miasalud_events` and the records with the 202s."""
    from shared.store import miasalud as store
    from shared.store.miasalud_schema import (
        miasalud_campaign_contacts,
        miasalud_campaigns,
        miasalud_contacts,
        miasalud_events,
    )

    receipts = [receipt(body) for body in answers.accepted.values()]
    keys = event_ids(answers)
    accepted = [planned[i] for i in answers.accepted]
    campaign_of = (
        sa.select(miasalud_contacts.c.manychat_id, miasalud_campaigns.c.manychat_campaign_id)
        .select_from(miasalud_campaign_contacts)
        .join(miasalud_contacts, miasalud_contacts.c.id == miasalud_campaign_contacts.c.contact_id)
        .join(miasalud_campaigns, miasalud_campaigns.c.id == miasalud_campaign_contacts.c.campaign_id)
    )
    with engine.connect() as conn:
        status = {
            key: value for key, value in conn.execute(sa.select(miasalud_events.c.event_key, miasalud_events.c.status))
        }
        contacts = set(conn.execute(sa.select(miasalud_contacts.c.manychat_id)).scalars())
        assigned = {(manychat_id, campaign) for manychat_id, campaign in conn.execute(campaign_of)}
    applied = {store.APPLIED, store.UNCHANGED}
    return ManychatCheck(
        accepted=len(accepted),
        held=sum(1 for got in receipts if got.get("status") == "held"),
        without_id=sum(1 for got in receipts if not isinstance(got.get("event_id"), str)),
        distinct_bodies=len({event.request.body for event in accepted}),
        distinct_ids=len(keys),
        applied_once=sum(1 for key in keys if status.get(key) in applied),
        unchanged=sum(1 for key in keys if status.get(key) == store.UNCHANGED),
        not_finished=sum(1 for key in keys if status.get(key) in (store.QUEUED, store.HELD)),
        contacts_missing=len({event.manychat_id for event in accepted} - contacts),
        campaign_contacts_missing=len(
            {(event.manychat_id, event.campaign) for event in accepted if event.kind == "campaign"} - assigned
        ),
    )


def _ms(samples: list[float], share: float) -> str:
    return f"{percentile(samples, share):.1f} ms"


def _ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}" if ours is not None and theirs else "–"


def _rate(per_s: float | None) -> str:
    return f"{per_s:.1f} /s" if per_s is not None else "not all applied"


def report(
    manychat: Phase,
    ghl: Phase,
    *,
    events: list[Event],
    mc_check: ManychatCheck,
    ghl_check: Applied,
    setup: str,
    machine: list[str],
) -> int:
    """Print both intakes side by side, the ratios and the checks; the exit code."""
    kinds = {kind: sum(1 for e in events if e.kind == kind) for kind in ("contact", "campaign")}
    print(setup)
    print(
        f"ManyChat mix: {len({e.manychat_id for e in events})} manychat_ids, {kinds['contact']} contact and "
        f"{kinds['campaign']} campaign events, {len(events) - len({e.request.body for e in events})} repeats"
    )
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, pick: Callable[[Phase], str], ratio: Callable[[Phase], float | None] | None = None) -> None:
        rows.append((name, pick(manychat), pick(ghl), _ratio(ratio(manychat), ratio(ghl)) if ratio else ""))

    row("sent", lambda p: str(p.answers.scheduled))
    row("achieved send rate", lambda p: f"{p.answers.scheduled / p.answers.sending_s:.1f} /s")
    row("accepted (202 / 2xx)", lambda p: str(len(p.answers.accepted)))
    row("rejected / no answer", lambda p: f"{len(p.answers.rejected)} / {len(p.answers.unanswered)}")
    row("accepted per second", lambda p: _rate(p.accepted_per_s), lambda p: p.accepted_per_s)
    row("ack latency p50", lambda p: _ms(p.answers.ack_ms, 0.5), lambda p: percentile(p.answers.ack_ms, 0.5))
    row("ack latency p99", lambda p: _ms(p.answers.ack_ms, 0.99), lambda p: percentile(p.answers.ack_ms, 0.99))
    row("distinct events to apply", lambda p: str(len(p.to_apply)))
    row("first send -> all in SQL", lambda p: f"{p.applied_s:.1f} s" if p.applied_s else "not all applied")
    row("applied per second", lambda p: _rate(p.applied_per_s), lambda p: p.applied_per_s)
    row("host CPU, send + apply", lambda p: f"{p.host_cores:.2f} cores")
    print(f"{'':<27} {'ManyChat':>16} {'GHL':>16} {'ManyChat/GHL':>13}")
    for name, ours, theirs, ratio in rows:
        print(f"{name:<27} {ours:>16} {theirs:>16} {ratio:>13}")
    statuses = [f"{p.name} {dict(sorted(p.answers.statuses.items()))}" for p in (manychat, ghl)]
    print("answers by status:", ", ".join(statuses))
    print("ManyChat against the seed's 1,000 events per hour:")
    for what, per_s in (("accepted", manychat.accepted_per_s), ("applied", manychat.applied_per_s)):
        if per_s is not None:
            per_hour = per_s * 3600
            print(f"  {what:<9} {per_hour:>12,.0f} events/hour = {per_hour / SEED_CLAIM_PER_HOUR:,.1f} x 1,000")
    print(
        f"ManyChat check: {mc_check.accepted} accepted ({mc_check.held} held), {mc_check.distinct_bodies} distinct "
        f"bodies, {mc_check.distinct_ids} distinct event_ids ({mc_check.without_id} 202s without one), "
        f"{mc_check.applied_once} applied once ({mc_check.unchanged} of them unchanged: older than the record), "
        f"{mc_check.not_finished} still queued or held, {mc_check.contacts_missing} contacts and "
        f"{mc_check.campaign_contacts_missing} campaign contacts missing"
    )
    print(
        f"GHL check: {ghl_check.accepted} accepted, {ghl_check.accepted_in_inbox} with one inbox row, "
        f"{ghl_check.accepted_applied} applied once, {ghl_check.appointments_twice} appointments made twice, "
        f"{ghl_check.rejected_applied} rejected but applied"
    )
    print(*machine, sep="\n")
    exact = mc_check.exactly_once and ghl_check.exactly_once
    print(f"every accepted event applied exactly once: {'yes' if exact else 'NO'}")
    return 0 if exact else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--events", type=int, default=2000, help="events per intake (default 2000)")
    size.add_argument("--seconds", type=float, help="send for this long instead: rate x seconds events per intake")
    parser.add_argument("--rate", type=float, default=200.0, help="events offered per second, open loop (default 200)")
    parser.add_argument(
        "--concurrency", type=int, default=1000, help="connections, so requests in flight at most (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the random ManyChat mix (default 1)")
    parser.add_argument(
        "--sql-url",
        help="a fresh sync database, migrated here (default: a temporary SQLite file), "
        "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/<db>",
    )
    args = parser.parse_args(argv)
    stop_cleanly_on_sigterm()
    allow_open_files(args.concurrency + 1024)  # the sender's connections, and the host's (it inherits the limit)
    count = round(args.rate * args.seconds) if args.seconds is not None else args.events
    load_before = machine_load()
    events = manychat_events(count, args.seed)
    warm_contact = _contact_event(random.Random(args.seed), "MCBWARMUP", FIRST_EVENT)
    keys = SigningKeys.generate()
    warm_booking, *bookings = deliveries(keys, count + 1)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="manychat-intake-")))
        storage = stack.enter_context(Azurite.on_free_ports(tmp / "azurite"))
        sandbox = stack.enter_context(SandboxServer(sandbox_config(tmp / "keys")))
        sql_url = args.sql_url or f"sqlite:///{tmp / 'sync.db'}"
        engine = _migrated(sql_url)
        stack.callback(engine.dispose)
        seed_location(sql_url)
        env = app_env(
            {
                "AzureWebJobsStorage": storage.connection_string,
                "SQL_URL": sql_url,
                **ghl_settings(sandbox.url, keys),
                "MANYCHAT_API_KEYS": API_KEY,
                "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
                "PYTHON_THREADPOOL_THREAD_COUNT": "32",
            }
        )
        manychat_intake = Intake(
            "ManyChat",
            [event.request for event in events],
            MANYCHAT_TIMEOUT_S,
            event_ids,
            lambda: manychat_applied(engine),
            warm_contact.request,
            lambda body: str(receipt(body).get("event_id")),
        )
        ghl_intake = Intake(
            "GHL",
            [booking.request for booking in bookings],
            GHL_TIMEOUT_S,
            lambda answers: {bookings[i].webhook_id for i in answers.accepted},
            lambda: ghl_applied(engine),
            warm_booking.request,
            lambda _: warm_booking.webhook_id,
        )
        with hosts(1, env, tmp, "intake") as (host,):
            cpu_before = (time.process_time(), cpu_seconds(storage.pid), time.monotonic())
            manychat = run_phase(host, manychat_intake, args)
            ghl = run_phase(host, ghl_intake, args)
            wall = time.monotonic() - cpu_before[2]
            sender = (time.process_time() - cpu_before[0]) / wall
            azurite = (cpu_seconds(storage.pid) - cpu_before[1]) / wall
        mc_check = check_manychat(engine, events, manychat.answers)
        ghl_check = check_applied(engine, bookings, ghl.answers)
        setup = (
            f"one host, both integrations on; {engine.dialect.name} ({'--sql-url' if args.sql_url else 'temporary'}); "
            f"{count} events per intake offered at {args.rate:g}/s (at most {args.concurrency} in flight), "
            f"ManyChat seed {args.seed}"
        )
        machine = [
            f"over both phases: sender {sender:.2f} cores, Azurite {azurite:.2f} cores "
            "(near 1.0: that process is the limit)",
            f"machine: {load_before} before, {machine_load()} after",
        ]
    return report(manychat, ghl, events=events, mc_check=mc_check, ghl_check=ghl_check, setup=setup, machine=machine)


def _migrated(sql_url: str) -> sa.Engine:
    """An engine on the sync database at head (SQLite migrates itself as it opens; a server's is migrated here)."""
    from shared.store import migrate
    from shared.store.database import Database

    engine = Database.connect_url(sql_url).engine
    if engine.dialect.name != "sqlite":
        migrate.upgrade(engine)
    return engine


if __name__ == "__main__":
    sys.exit(main())
