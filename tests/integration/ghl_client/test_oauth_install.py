"""The marketplace install end to end: authorize URL → sandbox consent page → callback, functions in-process."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import httpx
import pytest
import sqlalchemy as sa
from azure.data.tables import TableServiceClient
from pydantic import SecretStr

from blueprints.oauth import ghl_oauth_authorize, ghl_oauth_callback
from shared import runtime
from shared.ghl.oauth import SCOPES, InvalidState, StateSigner
from shared.ghl.tables import RATE_BUDGET_TABLE, TOKENS_TABLE
from shared.ghl.token_store import TokenStore
from shared.store.schema import locations
from tools.ghl_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_LOCATION_ID, SandboxServer

from .conftest import REDIRECT, Azurite

pytestmark = pytest.mark.azurite

APP = "http://app.test"
Handler = Callable[[func.HttpRequest], func.HttpResponse]
ROUTES: dict[str, Handler] = {"ghl/oauth/authorize": ghl_oauth_authorize, "ghl/oauth/callback": ghl_oauth_callback}


class FunctionsApp(httpx.BaseTransport):
    """Serves the app's HTTP functions to httpx in-process, turning requests into `func.HttpRequest`s."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        handler = ROUTES[request.url.path.removeprefix("/api/")]
        answer = handler(
            func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=dict(request.url.params),
                body=request.read(),
            )
        )
        headers = dict(answer.headers)
        if answer.mimetype:
            headers["content-type"] = f"{answer.mimetype}; charset={answer.charset}"
        return httpx.Response(answer.status_code, headers=headers, content=answer.get_body())


@pytest.fixture
def app_settings(
    clean_settings: pytest.MonkeyPatch, sandbox: SandboxServer, azurite: Azurite, tmp_path: Path
) -> Iterator[None]:
    storage = TableServiceClient.from_connection_string(azurite.connection_string)
    for table in (TOKENS_TABLE, RATE_BUDGET_TABLE):
        storage.delete_table(table)  # a clean install each time; the app creates them again
    for key, value in {
        "GHL_BASE_URL": sandbox.url,
        "GHL_MARKETPLACE_URL": sandbox.url,
        "GHL_CLIENT_ID": DEMO_CLIENT_ID,
        "GHL_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "GHL_REDIRECT_URI": REDIRECT,
        "AzureWebJobsStorage": azurite.connection_string,
        "SQL_URL": f"sqlite:///{tmp_path / 'sync.db'}",
    }.items():
        clean_settings.setenv(key, value)
    yield


@pytest.fixture
def browser(app_settings: None) -> Iterator[httpx.Client]:
    """A browser reaching the app (in-process) and the sandbox (over HTTP)."""
    with httpx.Client(mounts={APP: FunctionsApp()}, timeout=10) as client:
        yield client


def stored_tokens() -> TokenStore:
    from shared.ghl.tables import table_client
    from shared.settings import get_settings

    return TokenStore(table_client(get_settings(), TOKENS_TABLE))


def location_rows() -> list[sa.Row[tuple[str, str, str, bool]]]:
    with runtime.database().transaction() as conn:
        query = sa.select(locations.c.ghl_location_id, locations.c.name, locations.c.timezone, locations.c.is_active)
        return list(conn.execute(query))


def callback_from_consent(browser: httpx.Client) -> str:
    """The callback URL (code + state) GHL sends the browser back to, without following it."""
    to_ghl = browser.get(f"{APP}/api/ghl/oauth/authorize")
    back = browser.get(to_ghl.headers["location"])
    assert back.status_code == 302
    return back.headers["location"]


def test_the_install_from_the_browser_stores_the_tokens_and_adds_the_location(
    browser: httpx.Client, sandbox: SandboxServer
) -> None:
    page = browser.get(f"{APP}/api/ghl/oauth/authorize", follow_redirects=True)
    assert page.status_code == 200
    assert "Instalación completada" in page.text
    assert [r.status_code for r in page.history] == [302, 302]
    assert str(page.history[1].url).startswith(f"{sandbox.url}/v2/oauth/chooselocation")

    stored = stored_tokens().get(DEMO_LOCATION_ID)
    assert stored is not None
    assert stored.access_token not in page.text and stored.refresh_token not in page.text
    assert location_rows() == [(DEMO_LOCATION_ID, "Reflexo Perú - Sede Principal", "America/Lima", True)]
    with httpx.Client(base_url=sandbox.url) as ghl:  # the stored token is GHL's real one
        headers = {"Authorization": f"Bearer {stored.access_token}", "Version": "2021-07-28"}
        assert ghl.get(f"/locations/{DEMO_LOCATION_ID}", headers=headers).status_code == 200


def test_installing_again_refreshes_the_location_without_adding_another(browser: httpx.Client) -> None:
    browser.get(f"{APP}/api/ghl/oauth/authorize", follow_redirects=True)
    callback = callback_from_consent(browser)
    again = browser.get(callback, headers={"Accept": "application/json"})
    assert again.json() == {
        "status": "installed",
        "location_id": DEMO_LOCATION_ID,
        "name": "Reflexo Perú - Sede Principal",
        "timezone": "America/Lima",
    }
    assert len(location_rows()) == 1


def test_the_authorize_redirect_asks_ghl_for_the_scopes_the_sync_needs(browser: httpx.Client) -> None:
    answer = browser.get(f"{APP}/api/ghl/oauth/authorize")
    assert answer.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    assert (query["response_type"], query["client_id"], query["redirect_uri"]) == ("code", DEMO_CLIENT_ID, REDIRECT)
    assert query["scope"].split(" ") == list(SCOPES)
    StateSigner(SecretStr(DEMO_CLIENT_SECRET)).verify(query["state"], time.time())


def test_a_forged_state_is_refused_and_nothing_is_stored(browser: httpx.Client, sandbox: SandboxServer) -> None:
    callback = callback_from_consent(browser)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    answer = browser.get(f"{APP}/api/ghl/oauth/callback", params={"code": code, "state": "forjado.firma"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_state"
    assert "no es válido" in error["message"]
    assert stored_tokens().get(DEMO_LOCATION_ID) is None
    assert location_rows() == []
    assert "POST /oauth/token" not in sandbox.admin.counts()["by_endpoint"]  # the code was never used


def test_a_state_with_an_edited_expiry_is_refused() -> None:
    signer = StateSigner(SecretStr(DEMO_CLIENT_SECRET))
    body, _, mac = signer.sign(time.time() - 601).partition(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    extended = base64.urlsafe_b64encode(json.dumps({**claims, "exp": claims["exp"] + 3600}).encode()).decode()
    with pytest.raises(InvalidState):
        signer.verify(f"{extended.rstrip('=')}.{mac}", time.time())


def test_without_a_configured_redirect_uri_the_callback_on_this_host_is_used(
    browser: httpx.Client, clean_settings: pytest.MonkeyPatch
) -> None:
    clean_settings.delenv("GHL_REDIRECT_URI")
    runtime.reset()
    answer = browser.get(f"{APP}/api/ghl/oauth/authorize")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["redirect_uri"] == [f"{APP}/api/ghl/oauth/callback"]
    assert browser.get(answer.headers["location"], follow_redirects=True).status_code == 200


def test_an_expired_state_is_refused(browser: httpx.Client) -> None:
    old_state = StateSigner(SecretStr(DEMO_CLIENT_SECRET)).sign(time.time() - 601)
    callback = callback_from_consent(browser)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    answer = browser.get(f"{APP}/api/ghl/oauth/callback", params={"code": code, "state": old_state})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_state")
    assert stored_tokens().get(DEMO_LOCATION_ID) is None


@pytest.mark.parametrize("state", ["é.ñ", "abc.²", "x.\u202e", "☃", ".", "a" * 1000])
def test_a_state_that_is_no_signed_state_is_400_not_500(browser: httpx.Client, state: str) -> None:
    answer = browser.get(f"{APP}/api/ghl/oauth/callback", params={"code": "c", "state": state})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_state")


def test_a_state_signature_with_non_ascii_text_does_not_raise() -> None:
    signer = StateSigner(SecretStr(DEMO_CLIENT_SECRET))
    body = signer.sign(time.time()).partition(".")[0]
    with pytest.raises(InvalidState):
        signer.verify(f"{body}.ñandú", time.time())


def test_a_replayed_callback_is_refused(browser: httpx.Client) -> None:
    callback = callback_from_consent(browser)
    assert browser.get(callback).status_code == 200
    replay = browser.get(callback)
    assert (replay.status_code, replay.json()["error"]["code"]) == (400, "state_already_used")


def test_a_denied_consent_is_explained_in_spanish(browser: httpx.Client) -> None:
    answer = browser.get(f"{APP}/api/ghl/oauth/callback", params={"error": "access_denied"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "La instalación fue cancelada o rechazada en GHL."


def test_authorize_without_the_app_credentials_is_a_configuration_error(
    browser: httpx.Client, clean_settings: pytest.MonkeyPatch
) -> None:
    clean_settings.delenv("GHL_CLIENT_SECRET")
    runtime.reset()
    answer = browser.get(f"{APP}/api/ghl/oauth/authorize")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "configuration_error"
