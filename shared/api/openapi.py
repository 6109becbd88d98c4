"""The API's OpenAPI 3.1 document, built from the declared operations and the pydantic schemas."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.api import miasalud_schemas, schemas
from shared.api.routing import OPERATIONS, Operation

ROUTE_PREFIX = "/api"
_PARAM = re.compile(r"\{(\*?)([A-Za-z_]\w*)(?::([a-z]+))?(\?)?\}")

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    302: "Redirect",
    400: "The request does not match this document (malformed JSON, a wrong type, format or range)",
    401: "Missing or invalid key (a function key: no body; X-API-KEY: an error body)",
    404: "Not found",
    409: "Conflict with the current state",
    412: "Version mismatch (If-Match)",
    413: "Body too large",
    422: "Matches this document but a rule refused it (details name the field and the rule)",
    429: "Too many requests: retry later (see Retry-After when present)",
    503: "A dependency (database, storage, GHL, RV3, settings) is unavailable; nothing was done",
}


def common_responses(op: Operation) -> dict[int, str | None]:
    """What a route answers besides what its handler declares: the host's key check (401, no body), the request
    reader (400, 413), a missing resource (404), the database or settings being unavailable (503), and an
    instance already holding http.maxOutstandingRequests (429, no body)."""
    common: dict[int, str | None] = {429: None}
    if op.api_key:
        common[401] = "ErrorResponse"
        common[404] = "ErrorResponse"  # integration_disabled
    elif not op.anonymous:
        common[401] = None
    if op.body or op.query or op.headers:
        common[400] = "ErrorResponse"
    if op.body:
        common[413] = "ErrorResponse"
    if "{" in op.route:
        common[404] = "ErrorResponse"
    if op.dependencies:
        common[503] = "ErrorResponse"
    return common


def _model(name: str) -> type[BaseModel]:
    model = getattr(schemas, name, None) or getattr(miasalud_schemas, name)
    assert isinstance(model, type) and issubclass(model, BaseModel), name
    return model


def _path(op: Operation) -> tuple[str, list[dict[str, Any]]]:
    params: list[dict[str, Any]] = []

    def replace(match: re.Match[str]) -> str:
        name, kind = match.group(2), match.group(3)
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer"} if kind == "int" else {"type": "string"},
            }
        )
        return "{" + name + "}"

    return f"{ROUTE_PREFIX}/{_PARAM.sub(replace, op.route)}", params


def _query_params(model_name: str) -> list[dict[str, Any]]:
    schema = _model(model_name).model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def build_document() -> dict[str, Any]:
    names = sorted(
        {op.body for op in OPERATIONS if op.body}
        | {m for op in OPERATIONS for m in op.responses.values() if m}
        | {"ErrorResponse"}
    )
    _, defs = models_json_schema(
        [(_model(n), "validation" if n.endswith("In") else "serialization") for n in names],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(OPERATIONS, key=lambda o: o.route):
        path, params = _path(op)
        if op.query:
            params += _query_params(op.query)
        params += [
            {"name": h.name, "in": "header", "required": False, "schema": dict(h.schema), "description": h.description}
            for h in op.headers
        ]
        responses = {**common_responses(op), **op.responses}
        for method in op.methods:
            operation: dict[str, Any] = {
                "operationId": op.name if len(op.methods) == 1 else f"{op.name}_{method.lower()}",
                "summary": op.summary,
                "tags": [op.tag],
                "responses": {
                    str(status): {
                        "description": STATUS_TEXT.get(status, "Response"),
                        **(
                            {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}}}
                            if model
                            else {}
                        ),
                    }
                    for status, model in sorted(responses.items())
                },
            }
            if params:
                operation["parameters"] = params
            if op.body:
                operation["requestBody"] = {
                    "required": op.body_required,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.body}"}}},
                }
            if op.anonymous:
                operation["security"] = []
            elif op.api_key:
                operation["security"] = [{"apiKey": []}]
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rv3-ghl-sync",
            "version": "1.0.0",
            "description": "Reflexo V3 ⇄ GoHighLevel appointment sync, and MiaSalud's ManyChat leads (tag manychat, "
            "`X-API-KEY`) (Azure Functions). Errors: "
            '`{"error": {"code", "message", "details"}}` with Spanish messages for clinic staff. 400: the request '
            "does not match this document; 422: it does and a rule refused it. JSON bodies nest at most 32 deep, "
            "hold integers of at most 20 digits and no NaN or Infinity, and their text no U+0000 nor lone "
            "surrogates. Unknown query parameters are refused (400); `code` may carry the function key.",
        },
        "servers": [{"url": "/"}],
        "security": [{"functionKeyHeader": []}, {"functionKeyQuery": []}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
            },
        },
    }
