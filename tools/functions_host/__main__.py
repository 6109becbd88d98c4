"""`python -m tools.functions_host`: start the local Functions host, like `func start`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path

from tools.functions_host.config import HostConfigError
from tools.functions_host.host import HostOptions, configure_logging, serve


def parse_args(argv: list[str] | None) -> HostOptions:
    parser = argparse.ArgumentParser(prog="python -m tools.functions_host", description=__doc__)
    parser.add_argument("--app-dir", type=Path, default=Path.cwd(), help="folder with host.json (default: cwd)")
    parser.add_argument("--module", default="function_app", help="module defining `app` (default: function_app)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: LocalHttpPort or 7071)")
    parser.add_argument(
        "--message-lease",
        type=float,
        default=600.0,
        help="seconds a queue message stays invisible while its function runs, renewed at half-time "
        "(default 600, the real host's fixed value; tests shorten it)",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds to wait for invocations in flight on stop"
    )
    args = parser.parse_args(argv)
    return HostOptions(
        app_dir=args.app_dir,
        module=args.module,
        host=args.host,
        port=args.port,
        message_lease=timedelta(seconds=args.message_lease),
        drain_timeout=timedelta(seconds=args.drain_timeout),
    )


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    configure_logging()
    try:
        stopped = asyncio.run(serve(options))
    except HostConfigError as error:
        logging.getLogger("Host").error("The host cannot start: %s", error)
        sys.exit(1)
    if not stopped.drained:
        # Function threads still running after the drain timeout cannot be joined; leave without them.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(stopped.exit_code)
    sys.exit(stopped.exit_code)


if __name__ == "__main__":
    main()
