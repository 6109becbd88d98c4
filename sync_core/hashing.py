"""Canonical JSON, content hashes (dedupe keys, the sync hash) and the constant-time comparison of secrets."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date, datetime, time
from enum import Enum

from pydantic import BaseModel, ConfigDict, field_validator

from sync_core.ghl_appointments import GhlAppointment
from sync_core.models import Appointment, UtcDatetime
from sync_core.text import collapse_spaces
from sync_core.times import as_utc

_SYNC_HASH_VERSION = 1


def canonical_json(obj: object) -> bytes:
    """UTF-8 JSON with sorted keys and no insignificant whitespace, so equal content gives equal bytes."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_jsonable
    ).encode("utf-8")


def payload_hash(obj: object) -> str:
    """sha256 hex of the canonical JSON of `obj` (key order and whitespace do not matter)."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def same_secret(presented: str | bytes, expected: str | bytes) -> bool:
    """Constant-time equality of a secret someone presented and ours, that cannot raise: text is compared as
    UTF-8 (`hmac.compare_digest` raises TypeError on non-ASCII str, which made a forged OAuth `state` a 500)."""
    return hmac.compare_digest(_utf8(presented), _utf8(expected))


def _utf8(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def _jsonable(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class SyncedFields(BaseModel):
    """The appointment fields both sides hold, normalised so each side's view of one state hashes alike.

    Times are whole-second UTC instants (GHL drops sub-seconds), status is in RV3's vocabulary
    (or "unknown:<raw>"), the title is space-collapsed and empty ids are absent.
    """

    model_config = ConfigDict(frozen=True)

    calendar_id: str | None
    contact_id: str | None
    start: UtcDatetime
    end: UtcDatetime
    status: str
    title: str
    assigned_user_id: str | None

    @field_validator("start", "end")
    @classmethod
    def _whole_seconds(cls, value: datetime) -> datetime:
        return value.replace(microsecond=0)

    @field_validator("title")
    @classmethod
    def _tidy_title(cls, value: str) -> str:
        return collapse_spaces(value)

    @field_validator("calendar_id", "contact_id", "assigned_user_id")
    @classmethod
    def _empty_is_absent(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None


# The stored title column is this long; a longer GHL title is kept truncated, which is no difference.
TITLE_LENGTH = 255

FieldDiffs = dict[str, dict[str, str | None]]


def compare_fields(rv3: SyncedFields, ghl: SyncedFields) -> FieldDiffs:
    """The shared fields that differ, as `{field: {"rv3": ..., "ghl": ...}}` (JSON values).

    Not differences: an assignee GHL filled in where RV3 has none (GHL assigns a calendar member to a
    booking sent without one), a GHL status RV3 cannot map (kept as a flag, never applied), a title GHL
    left empty or longer than RV3 stores, and a contact one side has not resolved yet.
    """
    mine = rv3.model_dump(mode="json")
    theirs = ghl.model_dump(mode="json")
    theirs["title"] = theirs["title"][:TITLE_LENGTH]
    skip = {
        "assigned_user_id": mine["assigned_user_id"] is None,
        "status": str(theirs["status"]).startswith("unknown:"),
        "title": theirs["title"] == "",
        "contact_id": mine["contact_id"] is None or theirs["contact_id"] is None,
    }
    return {
        name: {"rv3": mine[name], "ghl": theirs[name]}
        for name in SyncedFields.model_fields
        if not skip.get(name, False) and mine[name] != theirs[name]
    }


def holds(mine: SyncedFields, theirs: SyncedFields) -> bool:
    """Whether GHL holding `theirs` holds our state `mine` (no difference by `compare_fields`'s rules)."""
    return not compare_fields(mine, theirs)


def sync_hash(fields: SyncedFields) -> str:
    """The content hash stored as `last_synced_hash`; equal for what we sent and what GHL echoes back."""
    return payload_hash({"v": _SYNC_HASH_VERSION, **fields.model_dump(mode="json")})


def synced_fields_from_appointment(appointment: Appointment) -> SyncedFields:
    return SyncedFields(
        calendar_id=appointment.calendar_id,
        contact_id=appointment.contact_id,
        start=appointment.start,
        end=appointment.end,
        status=appointment.status.value,
        title=appointment.title,
        assigned_user_id=appointment.assigned_user_id,
    )


def synced_fields_from_ghl(event: GhlAppointment) -> SyncedFields:
    """GHL's side of the shared fields; raises ValueError when the event carries no start or end."""
    if event.start is None or event.end is None:
        raise ValueError("GHL appointment without start or end time")
    mapping = event.status
    return SyncedFields(
        calendar_id=event.calendar_id,
        contact_id=event.contact_id,
        start=event.start,
        end=event.end,
        status=mapping.status.value if mapping.status is not None else f"unknown:{mapping.raw}",
        title=event.title or "",
        assigned_user_id=event.assigned_user_id,
    )
