"""ManyChat's two events (seed 004) as this app reads them, and what each one says about a lead."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sync_core.json_input import MAX_INTEGER_DIGITS
from sync_core.phones import Phone, read_phone
from sync_core.text import collapse_spaces
from sync_core.times import OutOfRange, as_utc, localize, parse_iso_datetime

# ManyChat fills a flow's request body from placeholders: a field the contact never set arrives as `""`, or as
# the placeholder itself when the flow's author typed it by hand (`"{{nombre_lead}}"`). Both mean "missing", never
# data. Dates come as ISO-8601 or in ManyChat's display form (`"20 Oct 2025, 05:41pm"`, the account's wall time).
# The bodies are read with `model_validate(body, context=reading(...))`; the `*Event` models are what the queue
# carries and the records are built from.

EventKind = Literal["contact", "campaign"]

MAX_ID_CHARS = 64
MAX_NAME_CHARS = 200
MAX_STATE_CHARS = 100
MAX_SUMMARY_CHARS = 4000
MAX_CAMPAIGN_ID = 2**31 - 1

# Refusals by a rule the OpenAPI document cannot express (422: the body matches it); their messages are Spanish.
RULE_CODES = frozenset({"missing_value", "invalid_manychat_date", "manychat_date_out_of_range", "invalid_id"})
# And every code of ours, with a Spanish message (`id_type`: neither text nor a number, a 400).
SPANISH_CODES = RULE_CODES | {"id_type"}

_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
_DISPLAY_DATE = re.compile(
    r"(?P<day>[0-9]{1,2}) (?P<month>[A-Za-z]{3}) (?P<year>[0-9]{4}),? (?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})"
    r" ?(?P<half>[AaPp][Mm])"
)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: n for n, name in enumerate(_MONTH_NAMES, start=1)}
_ASCII_ID = re.compile(r"[0-9A-Za-z_.:-]{1,64}")


def filled(value: str | None) -> str | None:
    """The text as data: None for what a flow left unfilled (blank, or only `{{placeholders}}`); spaces collapsed."""
    if value is None:
        return None
    text = collapse_spaces(_PLACEHOLDER.sub(" ", value)) if "{{" in value else collapse_spaces(value)
    return text or None


def reading(timezone: str, received_at: datetime, phone_region: str) -> dict[str, Any]:
    """The validation context of a body: the account's zone for display dates, when it arrived, the phones'
    default region."""
    return {"timezone": timezone, "received_at": received_at, "phone_region": phone_region}


def read_manychat_time(text: str, timezone: str) -> datetime:
    """ISO-8601 (a wall time without offset is read in `timezone`) or ManyChat's display form, to UTC; ValueError
    (OutOfRange outside the product's years) otherwise."""
    found = _DISPLAY_DATE.fullmatch(text.strip())
    if found is None:
        moment = parse_iso_datetime(text)
        return as_utc(moment if moment.utcoffset() is not None else localize(moment, timezone))
    month = _MONTHS.get(found["month"].lower())
    hour, minute = int(found["hour"]), int(found["minute"])
    if month is None or not 1 <= hour <= 12:
        raise ValueError("not ManyChat's display date")
    hour = hour % 12 + (12 if found["half"].lower() == "pm" else 0)
    iso = f"{found['year']}-{month:02d}-{int(found['day']):02d}T{hour:02d}:{minute:02d}:00"
    try:
        naive = parse_iso_datetime(iso)
    except OutOfRange:
        raise
    except ValueError:
        raise ValueError("not a calendar date") from None
    return as_utc(localize(naive, timezone))


# --- the bodies as ManyChat sends them ---------------------------------------------------------------------------


def _manychat_id(value: Any) -> str:
    key = _external_id(value, "manychat_id")
    if key is None:
        raise PydanticCustomError("missing_value", "Falta el manychat_id (vacío o sin completar).")
    return key


def _optional_id(value: Any, info: ValidationInfo) -> str | None:
    return _external_id(value, info.field_name or "id")


def _whole(value: Any) -> Any:
    """85.0 as 85: JSON Schema's integer takes it, so the document does too."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _external_id(value: Any, field: str) -> str | None:
    value = _whole(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError("id_type", f"El {field} debe ser un texto o un número.")
    text = filled(str(value))
    if text is not None and not _ASCII_ID.fullmatch(text):
        raise PydanticCustomError("invalid_id", f"El {field} solo admite letras, números y _ . : - (máx. 64).")
    return text


def _campaign_number(value: Any) -> int:
    value = _whole(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError("id_type", "El campaign_id debe ser un número entero positivo.")
    text = filled(str(value))
    if text is None:
        raise PydanticCustomError("missing_value", "Falta el campaign_id (vacío o sin completar).")
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or not 1 <= int(text) <= MAX_CAMPAIGN_ID:
        raise PydanticCustomError("invalid_id", "El campaign_id debe ser un número entero positivo.")
    return int(text)


def _checked_time(value: str | None, info: ValidationInfo) -> str | None:
    """A date ManyChat sent, checked now so that a bad one is refused naming its field."""
    _time(value, info.field_name or "fecha", _context(info))
    return value


# What the document says they accept: text or a number (ManyChat sends either, depending on the flow), a number as
# long as the JSON reader takes (a longer one is refused before the body is read: 400).
_LONGEST = 10**MAX_INTEGER_DIGITS - 1
_TEXT = {"type": "string", "maxLength": MAX_ID_CHARS}
_NUMBER = {"type": "integer", "minimum": -_LONGEST, "maximum": _LONGEST}
_TEXT_OR_NUMBER = WithJsonSchema({"anyOf": [_TEXT, _NUMBER]})
ManychatId = Annotated[str, BeforeValidator(_manychat_id), _TEXT_OR_NUMBER]
ExternalId = Annotated[
    str | None, BeforeValidator(_optional_id), WithJsonSchema({"anyOf": [_TEXT, _NUMBER, {"type": "null"}]})
]
CampaignNumber = Annotated[int, BeforeValidator(_campaign_number), _TEXT_OR_NUMBER]
ManychatTime = Annotated[StrictStr | None, Field(max_length=64), AfterValidator(_checked_time)]


# The seed's bodies (004), verbatim: the document's examples.
EXAMPLE_CONTACT: dict[str, Any] = {
    "manychat_id": "MC99999",
    "nombre_lead": "Ana",
    "apellido_lead": "García",
    "whatsapp": "+521234567891",
    "datetime_suscripcion": "2025-06-10T10:00:00Z",
    "datetime_actual": "2025-06-10T10:05:00Z",
    "ultimo_estado": "Nuevo Lead",
    "canal_entrada": "Facebook",
    "estado_inicial": "Nuevo",
}
EXAMPLE_CAMPAIGN: dict[str, Any] = {
    "manychat_id": "MC99999",
    "campaign_id": 85,
    "comercial_id": "700",
    "medico_id": "101",
    "datetime_actual": "2025-06-10T10:10:00Z",
    "ultimo_estado": "Asignado a campaña",
    "tipo_asignacion": "medico",
    "summary": "El cliente preguntó por el producto X y mostró interés en agendar una cita.",
}


class _Body(BaseModel):
    """What every ManyChat body shares: the contact's id and the event's clock. Fields a flow adds beyond the seed's
    are ignored (a flow may send "full contact data")."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    manychat_id: ManychatId = Field(description="ManyChat's subscriber id")
    datetime_actual: ManychatTime = None
    ultimo_estado: StrictStr | None = Field(None, max_length=MAX_STATE_CHARS)


class ManychatContactIn(_Body):
    """POST /api/v1/manychat/webhook/contact, the seed's body."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_CONTACT]})

    nombre_lead: StrictStr | None = Field(None, max_length=MAX_NAME_CHARS)
    apellido_lead: StrictStr | None = Field(None, max_length=MAX_NAME_CHARS)
    whatsapp: StrictStr | None = Field(None, max_length=40)
    datetime_suscripcion: ManychatTime = None
    canal_entrada: StrictStr | None = Field(None, max_length=MAX_NAME_CHARS)
    estado_inicial: StrictStr | None = Field(None, max_length=MAX_STATE_CHARS)


class ManychatCampaignIn(_Body):
    """POST /api/v1/manychat/webhook/campaign-assignment, the seed's body."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_CAMPAIGN]})

    campaign_id: CampaignNumber = Field(description="ManyChat's campaign number")
    comercial_id: ExternalId = None
    medico_id: ExternalId = None
    tipo_asignacion: StrictStr | None = Field(None, max_length=MAX_STATE_CHARS)
    summary: StrictStr | None = Field(None, max_length=MAX_SUMMARY_CHARS)


# --- what the events say, normalised --------------------------------------------------------------------------


class Stamp(NamedTuple):
    """An event's place in its contact's order: ManyChat's `datetime_actual`, then the body's hash (two bodies with
    the same time are ordered the same way wherever and whenever they are applied)."""

    at: datetime
    key: str


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    manychat_id: str
    event_key: str  # the hash of the body: a repeated delivery has the same
    occurred_at: AwareDatetime  # datetime_actual, else when it arrived
    clock_from_receipt: bool = False  # datetime_actual was missing: the arrival time stands in
    last_state: str | None = None

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.occurred_at, self.event_key)


class ContactEvent(_Event):
    kind: Literal["contact"] = "contact"
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    phone_valid: bool | None = None
    subscribed_at: AwareDatetime | None = None
    channel: str | None = None
    initial_state: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_body(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, ManychatContactIn):
            return data
        context = _context(info)
        phone = _phone(data.whatsapp, context["phone_region"])
        return {
            **_event_fields(data, "contact", context),
            "first_name": filled(data.nombre_lead),
            "last_name": filled(data.apellido_lead),
            "phone": phone.number if phone else None,
            "phone_valid": phone.valid if phone else None,
            "subscribed_at": _time(data.datetime_suscripcion, "datetime_suscripcion", context),
            "channel": filled(data.canal_entrada),
            "initial_state": filled(data.estado_inicial),
        }

    def fields(self) -> dict[str, Any]:
        """The contact's fields this event sets (what it left unfilled is not among them)."""
        values = {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "phone_valid": self.phone_valid,
            "subscribed_at": self.subscribed_at,
            "last_state": self.last_state,
            "initial_state": self.initial_state,
        }
        return {name: value for name, value in values.items() if value is not None}


class CampaignEvent(_Event):
    kind: Literal["campaign"] = "campaign"
    campaign: int
    commercial_advisor: str | None = None  # comercial_id: the advisor's id in MiaSalud's systems
    medical_advisor: str | None = None  # medico_id
    assignment_type: str | None = None
    summary: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_body(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, ManychatCampaignIn):
            return data
        context = _context(info)
        return {
            **_event_fields(data, "campaign", context),
            "campaign": data.campaign_id,
            "commercial_advisor": data.comercial_id,
            "medical_advisor": data.medico_id,
            "assignment_type": filled(data.tipo_asignacion),
            "summary": _summary(data.summary),
        }

    def fields(self) -> dict[str, Any]:
        """The campaign contact's own fields this event sets (the advisors are references, resolved apart)."""
        values: dict[str, Any] = {
            "last_state": self.last_state,
            "assignment_type": self.assignment_type,
            "summary": self.summary,
        }
        if self.medical_advisor is not None and (self.assignment_type or "").casefold() == "medico":
            values["medical_assignment_date"] = self.occurred_at
        return {name: value for name, value in values.items() if value is not None}


def event_key(kind: EventKind, body: BaseModel) -> str:
    """The same body of the same kind always has the same key; any difference gives another."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{kind}\n{canonical}".encode()).hexdigest()[:40]


def _context(info: ValidationInfo) -> dict[str, Any]:
    if not isinstance(info.context, dict) or not {"timezone", "received_at", "phone_region"} <= info.context.keys():
        raise TypeError("read ManyChat bodies with context=reading(...)")
    return info.context


def _event_fields(body: _Body, kind: EventKind, context: dict[str, Any]) -> dict[str, Any]:
    occurred = _time(body.datetime_actual, "datetime_actual", context)
    return {
        "manychat_id": body.manychat_id,
        "event_key": event_key(kind, body),
        "occurred_at": occurred or context["received_at"],
        "clock_from_receipt": occurred is None,
        "last_state": filled(body.ultimo_estado),
    }


def _time(raw: str | None, field: str, context: dict[str, Any]) -> datetime | None:
    text = filled(raw)
    if text is None:
        return None
    try:
        return read_manychat_time(text, context["timezone"])
    except OutOfRange:
        raise PydanticCustomError(
            "manychat_date_out_of_range", f"{field}: la fecha está fuera del rango admitido (2000-2100)."
        ) from None
    except ValueError:
        raise PydanticCustomError(
            "invalid_manychat_date",
            f'{field}: fecha no válida; use ISO-8601 (2025-06-10T10:05:00Z) o la de ManyChat ("20 Oct 2025, 05:41pm").',
        ) from None


def _phone(raw: str | None, region: str) -> Phone | None:
    text = filled(raw)
    return read_phone(text, region) if text is not None else None


def _summary(raw: str | None) -> str | None:
    """Free text, line breaks kept; None when only placeholders or blanks."""
    if raw is None or filled(raw) is None:
        return None
    return raw.replace("\r\n", "\n").strip()
