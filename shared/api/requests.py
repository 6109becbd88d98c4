"""Reading HTTP requests safely: JSON bodies into pydantic models, query and route values, with Spanish errors."""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared.api.schemas import SPANISH_ERRORS, UNPROCESSABLE
from shared.http import ApiError
from sync_core.json_input import JsonInputError, read_json

MAX_BODY_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)
# ASCII digits only: str.isdigit() also takes "²" and "٣", which int() then reads or refuses.
_ROUTE_ID = re.compile(r"[0-9]{1,18}")
_VERSION = re.compile(r'(?:W/)?"?([0-9]{1,9})"?')

_SPANISH = {
    "missing": "Campo obligatorio.",
    "extra_forbidden": "Campo no permitido.",
    "string_type": "Debe ser un texto.",
    "string_too_short": "El texto es demasiado corto.",
    "string_too_long": "El texto es demasiado largo.",
    "string_pattern_mismatch": "Formato inválido.",
    "int_parsing": "Debe ser un número entero.",
    "int_type": "Debe ser un número entero.",
    "bool_parsing": "Debe ser verdadero o falso.",
    "bool_type": "Debe ser verdadero o falso.",
    "datetime_from_date_parsing": "Fecha y hora inválidas (use ISO-8601).",
    "datetime_parsing": "Fecha y hora inválidas (use ISO-8601).",
    "datetime_type": "Fecha y hora inválidas (use ISO-8601).",
    "date_from_datetime_parsing": "Fecha inválida (use AAAA-MM-DD).",
    "date_parsing": "Fecha inválida (use AAAA-MM-DD).",
    "literal_error": "Valor no permitido.",
    "enum": "Valor no permitido.",
    "greater_than_equal": "Valor demasiado pequeño.",
    "less_than_equal": "Valor demasiado grande.",
    "model_type": "Debe ser un objeto JSON.",
    "dict_type": "Debe ser un objeto JSON.",
}


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as `{field, code, message}` for staff (Spanish), without echoing the input values."""
    details = []
    for item in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or "body"
        kind = item["type"]
        message = item["msg"] if kind in SPANISH_ERRORS else _SPANISH.get(kind)
        if message is None:
            ctx_error = item.get("ctx", {}).get("error")
            message = str(ctx_error) if ctx_error else "Valor inválido."
        details.append({"field": field, "code": kind, "message": message})
    return details


_JSON_REFUSALS = {
    "too_deep": "El JSON está anidado demasiado profundo.",
    "number_too_long": "El JSON tiene un número demasiado largo.",
    "number_out_of_range": "El JSON tiene un número fuera de rango.",
    "non_finite_number": "El JSON no admite NaN ni Infinity.",
    "invalid_utf8": "El cuerpo de la solicitud no está en UTF-8.",
    "invalid_text": "El JSON tiene texto con caracteres no admitidos (NUL o sustitutos sueltos).",
}


# What JSON counts as whitespace (bytes.strip() would also drop \x0b and \x0c, which JSON does not allow).
_JSON_WHITESPACE = b" \t\n\r"


def has_body(req: func.HttpRequest) -> bool:
    """Whether the request carries anything but JSON whitespace."""
    return bool((req.get_body() or b"").strip(_JSON_WHITESPACE))


def json_body(req: func.HttpRequest) -> Any:
    """The request's JSON, read by the one bounded reader: 413 when too large, 400 when not JSON we accept."""
    raw = req.get_body() or b""
    if not has_body(req):
        raise ApiError(400, "invalid_json", "El cuerpo de la solicitud está vacío; se esperaba JSON.")
    try:
        return read_json(raw, max_bytes=MAX_BODY_BYTES)
    except JsonInputError as exc:
        if exc.reason == "too_large":
            raise ApiError(
                413, "payload_too_large", f"El cuerpo supera el máximo de {MAX_BODY_BYTES // 1024} KB."
            ) from None
        message = _JSON_REFUSALS.get(exc.reason, "El cuerpo de la solicitud no es JSON válido.")
        raise ApiError(400, "invalid_json", message, details=[exc.reason]) from None


def validation_error(exc: ValidationError) -> ApiError:
    """400 when the data does not match the documented schema; 422 when it does and only a rule the schema cannot
    express refused it (a blank title, an unknown time zone)."""
    details = validation_details(exc)
    if all(detail["code"] in UNPROCESSABLE for detail in details):
        return ApiError(422, "unprocessable", "Datos no procesables.", details=details)
    return ApiError(400, "validation_error", "Datos inválidos.", details=details)


def parse_body(req: func.HttpRequest, model: type[M]) -> M:
    data = json_body(req)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "El cuerpo debe ser un objeto JSON.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


# The function key may travel as `?code=` (Azure's convention); only the OAuth callback has a `code` of its own.
FUNCTION_KEY_PARAM = "code"


def parse_query(req: func.HttpRequest, model: type[M]) -> M:
    params = {
        name: value for name, value in req.params.items() if name != FUNCTION_KEY_PARAM or name in model.model_fields
    }
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise ApiError(
            400, "invalid_query", "Parámetros de consulta inválidos.", details=validation_details(exc)
        ) from exc


def route_id(req: func.HttpRequest, name: str = "id") -> int:
    value = req.route_params.get(name, "")
    if not _ROUTE_ID.fullmatch(value):
        raise ApiError(404, "not_found", "El recurso no existe.")
    return int(value)


def correlation_id(req: func.HttpRequest) -> str:
    """The caller's correlation id (x-correlation-id, or the trace id of a W3C traceparent), else a new one."""
    given = (req.headers.get("x-correlation-id") or "").strip()
    if given and len(given) <= 64 and given.isascii() and given.replace("-", "").isalnum():
        return given
    traceparent = (req.headers.get("traceparent") or "").split("-")
    if len(traceparent) == 4 and len(traceparent[1]) == 32:
        return traceparent[1]
    return uuid.uuid4().hex


def if_match_version(req: func.HttpRequest) -> int | None:
    """The version in `If-Match` ("3", W/"3" or 3); None when absent; 400 when it is not a version."""
    raw = (req.headers.get("if-match") or "").strip()
    if not raw or raw == "*":
        return None
    match = _VERSION.fullmatch(raw)
    if match is None:
        raise ApiError(400, "invalid_if_match", 'If-Match debe ser la versión de la cita, p. ej. "3".')
    return int(match[1])


def idempotency_key(req: func.HttpRequest) -> str | None:
    key = (req.headers.get("idempotency-key") or "").strip()
    if not key:
        return None
    if len(key) > 200:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key no puede superar 200 caracteres.")
    return key
