"""The one Odoo client: JSON-RPC or JSON-2 behind one interface, paced by the shared rate budget, with timeouts on
every call, safe retries only, and errors callers can act on (shared.odoo.errors).

What is retried here: serialization failures (Odoo rolled the transaction back; reads and writes alike, a few
times with jittered backoff), and calls that provably changed nothing (a read; a write that was never sent or
that Odoo refused before any work). A write whose answer was lost is never repeated: OdooOutcomeUnknown.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from shared import telemetry
from shared.calls import CallRecord
from shared.lazy import serial_imports
from shared.odoo import budget_key, rate_limits
from shared.odoo.errors import OdooConflict, OdooError, OdooOutcomeUnknown, OdooRateLimited, OdooUnavailable
from shared.odoo.transports import Call, Json2Transport, JsonRpcTransport, Transport
from shared.rate_budget import RateBudget, wait_for_slot
from sync_core.retry import ErrorKind

if TYPE_CHECKING:
    from shared.settings import Settings

log = telemetry.get_logger("odoo")
logging.getLogger("httpx").setLevel(logging.WARNING)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=5.0)
DEFAULT_MAX_WAIT_S = 10.0
PROBE_TIMEOUT_S = 3.0
ATTEMPTS = 3  # of a call that changed nothing when it failed (a read, a write not sent)
CONFLICT_ATTEMPTS = 3  # of a call Odoo rolled back on a serialization failure
RATE_LIMIT_RETRIES = 2
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 2.0
_MODEL = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")

# Failures where the request provably never reached Odoo.
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


class OdooClient:
    """Synchronous, thread-safe client of one Odoo database as one user."""

    def __init__(
        self,
        base_url: str,
        transport: Transport,
        budget: RateBudget,
        *,
        budget_key: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        attempts: int = ATTEMPTS,
        conflict_attempts: int = CONFLICT_ATTEMPTS,
        http_transport: httpx.BaseTransport | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        telemetry.warm()  # not inside the first call, after its slot
        self._transport = transport
        self._budget = budget
        self._key = budget_key
        self._timeout = timeout
        self._max_wait_s = max_wait_s
        self._attempts = max(1, attempts)
        self._conflict_attempts = max(1, conflict_attempts)
        self._on_call = on_call
        self._sleep = sleep
        self._clock = clock
        self._probing = threading.local()  # this thread's probe: a short timeout, no retries
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=http_transport,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "miasalud-sync"},
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, rate_budget: RateBudget | None = None, **options: Any) -> OdooClient:
        """The client of ODOO_URL / ODOO_DB as ODOO_USERNAME with ODOO_API_KEY over ODOO_PROTOCOL, paced at
        ODOO_RATE_PER_S by `rate_budget` (default: the budget every instance shares in Table storage)."""
        with serial_imports:
            from shared.settings import SettingsError

        if not (settings.odoo_url and settings.odoo_db and settings.odoo_api_key):
            raise SettingsError([("ODOO_URL", "set, with ODOO_DB and ODOO_API_KEY, to reach Odoo")])
        transport: Transport
        if settings.odoo_protocol == "json2":
            transport = Json2Transport(settings.odoo_db, settings.odoo_api_key)
        else:
            if not settings.odoo_username:
                raise SettingsError([("ODOO_USERNAME", "set with ODOO_URL when ODOO_PROTOCOL is jsonrpc")])
            transport = JsonRpcTransport(settings.odoo_db, settings.odoo_username, settings.odoo_api_key)
        if rate_budget is None:
            with serial_imports:
                from shared.odoo.rate_budget import TableRateBudget
                from shared.tables import RATE_BUDGET_TABLE, table_client

            limits = rate_limits(settings.odoo_rate_per_s)
            rate_budget = TableRateBudget(table_client(settings, RATE_BUDGET_TABLE), limits)
        return cls(settings.odoo_url, transport, rate_budget, budget_key=budget_key(settings.odoo_db), **options)

    @property
    def protocol(self) -> str:
        return self._transport.protocol

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OdooClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # The interface

    def version(self) -> dict[str, Any]:
        """The server's version (`server_version`, `server_version_info`); needs no credentials."""
        result: dict[str, Any] = self._retrying(None, lambda: self._transport.version(self._exchange))
        return result

    def probe(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        """One cheap authenticated call (counting no partner) within `timeout_s`, never retried: returns when Odoo
        takes the credentials, raises the client's error otherwise (health: reachable or not, and why)."""
        call = Call("res.partner", "search_count", {"domain": [("id", "=", 0)]})
        self._probing.timeout = httpx.Timeout(timeout_s)
        try:
            self._retrying(call, lambda: self._transport.execute(self._exchange, call), retry=False)
        finally:
            self._probing.timeout = None

    def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        *,
        limit: int | None = None,
        offset: int = 0,
        order: str | None = None,
    ) -> list[dict[str, Any]]:
        """Records matching `domain` with `fields` (a many2one as `[id, name]` or False, as Odoo answers)."""
        params: dict[str, Any] = {"domain": domain, "fields": fields, "offset": offset}
        if limit is not None:
            params["limit"] = limit
        if order is not None:
            params["order"] = order
        result = self._call(Call(_model(model), "search_read", params))
        if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
            raise OdooError(f"{model}.search_read: unexpected answer", model=model, method="search_read")
        return result

    def search_count(self, model: str, domain: list[Any]) -> int:
        result = self._call(Call(_model(model), "search_count", {"domain": domain}))
        if not isinstance(result, int) or isinstance(result, bool):
            raise OdooError(f"{model}.search_count: unexpected answer", model=model, method="search_count")
        return result

    def create(self, model: str, values: dict[str, Any]) -> int:
        """The new record's id. Never retried once sent: a lost answer is OdooOutcomeUnknown (look it up first)."""
        call = Call(_model(model), "create", {"vals_list": [dict(values)]}, positional=("vals_list",))
        result = self._call(call)
        if isinstance(result, list) and len(result) == 1:
            result = result[0]
        if not isinstance(result, int) or isinstance(result, bool):
            raise OdooOutcomeUnknown(f"{model}.create: unexpected answer", model=model, method="create")
        return result

    def write(self, model: str, ids: list[int], values: dict[str, Any]) -> None:
        if ids:
            self._call(Call(_model(model), "write", {"vals": dict(values)}, ids=_ids(ids), positional=("vals",)))

    def unlink(self, model: str, ids: list[int]) -> None:
        if ids:
            self._call(Call(_model(model), "unlink", {}, ids=_ids(ids)))

    def fields_get(self, model: str, attributes: list[str] | None = None) -> dict[str, Any]:
        """Every field of `model` by name, described by `attributes` (all of them when None)."""
        params = {} if attributes is None else {"attributes": attributes}
        result = self._call(Call(_model(model), "fields_get", params))
        if not isinstance(result, dict):
            raise OdooError(f"{model}.fields_get: unexpected answer", model=model, method="fields_get")
        return result

    # The request loop

    def _call(self, call: Call) -> Any:
        return self._retrying(call, lambda: self._transport.execute(self._exchange, call))

    def _retrying(self, call: Call | None, attempt: Callable[[], Any], *, retry: bool = True) -> Any:
        def recorded() -> Any:
            return self._recorded(call, attempt)

        try:
            return self._retried(recorded) if retry else recorded()
        except OdooError as error:
            log.warning(
                "odoo %s failed: %s (%s)",
                error.where,
                error.code,
                error.odoo_name or (f"HTTP {error.status}" if error.status else type(error).__name__),
                extra={
                    "event": "odoo.call_failed",
                    "operation": error.where,
                    "protocol": self.protocol,
                    "error_code": error.code,
                    "odoo_error": error.odoo_name,
                    "status_code": error.status,
                },
            )
            raise

    def _retried(self, attempt: Callable[[], Any]) -> Any:
        """`attempt` until it succeeds or fails for good, retrying only what cannot apply a change twice."""
        conflicts = failures = rate_waits = 0
        while True:
            try:
                return attempt()
            except OdooConflict as error:
                conflicts += 1
                error.attempts = conflicts
                if conflicts >= self._conflict_attempts:
                    raise
                self._backoff(conflicts)
            except OdooUnavailable:
                # By construction nothing was applied (not sent, a 503, a read, an error Odoo rolled back).
                failures += 1
                if failures >= self._attempts:
                    raise
                self._backoff(failures)
            except OdooRateLimited as error:
                if error.status is None or error.retry_after > self._max_wait_s or rate_waits >= RATE_LIMIT_RETRIES:
                    raise  # our own budget refused a slot: the caller comes back later
                self._budget.rate_limited(self._key, error.retry_after)
                rate_waits += 1  # the server's 429: the next slot comes after Retry-After, for every instance

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        call: Call | None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One paced HTTP exchange; a transport failure is OdooUnavailable, or OdooOutcomeUnknown for a write that
        may have reached Odoo."""
        where = call.where if call else {"method": path.rsplit("/", 1)[-1]}
        label = f"{call.model}.{call.method}" if call else path
        probing: httpx.Timeout | None = getattr(self._probing, "timeout", None)
        timeout = probing or self._timeout
        self._take_slot(min(self._max_wait_s, probing.read or 0) if probing else self._max_wait_s)
        started = time.perf_counter()
        attributes = {
            "odoo.protocol": self.protocol,
            "odoo.model": where.get("model") or "",
            "odoo.method": where["method"],
        }
        try:
            with telemetry.span(f"Odoo {label}", kind="client", attributes=attributes):
                response = self._http.request(method, path, json=body, headers=headers, timeout=timeout)
        except NOT_SENT as exc:
            raise OdooUnavailable(f"{label}: Odoo unreachable ({type(exc).__name__})", **where) from exc
        except httpx.TransportError as exc:
            text = f"{label}: no answer from Odoo ({type(exc).__name__})"
            if call is not None and call.write:
                raise OdooOutcomeUnknown(text, **where) from exc
            kind = ErrorKind.timeout if isinstance(exc, httpx.TimeoutException) else ErrorKind.connection
            raise OdooUnavailable(text, retry=kind, **where) from exc
        log.debug("odoo %s -> %s in %.0f ms", label, response.status_code, (time.perf_counter() - started) * 1000)
        return response

    def _recorded(self, call: Call | None, attempt: Callable[[], Any]) -> Any:
        """One attempt, recorded for the metrics (`odoo.<model>.<method>`, its outcome and latency) like GHL's."""
        started = time.perf_counter()
        try:
            result = attempt()
        except OdooError as error:
            if not (isinstance(error, OdooRateLimited) and error.status is None):  # our own budget: nothing sent
                self._record(call, started, error)
            raise
        self._record(call, started, None)
        return result

    def _record(self, call: Call | None, started: float, error: OdooError | None) -> None:
        if self._on_call is None:
            return
        record = CallRecord(
            operation=f"odoo.{call.model}.{call.method}" if call else "odoo.version",
            location_id=self._key,
            method="POST",
            path_template=f"{call.model}.{call.method}" if call else "version",
            status_code=error.status if error else 200,
            duration_ms=(time.perf_counter() - started) * 1000,
            success=error is None,
            error_code=error.code if error else None,
            trace_id=None,
        )
        try:
            self._on_call(record)
        except Exception:  # metrics must never break a call to Odoo
            log.exception("recording an Odoo call failed")

    def _take_slot(self, max_wait_s: float) -> None:
        wait_for_slot(
            self._budget, self._key, max_wait_s, clock=self._clock, sleep=self._sleep, refused=OdooRateLimited
        )

    def _backoff(self, failures: int) -> None:
        """Full jitter: spreads the retries of many workers instead of synchronising them."""
        self._sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (failures - 1))))


def _model(model: str) -> str:
    """A model's technical name (it becomes a path segment in JSON-2)."""
    if not _MODEL.match(model):
        raise ValueError(f"not an Odoo model name: {model!r}")
    return model


def _ids(ids: list[int]) -> tuple[int, ...]:
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise ValueError("record ids are positive integers")
    return tuple(ids)
