"""ManyChat's bodies read as the MiaSalud wing reads them: seed bodies, placeholders, display dates, phones, ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from sync_core.miasalud.events import (
    EXAMPLE_CAMPAIGN,
    EXAMPLE_CONTACT,
    CampaignEvent,
    ContactEvent,
    ManychatCampaignIn,
    ManychatContactIn,
    filled,
    read_manychat_time,
    reading,
)
from sync_core.phones import read_phone

RECEIVED = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
CONTEXT = reading("America/Mexico_City", RECEIVED, "MX")

SEED_CONTACT = EXAMPLE_CONTACT  # the seed's body, verbatim
SEED_CAMPAIGN = EXAMPLE_CAMPAIGN  # the seed's body, verbatim


def contact(body: dict[str, Any]) -> ContactEvent:
    return ContactEvent.model_validate(ManychatContactIn.model_validate(body, context=CONTEXT), context=CONTEXT)


def campaign(body: dict[str, Any]) -> CampaignEvent:
    return CampaignEvent.model_validate(ManychatCampaignIn.model_validate(body, context=CONTEXT), context=CONTEXT)


def errors(model: type[ManychatContactIn] | type[ManychatCampaignIn], body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body, context=CONTEXT)
    return {".".join(map(str, e["loc"])): e["type"] for e in caught.value.errors()}


def test_the_seed_contact_reads_as_a_normalised_lead() -> None:
    event = contact(SEED_CONTACT)
    assert event.fields() == {
        "first_name": "Ana",
        "last_name": "García",
        "phone": "+521234567891",
        "phone_valid": False,  # +52 123…: no such Mexican area code; kept, flagged
        "subscribed_at": datetime(2025, 6, 10, 10, 0, tzinfo=UTC),
        "last_state": "Nuevo Lead",
        "initial_state": "Nuevo",
    }
    assert (event.manychat_id, event.channel, event.occurred_at) == (
        "MC99999",
        "Facebook",
        datetime(2025, 6, 10, 10, 5, tzinfo=UTC),
    )
    assert not event.clock_from_receipt


def test_the_seed_campaign_assignment_reads_with_its_references() -> None:
    event = campaign(SEED_CAMPAIGN)
    assert (event.campaign, event.commercial_advisor, event.medical_advisor) == (85, "700", "101")
    assert event.fields()["medical_assignment_date"] == datetime(2025, 6, 10, 10, 10, tzinfo=UTC)
    assert event.fields()["summary"].startswith("El cliente preguntó")


@pytest.mark.parametrize("unfilled", ["", "   ", "{{nombre_lead}}", "{{ first name }}", " {{a}} {{b}} "])
def test_unfilled_placeholders_are_missing_not_data(unfilled: str) -> None:
    event = contact({**SEED_CONTACT, "nombre_lead": unfilled, "canal_entrada": unfilled, "whatsapp": unfilled})
    assert "first_name" not in event.fields() and "phone" not in event.fields()
    assert event.channel is None
    assert filled(unfilled) is None


def test_a_missing_datetime_actual_takes_the_arrival_time_and_says_so() -> None:
    event = contact({**SEED_CONTACT, "datetime_actual": "{{datetime_actual}}"})
    assert event.occurred_at == RECEIVED and event.clock_from_receipt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20 Oct 2025, 05:41pm", datetime(2025, 10, 20, 23, 41, tzinfo=UTC)),  # Mexico City, UTC-6
        ("1 Jan 2026, 12:05am", datetime(2026, 1, 1, 6, 5, tzinfo=UTC)),
        ("1 Jan 2026, 12:05PM", datetime(2026, 1, 1, 18, 5, tzinfo=UTC)),
        ("2025-06-10T10:05:00Z", datetime(2025, 6, 10, 10, 5, tzinfo=UTC)),
        ("2025-06-10T10:05:00", datetime(2025, 6, 10, 16, 5, tzinfo=UTC)),  # a wall time: the account's zone
        ("2025-06-10T10:05:00-05:00", datetime(2025, 6, 10, 15, 5, tzinfo=UTC)),
    ],
)
def test_manychat_dates_read_in_both_forms(text: str, expected: datetime) -> None:
    assert read_manychat_time(text, "America/Mexico_City") == expected


@pytest.mark.parametrize("text", ["32 Oct 2025, 05:41pm", "20 Okt 2025, 05:41pm", "20 Oct 2025, 13:41pm", "ayer"])
def test_a_date_that_is_neither_form_is_refused_naming_its_field(text: str) -> None:
    assert errors(ManychatContactIn, {**SEED_CONTACT, "datetime_actual": text}) == {
        "datetime_actual": "invalid_manychat_date"
    }


def test_a_date_outside_the_products_years_is_refused() -> None:
    found = errors(ManychatContactIn, {**SEED_CONTACT, "datetime_suscripcion": "9999-12-31T23:59:59Z"})
    assert found == {"datetime_suscripcion": "manychat_date_out_of_range"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"manychat_id": ""}, {"manychat_id": "missing_value"}),
        ({"manychat_id": "{{user_id}}"}, {"manychat_id": "missing_value"}),
        ({"manychat_id": "MC 1; DROP"}, {"manychat_id": "invalid_id"}),
        ({"manychat_id": True}, {"manychat_id": "id_type"}),
        ({"manychat_id": None}, {"manychat_id": "missing_value"}),
        ({"nombre_lead": 3}, {"nombre_lead": "string_type"}),
        ({"nombre_lead": "x" * 201}, {"nombre_lead": "string_too_long"}),
    ],
)
def test_bad_contact_bodies_name_their_fields(body: dict[str, Any], expected: dict[str, str]) -> None:
    assert errors(ManychatContactIn, {**SEED_CONTACT, **body}) == expected


def test_a_body_without_manychat_id_is_refused() -> None:
    body = {k: v for k, v in SEED_CONTACT.items() if k != "manychat_id"}
    assert errors(ManychatContactIn, body) == {"manychat_id": "missing"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "missing_value"), ("{{campaign}}", "missing_value"), ("abc", "invalid_id"), (0, "invalid_id"),
     (-3, "invalid_id"), (2**40, "invalid_id"), ("٣", "invalid_id"), (8.5, "id_type")],
)  # fmt: skip
def test_bad_campaign_numbers_are_refused(value: object, expected: str) -> None:
    assert errors(ManychatCampaignIn, {**SEED_CAMPAIGN, "campaign_id": value}) == {"campaign_id": expected}


def test_a_campaign_number_may_come_as_text_and_advisors_as_numbers() -> None:
    event = campaign({**SEED_CAMPAIGN, "campaign_id": " 85 ", "comercial_id": 700, "medico_id": ""})
    assert (event.campaign, event.commercial_advisor, event.medical_advisor) == (85, "700", None)
    assert "medical_assignment_date" not in event.fields()


def test_whole_numbers_written_with_a_decimal_point_are_ids_too() -> None:
    event = campaign({**SEED_CAMPAIGN, "manychat_id": 99999.0, "campaign_id": 85.0, "comercial_id": 700.0})
    assert (event.manychat_id, event.campaign, event.commercial_advisor) == ("99999", 85, "700")
    assert event.event_key == campaign({**SEED_CAMPAIGN, "manychat_id": 99999, "comercial_id": 700}).event_key


def test_fields_a_flow_adds_are_ignored_and_the_key_tells_bodies_apart() -> None:
    first, repeated = contact(SEED_CONTACT), contact({**SEED_CONTACT, "custom_field_x": "y"})
    other = contact({**SEED_CONTACT, "nombre_lead": "Anita"})
    assert first.event_key == repeated.event_key != other.event_key


def test_an_event_survives_the_queue_unchanged() -> None:
    event = contact(SEED_CONTACT)
    assert ContactEvent.model_validate(event.model_dump(mode="json")) == event


@pytest.mark.parametrize(
    ("raw", "number", "valid"),
    [
        ("+5215512345678", "+525512345678", True),  # WhatsApp's pre-2019 Mexican mobile form
        ("+525512345678", "+525512345678", True),
        ("55 1234 5678", "+525512345678", True),  # no country code: DEFAULT_PHONE_REGION (MX)
        ("+1 415 555 2671", "+14155552671", True),
        ("12", "+5212", False),
        ("tel: 55-12", "+525512", False),
    ],
)
def test_phones_become_e164_and_invalid_ones_are_flagged(raw: str, number: str, valid: bool) -> None:
    assert read_phone(raw, "MX") == (number, valid)


def test_text_without_digits_is_no_phone() -> None:
    assert read_phone("sin teléfono", "MX") is None
