"""The ManyChat intake benchmark (tools/bench/manychat_intake.py) at a tiny scale: 40 events per intake at 20/s on
the real host, both intakes side by side, every accepted event applied once. Figures are not checked: the machine
decides them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_prints_both_intakes_side_by_side_and_applies_every_accepted_event_once() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tools.bench.manychat_intake", "--events", "40", "--rate", "20", "--seed", "3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr[-3000:]
    assert "ManyChat/GHL" in out and "applied per second" in out and "accepted per second" in out, out
    assert "x 1,000" in out, out  # ManyChat against the seed's 1,000 events per hour
    assert "ManyChat mix: 4 manychat_ids" in out, out
    assert "ManyChat {'202': 40}" in out, out  # every body of the mix is one the intake takes
    assert "every accepted event applied exactly once: yes" in out, out
