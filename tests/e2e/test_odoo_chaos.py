"""The MiaSalud chaos run (tools/bench/odoo_chaos.py) at a small scale: 200 ManyChat events for 40 contacts while
Odoo rolls back 30% of its calls with a serialization failure, drops the answer of 10% of the creates after
applying them, is down for a few seconds; one of the two hosts is killed with -9 and Azurite restarts. Every
event is in SQL once, Odoo holds exactly what SQL holds, nothing is doubled or poisoned."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.services.miasalud import odoo_push
from tools.azurite import Azurite
from tools.bench.odoo_chaos import OdooChaosOptions, report_text, run

pytestmark = [pytest.mark.azurite, pytest.mark.postgres]


def test_manychat_events_reach_odoo_once_through_every_fault(
    postgres_reachable: None, azurite: Azurite, tmp_path: Path
) -> None:
    """On JSON-2 (the full runs alternate the protocols; the E2E and integration tests cover both)."""
    lines: list[str] = []
    # The drain is bounded by what a killed host leaves: its rows stay leased for the push lease (120 s in
    # production; the shortest allowed here, a push against the local sandbox takes seconds), then the sweep (every
    # 5 s here) pushes them; a retry's own delay comes on top.
    lease = odoo_push.MIN_LEASE_S
    options = OdooChaosOptions(
        events=200, contacts=40, gap_s=3, odoo_outage_s=5, storage_down_s=2, kills=1, message_lease_s=10,
        push_lease_s=lease, drain_timeout_s=lease + 90, protocol="json2", seed=5, azurite=azurite,
        work_dir=tmp_path, log=lines.append,
    )  # fmt: skip
    figures = run(options)
    text = "\n".join(lines) + report_text(figures)
    counts = figures.counts
    assert figures.failures == [], text + "\n" + str(figures.details.get("host log tail", ""))
    # Every fault really happened: Odoo refused and dropped, was down, a host restarted.
    assert counts["host processes started"] == 3, text
    assert counts["Odoo faults serialization_failure"] > 0 and counts["Odoo faults applied_then_dropped"] > 0, text
    assert counts["Odoo calls outage_503"] > 0, text
    assert (counts["duplicate partners"], counts["duplicate leads"], counts["poison messages"]) == (0, 0, 0), text
    assert (counts["reconciliation drift"], counts.get("reconciliation in_flight", 0)) == (0, 0), text
    assert counts["creates of a record Odoo held"] == 0 and counts["leads created without type or user_id"] == 0
