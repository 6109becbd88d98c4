"""Cold-start benchmark: import time of `function_app` beside `azure.functions` alone, in fresh interpreters.

Runs are interleaved (A, B, A, B, ...) so both see the same machine state; medians are compared.
Usage: python -m tools.bench.import_time [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[2]
PROBE = "import time, sys; t = time.perf_counter(); import {module}; sys.stdout.write(repr(time.perf_counter() - t))"
TARGET_RATIO = 2.0


def import_seconds(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(out.stdout)


def heavy_modules_loaded() -> list[str]:
    """Heavy SDKs that importing function_app pulls in (should be none: they load lazily in adapters)."""
    probe = (
        "import sys, function_app; heavy = ('pydantic', 'sqlalchemy', 'httpx', 'azure.storage', 'azure.data', "
        "'azure.identity', 'msal', 'cryptography', 'opentelemetry', 'alembic', 'pyodbc'); "
        "print(' '.join(sorted({m.split('.')[0] if not m.startswith('azure.') else '.'.join(m.split('.')[:2]) "
        "for m in sys.modules if m.startswith(heavy)})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=APP_DIR, capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    import_seconds("function_app")  # warm the OS file cache and __pycache__ for both
    azure_only, app = [], []
    for _ in range(args.runs):
        azure_only.append(import_seconds("azure.functions"))
        app.append(import_seconds("function_app"))
    base, ours = statistics.median(azure_only), statistics.median(app)
    ratio = ours / base
    print(f"import azure.functions : median {base * 1000:7.1f} ms over {args.runs} fresh interpreters")
    print(f"import function_app    : median {ours * 1000:7.1f} ms over {args.runs} fresh interpreters")
    print(f"ratio function_app / azure.functions = {ratio:.2f}  (target <= {TARGET_RATIO:.1f})")
    heavy = heavy_modules_loaded()
    print(f"heavy SDKs imported by function_app: {', '.join(heavy) if heavy else 'none'}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
