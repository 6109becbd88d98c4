"""CLI: `python -m tools.odoo_sandbox --port 8069 [--db miasalud] [--config sandbox.toml]` serves the demo database."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.asgi_server import listening_socket, uvicorn_server

from .app import build_app
from .config import DEMO_ADMIN_LOGIN, DEMO_API_KEY, DEMO_API_LOGIN, SandboxConfig
from .sandbox import Sandbox


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.odoo_sandbox", description=__doc__)
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8069)")
    parser.add_argument("--db", help="name of the demo database (default miasalud)")
    parser.add_argument("--config", type=Path, help="JSON or TOML file with SandboxConfig keys (seed, faults...)")
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> SandboxConfig:
    config = SandboxConfig.from_file(args.config) if args.config else SandboxConfig()
    for name, value in {"host": args.host, "port": args.port, "db": args.db}.items():
        if value is not None:
            setattr(config, name, value)
    return config


def describe(sandbox: Sandbox, url: str) -> str:
    """How to point the app at this sandbox: settings for local.settings.json / the environment."""
    users = {u.login for u in sandbox.config.seed.users}
    lines = [
        f"Odoo sandbox (Odoo 19 JSON-RPC and JSON-2) listening on {url}  (admin API: {url}/_sandbox/state)",
        "",
        "Point the app at it:",
        f"  ODOO_URL={url}",
        f"  ODOO_DB={sandbox.config.db}",
    ]
    if DEMO_API_LOGIN in users:
        lines += [f"  ODOO_USERNAME={DEMO_API_LOGIN}", f"  ODOO_API_KEY={DEMO_API_KEY}  (the sandbox's demo key)"]
    if DEMO_ADMIN_LOGIN in users:
        lines.append(f"Administrator: {DEMO_ADMIN_LOGIN} (may create the x_ fields with `python -m shared.odoo check`)")
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
