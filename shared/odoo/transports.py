"""Odoo's two external APIs behind one shape: a `Call` (a model method with its arguments by name) in, the
method's result out, and Odoo's errors as the client's (shared.odoo.errors).

JSON-RPC (`/jsonrpc`, deprecated since 19, removed in 22): `common.authenticate` once for a uid, then
`object.execute_kw [db, uid, key, model, method, args, kwargs]`; every error is an HTTP 200 envelope whose
`error.data.name` is Odoo's exception. JSON-2 (`/json/2/<model>/<method>`, Odoo 19): `Authorization: bearer`,
`X-Odoo-Database`, the arguments by name; an error is a 4xx/5xx `{name, message, ...}` (some 500).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from shared.odoo.errors import (
    OdooAuthFailed,
    OdooDatabaseMissing,
    OdooError,
    OdooOutcomeUnknown,
    OdooRateLimited,
    OdooUnavailable,
    error_for,
)
from sync_core.rate_budget import parse_retry_after
from sync_core.retry import ErrorKind

WRITE_METHODS = frozenset({"create", "write", "unlink"})
DEFAULT_RETRY_AFTER_S = 10.0


@dataclass(frozen=True)
class Call:
    """A model method call: `params` by name (as JSON-2 sends them); JSON-RPC passes those in `positional` by
    position after the `ids` of a record method (odoo.service.model.call_kw reads create's values that way)."""

    model: str
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    ids: tuple[int, ...] | None = None
    positional: tuple[str, ...] = ()

    @property
    def write(self) -> bool:
        return self.method in WRITE_METHODS

    @property
    def where(self) -> dict[str, Any]:
        return {"model": self.model, "method": self.method, "ids": self.ids or ()}


class Exchange(Protocol):
    """One paced HTTP exchange with Odoo (the client's): the response whatever its status, or OdooUnavailable /
    OdooOutcomeUnknown when no answer came. `call` None: a service call (version, authenticate), a read."""

    def __call__(
        self,
        method: str,
        path: str,
        *,
        call: Call | None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response: ...


class Transport(Protocol):
    protocol: str

    def version(self, exchange: Exchange) -> dict[str, Any]:
        """`server_version` and `server_version_info` (and whatever else the server tells)."""
        ...

    def execute(self, exchange: Exchange, call: Call) -> Any: ...


class JsonRpcTransport:
    """Authenticates once and keeps the uid; an AccessDenied on a kept uid (the key rotated, the session of the
    server lost) authenticates once more before the call is given up."""

    protocol = "jsonrpc"

    def __init__(self, db: str, username: str, api_key: SecretStr) -> None:
        self._db = db
        self._username = username
        self._key = api_key
        self._uid: int | None = None
        self._lock = threading.Lock()

    def version(self, exchange: Exchange) -> dict[str, Any]:
        result = self._rpc(exchange, "common", "version", [], None)
        if not isinstance(result, dict):
            raise OdooError("common.version: unexpected answer", method="version")
        return result

    def execute(self, exchange: Exchange, call: Call) -> Any:
        uid, fresh = self._session(exchange)
        try:
            return self._execute(exchange, call, uid)
        except OdooAuthFailed:
            if fresh:
                raise
            self._forget(uid)
            uid, _ = self._session(exchange)
            return self._execute(exchange, call, uid)

    def _execute(self, exchange: Exchange, call: Call, uid: int) -> Any:
        args: list[Any] = [] if call.ids is None else [list(call.ids)]
        args += [call.params[name] for name in call.positional]
        kwargs = {name: value for name, value in call.params.items() if name not in call.positional}
        key = self._key.get_secret_value()
        return self._rpc(
            exchange, "object", "execute_kw", [self._db, uid, key, call.model, call.method, args, kwargs], call
        )

    def _session(self, exchange: Exchange) -> tuple[int, bool]:
        """The uid, and whether it was just obtained (an AccessDenied with it then is final)."""
        with self._lock:
            if self._uid is not None:
                return self._uid, False
            args = [self._db, self._username, self._key.get_secret_value(), {}]
            uid = self._rpc(exchange, "common", "authenticate", args, None)
            if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
                # common.authenticate answers false, not an error, for a wrong login or key.
                raise OdooAuthFailed("common.authenticate: credentials refused", method="authenticate")
            self._uid = uid
            return uid, True

    def _forget(self, uid: int) -> None:
        with self._lock:
            if self._uid == uid:
                self._uid = None

    def _rpc(self, exchange: Exchange, service: str, method: str, args: list[Any], call: Call | None) -> Any:
        payload = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}}
        response = exchange("POST", "/jsonrpc", call=call, body={**payload, "id": None})
        where = call.where if call else {"method": method}
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict) or not ({"result", "error"} & set(body)):
            raise _failure(response, call, where)
        if "error" in body:
            error = body["error"] if isinstance(body["error"], dict) else {}
            raw = error.get("data")
            data: dict[str, Any] = raw if isinstance(raw, dict) else {}
            name = str(data.get("name") or "")
            if not name and error.get("code") == 404:
                raise OdooDatabaseMissing(f"{service}.{method}: 404 from /jsonrpc", status=404, **where)
            raise error_for(name or "unknown", str(data.get("message") or error.get("message") or ""), **where)
        return body.get("result")


class Json2Transport:
    protocol = "json2"

    def __init__(self, db: str, api_key: SecretStr) -> None:
        self._db = db
        self._key = api_key

    def version(self, exchange: Exchange) -> dict[str, Any]:
        response = exchange("GET", "/web/version", call=None)
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict) or "version" not in body:
            raise _failure(response, None, {"method": "version"})
        return {"server_version": body["version"], "server_version_info": body.get("version_info"), **body}

    def execute(self, exchange: Exchange, call: Call) -> Any:
        body = dict(call.params)
        if call.ids is not None:
            body["ids"] = list(call.ids)
        headers = {"Authorization": f"bearer {self._key.get_secret_value()}", "X-Odoo-Database": self._db}
        path = f"/json/2/{quote(call.model, safe='')}/{quote(call.method, safe='')}"
        response = exchange("POST", path, call=call, body=body, headers=headers)
        answer = _json(response)
        if response.status_code == 200:
            if answer is _NOT_JSON:
                raise _unexpected(call, "not JSON", response.status_code)
            return answer
        if isinstance(answer, dict) and isinstance(answer.get("name"), str):
            raise error_for(answer["name"], str(answer.get("message") or ""), status=response.status_code, **call.where)
        raise _failure(response, call, call.where)


_NOT_JSON = object()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return _NOT_JSON


def _unexpected(call: Call | None, detail: str, status: int) -> OdooError:
    """A 2xx answer we cannot read: a write was applied all the same, so its outcome is unknown to us."""
    where = call.where if call else {}
    message = (
        f"{'.'.join(str(v) for v in (where.get('model'), where.get('method')) if v)}: unexpected answer ({detail})"
    )
    if call is not None and call.write:
        return OdooOutcomeUnknown(message, status=status, **where)
    return OdooError(message, status=status, **where)


def _failure(response: httpx.Response, call: Call | None, where: Mapping[str, Any]) -> OdooError:
    """An answer without Odoo's error in it (a proxy's page, a crashed worker): by what it can mean for the call."""
    status = response.status_code
    text = f"{_label(where)}: HTTP {status}"
    if 200 <= status < 300:
        return _unexpected(call, "no result", status)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"), 0.0)
        wait = DEFAULT_RETRY_AFTER_S if retry_after is None else retry_after
        return OdooRateLimited(wait, text, status=status, **where)
    error: OdooError
    if status in (401, 403):
        error = OdooAuthFailed(text, status=status, **where)
    elif status == 404:
        error = OdooDatabaseMissing(text, status=status, **where)
    elif status >= 500 and status != 503 and call is not None and call.write:
        error = OdooOutcomeUnknown(text, status=status, **where)
    elif status >= 500:  # a read, or a 503: the server (or its proxy) took no request, so nothing was applied
        error = OdooUnavailable(text, retry=ErrorKind.server_error, status=status, **where)
    else:
        error = OdooError(text, status=status, **where)
    return error


def _label(where: Mapping[str, Any]) -> str:
    return ".".join(str(v) for v in (where.get("model"), where.get("method")) if v) or "Odoo"
