"""Run the sandbox in-process on a free port (uvicorn in a thread), and drive its admin API from Python."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from tools.asgi_server import ThreadedServer

from .app import build_app
from .config import SandboxConfig
from .sandbox import Sandbox


class AdminClient:
    """Typed access to /_sandbox/ of a running sandbox (in-process or started with the CLI)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/_sandbox", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Back to the start-up settings and the demo database, with an empty record of calls."""
        self._call("POST", "/reset")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/state")
        return result

    def records(self, model: str) -> list[dict[str, Any]]:
        """The model's records as stored (a many2one is its id)."""
        result: list[dict[str, Any]] = self._call("GET", f"/records/{model}")
        return result

    def create(self, model: str, *values: dict[str, Any]) -> list[int]:
        """Records created as the admin, outside of the record of calls and of the faults."""
        result: list[int] = self._call("POST", f"/records/{model}", list(values))
        return result

    def calls(self, **filters: str) -> list[dict[str, Any]]:
        """The recorded calls, optionally only those of a model, method or protocol."""
        result: list[dict[str, Any]] = self._call("GET", "/calls", params=filters)
        return result

    def clear_calls(self) -> None:
        self._call("DELETE", "/calls")

    def configure(self, section: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Replace one settings section: faults or behaviour."""
        result: dict[str, Any] = self._call("PUT", f"/config/{section}", settings)
        return result

    def inject(self, kind: str, **rule: Any) -> None:
        """Add one fault rule (see FaultRule), e.g. `inject("serialization_failure", methods=["write"], count=2)`."""
        self._call("POST", "/faults", {"kind": kind, **rule})

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def start_outage(self, seconds: float, mode: str = "503") -> None:
        self._call("POST", "/outage", {"mode": mode, "seconds": seconds})

    def end_outage(self) -> None:
        self._call("DELETE", "/outage")

    def add_key(self, login: str, key: str) -> None:
        self._call("POST", "/keys", {"login": login, "key": key})

    def expire_keys(self, login: str, key: str | None = None) -> int:
        expired: int = self._call("POST", "/keys/expire", {"login": login, "key": key})["expired"]
        return expired


class SandboxServer:
    """`with SandboxServer(config) as sb:` serves a fresh sandbox at `sb.url`; `sb.admin` drives it."""

    def __init__(self, config: SandboxConfig | None = None, port: int = 0) -> None:
        self.sandbox = Sandbox(config or SandboxConfig())
        self._server = ThreadedServer(build_app(self.sandbox), self.sandbox.config.host, port)
        self.url = self._server.url
        self.admin = AdminClient(self.url)

    @property
    def db(self) -> str:
        return self.sandbox.config.db

    def __enter__(self) -> SandboxServer:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.admin.close()
        self._server.stop()
