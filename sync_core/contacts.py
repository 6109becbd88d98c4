"""Patient data as clinics really keep it, turned into GHL contact payloads and a stable identity key."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sync_core.phones import read_phone
from sync_core.text import collapse_spaces, fold

CONTACT_SOURCE = "Reflexo V3"

# Clinics type several numbers into one field ("987654321 / 01 4567890"); the first valid one is used.
_PHONE_SEPARATORS = re.compile(r"[/,;|]|\s+(?:y|o)\s+", re.IGNORECASE)
_DOCUMENT_NOISE = re.compile(r"[\s.\-]")


class Patient(BaseModel):
    """A patient as RV3 or the citas API knows them; only `name` is required."""

    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True, str_strip_whitespace=True)

    name: str = Field(min_length=1)
    last_name_paternal: str | None = None
    last_name_maternal: str | None = None
    phone: str | None = None
    phone2: str | None = None
    email: str | None = None
    document_id: str | None = None
    rv3_patient_id: str | None = None

    @field_validator("name", "last_name_paternal", "last_name_maternal")
    @classmethod
    def _collapse_spaces(cls, value: str | None) -> str | None:
        return collapse_spaces(value) if value is not None else None

    def name_parts(self) -> tuple[str, str | None]:
        """(firstName, lastName) for GHL.

        With RV3's split surnames: first = name, last = paternal + maternal. With one full name, the
        Peruvian convention applies: the last two words are the surnames when there are three or more.
        """
        surnames = " ".join(part for part in (self.last_name_paternal, self.last_name_maternal) if part)
        if surnames:
            return self.name, surnames
        words = self.name.split()
        if len(words) == 1:
            return words[0], None
        split_at = 1 if len(words) == 2 else len(words) - 2
        return " ".join(words[:split_at]), " ".join(words[split_at:])

    def full_name(self) -> str:
        first, last = self.name_parts()
        return f"{first} {last}" if last else first


class ContactDraft(BaseModel):
    """The GHL contact to upsert for a patient, plus flags for the data that had to be left out."""

    model_config = ConfigDict(frozen=True)

    location_id: str
    first_name: str
    last_name: str | None
    name: str
    phone: str | None
    email: str | None
    document_field_id: str | None = None
    document_id: str | None = None
    source: str = CONTACT_SOURCE
    flags: list[str] = Field(default_factory=list)

    def ghl_body(self) -> dict[str, object]:
        """The `POST /contacts/upsert` body (CreateContactDto fields only; absent values omitted).

        No `tags`: on upsert GHL replaces all of a contact's tags with the ones sent.
        """
        body: dict[str, object] = {
            "locationId": self.location_id,
            "firstName": self.first_name,
            "name": self.name,
        }
        if self.last_name:
            body["lastName"] = self.last_name
        if self.phone:
            body["phone"] = self.phone
        if self.email:
            body["email"] = self.email
        if self.document_field_id and self.document_id:
            body["customFields"] = [{"id": self.document_field_id, "field_value": self.document_id}]
        body["source"] = self.source
        return body


def normalize_phone(raw: str | None, default_region: str = "PE") -> str | None:
    """E.164 for the first valid number in `raw` ("987654321" → "+51987654321"); None when there is none."""
    if raw is None or not _has_content(raw):
        return None
    for candidate in _PHONE_SEPARATORS.split(raw):
        phone = read_phone(candidate, default_region)
        if phone is not None and phone.valid:
            return phone.number
    return None


def normalize_email(raw: str | None) -> str | None:
    """A syntactically valid address with its domain lower-cased (no DNS lookup); None otherwise."""
    from email_validator import EmailNotValidError, validate_email

    if raw is None or not _has_content(raw):
        return None
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def normalize_document(raw: str | None) -> str | None:
    """A DNI or other document number without spaces, dots or dashes, upper-cased."""
    if raw is None:
        return None
    cleaned = _DOCUMENT_NOISE.sub("", raw).upper()
    return cleaned or None


def build_contact(patient: Patient, location_id: str, *, document_field_id: str | None = None) -> ContactDraft:
    """The GHL contact for a patient. Invalid phone or email are left out and flagged, never sent.

    The DNI is only sent when the location opted in by naming its custom field (`document_field_id`).
    Clinical and billing data are not part of `Patient`, so they cannot leak here.
    """
    flags: list[str] = []
    phone = normalize_phone(patient.phone) or normalize_phone(patient.phone2)
    if _has_content(patient.phone) and normalize_phone(patient.phone) is None:
        flags.append("phone_invalid")
    email = normalize_email(patient.email)
    if _has_content(patient.email) and email is None:
        flags.append("email_invalid")
    if phone is None and email is None:
        flags.append("no_contact_channel")
    first, last = patient.name_parts()
    return ContactDraft(
        location_id=location_id,
        first_name=first,
        last_name=last,
        name=patient.full_name(),
        phone=phone,
        email=email,
        document_field_id=document_field_id,
        document_id=normalize_document(patient.document_id) if document_field_id else None,
        flags=flags,
    )


def patient_key(patient: Patient) -> str:
    """The stable identity of a patient for the patient ⇄ GHL contact mapping.

    Strongest identifier first: RV3 id, document, phone, email, then the normalised full name, so a
    patient with neither phone nor email is still found again through the mapping.
    """
    if patient.rv3_patient_id:
        return f"rv3:{patient.rv3_patient_id}"
    document = normalize_document(patient.document_id)
    if document:
        return f"dni:{document}"
    phone = normalize_phone(patient.phone) or normalize_phone(patient.phone2)
    if phone:
        return f"phone:{phone}"
    email = normalize_email(patient.email)
    if email:
        return f"email:{email.lower()}"
    return f"name:{fold(patient.full_name())}"


def _has_content(raw: str | None) -> bool:
    """Placeholders such as "-" or "." mean "no data", not "invalid data"."""
    return raw is not None and any(ch.isalnum() for ch in raw)
