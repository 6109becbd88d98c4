"""Per (app, location) burst and daily limits with GHL's X-RateLimit-* headers, 429 and Retry-After."""

from __future__ import annotations

import httpx

from tools.ghl_sandbox import DEMO_LOCATION_ID, SandboxServer
from tools.ghl_sandbox.config import LocationSeed, PrivateTokenSeed, SeedSpec

from .helpers import CALENDARS

HEADERS = (
    "X-RateLimit-Limit-Daily",
    "X-RateLimit-Daily-Remaining",
    "X-RateLimit-Interval-Milliseconds",
    "X-RateLimit-Max",
    "X-RateLimit-Remaining",
)


def _list(client: httpx.Client, location_id: str = DEMO_LOCATION_ID) -> httpx.Response:
    return client.get("/calendars/", params={"locationId": location_id}, headers=CALENDARS)


def test_ghl_default_burst_allows_100_requests_per_10_seconds(ghl: httpx.Client) -> None:
    answers = [_list(ghl) for _ in range(101)]

    assert [r.status_code for r in answers[:100]] == [200] * 100
    assert answers[0].headers["X-RateLimit-Max"] == "100"
    assert answers[0].headers["X-RateLimit-Interval-Milliseconds"] == "10000"
    assert answers[0].headers["X-RateLimit-Limit-Daily"] == "200000"
    assert answers[99].headers["X-RateLimit-Remaining"] == "0"
    assert answers[100].status_code == 429


def test_every_response_announces_the_remaining_budget(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    sandbox.admin.configure("rate_limit", {"interval_ms": 1000, "max_requests": 5, "daily_limit": 50})

    answers = [_list(ghl) for _ in range(3)]

    assert all(all(name in r.headers for name in HEADERS) for r in answers)
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["4", "3", "2"]
    assert [r.headers["X-RateLimit-Daily-Remaining"] for r in answers] == ["49", "48", "47"]


def test_exceeding_the_burst_answers_429_with_retry_after_until_the_window_slides(
    sandbox: SandboxServer, ghl: httpx.Client
) -> None:
    sandbox.admin.configure("rate_limit", {"interval_ms": 1000, "max_requests": 5})
    for _ in range(5):
        assert _list(ghl).status_code == 200

    limited = _list(ghl)
    sandbox.admin.advance_clock(1.0)
    after_window = _list(ghl)

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.json()["statusCode"] == 429
    assert after_window.status_code == 200
    counts = sandbox.admin.counts()
    assert (counts["rate_limited"], counts["rate_limited_by_location"]) == (1, {DEMO_LOCATION_ID: 1})


def test_refused_requests_do_not_use_up_the_budget(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    sandbox.admin.configure("rate_limit", {"interval_ms": 1000, "max_requests": 2})
    _list(ghl)
    sandbox.admin.advance_clock(0.5)
    _list(ghl)
    for _ in range(5):
        assert _list(ghl).status_code == 429

    sandbox.admin.advance_clock(0.5)  # the first request leaves the window, the refused ones never entered

    assert _list(ghl).status_code == 200
    assert _list(ghl).status_code == 429


def test_each_location_has_its_own_budget(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    sandbox.admin.seed(
        SeedSpec(locations=[LocationSeed(id="loc_b", name="Sede B", private_tokens=[PrivateTokenSeed(token="pit-b")])])
    )
    sandbox.admin.configure("rate_limit", {"interval_ms": 1000, "max_requests": 2})
    for _ in range(2):
        _list(ghl)

    with httpx.Client(base_url=sandbox.url, headers={"Authorization": "Bearer pit-b"}) as other:
        other_answer = _list(other, "loc_b")

    assert _list(ghl).status_code == 429
    assert other_answer.status_code == 200


def test_daily_limit_refuses_until_the_next_day(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    sandbox.admin.configure("rate_limit", {"max_requests": 100, "daily_limit": 3, "day_seconds": 3600})
    answers = [_list(ghl).status_code for _ in range(4)]
    refused = _list(ghl)

    sandbox.admin.advance_clock(3600)

    assert answers == [200, 200, 200, 429]
    assert refused.headers["X-RateLimit-Daily-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert _list(ghl).status_code == 200
