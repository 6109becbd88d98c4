"""Odoo's two external APIs over the sandbox's database, with Odoo's envelopes.

JSON-RPC (`POST /jsonrpc`, odoo/http.py JsonRPCDispatcher and odoo/service/{common,model}.py): a call
`{"jsonrpc": "2.0", "method": "call", "params": {"service", "method", "args"}, "id"}` answers HTTP 200 with
`{"jsonrpc": "2.0", "id", "result"}`, or with `"error": {"code", "message": "Odoo Server Error", "data":
{name, message, arguments, context, debug}}` whatever went wrong. `common.authenticate` answers `false` (not an
error) for bad credentials; `object.execute_kw` checks the uid and key first and raises AccessDenied.

JSON-2 (`POST /json/2/<model>/<method>`, Odoo 19, addons/rpc/controllers/json2.py): `Authorization: bearer
<api key>`, optional `X-Odoo-Database`, a JSON object of named arguments plus `ids` and `context`; the result
as the body, or an error body `{name, message, arguments, context, debug}` with the status of the exception
(UserError family: its http_status; werkzeug's: its code; anything else, a ValueError included: 500).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers

from .config import SERVER_VERSION, SERVER_VERSION_INFO, FaultKind
from .exceptions import (
    OdooFault,
    access_denied,
    access_error,
    bad_request,
    builtin_error,
    database_missing,
    not_found,
    serialization_failure,
    unauthorized,
    unprocessable,
    user_error,
    validation_error,
)
from .faults import CallSite
from .orm import WRITE_METHODS, Env, Recordset, is_model_method, public_method

if TYPE_CHECKING:
    from .sandbox import Sandbox

log = logging.getLogger("odoo_sandbox")

RPC_VERSION = {
    "server_version": SERVER_VERSION,
    "server_version_info": list(SERVER_VERSION_INFO),
    "server_serie": SERVER_VERSION,
    "protocol_version": 1,
}
# What Odoo serves when no database could be selected for a request (odoo/http.py _serve_nodb).
NOT_FOUND_NODB = (
    "<!DOCTYPE html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>No database is selected and the "
    "requested URL was not found in the server-wide controllers.</p>\n"
)


class NoDatabase(Exception):
    """JSON-2 named a database (X-Odoo-Database) this server does not have: Odoo serves it without one."""


_JSON2_PATH = re.compile(r"^/json/2/(?P<model>[^/]+)/(?P<method>[^/]+)/?$")


@dataclass
class Invocation:
    """One API request as understood; `secret` (password, key) is never recorded or echoed."""

    protocol: str  # jsonrpc | json2 | web
    service: str = ""  # common | object (JSON-RPC), json2, web
    method: str = ""
    model: str = ""
    ids: list[int] | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    db: str | None = None
    uid: Any = None
    login: str | None = None
    secret: str | None = None
    request_id: Any = None
    user: str | None = None  # the login of the user the call ran as, once authenticated

    @property
    def site(self) -> CallSite:
        return CallSite(self.protocol, self.model, self.method, authenticated=self.service != "web" and (
            self.service != "common" or self.method in ("authenticate", "login")
        ))  # fmt: skip

    @property
    def write(self) -> bool:
        return bool(self.model) and self.method in WRITE_METHODS

    def recorded(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "service": self.service,
            "model": self.model,
            "method": self.method,
            "ids": self.ids,
            "args": self.args,
            "kwargs": self.kwargs,
            "user": self.user or self.login,
        }


@dataclass
class Answer:
    status: int
    body: Any
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str = "ok"  # "ok", or the name of the Odoo error answered
    applied: bool = False  # a create, write or unlink that changed the database


def parse(method: str, path: str, headers: Headers, body: bytes) -> tuple[Invocation, Answer | None]:
    """The call a request makes, or the answer Odoo gives before any call (bad JSON, unknown path)."""
    if path in ("/web/version", "/json/version"):
        return Invocation("web", "web", "version"), None
    if path == "/jsonrpc":
        return _parse_jsonrpc(method, body)
    if path == "/json/2" or path.startswith("/json/2/"):
        return _parse_json2(method, path, headers, body)
    return Invocation("web", "web", path), Answer(404, "<h1>Not Found</h1>", "text/html", outcome="not_found")


def _parse_jsonrpc(method: str, body: bytes) -> tuple[Invocation, Answer | None]:
    inv = Invocation("jsonrpc")
    if method != "POST":
        return inv, Answer(405, "Method Not Allowed", "text/plain", outcome="method_not_allowed")
    try:
        payload = json.loads(body)
    except ValueError:
        return inv, Answer(400, "Invalid JSON data", "text/plain", outcome="bad_request")
    if not isinstance(payload, dict):
        return inv, Answer(400, "Invalid JSON-RPC data", "text/plain", outcome="bad_request")
    inv.request_id = payload.get("id")
    params = payload.get("params", {})
    if not isinstance(params, dict):
        return inv, _jsonrpc_error(inv, builtin_error("TypeError", "params must be an object"), 200)
    inv.service, inv.method = str(params.get("service", "")), str(params.get("method", ""))
    args = params.get("args", [])
    if not isinstance(args, list):
        return inv, _jsonrpc_error(inv, builtin_error("TypeError", "args must be a list"), 200)
    if inv.service == "common" and inv.method in ("authenticate", "login"):
        inv.db, inv.login, inv.secret = (args + [None] * 3)[:3]
        inv.args = args[:2]  # db and login: the password stays out of the record
    elif inv.service == "object" and inv.method in ("execute_kw", "execute") and len(args) >= 5:
        inv.db, inv.uid, inv.secret, inv.model, orm_method = args[:5]
        inv.method = str(orm_method)
        if params["method"] == "execute_kw":
            inv.args = args[5] if len(args) > 5 and isinstance(args[5], list) else []
            inv.kwargs = args[6] if len(args) > 6 and isinstance(args[6], dict) else {}
        else:
            inv.args = list(args[5:])
        inv.service = "object"
    else:
        inv.args = args
    return inv, None


def _parse_json2(method: str, path: str, headers: Headers, body: bytes) -> tuple[Invocation, Answer | None]:
    inv = Invocation("json2", "json2")
    matched = _JSON2_PATH.match(path)
    if matched is None:
        return inv, _json2_error(not_found("Did you mean POST /json/2/<model>/<method>?"))
    inv.model, inv.method = matched["model"], matched["method"]
    inv.db = headers.get("x-odoo-database")
    bearer = re.match(r"^bearer\s+(.+)$", headers.get("authorization", ""), re.IGNORECASE)
    inv.secret = bearer.group(1).strip() if bearer else None
    if method != "POST":
        return inv, _json2_error(OdooFault("werkzeug.exceptions.MethodNotAllowed", "", status=405))
    params: Any = {}
    if body:
        try:
            params = json.loads(body)
        except ValueError as exc:
            return inv, _json2_error(bad_request(f"could not parse the body as json: {exc}"))
        if not isinstance(params, dict):
            return inv, _json2_error(bad_request("could not parse the body, expecting a json object"))
    ids = params.pop("ids", None)
    params.pop("context", None)
    inv.ids = ids if isinstance(ids, list) else ([] if ids is None else ids)
    inv.kwargs = params
    return inv, None


def execute(sandbox: Sandbox, inv: Invocation, forced: FaultKind | None) -> Answer:
    """Run the call (rolled back whole when it raises) and answer it in its protocol's envelope."""
    code = sandbox.config.behaviour.jsonrpc_error_code
    try:
        with sandbox.db.transaction() if inv.write else contextlib.nullcontext():
            result = _run(sandbox, inv, forced)
    except NoDatabase:
        return Answer(404, NOT_FOUND_NODB, "text/html", outcome="no_database")
    except OdooFault as fault:
        return _error(inv, fault, code)
    except Exception as exc:  # what Odoo answers for any other exception: a server error, logged
        log.exception("the sandbox failed on %s.%s", inv.model, inv.method)
        return _error(inv, builtin_error(type(exc).__name__, str(exc)), code)
    applied = inv.write
    if inv.protocol == "json2":
        return Answer(200, result, applied=applied)
    if inv.protocol == "web":
        return Answer(200, result)
    envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": inv.request_id}
    if result is not None:
        envelope["result"] = result
    return Answer(200, envelope, applied=applied)


def _error(inv: Invocation, fault: OdooFault, code: int) -> Answer:
    return _json2_error(fault) if inv.protocol == "json2" else _jsonrpc_error(inv, fault, code)


def _jsonrpc_error(inv: Invocation, fault: OdooFault, code: int) -> Answer:
    error: dict[str, Any] = {"code": code, "message": "Odoo Server Error", "data": fault.serialized()}
    if fault.name == "werkzeug.exceptions.NotFound":
        error.update(code=404, message="404: Not Found")
    return Answer(200, {"jsonrpc": "2.0", "id": inv.request_id, "error": error}, outcome=fault.name)


def _json2_error(fault: OdooFault) -> Answer:
    return Answer(fault.status, fault.serialized(), headers=dict(fault.headers), outcome=fault.name)


def _run(sandbox: Sandbox, inv: Invocation, forced: FaultKind | None) -> Any:
    db = sandbox.db
    if inv.protocol == "web":
        return {"version_info": list(SERVER_VERSION_INFO), "version": SERVER_VERSION}
    if inv.protocol == "json2":
        return _run_json2(sandbox, inv, forced)
    if inv.service == "common":
        if inv.method == "version":
            return RPC_VERSION
        if inv.method not in ("authenticate", "login"):
            raise builtin_error("Exception", f"Method not found: {inv.method}")
        _check_db(sandbox, inv.db)
        uid = None if forced == "access_denied" else db.login(str(inv.login or ""), inv.secret)
        inv.user = db.login_of(uid)
        return uid or False
    if inv.service != "object":
        raise builtin_error("KeyError", repr(inv.service))
    if inv.method in ("execute_kw", "execute"):  # fewer than [db, uid, password, model, method]
        raise builtin_error("ValueError", f"not enough values to unpack (expected at least 5, got {len(inv.args)})")
    _check_db(sandbox, inv.db)
    if not inv.secret or forced == "access_denied":
        raise access_denied()
    try:
        uid = int(inv.uid)
    except (TypeError, ValueError):
        raise builtin_error("ValueError", f"invalid literal for int() with base 10: {inv.uid!r}") from None
    if not db.check_credentials(uid, inv.secret):
        raise access_denied()
    inv.user = db.login_of(uid)
    records = _model(Env(db, uid), inv, missing=lambda: user_error(f"Object {inv.model} doesn't exist"))
    method = public_method(records, inv.method)
    _inject(forced, records, inv.method)
    kwargs = dict(inv.kwargs)
    kwargs.pop("context", None)
    args = list(inv.args)
    if not is_model_method(method):
        if not args:
            raise builtin_error("IndexError", "list index out of range")
        records, args = records.browse(args[0]), args[1:]
    try:
        result = method(records, *args, **kwargs)
    except TypeError as exc:
        raise builtin_error("TypeError", str(exc)) from None
    if inv.method == "create":  # odoo.service.model.call_kw: one dict in, one id out
        return result[0] if args and isinstance(args[0], Mapping) else result
    return result


def _run_json2(sandbox: Sandbox, inv: Invocation, forced: FaultKind | None) -> Any:
    db = sandbox.db
    if inv.db is not None and inv.db != db.name:
        raise NoDatabase
    uid = None if forced == "access_denied" else db.user_of_key(inv.secret)
    if uid is None:
        raise unauthorized()
    inv.user = db.login_of(uid)
    records = _model(Env(db, uid), inv, missing=lambda: not_found(f"the model {inv.model!r} does not exist"))
    try:
        method = public_method(records, inv.method)
    except OdooFault as fault:
        if fault.name == "builtins.AttributeError":
            raise not_found(fault.message) from None
        raise
    if is_model_method(method) and inv.ids:
        raise unprocessable(f"cannot call {inv.model}.{inv.method} with ids")
    if not isinstance(inv.ids, list):
        raise builtin_error("TypeError", f"ids must be a list, not {inv.ids!r}")
    records = records.browse(inv.ids)
    try:
        inspect.signature(method).bind(records, **inv.kwargs)
    except TypeError as exc:
        raise unprocessable(str(exc)) from None
    _inject(forced, records, inv.method)
    try:
        return method(records, **inv.kwargs)
    except TypeError as exc:
        raise builtin_error("TypeError", str(exc)) from None


def _check_db(sandbox: Sandbox, db: Any) -> None:
    if db != sandbox.db.name:
        raise database_missing(str(db))


def _model(env: Env, inv: Invocation, *, missing: Any) -> Recordset:
    if inv.model not in env.db.models:
        raise missing()
    return env[inv.model]


def _inject(forced: FaultKind | None, records: Recordset, method: str) -> None:
    """The ORM-level faults, raised once the call is authenticated and its method resolved."""
    model = records.model
    if forced == "access_error":
        raise access_error(
            f"You are not allowed to access '{model.description}' ({model.name}) records.\n\nThis operation is "
            "allowed for the following groups:\n\t- Sales/User: Own Documents Only\n\nContact your administrator "
            "to request access if necessary."
        )
    if forced == "validation_error":
        raise validation_error(f"The operation cannot be completed: {model.name}.{method} rejected (sandbox fault)")
    if forced == "serialization_failure":
        raise serialization_failure()
