"""The rate budget shared in Table storage (Azurite): distinct slots across instances, and no 429 under load."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.data.tables import TableClient

from shared.ghl.client import GhlClient
from shared.ghl.errors import RateLimited
from shared.ghl.rate_budget import TableRateBudget
from sync_core.rate_budget import BudgetLimits, RateLimitHeaders
from tools.ghl_sandbox import DEMO_LOCATION_ID, SandboxServer

from .budget_worker import Answer, send
from .conftest import Azurite
from .scaled import SANDBOX_SCALED, SCALED_LIMITS, SCALED_MAX

pytestmark = pytest.mark.azurite

LOC = DEMO_LOCATION_ID
APP_DIR = Path(__file__).resolve().parents[3]


def test_instances_sharing_a_table_get_distinct_evenly_spaced_slots(new_table: Callable[[], TableClient]) -> None:
    table = new_table()
    limits = BudgetLimits(max_requests=100, interval_s=10)
    hosts = [TableRateBudget(table, limits) for _ in range(4)]  # as if on four hosts: no shared memory
    starts: list[float] = []
    lock = threading.Lock()

    def reserve_many(budget: TableRateBudget) -> None:
        for _ in range(15):
            slot = budget.reserve(LOC, max_wait_s=60)
            assert slot.granted
            with lock:
                starts.append(slot.start_at)

    threads = [threading.Thread(target=reserve_many, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gaps = [b - a for a, b in itertools.pairwise(sorted(starts))]
    assert len(starts) == 60
    assert min(gaps) >= limits.spacing_s - 1e-6


def test_threads_of_one_process_waiting_together_share_table_writes_and_still_get_distinct_slots(
    new_table: Callable[[], TableClient],
) -> None:
    table = new_table()
    limits = BudgetLimits(max_requests=100, interval_s=10)
    budgets = [TableRateBudget(table, limits) for _ in range(2)]  # two hosts, 8 function threads each
    writes = []
    for budget in budgets:
        store = budget._store
        budget._store = lambda *args, _store=store: writes.append(1) or _store(*args)  # type: ignore[method-assign]
    starts: list[float] = []
    lock = threading.Lock()
    all_ready = threading.Barrier(16)

    def worker(budget: TableRateBudget) -> None:
        all_ready.wait(timeout=10)
        for _ in range(6):
            slot = budget.reserve(LOC, max_wait_s=60)
            assert slot.granted
            with lock:
                starts.append(slot.start_at)

    threads = [threading.Thread(target=worker, args=(budgets[n % 2],)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gaps = [b - a for a, b in itertools.pairwise(sorted(starts))]
    assert len(starts) == 96 and min(gaps) >= limits.spacing_s - 1e-6
    assert len(writes) < len(starts) / 2  # most writes took slots for the threads waiting behind


def _counting_writes(budget: TableRateBudget) -> list[int]:
    writes: list[int] = []
    store = budget._store
    budget._store = lambda *args: writes.append(1) or store(*args)  # type: ignore[method-assign]
    return writes


def test_a_call_and_the_one_right_after_it_take_their_slots_in_one_write_kept_for_that_thread(
    new_table: Callable[[], TableClient],
) -> None:
    table = new_table()
    limits = BudgetLimits(max_requests=100, interval_s=10)
    budget, other_host = TableRateBudget(table, limits), TableRateBudget(table, limits)
    writes = _counting_writes(budget)
    first = budget.reserve(LOC, max_wait_s=60, following=1)  # a contact upsert, then its create
    taken_elsewhere: list[float] = []
    thread = threading.Thread(target=lambda: taken_elsewhere.append(budget.reserve(LOC, max_wait_s=60).start_at))
    thread.start()
    thread.join()
    second = budget.reserve(LOC, max_wait_s=60)
    assert len(writes) == 2  # ours (two slots) and the other thread's: the kept slot was not handed to it
    assert second.start_at == pytest.approx(first.start_at + limits.spacing_s)
    assert taken_elsewhere[0] == pytest.approx(second.start_at + limits.spacing_s)
    later = other_host.reserve(LOC, max_wait_s=60)  # and no other instance gets it either
    assert later.start_at >= taken_elsewhere[0] + limits.spacing_s - 1e-6


def test_a_kept_slot_the_second_call_never_uses_is_given_up_and_not_reused(
    new_table: Callable[[], TableClient],
) -> None:
    limits = BudgetLimits(max_requests=100, interval_s=10)
    budget = TableRateBudget(new_table(), limits)
    writes = _counting_writes(budget)
    first = budget.reserve(LOC, max_wait_s=60, following=1)
    budget.drop_kept(LOC)  # the upsert failed: there is no create
    after = budget.reserve(LOC, max_wait_s=60)
    assert len(writes) == 2
    assert after.start_at == pytest.approx(first.start_at + 2 * limits.spacing_s)  # the kept one stays unused
    budget.reserve(LOC, max_wait_s=60, following=1)
    budget.observe(LOC, RateLimitHeaders(remaining=0))  # GHL counts more than we sent: slots taken are retaken
    budget.reserve(LOC, max_wait_s=60)
    assert len(writes) == 5


def test_a_429_seen_by_one_instance_holds_the_others(new_table: Callable[[], TableClient]) -> None:
    table = new_table()
    one, other = TableRateBudget(table), TableRateBudget(table)
    one.reserve(LOC, max_wait_s=1)
    one.rate_limited(LOC, 30)
    refused = other.reserve(LOC, max_wait_s=10)
    assert not refused.granted
    assert 29 < refused.wait_s <= 30


def test_locations_have_separate_budgets(new_table: Callable[[], TableClient]) -> None:
    budget = TableRateBudget(new_table())
    budget.rate_limited("loc_a", 30)
    assert budget.reserve("loc_b", max_wait_s=0).granted


def test_a_spent_day_reported_by_ghl_holds_every_instance(new_table: Callable[[], TableClient]) -> None:
    table = new_table()
    one, other = TableRateBudget(table), TableRateBudget(table)
    one.reserve(LOC, max_wait_s=1)
    one.observe(LOC, RateLimitHeaders(daily_remaining=0))
    assert not other.reserve(LOC, max_wait_s=60).granted


def test_contention_beyond_the_retry_bound_is_rate_limited_not_an_error(
    new_table: Callable[[], TableClient],
) -> None:
    table = new_table()
    loser = TableRateBudget(table, max_conflicts=1)
    loser.reserve(LOC, max_wait_s=60)  # caches the entity's ETag
    TableRateBudget(table).reserve(LOC, max_wait_s=60)  # another host moves it on
    with pytest.raises(RateLimited):
        loser.reserve(LOC, max_wait_s=60)


def share_of_limit(answers: list[Answer]) -> float:
    """Answers per window between the first and the last, as a fraction of the limit (informative only)."""
    times = sorted(at for _, at in answers)
    return (len(times) - 1) / (times[-1] - times[0]) * SCALED_LIMITS.interval_s / SCALED_MAX


def test_300_requests_through_the_shared_budget_see_no_429(
    sandbox: SandboxServer, new_table: Callable[[], TableClient]
) -> None:
    sandbox.admin.configure("rate_limit", SANDBOX_SCALED)
    answers = send(sandbox.url, new_table(), requests=300, threads=6)
    assert [status for status, _ in answers] == [200] * 300
    assert sandbox.admin.counts()["rate_limited"] == 0
    print(f"\n1 process: 300 requests, 0 x 429, {share_of_limit(answers):.1%} of the limit used")


def test_two_host_processes_sharing_the_budget_see_no_429(
    sandbox: SandboxServer, new_table: Callable[[], TableClient], azurite: Azurite
) -> None:
    sandbox.admin.configure("rate_limit", SANDBOX_SCALED)
    table = new_table()
    command = [sys.executable, "-m", "tests.integration.ghl_client.budget_worker", sandbox.url,
               azurite.connection_string, table.table_name, "150", "3"]  # fmt: skip
    hosts = [subprocess.Popen(command, cwd=APP_DIR, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    answers: list[Answer] = [
        (status, at) for host in hosts for status, at in json.loads(host.communicate(timeout=60)[0])
    ]
    assert [status for status, _ in answers] == [200] * 300
    assert sandbox.admin.counts()["rate_limited"] == 0
    print(f"\n2 processes: 300 requests, 0 x 429, {share_of_limit(answers):.1%} of the limit used")


def test_a_contact_upsert_and_the_create_after_it_cost_one_budget_write(
    new_table: Callable[[], TableClient], make_client: Callable[..., GhlClient]
) -> None:
    budget = TableRateBudget(new_table())
    writes = _counting_writes(budget)
    client = make_client(budget=budget)
    with client.calls_in_a_row(LOC, 2):
        contact, _ = client.upsert_contact(LOC, {"firstName": "Rosa", "phone": "+51 987 000 222"})
        client.find_duplicate_contact(LOC, phone="+51987000222")
    assert contact.id and len(writes) == 1
    client.find_duplicate_contact(LOC, phone="+51987000222")  # outside the block: a slot of its own
    assert len(writes) == 2
