"""Run the sandbox in-process on a free port (uvicorn in a thread), and drive its admin API from Python."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tools.asgi_server import ThreadedServer

from .app import build_app
from .config import SandboxConfig, SeedSpec
from .keys import PublicKeys
from .sandbox import Sandbox


class AdminClient:
    """Typed access to /_sandbox/ of a running sandbox (in-process or started with the CLI)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/_sandbox", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def reset(self, seed: SeedSpec | None = None, empty: bool = False) -> dict[str, Any]:
        """Back to the start-up settings and seed (or `seed`, or nothing with `empty`)."""
        body = {"empty": empty, "seed": seed.model_dump(mode="json") if seed else None}
        result: dict[str, Any] = self._call("POST", "/reset", body)
        return result

    def seed(self, spec: SeedSpec) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/seed", spec.model_dump(mode="json"))
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/state")
        return result

    def counts(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/counts")
        return result

    def configure(self, section: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Replace one settings section: rate_limit, auth, behaviour, webhooks or faults."""
        result: dict[str, Any] = self._call("PUT", f"/config/{section}", settings)
        return result

    def start_outage(self, seconds: float, mode: str = "503") -> None:
        self._call("POST", "/outage", {"mode": mode, "seconds": seconds})

    def end_outage(self) -> None:
        self._call("DELETE", "/outage")

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "/clock/advance", {"seconds": seconds})

    def expire_tokens(self, location_id: str | None = None) -> int:
        expired: int = self._call("POST", "/tokens/expire", {"location_id": location_id})["expired"]
        return expired

    def webhooks(self, state: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/webhooks" + (f"?state={state}" if state else ""))
        return result

    def pause_webhooks(self) -> None:
        self._call("POST", "/webhooks/pause")

    def resume_webhooks(self) -> None:
        self._call("POST", "/webhooks/resume")

    def flush_webhooks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("POST", "/webhooks/flush")
        return result

    def public_keys(self) -> PublicKeys:
        data = self._call("GET", "/keys")
        return PublicKeys(data["ed25519"], data["rsa"])

    def simulate_booking(self, **appointment: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/simulate/appointments", appointment)
        return result

    def simulate_appointment_edit(self, event_id: str, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/simulate/appointments/{event_id}", changes)
        return result

    def simulate_appointment_delete(self, event_id: str) -> None:
        self._call("DELETE", f"/simulate/appointments/{event_id}")

    def simulate_contact_create(self, **contact: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/simulate/contacts", contact)
        return result

    def simulate_contact_edit(self, contact_id: str, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/simulate/contacts/{contact_id}", changes)
        return result


class SandboxServer:
    """`with SandboxServer(config) as sb:` serves a fresh sandbox at `sb.url`; `sb.admin` drives it."""

    def __init__(self, config: SandboxConfig | None = None, port: int = 0) -> None:
        self.sandbox = Sandbox(config or SandboxConfig())
        self._server = ThreadedServer(build_app(self.sandbox), self.sandbox.config.host, port)
        self.url = self._server.url
        self.admin = AdminClient(self.url)

    @property
    def key_dir(self) -> Path:
        return self.sandbox.keys.key_dir

    @property
    def public_keys(self) -> PublicKeys:
        return self.sandbox.keys.signing.public_keys()

    def __enter__(self) -> SandboxServer:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.admin.close()
        self._server.stop()
