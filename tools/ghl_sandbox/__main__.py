"""CLI: `python -m tools.ghl_sandbox --port 8090 [--config sandbox.toml]` serves a seeded demo sandbox."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.asgi_server import listening_socket, uvicorn_server

from .app import build_app
from .config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_LOCATION_ID,
    DEMO_PRIVATE_TOKEN,
    DEMO_SEED,
    SandboxConfig,
)
from .keys import ED25519_PUBLIC, RSA_PUBLIC
from .sandbox import Sandbox


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.ghl_sandbox", description=__doc__)
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8090)")
    parser.add_argument("--config", type=Path, help="JSON or TOML file with SandboxConfig keys")
    parser.add_argument("--key-dir", type=Path, help="where the webhook signing keys live")
    parser.add_argument("--webhook-url", help="where to POST signed webhooks (e.g. the app's /api/webhooks/ghl)")
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> SandboxConfig:
    config = SandboxConfig.from_file(args.config) if args.config else SandboxConfig(seed=DEMO_SEED)
    overrides = {"host": args.host, "port": args.port, "key_dir": args.key_dir}
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    if args.webhook_url:
        config.webhooks.url = args.webhook_url
    return config


def describe(sandbox: Sandbox, url: str) -> str:
    """How to point the app at this sandbox: settings for local.settings.json / the environment."""
    key_dir = sandbox.keys.key_dir.resolve()
    demo = DEMO_LOCATION_ID in sandbox.state.locations
    lines = [
        f"GHL sandbox listening on {url}  (admin API: {url}/_sandbox/state)",
        "",
        "Point the app at it:",
        f"  GHL_BASE_URL={url}",
        f"  GHL_WEBHOOK_ED25519_KEY=<contents of {key_dir / ED25519_PUBLIC}>",
        f"  GHL_WEBHOOK_RSA_KEY=<contents of {key_dir / RSA_PUBLIC}>",
    ]
    if demo:
        lines += [
            f"  GHL_LOCATION_ID={DEMO_LOCATION_ID}",
            f"  GHL_PRIVATE_TOKEN={DEMO_PRIVATE_TOKEN}",
            f"  GHL_CLIENT_ID={DEMO_CLIENT_ID}",
            f"  GHL_CLIENT_SECRET={DEMO_CLIENT_SECRET}",
            f"  OAuth consent page: {url}/v2/oauth/chooselocation?response_type=code&client_id=..."
            "&redirect_uri=...&scope=...",
        ]
    webhook_url = sandbox.config.webhooks.url
    lines.append(f"Webhooks go to: {webhook_url or 'nowhere yet (PUT /_sandbox/config/webhooks)'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    config = load_config(parse_args(argv))
    sandbox = Sandbox(config)
    sock = listening_socket(config.host, config.port)
    host, port = sock.getsockname()[:2]
    print(describe(sandbox, f"http://{host}:{port}"), flush=True)
    uvicorn_server(build_app(sandbox), "info").run(sockets=[sock])


if __name__ == "__main__":
    main()
