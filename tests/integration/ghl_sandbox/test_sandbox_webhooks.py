"""Signed webhooks: official bodies, Ed25519 + RSA signatures, 429-only redelivery, pause and flush."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from tools.ghl_sandbox import DEMO_LOCATION_ID, PublicKeys, SandboxServer, load_public_keys

from .conftest import Received, WebhookReceiver
from .helpers import CALENDARS, CONTACTS, wait_until

APPOINTMENT_KEYS = {
    "id", "address", "title", "calendarId", "contactId", "groupId", "appointmentStatus", "assignedUserId",
    "users", "notes", "source", "startTime", "endTime", "dateAdded", "dateUpdated",
}  # fmt: skip


def _book(ghl: httpx.Client, contact_id: str) -> str:
    body = {
        "locationId": DEMO_LOCATION_ID,
        "calendarId": "cal_demo_terapia",
        "contactId": contact_id,
        "startTime": "2026-12-01T10:00:00-05:00",
    }
    event_id: str = ghl.post("/calendars/events/appointments", json=body, headers=CALENDARS).json()["id"]
    return event_id


def _bodies(receiver: WebhookReceiver, count: int) -> list[dict[str, Any]]:
    received = wait_until(lambda: receiver.received if len(receiver.received) >= count else None)
    return [json.loads(r.body) for r in received]


def _verifies(keys: PublicKeys, received: Received) -> tuple[bool, bool]:
    """(Ed25519 valid, RSA valid) for the raw body, as the app must check them."""
    results = []
    for pem, header in ((keys.ed25519_pem, "x-ghl-signature"), (keys.rsa_pem, "x-wh-signature")):
        key = serialization.load_pem_public_key(pem.encode())
        signature = base64.b64decode(received.headers[header])
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, received.body)
            else:
                assert isinstance(key, rsa.RSAPublicKey)
                key.verify(signature, received.body, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            results.append(False)
        else:
            results.append(True)
    return results[0], results[1]


def test_appointment_lifecycle_is_delivered_in_the_official_shape(
    receiver: WebhookReceiver, ghl: httpx.Client, contact_id: str
) -> None:
    event_id = _book(ghl, contact_id)
    ghl.put(
        f"/calendars/events/appointments/{event_id}",
        json={"appointmentStatus": "cancelled"},
        headers=CALENDARS,
    )
    ghl.request("DELETE", f"/calendars/events/{event_id}", json={}, headers=CALENDARS)

    bodies = _bodies(receiver, 3)

    assert [b["type"] for b in bodies] == ["AppointmentCreate", "AppointmentUpdate", "AppointmentDelete"]
    for body in bodies:
        assert set(body) == {"type", "locationId", "webhookId", "timestamp", "appointment"}
        assert set(body["appointment"]) == APPOINTMENT_KEYS
        assert (body["locationId"], body["appointment"]["id"]) == (DEMO_LOCATION_ID, event_id)
    assert bodies[1]["appointment"]["appointmentStatus"] == "cancelled"
    assert bodies[0]["appointment"]["startTime"] == "2026-12-01T10:00:00-05:00"
    assert len({b["webhookId"] for b in bodies}) == 3


def test_signatures_verify_with_the_published_public_keys(
    receiver: WebhookReceiver, sandbox: SandboxServer, ghl: httpx.Client, contact_id: str, key_dir: Path
) -> None:
    _book(ghl, contact_id)

    received = wait_until(lambda: receiver.received)[-1]

    assert _verifies(sandbox.admin.public_keys(), received) == (True, True)
    assert _verifies(load_public_keys(key_dir), received) == (True, True)


def test_signing_can_use_one_scheme_or_a_wrong_key(
    receiver: WebhookReceiver, sandbox: SandboxServer, ghl: httpx.Client
) -> None:
    keys = sandbox.admin.public_keys()
    sandbox.admin.configure("webhooks", {"url": receiver.url, "signing": "ed25519"})
    ghl.post("/contacts/", json={"locationId": DEMO_LOCATION_ID, "firstName": "A"}, headers=CONTACTS)
    only_ed25519 = wait_until(lambda: receiver.received)[-1]
    sandbox.admin.configure("webhooks", {"url": receiver.url, "bad_signature": True})
    ghl.post("/contacts/", json={"locationId": DEMO_LOCATION_ID, "firstName": "B"}, headers=CONTACTS)
    forged = wait_until(lambda: receiver.received[1] if len(receiver.received) > 1 else None)

    assert "x-wh-signature" not in only_ed25519.headers
    assert "x-ghl-signature" in only_ed25519.headers
    assert _verifies(keys, forged) == (False, False)


def test_a_429_answer_is_redelivered_until_it_succeeds(
    receiver: WebhookReceiver, sandbox: SandboxServer, ghl: httpx.Client, contact_id: str
) -> None:
    sandbox.admin.configure("webhooks", {"url": receiver.url, "time_scale": 0.0002, "events": ["AppointmentCreate"]})
    receiver.statuses.extend([429, 429])

    _book(ghl, contact_id)

    delivery = wait_until(lambda: sandbox.admin.webhooks(state="delivered"))[0]
    assert [a["status"] for a in delivery["attempts"]] == [429, 429, 200]
    assert len({r.body for r in receiver.received}) == 1  # the same signed body every time


def test_429_redelivery_gives_up_after_six_retries(
    receiver: WebhookReceiver, sandbox: SandboxServer, ghl: httpx.Client, contact_id: str
) -> None:
    sandbox.admin.configure(
        "webhooks",
        {
            "url": receiver.url,
            "time_scale": 0.0001,
            "retry_jitter_seconds": 0,
            "events": ["AppointmentCreate"],
        },
    )
    receiver.statuses.extend([429] * 10)

    _book(ghl, contact_id)

    delivery = wait_until(lambda: sandbox.admin.webhooks(state="failed"))[0]
    assert [a["status"] for a in delivery["attempts"]] == [429] * 7
    assert len(receiver.received) == 7


@pytest.mark.parametrize("status", [500, 404, 503])
def test_any_other_answer_is_final(
    receiver: WebhookReceiver, sandbox: SandboxServer, ghl: httpx.Client, contact_id: str, status: int
) -> None:
    sandbox.admin.configure("webhooks", {"url": receiver.url, "events": ["AppointmentCreate"]})
    receiver.statuses.append(status)

    _book(ghl, contact_id)

    delivery = wait_until(lambda: sandbox.admin.webhooks(state="failed"))[0]
    assert [a["status"] for a in delivery["attempts"]] == [status]


def test_unreachable_target_loses_the_event(sandbox: SandboxServer, ghl: httpx.Client, contact_id: str) -> None:
    sandbox.admin.configure("webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["AppointmentCreate"]})

    _book(ghl, contact_id)

    delivery = wait_until(lambda: sandbox.admin.webhooks(state="failed"))[0]
    assert delivery["attempts"][0]["error"].startswith("ConnectError")


def test_paused_webhooks_wait_for_a_flush(
    receiver: WebhookReceiver, sandbox: SandboxServer, ghl: httpx.Client, contact_id: str
) -> None:
    sandbox.admin.pause_webhooks()
    _book(ghl, contact_id)
    held = len(receiver.received)

    flushed = sandbox.admin.flush_webhooks()

    assert held == 0
    assert [d["type"] for d in flushed] == ["AppointmentCreate"]
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["AppointmentCreate"]


def test_changes_made_inside_ghl_are_announced(
    receiver: WebhookReceiver, sandbox: SandboxServer, contact_id: str
) -> None:
    booked = sandbox.admin.simulate_booking(
        locationId=DEMO_LOCATION_ID,
        calendarId="cal_demo_reflexologia",
        contactId=contact_id,
        startTime="2026-12-06T09:00:00-05:00",
    )
    sandbox.admin.simulate_appointment_edit(booked["id"], startTime="2026-12-06T11:00:00-05:00")
    sandbox.admin.simulate_contact_edit(contact_id, email="rosa@example.com")
    sandbox.admin.simulate_appointment_delete(booked["id"])

    bodies = _bodies(receiver, 4)

    assert [b["type"] for b in bodies] == [
        "AppointmentCreate",
        "AppointmentUpdate",
        "ContactUpdate",
        "AppointmentDelete",
    ]
    assert bodies[0]["appointment"]["source"] == "booking_widget"
    assert bodies[1]["appointment"]["startTime"] == "2026-12-06T11:00:00-05:00"
    assert (bodies[2]["id"], bodies[2]["email"]) == (contact_id, "rosa@example.com")


def test_delivery_never_holds_up_the_api(receiver: WebhookReceiver, ghl: httpx.Client) -> None:
    receiver.delay_seconds = 1.0
    body = {"locationId": DEMO_LOCATION_ID, "firstName": "C"}

    answers = [ghl.post("/contacts/", json=body, headers=CONTACTS, timeout=0.5).status_code for _ in range(2)]

    assert answers == [201, 201]
    assert wait_until(lambda: receiver.received)
