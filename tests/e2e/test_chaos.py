"""The chaos run (tools/bench/chaos.py) at a small scale: 120 changes both ways while GHL answers 429, 5xx and
resets after applying writes, GHL is down, one of the two hosts is killed with -9 (early: a dead worker's sync
lease holds its appointment for 40 s), Azurite restarts and the database drops every connection for a few
seconds. Nothing may be lost, duplicated, drifting (beyond webhooks GHL gave up on, which auto-heal must fix) or
poisoned."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.store.database import Database
from sync_core import protocol
from tests.fixtures.stack import assert_logs_clean
from tools.azurite import Azurite
from tools.bench.chaos import ChaosOptions, ChaosStack, report_text, run

pytestmark = [pytest.mark.azurite, pytest.mark.postgres]


def _logs_clean(stack: ChaosStack) -> None:
    assert_logs_clean(stack.hosts, Database(stack.observer))


def test_changes_both_ways_survive_every_fault_without_loss_duplicate_drift_or_poison(
    postgres_reachable: None, azurite: Azurite, tmp_path: Path
) -> None:
    lines: list[str] = []
    # How long a change may take to reach the other side before it counts as lost: a create in flight when its
    # host is killed is waited out until it can no longer land (`protocol.MAX_REQUEST`, 40 s after it was sent),
    # then looked up; its message comes back after the killed host's message lease, and outages add backoff.
    # (45 s, the bound before, failed a fresh-clone run once: the create of `a6` reached GHL only after it.)
    handoff_s = protocol.MAX_REQUEST.total_seconds() + 10 + 30
    options = ChaosOptions(
        changes=120, gap_s=3, ghl_outage_s=4, db_outage_s=4, storage_down_s=2, kills=1, message_lease_s=10,
        drain_timeout_s=60, handoff_timeout_s=handoff_s, azurite=azurite, work_dir=tmp_path, log=lines.append,
        on_finish=_logs_clean,
    )  # fmt: skip
    figures = run(options)
    text = "\n".join(lines) + report_text(figures)
    counts = figures.counts
    assert figures.failures == [], text + "\n" + str(figures.details.get("host log tail", ""))
    assert sum(n for what, n in counts.items() if what.startswith("change ")) == 120, text
    # Every fault really happened: GHL's outage and faults were met, a host restarted, the database refused.
    assert counts["GHL calls 503"] > 0 and counts["host processes started"] == 3, text
    assert counts["database connections refused"] > 0, text
    assert (counts["lost changes"], counts["duplicate GHL events"], counts["poison messages"]) == (0, 0, 0)
    assert counts["reconciliation drift unexplained"] == 0 and counts["changes that never crossed over"] == 0
