"""One running sandbox: its database, live settings, fault injector, outage switch and the record of calls."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request

from .config import RUNTIME_SECTIONS, SandboxConfig
from .database import Database
from .dispatch import Answer, Invocation
from .faults import FaultInjector

OutageMode = Literal["503", "reset"]


@dataclass
class Outage:
    mode: OutageMode
    until: float  # time.monotonic()


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.db = Database(self.config.db, self.config.seed)
        self.faults = FaultInjector(self.config.faults)
        self.calls: list[dict[str, Any]] = []
        self.outage: Outage | None = None

    def reset(self) -> dict[str, Any]:
        """Back to the start-up settings and the demo database; the record of calls is emptied."""
        self.config = self.initial_config.model_copy(deep=True)
        self.db = Database(self.config.db, self.config.seed)
        self.faults.configure(self.config.faults)
        self.calls.clear()
        self.outage = None
        return {"db": self.db.name}

    def set_section(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """Replace one live settings section (faults, behaviour)."""
        if name not in RUNTIME_SECTIONS:
            raise KeyError(name)
        section = type(getattr(self.config, name)).model_validate(data)
        setattr(self.config, name, section)
        if name == "faults":
            self.faults.configure(self.config.faults)
        dumped: dict[str, Any] = section.model_dump(mode="json")
        return dumped

    def outage_mode(self) -> OutageMode | None:
        if self.outage is not None and time.monotonic() >= self.outage.until:
            self.outage = None
        return self.outage.mode if self.outage else None

    def record(
        self, inv: Invocation, *, outcome: str, status: int | None, fault: str | None = None, applied: bool = False
    ) -> None:
        """One call as it reached the sandbox and how it ended (credentials are never part of it)."""
        entry = {
            "seq": len(self.calls) + 1,
            "at": time.time(),
            **copy.deepcopy(inv.recorded()),
            "outcome": outcome,
            "status": status,
            "fault": fault,
            "applied": applied,
        }
        self.calls.append(entry)

    def record_answer(self, inv: Invocation, answer: Answer, fault: str | None = None) -> None:
        self.record(inv, outcome=answer.outcome, status=answer.status, fault=fault, applied=answer.applied)


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox
