"""The sandbox's own control API under /_sandbox/ (not Odoo's): reset, inspect, record of calls, faults, outage,
API keys, and records created as the admin without going through Odoo's APIs."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import FaultRule
from .database import ApiKey
from .exceptions import OdooFault
from .orm import Env
from .sandbox import Outage, OutageMode, sandbox_of

PREFIX = "/_sandbox"


class OutageRequest(BaseModel):
    mode: OutageMode = "503"
    seconds: float = Field(gt=0)


class KeyRequest(BaseModel):
    login: str
    key: str | None = None  # absent when expiring every key of the login


async def _body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def _ok(data: Any = None, status: int = 200) -> JSONResponse:
    return JSONResponse({"ok": True} if data is None else data, status_code=status)


async def reset(request: Request) -> Response:
    return _ok(sandbox_of(request).reset())


async def state(request: Request) -> Response:
    sandbox = sandbox_of(request)
    db = sandbox.db
    custom = [
        {"model": r["model"], "name": r["name"], "ttype": r["ttype"]}
        for r in db.records["ir.model.fields"].values()
        if r["state"] == "manual"
    ]
    users = [
        {"id": u["id"], "name": u["name"], "login": u["login"], "admin": u["id"] in db.admins}
        for u in db.records["res.users"].values()
    ]
    return _ok(
        {
            "db": db.name,
            "users": users,
            "custom_fields": custom,
            "counts": {model: len(records) for model, records in db.records.items()},
            "calls": len(sandbox.calls),
            "outage": sandbox.outage_mode(),
        }
    )


async def list_records(request: Request) -> Response:
    """The model's records as stored (a many2one is its id), ordered by id."""
    records = sandbox_of(request).db.records.get(request.path_params["model"])
    if records is None:
        return JSONResponse({"error": "unknown_model"}, status_code=404)
    return _ok([records[i] for i in sorted(records)])


async def create_records(request: Request) -> Response:
    """Create records as the admin, outside of the record of calls and of the faults (test set-up)."""
    sandbox = sandbox_of(request)
    model = request.path_params["model"]
    if model not in sandbox.db.models:
        return JSONResponse({"error": "unknown_model"}, status_code=404)
    admin_id = min(sandbox.db.admins)
    try:
        with sandbox.db.transaction():
            ids = Env(sandbox.db, admin_id)[model].create(await _body(request))
    except OdooFault as fault:
        return JSONResponse({"error": fault.name, "message": fault.message}, status_code=422)
    return _ok(ids, 201)


async def list_calls(request: Request) -> Response:
    wanted = {key: request.query_params[key] for key in ("model", "method", "protocol") if key in request.query_params}
    calls = sandbox_of(request).calls
    return _ok([c for c in calls if all(c.get(k) == v for k, v in wanted.items())])


async def clear_calls(request: Request) -> Response:
    sandbox_of(request).calls.clear()
    return _ok()


async def get_config(request: Request) -> Response:
    return _ok(sandbox_of(request).config.model_dump(mode="json", exclude={"seed"}))


async def put_config_section(request: Request) -> Response:
    try:
        return _ok(sandbox_of(request).set_section(request.path_params["section"], await _body(request)))
    except KeyError:
        return JSONResponse({"error": "unknown_section"}, status_code=404)


async def add_fault(request: Request) -> Response:
    sandbox = sandbox_of(request)
    sandbox.faults.add(FaultRule.model_validate(await _body(request)))
    return _ok([rule.model_dump(mode="json") for rule in sandbox.config.faults.rules], 201)


async def clear_faults(request: Request) -> Response:
    sandbox = sandbox_of(request)
    sandbox.config.faults.rules = []
    sandbox.faults.configure(sandbox.config.faults)
    return _ok()


async def start_outage(request: Request) -> Response:
    body = OutageRequest.model_validate(await _body(request))
    sandbox_of(request).outage = Outage(body.mode, time.monotonic() + body.seconds)
    return _ok()


async def end_outage(request: Request) -> Response:
    sandbox_of(request).outage = None
    return _ok()


async def add_key(request: Request) -> Response:
    """Give the user one more API key (a rotation: the new key is issued before the old one is revoked)."""
    body = KeyRequest.model_validate(await _body(request))
    db = sandbox_of(request).db
    user_id = next((u["id"] for u in db.records["res.users"].values() if u["login"] == body.login), None)
    if user_id is None or not body.key:
        return JSONResponse({"error": "unknown_login_or_no_key"}, status_code=422)
    db.api_keys[body.key] = ApiKey(user_id)
    return _ok(status=201)


async def expire_keys(request: Request) -> Response:
    """Every API key of the login stops working now, as when its duration (3 months at most) runs out."""
    body = KeyRequest.model_validate(await _body(request))
    db = sandbox_of(request).db
    expired = 0
    for key, api_key in db.api_keys.items():
        if db.login_of(api_key.user_id) == body.login and (body.key in (None, key)) and not api_key.expired:
            api_key.expired = True
            expired += 1
    return _ok({"expired": expired})


async def invalid_request(request: Request, exc: Exception) -> Response:
    details = exc.errors(include_url=False) if isinstance(exc, ValidationError) else str(exc)
    return JSONResponse({"error": "invalid_request", "details": details}, status_code=422)


ROUTES = [
    Route(f"{PREFIX}/reset", reset, methods=["POST"]),
    Route(f"{PREFIX}/state", state, methods=["GET"]),
    Route(f"{PREFIX}/records/{{model}}", list_records, methods=["GET"]),
    Route(f"{PREFIX}/records/{{model}}", create_records, methods=["POST"]),
    Route(f"{PREFIX}/calls", list_calls, methods=["GET"]),
    Route(f"{PREFIX}/calls", clear_calls, methods=["DELETE"]),
    Route(f"{PREFIX}/config", get_config, methods=["GET"]),
    Route(f"{PREFIX}/config/{{section}}", put_config_section, methods=["PUT"]),
    Route(f"{PREFIX}/faults", add_fault, methods=["POST"]),
    Route(f"{PREFIX}/faults", clear_faults, methods=["DELETE"]),
    Route(f"{PREFIX}/outage", start_outage, methods=["POST"]),
    Route(f"{PREFIX}/outage", end_outage, methods=["DELETE"]),
    Route(f"{PREFIX}/keys", add_key, methods=["POST"]),
    Route(f"{PREFIX}/keys/expire", expire_keys, methods=["POST"]),
]
