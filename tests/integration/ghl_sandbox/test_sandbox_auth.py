"""Bearer tokens, Version header, OAuth install flow, token expiry and single-use refresh tokens."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tools.ghl_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_LOCATION_ID, SandboxServer
from tools.ghl_sandbox.config import LocationSeed, PrivateTokenSeed, SeedSpec

from .helpers import CALENDARS, CONTACTS
from .openapi import assert_documented

REDIRECT = "https://app.example/api/ghl/oauth/callback"
SCOPES = "calendars.readonly calendars/events.readonly calendars/events.write contacts.readonly contacts.write"


def _consent(sandbox: SandboxServer, state: str = "xyz", **extra: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": state,
        **extra,
    }
    return httpx.get(f"{sandbox.url}/v2/oauth/chooselocation", params=params)


def _code(sandbox: SandboxServer) -> str:
    return parse_qs(urlsplit(_consent(sandbox).headers["location"]).query)["code"][0]


def _token(sandbox: SandboxServer, **form: str) -> httpx.Response:
    credentials = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
    return httpx.post(f"{sandbox.url}/oauth/token", data={**credentials, **form})


def _install(sandbox: SandboxServer) -> dict[str, Any]:
    response = _token(sandbox, grant_type="authorization_code", code=_code(sandbox), redirect_uri=REDIRECT)
    tokens: dict[str, Any] = assert_documented("oauth", "POST", "/oauth/token", response)
    return tokens


def _calendars(sandbox: SandboxServer, access_token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token}", **CALENDARS}
    return httpx.get(f"{sandbox.url}/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=headers)


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
def test_missing_or_unknown_bearer_is_unauthorized(sandbox: SandboxServer, authorization: str | None) -> None:
    headers = {**CALENDARS, **({"Authorization": authorization} if authorization else {})}
    response = httpx.get(f"{sandbox.url}/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=headers)

    body = assert_documented("calendars", "GET", "/calendars/", response)
    assert response.status_code == 401
    assert (body["message"], body["error"]) == ("Invalid token: access token is invalid", "Unauthorized")


def test_missing_or_wrong_version_header_is_a_bad_request(ghl: httpx.Client) -> None:
    missing = ghl.get("/calendars/", params={"locationId": DEMO_LOCATION_ID})
    wrong = ghl.get("/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=CONTACTS)

    for response in (missing, wrong):
        assert response.status_code == 400
        assert_documented("calendars", "GET", "/calendars/", response)


def test_token_of_another_location_is_forbidden(sandbox: SandboxServer) -> None:
    sandbox.admin.seed(
        SeedSpec(
            locations=[LocationSeed(id="loc_other", name="Otra", private_tokens=[PrivateTokenSeed(token="pit-x")])]
        )
    )
    headers = {"Authorization": "Bearer pit-x", **CONTACTS}

    response = httpx.get(f"{sandbox.url}/locations/{DEMO_LOCATION_ID}", headers=headers)

    assert response.status_code == 403
    assert response.json()["message"] == "The token does not have access to this location."


def test_install_flow_redirects_with_code_and_state_and_gives_a_working_location_token(
    sandbox: SandboxServer,
) -> None:
    consent = _consent(sandbox, state="csrf-123")
    query = parse_qs(urlsplit(consent.headers["location"]).query)

    assert consent.status_code == 302
    assert consent.headers["location"].startswith(REDIRECT + "?")
    assert query["state"] == ["csrf-123"]
    tokens = _install(sandbox)
    assert (tokens["userType"], tokens["locationId"], tokens["token_type"]) == (
        "Location",
        DEMO_LOCATION_ID,
        "Bearer",
    )
    assert tokens["expires_in"] == 86399
    assert tokens["scope"] == SCOPES
    assert _calendars(sandbox, tokens["access_token"]).status_code == 200


def test_authorization_code_works_once(sandbox: SandboxServer) -> None:
    code = _code(sandbox)

    first = _token(sandbox, grant_type="authorization_code", code=code)
    second = _token(sandbox, grant_type="authorization_code", code=code)

    assert first.status_code == 200
    assert second.status_code == 401
    assert_documented("oauth", "POST", "/oauth/token", second)


def test_expired_access_token_is_refused_and_a_refresh_gives_a_new_pair(sandbox: SandboxServer) -> None:
    tokens = _install(sandbox)
    sandbox.admin.advance_clock(86_400)

    expired = _calendars(sandbox, tokens["access_token"])
    refreshed = _token(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"])

    assert expired.status_code == 401
    assert_documented("calendars", "GET", "/calendars/", expired)
    new = assert_documented("oauth", "POST", "/oauth/token", refreshed)
    assert new["refresh_token"] != tokens["refresh_token"]
    assert _calendars(sandbox, new["access_token"]).status_code == 200


def test_token_lifetime_is_configurable(sandbox: SandboxServer) -> None:
    sandbox.admin.configure("auth", {"access_token_ttl_seconds": 2})
    tokens = _install(sandbox)

    fresh = _calendars(sandbox, tokens["access_token"])
    sandbox.admin.advance_clock(2)
    stale = _calendars(sandbox, tokens["access_token"])

    assert (tokens["expires_in"], fresh.status_code, stale.status_code) == (2, 200, 401)


def test_refresh_token_is_single_use(sandbox: SandboxServer) -> None:
    tokens = _install(sandbox)
    first = _token(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"])

    reused = _token(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    rotated = _token(sandbox, grant_type="refresh_token", refresh_token=first.json()["refresh_token"])

    body = assert_documented("oauth", "POST", "/oauth/token", reused)
    assert (reused.status_code, body["message"]) == (401, "Invalid grant: refresh token is invalid")
    assert rotated.status_code == 200


def test_wrong_client_secret_is_unauthorized(sandbox: SandboxServer) -> None:
    response = httpx.post(
        f"{sandbox.url}/oauth/token",
        data={
            "client_id": DEMO_CLIENT_ID,
            "client_secret": "nope",
            "grant_type": "authorization_code",
            "code": "x",
        },
    )

    assert response.status_code == 401
    assert_documented("oauth", "POST", "/oauth/token", response)


def test_token_request_without_required_fields_is_unprocessable(sandbox: SandboxServer) -> None:
    response = httpx.post(f"{sandbox.url}/oauth/token", data={"grant_type": "refresh_token"})

    body = assert_documented("oauth", "POST", "/oauth/token", response)
    assert response.status_code == 422
    assert body["message"] == ["client_id should not be empty", "client_secret should not be empty"]


def test_consent_with_unregistered_client_is_refused(sandbox: SandboxServer) -> None:
    assert _consent(sandbox, client_id="unknown").status_code == 400


def test_scope_not_granted_at_install_is_unauthorized(sandbox: SandboxServer) -> None:
    tokens = _install(sandbox)  # SCOPES has no locations.readonly
    headers = {"Authorization": f"Bearer {tokens['access_token']}", **CONTACTS}

    response = httpx.get(f"{sandbox.url}/locations/{DEMO_LOCATION_ID}", headers=headers)

    assert response.status_code == 401
    assert response.json()["message"] == "The token is not authorized for this scope."


def test_every_api_response_carries_a_trace_id(ghl: httpx.Client) -> None:
    ok = ghl.get("/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=CALENDARS)
    refused = ghl.get("/calendars/", params={"locationId": DEMO_LOCATION_ID})

    assert ok.headers["x-trace-id"] != refused.headers["x-trace-id"]
    assert refused.json()["traceId"] == refused.headers["x-trace-id"]
