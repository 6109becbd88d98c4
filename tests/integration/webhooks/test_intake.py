"""POST /api/webhooks/ghl as GHL calls it: signatures, replay window, shapes, and 429 when storage is down.

Every test runs with the database unreachable: the intake must never need it (what it cannot apply at once is
queued; `test_at_intake` has it with a database).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from shared import runtime
from shared.queues import GHL_TO_RV3
from tests.fixtures.app import Response
from tools.azurite import Azurite
from tools.ghl_sandbox.keys import SigningKeys

from .helpers import appointment_body, contact_body, post, post_async, post_signed, queued, raw, signed_headers

PAUSED_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:9/paused"


@pytest.fixture
def intake(azurite: Azurite, signing_keys: SigningKeys, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The app's settings with the test keys trusted, Azurite up, an empty `ghl-to-rv3` and no database."""
    public = signing_keys.public_keys()
    for key, value in {
        "AzureWebJobsStorage": azurite.connection_string,
        "SQL_URL": PAUSED_DATABASE,
        "GHL_WEBHOOK_VERIFY": "true",
        "GHL_WEBHOOK_ED25519_KEY": public.ed25519_pem,
        "GHL_WEBHOOK_RSA_KEY": public.rsa_pem,
    }.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    runtime.queues().ensure_queues((GHL_TO_RV3,))
    runtime.queues().client(GHL_TO_RV3).clear_messages()
    yield
    runtime.reset()


def signed_burst(keys: SigningKeys, count: int) -> list[tuple[bytes, dict[str, str]]]:
    bodies = [raw(appointment_body()) for _ in range(count)]
    return [(data, signed_headers(keys, data)) for data in bodies]


async def post_together(deliveries: list[tuple[bytes, dict[str, str]]]) -> list[Response]:
    """Deliveries arriving at the same moment, as GHL sends a burst (one instance, one event loop)."""
    return list(await asyncio.gather(*(post_async(data, headers) for data, headers in deliveries)))


def minutes_ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize("scheme", ["ed25519", "rsa"])
def test_signed_appointment_webhook_is_queued_and_acknowledged(
    intake: None, signing_keys: SigningKeys, scheme: str
) -> None:
    body = appointment_body("AppointmentUpdate")
    response = post_signed(signing_keys, body, scheme)
    assert response.status == 200
    assert response.body == {"status": "accepted", "event_type": "AppointmentUpdate"}
    [message] = queued()
    assert message["dedupe_key"] == f"webhook:{body['webhookId']}"
    assert message["event"]["appointment"]["id"] == body["appointment"]["id"]
    assert message["event"]["appointment"]["start"] == "2030-03-12T15:00:00Z"  # stored in UTC


def test_the_queued_message_is_base64_as_the_queue_trigger_decodes_it(
    intake: None, azurite: Azurite, signing_keys: SigningKeys
) -> None:
    post_signed(signing_keys, appointment_body())
    plain = QueueClient.from_connection_string(azurite.connection_string, GHL_TO_RV3)  # no decoding: the wire
    [wire] = plain.peek_messages()
    assert json.loads(base64.b64decode(wire.content, validate=True))["event"]["type"] == "AppointmentCreate"


def test_unsigned_webhook_is_refused_and_nothing_is_queued(intake: None) -> None:
    response = post(raw(appointment_body()))
    assert response.status == 401
    assert response.body["error"]["code"] == "invalid_signature"
    assert response.body["error"]["details"] == ["missing_signature"]
    assert queued() == []


@pytest.mark.parametrize("scheme", ["ed25519", "rsa"])
def test_tampered_body_is_refused_and_nothing_is_queued(intake: None, signing_keys: SigningKeys, scheme: str) -> None:
    data = raw(appointment_body())
    headers = signed_headers(signing_keys, data, scheme)
    tampered = data.replace(b"10:00:00-05:00", b"12:00:00-05:00")
    response = post(tampered, headers)
    assert response.status == 401
    assert response.body["error"]["details"] == ["signature_mismatch"]
    assert queued() == []


def test_a_signature_by_another_key_is_refused(intake: None) -> None:
    stranger = SigningKeys.generate()
    response = post_signed(stranger, appointment_body())
    assert response.status == 401
    assert queued() == []


def test_the_current_scheme_decides_when_both_signatures_are_present(intake: None, signing_keys: SigningKeys) -> None:
    data = raw(appointment_body())
    headers = {
        "X-GHL-Signature": SigningKeys.generate().sign_ed25519(data),
        "x-wh-signature": signing_keys.sign_rsa(data),
    }
    assert post(data, headers).status == 401


def test_a_redelivery_an_hour_later_is_still_accepted(intake: None, signing_keys: SigningKeys) -> None:
    # GHL redelivers a 429-ed webhook with its original timestamp for ~70 minutes.
    response = post_signed(signing_keys, appointment_body(timestamp=minutes_ago(70)))
    assert response.status == 200
    assert len(queued()) == 1


@pytest.mark.parametrize("minutes", [80, -10])  # computed when the test runs, not when it is collected
def test_a_webhook_outside_the_replay_window_is_refused(intake: None, signing_keys: SigningKeys, minutes: int) -> None:
    response = post_signed(signing_keys, appointment_body(timestamp=minutes_ago(minutes)))
    assert response.status == 401
    assert response.body["error"]["code"] == "stale_webhook"
    assert queued() == []


def test_a_webhook_without_timestamp_is_accepted(intake: None, signing_keys: SigningKeys) -> None:
    assert post_signed(signing_keys, appointment_body(timestamp=None)).status == 200


def test_the_older_rv3_shape_is_accepted(intake: None, signing_keys: SigningKeys) -> None:
    body = appointment_body("AppointmentDelete", shape="data", webhook_id=None, timestamp=None)
    assert post_signed(signing_keys, body).status == 200
    [message] = queued()
    assert message["event"]["action"] == "delete"
    assert message["dedupe_key"].startswith("payload:")


def test_a_contact_update_is_queued(intake: None, signing_keys: SigningKeys) -> None:
    response = post_signed(signing_keys, contact_body())
    assert response.body == {"status": "accepted", "event_type": "ContactUpdate"}
    assert queued()[0]["event"]["contact"]["id"] == "ct_rosa"


@pytest.mark.parametrize(
    "body",
    [
        {"type": "INSTALL", "appId": "app1", "locationId": "loc_demo", "companyId": "co1"},
        {"type": "ContactTagUpdate", "locationId": "loc_demo", "id": "ct_rosa", "tags": ["vip"]},
        {"type": "ContactCreate", "locationId": "loc_demo", "id": "ct_new", "firstName": "Ana"},
    ],
)
def test_other_event_types_are_acknowledged_and_ignored(
    intake: None, signing_keys: SigningKeys, body: dict[str, Any]
) -> None:
    response = post_signed(signing_keys, body)
    assert response.status == 200
    assert response.body["status"] == "ignored"
    assert queued() == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"locationId": "loc_demo"}', "missing_type"),
        (b'{"type": "AppointmentCreate", "locationId": "loc_demo"}', "missing_appointment"),
        (raw(appointment_body(startTime="mañana")), "invalid_time:startTime"),
        (raw(appointment_body(endTime=None)), "missing_field:endTime"),
        (raw(appointment_body(timestamp="ayer")), "invalid_timestamp"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b"[" * 5000 + b"]" * 5000, "too_deep"),
        (b'{"type": "AppointmentCreate", "n": ' + b"9" * 5000 + b"}", "number_too_long"),
        (b'{"type": "AppointmentCreate", "n": NaN}', "non_finite_number"),
        (b'{"type": "AppointmentCreate", "title": "\\u0000"}', "invalid_text"),
        (raw(appointment_body(timestamp="9999-12-31T23:59:59-23:59")), "invalid_timestamp"),
        (raw(appointment_body(timestamp="0001-01-01T00:00:00+23:59")), "invalid_timestamp"),
        (raw(appointment_body(startTime="9999-12-31T23:59:59-23:59")), "invalid_time:startTime"),
        (raw(appointment_body(endTime=99999999999999)), "invalid_time:endTime"),
    ],
)
def test_a_malformed_body_gets_400_never_500(intake: None, signing_keys: SigningKeys, data: bytes, reason: str) -> None:
    response = post(data, signed_headers(signing_keys, data))
    assert response.status == 400
    assert response.body["error"] == {
        "code": "invalid_webhook",
        "message": "El cuerpo del webhook no es válido.",
        "details": [reason],
    }
    assert queued() == []


def test_an_oversized_body_is_refused(intake: None, signing_keys: SigningKeys) -> None:
    response = post_signed(signing_keys, appointment_body(notes="x" * 40_000))
    assert response.status == 413
    assert queued() == []


@pytest.fixture
def storage_down(intake: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AzureWebJobsStorage",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;",
    )
    runtime.reset()


def test_with_storage_down_the_webhook_gets_429_so_ghl_redelivers_it(
    storage_down: None, signing_keys: SigningKeys
) -> None:
    response = post_signed(signing_keys, appointment_body())
    assert response.status == 429
    assert response.headers["Retry-After"] == "600"
    assert response.body["error"]["code"] == "webhook_deferred"


def test_a_burst_is_acknowledged_only_once_queued_in_fewer_messages_each_webhook_once(
    intake: None, signing_keys: SigningKeys
) -> None:
    deliveries = signed_burst(signing_keys, 40)
    responses = asyncio.run(post_together(deliveries))
    assert [r.status for r in responses] == [200] * 40
    assert runtime.queues().depth(GHL_TO_RV3) <= 20  # grouped: far fewer storage requests than webhooks
    sent = sorted(f"webhook:{json.loads(data)['webhookId']}" for data, _ in deliveries)
    assert sorted(m["dedupe_key"] for m in queued()) == sent


def test_with_storage_down_every_webhook_of_a_burst_gets_429(storage_down: None, signing_keys: SigningKeys) -> None:
    responses = asyncio.run(post_together(signed_burst(signing_keys, 12)))
    assert [r.status for r in responses] == [429] * 12


def test_broken_settings_defer_the_webhook_instead_of_losing_it(
    intake: None, signing_keys: SigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFLICT_POLICY", "whoever_shouts")
    runtime.reset()
    assert post_signed(signing_keys, appointment_body()).status == 429


def test_the_signature_check_can_be_switched_off_locally(intake: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHL_WEBHOOK_VERIFY", "false")
    runtime.reset()
    assert post(raw(appointment_body())).status == 200


def test_the_acknowledgement_carries_no_patient_data(intake: None, signing_keys: SigningKeys) -> None:
    response = post_signed(signing_keys, appointment_body(title="Terapia - Rosa Flores"))
    assert "Rosa" not in json.dumps(response.body)
