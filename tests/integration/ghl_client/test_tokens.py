"""OAuth tokens in Table storage (Azurite) against the sandbox, whose refresh tokens rotate and are single-use."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.data.tables import TableClient
from pydantic import SecretStr

from shared.ghl.client import GhlClient
from shared.ghl.errors import AuthExpired, Unavailable
from shared.ghl.models import TokenResponse
from shared.ghl.oauth import OAuthApp
from shared.ghl.token_store import StoredTokens, TokenStore
from shared.ghl.tokens import OAuthTokenProvider
from tools.ghl_sandbox import DEMO_LOCATION_ID, SandboxServer

from .conftest import REDIRECT, Azurite, Calls, consent
from .refresh_worker import fingerprint

pytestmark = pytest.mark.azurite

LOC = DEMO_LOCATION_ID
TOKEN_ENDPOINT = "POST /oauth/token"
APP_DIR = Path(__file__).resolve().parents[3]


@pytest.fixture
def table(new_table: Callable[[], TableClient]) -> TableClient:
    return new_table()


@pytest.fixture
def store(table: TableClient) -> TokenStore:
    return TokenStore(table)


@pytest.fixture
def installed(oauth_app: OAuthApp, store: TokenStore) -> StoredTokens:
    return store.save(LOC, oauth_app.exchange_code(consent(oauth_app), REDIRECT))


def token_calls(sandbox: SandboxServer) -> int:
    return int(sandbox.admin.counts()["by_endpoint"].get(TOKEN_ENDPOINT, 0))


def unused_refresh_tokens(sandbox: SandboxServer) -> int:
    return int(sandbox.admin.state()["oauth"]["refresh_tokens_unused"])


def test_an_expired_access_token_is_refreshed_once_and_the_call_succeeds(
    sandbox: SandboxServer,
    *,
    oauth_app: OAuthApp,
    store: TokenStore,
    installed: StoredTokens,
    make_client: Callable[..., GhlClient],
    calls: Calls,
) -> None:
    sandbox.admin.expire_tokens(LOC)
    client = make_client(tokens=OAuthTokenProvider(store, oauth_app))
    assert client.get_location(LOC).id == LOC
    assert calls.statuses == [401, 200]
    stored = store.get(LOC)
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) != (installed.access_token, installed.refresh_token)
    assert unused_refresh_tokens(sandbox) == 1


def test_a_token_close_to_expiry_is_refreshed_before_calling(
    *,
    oauth_app: OAuthApp,
    store: TokenStore,
    installed: StoredTokens,
    make_client: Callable[..., GhlClient],
    calls: Calls,
) -> None:
    two_minutes_before_expiry = installed.expires_at - 120
    tokens = OAuthTokenProvider(store, oauth_app, clock=lambda: two_minutes_before_expiry)
    make_client(tokens=tokens).get_location(LOC)
    assert calls.statuses == [200]  # no 401 on the way
    stored = store.get(LOC)
    assert stored is not None and stored.access_token != installed.access_token


def test_many_workers_refreshing_at_once_end_with_one_valid_pair(
    sandbox: SandboxServer, oauth_app: OAuthApp, table: TableClient, installed: StoredTokens
) -> None:
    # One provider and store per worker: no memory shared, as on separate hosts.
    workers = [OAuthTokenProvider(TokenStore(table), oauth_app) for _ in range(8)]
    start = threading.Barrier(len(workers))
    results: list[str] = []

    def refresh(provider: OAuthTokenProvider) -> None:
        start.wait()
        results.append(provider.refresh(LOC, installed.access_token))

    threads = [threading.Thread(target=refresh, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = TokenStore(table).get(LOC)
    assert stored is not None
    assert set(results) == {stored.access_token}
    assert token_calls(sandbox) == 2  # the install's code exchange, and exactly one refresh
    assert oauth_app.refresh(stored.refresh_token).access_token  # the stored refresh token is the live one


def test_two_processes_refreshing_at_once_end_with_one_valid_pair(
    sandbox: SandboxServer, azurite: Azurite, table: TableClient, installed: StoredTokens
) -> None:
    start_at = str(time.time() + 3)  # both processes are up by then, and refresh together
    command = [sys.executable, "-m", "tests.integration.ghl_client.refresh_worker", sandbox.url,
               azurite.connection_string, table.table_name, installed.access_token, start_at]  # fmt: skip
    hosts = [subprocess.Popen(command, cwd=APP_DIR, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    printed = {host.communicate(timeout=60)[0].strip() for host in hosts}
    stored = TokenStore(table).get(LOC)
    assert stored is not None
    assert printed == {fingerprint(stored.access_token)}
    assert token_calls(sandbox) == 2
    assert unused_refresh_tokens(sandbox) == 1


def test_a_rejected_refresh_token_raises_auth_expired_and_alerts_without_leaking_tokens(
    sandbox: SandboxServer,
    *,
    oauth_app: OAuthApp,
    store: TokenStore,
    installed: StoredTokens,
    make_client: Callable[..., GhlClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    spent = oauth_app.refresh(installed.refresh_token)  # someone used the stored refresh token behind our back
    sandbox.admin.expire_tokens(LOC)
    client = make_client(tokens=OAuthTokenProvider(store, oauth_app))
    with caplog.at_level(logging.INFO), pytest.raises(AuthExpired):
        client.get_location(LOC)
    alerts = [r for r in caplog.records if getattr(r, "event", None) == "alert.token_refresh_failed"]
    assert [(a.levelname, getattr(a, "location_id", None)) for a in alerts] == [("WARNING", LOC)]
    secrets = [installed.access_token, installed.refresh_token, spent.access_token.get_secret_value()]
    assert not any(secret in caplog.text for secret in secrets)
    stored = store.get(LOC)
    assert stored is not None and stored.lease_owner is None  # the lease was given back


def test_a_crashed_refresh_holder_does_not_block_the_location_forever(
    oauth_app: OAuthApp, store: TokenStore, installed: StoredTokens
) -> None:
    assert store.try_lease(installed, owner="worker-that-died", seconds=0.5) is not None
    provider = OAuthTokenProvider(store, oauth_app)
    fresh = provider.refresh(LOC, installed.access_token)
    stored = store.get(LOC)
    assert stored is not None
    assert fresh == stored.access_token != installed.access_token
    assert stored.lease_owner is None


def test_a_refresh_held_too_long_by_another_worker_is_unavailable_for_now(
    oauth_app: OAuthApp, store: TokenStore, installed: StoredTokens
) -> None:
    assert store.try_lease(installed, owner="slow-worker", seconds=30) is not None
    provider = OAuthTokenProvider(store, oauth_app, lease_wait_s=0.3)
    with pytest.raises(Unavailable):
        provider.refresh(LOC, installed.access_token)


def test_a_location_without_an_install_is_auth_expired(oauth_app: OAuthApp, store: TokenStore) -> None:
    with pytest.raises(AuthExpired):
        OAuthTokenProvider(store, oauth_app).access_token("loc_not_installed")


def test_installed_locations_are_listed_and_tokens_never_show_in_a_repr(
    store: TokenStore, installed: StoredTokens
) -> None:
    store.claim_state("some-nonce", time.time() + 600)
    assert store.locations() == [LOC]
    assert installed.access_token not in repr(installed)
    response = TokenResponse(access_token=SecretStr("sbx-secret"), expires_in=60, refresh_token=SecretStr("sbx-r"))
    assert "sbx-secret" not in repr(response) and "sbx-r" not in repr(response)


def test_an_install_state_can_be_used_only_once(store: TokenStore) -> None:
    assert store.claim_state("nonce-1", time.time() + 600)
    assert not store.claim_state("nonce-1", time.time() + 600)
