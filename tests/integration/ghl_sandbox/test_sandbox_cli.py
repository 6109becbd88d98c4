"""The CLI serves the demo location and says how to point the app at it; config files set the knobs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tools.ghl_sandbox import DEMO_LOCATION_ID, DEMO_PRIVATE_TOKEN
from tools.ghl_sandbox.__main__ import load_config, parse_args

from .helpers import CONTACTS

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli(key_dir: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.ghl_sandbox", "--port", "0", "--key-dir", str(key_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    banner = [process.stdout.readline() for _ in range(6)]
    try:
        yield process, banner
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_serves_the_demo_location_and_prints_the_app_settings(
    cli: tuple[subprocess.Popen[str], list[str]],
) -> None:
    _, banner = cli
    url = banner[0].split()[4]

    headers = {"Authorization": f"Bearer {DEMO_PRIVATE_TOKEN}", **CONTACTS}
    response = httpx.get(f"{url}/locations/{DEMO_LOCATION_ID}", headers=headers, timeout=5)

    assert response.json()["location"]["timezone"] == "America/Lima"
    assert f"  GHL_BASE_URL={url}\n" in banner
    assert any("ed25519_public.pem" in line for line in banner)


def test_config_file_sets_the_knobs_and_the_seed(tmp_path: Path) -> None:
    config_file = tmp_path / "sandbox.toml"
    config_file.write_text(
        """
        port = 8123
        [rate_limit]
        interval_ms = 1000
        max_requests = 100
        [webhooks]
        time_scale = 0.001
        [[seed.locations]]
        id = "loc_x"
        name = "Sede X"
        """
    )

    config = load_config(
        parse_args(["--config", str(config_file), "--webhook-url", "http://127.0.0.1:7071/api/webhooks/ghl"])
    )

    assert (config.port, config.rate_limit.interval_ms, config.webhooks.time_scale) == (8123, 1000, 0.001)
    assert config.webhooks.url == "http://127.0.0.1:7071/api/webhooks/ghl"
    assert [loc.id for loc in config.seed.locations] == ["loc_x"]
