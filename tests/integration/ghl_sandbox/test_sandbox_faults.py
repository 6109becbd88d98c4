"""Fault injection: seeded 429/5xx, latency, hung requests, resets, applied-then-failed writes, refusals, outages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tools.ghl_sandbox import DEMO_LOCATION_ID, SandboxServer

from .helpers import CALENDARS

APPOINTMENTS = "/calendars/events/appointments"
BOOK = "POST /calendars/events/appointments"


def _list(client: httpx.Client) -> httpx.Response:
    return client.get("/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=CALENDARS)


def _book(client: httpx.Client, contact_id: str, timeout: float = 5, **extra: Any) -> httpx.Response:
    body = {
        "locationId": DEMO_LOCATION_ID,
        "calendarId": "cal_demo_terapia",
        "contactId": contact_id,
        "startTime": "2026-12-01T10:00:00-05:00",
        **extra,
    }
    return client.post(APPOINTMENTS, json=body, headers=CALENDARS, timeout=timeout)


def _faults(sandbox: SandboxServer, rule: dict[str, Any], endpoint: str | None = None, seed: int = 7) -> None:
    settings: dict[str, Any] = {"seed": seed, "hang_seconds": 3}
    settings.update({"endpoints": {endpoint: rule}} if endpoint else {"all_endpoints": rule})
    sandbox.admin.configure("faults", settings)


def _booked(sandbox: SandboxServer) -> list[dict[str, Any]]:
    appointments: list[dict[str, Any]] = sandbox.admin.state()["appointments"]
    return appointments


def test_a_seed_replays_the_same_429s_and_5xx(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    rule = {"rate_limit": 0.2, "server_error": 0.3}

    _faults(sandbox, rule)
    first = [_list(ghl).status_code for _ in range(30)]
    _faults(sandbox, rule)
    second = [_list(ghl).status_code for _ in range(30)]

    assert first == second
    assert {200, 429} <= set(first)
    assert set(first) & {500, 502, 503}


def test_injected_429_carries_retry_after_and_rate_limit_headers(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    _faults(sandbox, {"rate_limit": 1.0})

    response = _list(ghl)

    assert (response.status_code, response.headers["Retry-After"]) == (429, "10")
    assert response.headers["X-RateLimit-Max"] == "100"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_each_server_error_status_can_be_forced(sandbox: SandboxServer, ghl: httpx.Client, status: int) -> None:
    _faults(sandbox, {"server_error": 1.0, "server_error_statuses": [status]})

    response = _list(ghl)

    assert response.status_code == status
    # GHL's services answer JSON; the gateway in front of them answers 502 with an HTML page.
    assert response.headers["content-type"].startswith("text/html" if status == 502 else "application/json")


def test_a_fault_rule_for_one_endpoint_leaves_the_others_alone(
    sandbox: SandboxServer, ghl: httpx.Client, contact_id: str
) -> None:
    _faults(sandbox, {"server_error": 1.0, "server_error_statuses": [503]}, endpoint=BOOK)

    assert _book(ghl, contact_id).status_code == 503
    assert _list(ghl).status_code == 200


def test_added_latency_makes_a_short_client_timeout_expire(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    _faults(sandbox, {"latency_ms": 400})

    with pytest.raises(httpx.ReadTimeout):
        ghl.get("/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=CALENDARS, timeout=0.1)


def test_timeout_fault_never_answers(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    _faults(sandbox, {"timeout": 1.0})

    with pytest.raises(httpx.ReadTimeout):
        ghl.get("/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=CALENDARS, timeout=0.3)


def test_reset_fault_drops_the_connection_without_an_answer(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    _faults(sandbox, {"reset": 1.0})

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        _list(ghl)
    assert sandbox.admin.counts()["by_outcome"] == {"reset": 1}


@pytest.mark.parametrize("outcome", ["500", "502", "reset", "timeout"])
def test_applied_then_failed_write_stays_in_state(
    sandbox: SandboxServer, ghl: httpx.Client, contact_id: str, outcome: str
) -> None:
    _faults(sandbox, {"applied_then_failed": 1.0, "applied_then_failed_outcome": outcome}, endpoint=BOOK)

    try:
        answer: int | str = _book(ghl, contact_id, timeout=0.5).status_code
    except httpx.TransportError as exc:
        answer = type(exc).__name__

    assert answer != 200
    assert [a["contactId"] for a in _booked(sandbox)] == [contact_id]


def test_applied_then_failed_does_not_hide_a_refused_write(
    sandbox: SandboxServer, ghl: httpx.Client, contact_id: str
) -> None:
    _faults(sandbox, {"applied_then_failed": 1.0}, endpoint=BOOK)

    response = _book(ghl, contact_id, calendarId="nope")

    assert (response.status_code, response.json()["message"]) == (400, "Calendar not found")


def test_a_rejected_booking_is_refused_with_ghl_s_400_and_nothing_is_booked(
    sandbox: SandboxServer, ghl: httpx.Client, contact_id: str
) -> None:
    _faults(sandbox, {"rejected": 1.0}, endpoint=BOOK)

    refused = _book(ghl, contact_id)
    assert refused.status_code == 400
    assert refused.json()["message"] == "The slot you have selected is no longer available."
    assert _booked(sandbox) == []
    assert _list(ghl).status_code == 200  # the rule is for bookings only

    sandbox.admin.configure("faults", {})
    assert _book(ghl, contact_id).status_code == 200


def test_reads_are_never_applied_then_failed(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    _faults(sandbox, {"applied_then_failed": 1.0})

    assert _list(ghl).status_code == 200


def test_outage_answers_503_until_it_is_over(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    sandbox.admin.start_outage(seconds=30)

    during = _list(ghl)
    sandbox.admin.advance_clock(30)
    after = _list(ghl)

    assert (during.status_code, after.status_code) == (503, 200)


def test_outage_can_reset_every_connection(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    sandbox.admin.start_outage(seconds=30, mode="reset")

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        _list(ghl)
    sandbox.admin.end_outage()
    assert _list(ghl).status_code == 200
