"""Webhook intake latency: signed GHL webhooks on the local Functions host, beside a bare request in the same run.

Starts Azurite and the local host (the real `function_app`, an empty SQLite database) and sends, interleaved so
all three see the same machine state: `GET /api/ping` (bare: the worker answers, nothing else), `GET
/api/health` (SQL and storage probes) and `POST /api/webhooks/ghl` (verify the signature, read the body,
enqueue). The webhooks name a location the database does not know, so the queue worker running beside the
intake in the same host only records them. Target: webhook p99 under 3x the bare request's p99.

Usage: python -m tools.bench.webhook_intake [--requests 1000] [--scheme ed25519|rsa]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from shared.settings import app_setting_names
from tools.azurite import Azurite
from tools.ghl_sandbox.keys import SigningKeys
from tools.ports import free_port

APP_DIR = Path(__file__).resolve().parents[2]
TARGET_RATIO = 3.0
WARM_UP = 50


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def webhook(keys: SigningKeys, scheme: str) -> tuple[bytes, dict[str, str]]:
    """A signed AppointmentUpdate as GHL sends it, unique per call (webhookId, event id)."""
    body = {
        "type": "AppointmentUpdate",
        "locationId": "loc_bench",
        "webhookId": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "appointment": {
            "id": uuid.uuid4().hex[:20],
            "calendarId": "cal_bench",
            "contactId": "ct_bench",
            "locationId": "loc_bench",
            "title": "Terapia",
            "appointmentStatus": "confirmed",
            "startTime": "2030-03-12T10:00:00-05:00",
            "endTime": "2030-03-12T11:00:00-05:00",
            "dateUpdated": datetime.now(UTC).isoformat(),
        },
    }
    data = json.dumps(body, separators=(",", ":")).encode()
    if scheme == "ed25519":
        return data, {"Content-Type": "application/json", "X-GHL-Signature": keys.sign_ed25519(data)}
    return data, {"Content-Type": "application/json", "x-wh-signature": keys.sign_rsa(data)}


def host_env(storage: Azurite, sql_url: str, keys: SigningKeys) -> dict[str, str]:
    """Every app setting explicit, so a developer's local.settings.json does not leak into the measure."""
    env = {k: v for k, v in os.environ.items() if k not in app_setting_names()}
    env.update({name: "" for name in app_setting_names()})
    public = keys.public_keys()
    env.update(
        AzureWebJobsStorage=storage.connection_string,
        SQL_URL=sql_url,
        GHL_BASE_URL="http://127.0.0.1:9",  # never called: the webhooks' location is unknown
        GHL_PRIVATE_TOKEN="pit-bench",
        GHL_LOCATION_ID="loc_bench",
        GHL_WEBHOOK_VERIFY="true",
        GHL_WEBHOOK_ED25519_KEY=public.ed25519_pem,
        GHL_WEBHOOK_RSA_KEY=public.rsa_pem,
        LOCAL_FUNCTION_KEY="bench-key",
        PYTHONUNBUFFERED="1",
    )
    return env


def wait_until_up(url: str, host: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.poll() is not None:
            raise RuntimeError(f"the host exited with {host.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the host did not answer {url} within {timeout:.0f}s")


def timed(call: Callable[[], httpx.Response], expected: int) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != expected:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code}")
    return elapsed


def measure(base_url: str, requests: int, keys: SigningKeys, scheme: str) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"GET /api/ping": [], "GET /api/health": [], "POST /api/webhooks/ghl": []}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for n in range(WARM_UP + requests):
            data, headers = webhook(keys, scheme)

            def deliver(data: bytes = data, headers: dict[str, str] = headers) -> httpx.Response:
                return client.post("/api/webhooks/ghl", content=data, headers=headers)

            rounds = {
                "GET /api/ping": timed(lambda: client.get("/api/ping"), 200),
                "GET /api/health": timed(lambda: client.get("/api/health"), 200),
                "POST /api/webhooks/ghl": timed(deliver, 200),
            }
            if n >= WARM_UP:
                for name, elapsed in rounds.items():
                    samples[name].append(elapsed)
    return samples


def report(samples: dict[str, list[float]], scheme: str) -> int:
    print(f"{'request':<24} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in samples.items():
        p50, p90, p99 = (percentile(values, share) for share in (0.5, 0.9, 0.99))
        print(f"{name:<24} {len(values):>5} {p50:>8.2f} {p90:>8.2f} {p99:>8.2f} {max(values):>8.2f}")
    webhook_p99 = percentile(samples["POST /api/webhooks/ghl"], 0.99)
    bare_p99 = percentile(samples["GET /api/ping"], 0.99)
    health_p99 = percentile(samples["GET /api/health"], 0.99)
    ratio = webhook_p99 / bare_p99
    p50_ratio = percentile(samples["POST /api/webhooks/ghl"], 0.5) / percentile(samples["GET /api/ping"], 0.5)
    print(f"signature scheme: {scheme}")
    print(f"webhook p99 / bare request p99   = {ratio:.2f}  (target < {TARGET_RATIO:.1f})")
    print(f"webhook p50 / bare request p50   = {p50_ratio:.2f}  (the enqueue to storage is most of the difference)")
    print(f"webhook p99 / /api/health p99    = {webhook_p99 / health_p99:.2f}")
    return 0 if ratio < TARGET_RATIO else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per endpoint")
    parser.add_argument("--scheme", choices=["ed25519", "rsa"], default="ed25519")
    args = parser.parse_args(argv)
    keys = SigningKeys.generate(rsa_bits=4096)  # GHL's RSA key size
    with (
        tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp,
        Azurite.on_free_ports(Path(tmp) / "azurite") as storage,
    ):
        port = free_port()
        env = host_env(storage, f"sqlite:///{Path(tmp) / 'sync.db'}", keys)
        with (Path(tmp) / "host.log").open("wb") as log:
            host = subprocess.Popen(
                [sys.executable, "-m", "tools.functions_host", "--app-dir", str(APP_DIR), "--port", str(port)],
                cwd=APP_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                base_url = f"http://127.0.0.1:{port}"
                wait_until_up(f"{base_url}/api/ping", host)
                samples = measure(base_url, args.requests, keys, args.scheme)
            finally:
                host.send_signal(signal.SIGTERM)
                try:
                    host.wait(30)
                except subprocess.TimeoutExpired:
                    host.kill()
    return report(samples, args.scheme)


if __name__ == "__main__":
    sys.exit(main())
