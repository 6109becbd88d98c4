"""The client when GHL rate-limits, fails, hangs or drops the connection: retried only where that is safe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.ghl.client import BACKOFF_BASE_S, GhlClient
from shared.ghl.errors import OutcomeUnknown, RateLimited, Unavailable
from shared.ghl.rate_budget import MemoryRateBudget
from sync_core.rate_budget import BudgetLimits, RateLimitHeaders
from tools.ghl_sandbox import DEMO_LOCATION_ID, SandboxServer

from .conftest import SANDBOX_HANG_S, Calls, eventually

LOC = DEMO_LOCATION_ID
CREATE = "POST /calendars/events/appointments"
SHORT_READ = httpx.Timeout(connect=2.0, read=0.3, write=2.0, pool=2.0)


class FailFirst(httpx.BaseTransport):
    """Answers the first `count` requests with `status` itself, then passes requests on to the real server."""

    def __init__(self, count: int, status: int = 503) -> None:
        self.count = count
        self.status = status
        self.real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.count > 0:
            self.count -= 1
            return httpx.Response(self.status, json={"statusCode": self.status, "message": "Service Unavailable"})
        return self.real.handle_request(request)

    def close(self) -> None:
        self.real.close()


def counts(sandbox: SandboxServer) -> dict[str, Any]:
    return sandbox.admin.counts()


def appointment_body(client: GhlClient) -> dict[str, str]:
    contact, _ = client.upsert_contact(LOC, {"firstName": "Rosa", "phone": "+51987000111"})
    return {
        "calendarId": "cal_demo_terapia",
        "contactId": contact.id,
        "startTime": "2030-03-18T10:00:00-05:00",
        "endTime": "2030-03-18T11:00:00-05:00",
    }


def fault(sandbox: SandboxServer, endpoint: str, **rule: Any) -> None:
    sandbox.admin.configure("faults", {"hang_seconds": SANDBOX_HANG_S, "endpoints": {endpoint: rule}})


def test_a_429_with_a_short_retry_after_is_waited_out_then_the_read_succeeds(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer, calls: Calls
) -> None:
    sandbox.admin.configure("rate_limit", {"max_requests": 2, "interval_ms": 1000})
    budget = MemoryRateBudget(BudgetLimits(max_requests=100, interval_s=1))  # unaware of the sandbox's lower limit
    client = make_client(budget=budget)
    for _ in range(3):
        client.get_location(LOC)
    assert calls.statuses == [200, 200, 429, 200]
    assert budget.state(LOC).hold_until > 0  # every worker of the location was held for Retry-After


def test_a_retry_after_longer_than_the_allowed_wait_raises_rate_limited_for_the_queue(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer, calls: Calls
) -> None:
    sandbox.admin.configure("rate_limit", {"max_requests": 1, "interval_ms": 5000})
    client = make_client(max_wait_s=1.0)
    client.get_location(LOC)
    with pytest.raises(RateLimited) as caught:
        client.get_location(LOC)
    assert caught.value.retry_after == 5
    assert calls.statuses == [200, 429]


def test_a_spent_budget_raises_rate_limited_without_calling_ghl(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer
) -> None:
    budget = MemoryRateBudget()
    budget.rate_limited(LOC, 30)
    with pytest.raises(RateLimited) as caught:
        make_client(budget=budget).list_calendars(LOC)
    assert 29 < caught.value.retry_after <= 30
    assert counts(sandbox)["by_endpoint"] == {}


def test_a_reset_on_create_is_outcome_unknown_and_never_retried(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer, calls: Calls
) -> None:
    client = make_client()
    body = appointment_body(client)
    fault(sandbox, CREATE, reset=1.0)
    with pytest.raises(OutcomeUnknown):
        client.create_appointment(LOC, body)
    assert counts(sandbox)["by_endpoint"][CREATE] == 1
    assert calls.records[-1].error_code == "outcome_unknown"


@pytest.mark.parametrize("outcome", ["reset", "500", "502", "timeout"])
def test_a_create_applied_then_failed_is_outcome_unknown_and_creates_one_appointment(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer, outcome: str
) -> None:
    client = make_client(timeout=SHORT_READ)
    body = appointment_body(client)
    fault(sandbox, CREATE, applied_then_failed=1.0, applied_then_failed_outcome=outcome)
    with pytest.raises(OutcomeUnknown):
        client.create_appointment(LOC, body)
    assert len(sandbox.admin.state()["appointments"]) == 1
    assert eventually(lambda: counts(sandbox)["by_endpoint"].get(CREATE)) == 1


def test_a_create_that_times_out_is_outcome_unknown(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer
) -> None:
    client = make_client(timeout=SHORT_READ)
    body = appointment_body(client)
    fault(sandbox, CREATE, timeout=1.0)
    with pytest.raises(OutcomeUnknown):
        client.create_appointment(LOC, body)
    # The sandbox counts a hung request once it sees the client give up.
    assert eventually(lambda: counts(sandbox)["by_endpoint"].get(CREATE)) == 1


def test_a_create_that_never_reached_ghl_is_retried_and_reported_unavailable_not_unknown(
    make_client: Callable[..., GhlClient], calls: Calls
) -> None:
    nobody_listens = "http://127.0.0.1:9"
    client = make_client(base_url=nobody_listens)
    with pytest.raises(Unavailable):
        client.create_appointment(LOC, {"calendarId": "c", "contactId": "x", "startTime": "2030-03-18T10:00:00Z"})
    assert [r.error_code for r in calls.records] == ["unavailable"] * 3


def test_a_read_is_retried_after_a_server_error_and_succeeds(
    make_client: Callable[..., GhlClient], calls: Calls
) -> None:
    client = make_client(transport=FailFirst(2))
    assert client.get_location(LOC).id == LOC
    assert calls.statuses == [503, 503, 200]


def test_read_retries_back_off_with_bounded_random_waits(make_client: Callable[..., GhlClient], calls: Calls) -> None:
    waits: list[float] = []
    unpaced = MemoryRateBudget(BudgetLimits(max_requests=100, interval_s=1e-9))  # no wait for a slot
    client = make_client(transport=FailFirst(2), sleep=waits.append, budget=unpaced)
    client.get_location(LOC)
    assert calls.statuses == [503, 503, 200]
    assert len(waits) == 2
    assert 0 <= waits[0] <= BACKOFF_BASE_S
    assert 0 <= waits[1] <= 2 * BACKOFF_BASE_S


class ObserveFails(MemoryRateBudget):
    """A budget whose storage fails after the call went through."""

    def observe(self, location_id: str, headers: RateLimitHeaders) -> None:
        raise Unavailable("rate budget storage unavailable")


def test_an_applied_write_is_reported_even_if_the_budget_cannot_record_ghls_headers(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer
) -> None:
    client = make_client(budget=ObserveFails())
    created = client.create_appointment(LOC, appointment_body(client))
    assert [a["id"] for a in sandbox.admin.state()["appointments"]] == [created.id]


def test_a_write_answered_5xx_is_not_retried(make_client: Callable[..., GhlClient], calls: Calls) -> None:
    client = make_client(transport=FailFirst(1))
    with pytest.raises(OutcomeUnknown):
        client.upsert_contact(LOC, {"firstName": "Rosa", "phone": "+51987000111"})
    assert calls.statuses == [503]


def test_a_read_that_keeps_failing_is_unavailable_after_three_attempts(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer, calls: Calls
) -> None:
    fault(sandbox, "GET /calendars/", server_error=1.0, server_error_statuses=[502])
    with pytest.raises(Unavailable) as caught:
        make_client().list_calendars(LOC)
    assert caught.value.status == 502
    assert calls.statuses == [502, 502, 502]


def test_a_read_that_hangs_is_retried_then_unavailable(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer, calls: Calls
) -> None:
    fault(sandbox, "GET /locations/{locationId}", timeout=1.0)
    with pytest.raises(Unavailable):
        make_client(timeout=SHORT_READ, attempts=2).get_location(LOC)
    assert [r.error_code for r in calls.records] == ["unavailable", "unavailable"]
