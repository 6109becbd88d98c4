"""Patient data as clinics keep it: phones, emails, names, and the identity used for the contact mapping."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sync_core.contacts import Patient, build_contact, normalize_email, normalize_phone, patient_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("987654321", "+51987654321"),
        ("+51 987 654 321", "+51987654321"),
        ("+51987654321", "+51987654321"),
        ("987-654-321", "+51987654321"),
        ("987 654 321", "+51987654321"),
        ("51987654321", "+51987654321"),
        ("0051 987654321", "+51987654321"),
        ("01 4567890", "+5114567890"),
        ("(01) 456-7890", "+5114567890"),
        ("+1 888-888-8888", "+18888888888"),
        ("987654321 / 912345678", "+51987654321"),
        ("no tiene / 987654321", "+51987654321"),
    ],
)
def test_peruvian_phones_in_every_usual_spelling_become_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "12", "1234567", "000", "-", "", None])
def test_phone_garbage_gives_none(raw: str | None) -> None:
    assert normalize_phone(raw) is None


def test_phone_default_region_can_be_changed() -> None:
    assert normalize_phone("3001234567", default_region="CO") == "+573001234567"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ana.perez@gmail.com", "ana.perez@gmail.com"),
        ("  Ana.Perez@GMAIL.COM ", "Ana.Perez@gmail.com"),
        ("josé@clínica.pe", "josé@clínica.pe"),
    ],
)
def test_valid_email_is_kept_with_its_domain_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["sin correo", "ana@", "ana@gmail", "ana perez@gmail.com", "a@b.test", "-", None])
def test_invalid_email_gives_none(raw: str | None) -> None:
    assert normalize_email(raw) is None


def test_contact_carries_clean_phone_email_and_split_rv3_name() -> None:
    patient = Patient(
        name="Ana María",
        last_name_paternal="Pérez",
        last_name_maternal="García",
        phone="987 654 321",
        email="Ana@Gmail.com",
    )
    draft = build_contact(patient, "loc1")
    assert draft.flags == []
    assert draft.ghl_body() == {
        "locationId": "loc1",
        "firstName": "Ana María",
        "lastName": "Pérez García",
        "name": "Ana María Pérez García",
        "phone": "+51987654321",
        "email": "Ana@gmail.com",
        "source": "Reflexo V3",
    }


@pytest.mark.parametrize(
    ("full_name", "first", "last"),
    [
        ("Ana", "Ana", None),
        ("Ana Pérez", "Ana", "Pérez"),
        ("Ana Pérez García", "Ana", "Pérez García"),
        ("Ana  María   Pérez García", "Ana María", "Pérez García"),
    ],
)
def test_a_single_full_name_splits_with_the_two_surnames_last(full_name: str, first: str, last: str | None) -> None:
    draft = build_contact(Patient(name=full_name, phone="987654321"), "loc1")
    assert (draft.first_name, draft.last_name) == (first, last)
    assert draft.ghl_body().get("lastName") == last


def test_invalid_phone_is_left_out_and_flagged() -> None:
    draft = build_contact(Patient(name="Ana Pérez", phone="12345", email="ana@gmail.com"), "loc1")
    assert "phone" not in draft.ghl_body()
    assert draft.flags == ["phone_invalid"]


def test_second_phone_is_used_when_the_first_is_unusable() -> None:
    draft = build_contact(Patient(name="Ana Pérez", phone="12345", phone2="912345678"), "loc1")
    assert draft.ghl_body()["phone"] == "+51912345678"
    assert draft.flags == ["phone_invalid"]


def test_invalid_email_is_left_out_and_flagged() -> None:
    draft = build_contact(Patient(name="Ana Pérez", phone="987654321", email="ana@"), "loc1")
    assert "email" not in draft.ghl_body()
    assert draft.flags == ["email_invalid"]


def test_patient_without_any_channel_is_flagged() -> None:
    draft = build_contact(Patient(name="Ana Pérez"), "loc1")
    assert draft.flags == ["no_contact_channel"]
    assert set(draft.ghl_body()) == {"locationId", "firstName", "lastName", "name", "source"}


def test_patient_whose_only_channels_are_invalid_gets_every_flag() -> None:
    draft = build_contact(Patient(name="Ana Pérez", phone="abc", email="sin correo"), "loc1")
    assert draft.flags == ["phone_invalid", "email_invalid", "no_contact_channel"]


def test_placeholder_values_mean_no_data_rather_than_invalid_data() -> None:
    draft = build_contact(Patient(name="Ana Pérez", phone="-", email="."), "loc1")
    assert draft.flags == ["no_contact_channel"]


def test_dni_is_only_sent_when_the_location_opted_in() -> None:
    patient = Patient(name="Ana Pérez", phone="987654321", document_id="4567-8901")
    assert "customFields" not in build_contact(patient, "loc1").ghl_body()
    body = build_contact(patient, "loc1", document_field_id="cf_dni").ghl_body()
    assert body["customFields"] == [{"id": "cf_dni", "field_value": "45678901"}]


def test_patient_needs_a_name() -> None:
    with pytest.raises(ValidationError):
        Patient(name="   ")


def test_rv3_numeric_ids_and_phones_are_accepted() -> None:
    patient = Patient.model_validate({"name": "Ana", "rv3_patient_id": 42, "phone": 987654321})
    assert patient_key(patient) == "rv3:42"
    assert build_contact(patient, "loc1").phone == "+51987654321"


def test_patient_key_prefers_the_rv3_id() -> None:
    patient = Patient(name="Ana", rv3_patient_id="42", document_id="45678901", phone="987654321")
    assert patient_key(patient) == "rv3:42"


def test_patient_key_falls_back_to_the_dni_ignoring_formatting() -> None:
    assert patient_key(Patient(name="Ana", document_id=" 4567.8901 ", phone="987654321")) == "dni:45678901"


def test_patient_key_falls_back_to_the_phone_whatever_its_spelling() -> None:
    assert patient_key(Patient(name="Ana", phone="987 654 321")) == patient_key(
        Patient(name="Ana", phone="+51987654321")
    )
    assert patient_key(Patient(name="Ana", phone="987-654-321")) == "phone:+51987654321"


def test_patient_key_falls_back_to_the_email_ignoring_case() -> None:
    assert patient_key(Patient(name="Ana", email="Ana@Gmail.com")) == "email:ana@gmail.com"


def test_patient_without_phone_or_email_is_found_again_by_name() -> None:
    typed_once = Patient(name="José", last_name_paternal="Pérez", last_name_maternal="García")
    typed_again = Patient(name="  JOSE  perez garcia ")
    assert patient_key(typed_once) == patient_key(typed_again) == "name:jose perez garcia"


def test_patient_key_ignores_an_invalid_phone_and_uses_the_next_identifier() -> None:
    assert patient_key(Patient(name="Ana", phone="123", email="ana@gmail.com")) == "email:ana@gmail.com"
