"""Bearer tokens per location: the private-integration token, or OAuth tokens refreshed under a lease."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable

from pydantic import SecretStr

from shared import telemetry
from shared.ghl.errors import AuthExpired, Forbidden, TokenRejected, Unavailable
from shared.ghl.models import TokenResponse
from shared.ghl.oauth import OAuthApp
from shared.ghl.token_store import StoredTokens, TokenStore

# GHL's refresh tokens rotate (each refresh answers a new pair, and the old refresh token is widely reported
# to be single-use), so exactly one worker of all hosts refreshes a location at a time: it takes the lease
# on the location's token entity, refreshes, and stores the new pair before anybody uses it. The others
# wait and re-read. A lease has an expiry, so a worker that crashed mid-refresh does not block forever.

log = telemetry.get_logger("ghl")

REFRESH_MARGIN_S = 300.0
LEASE_S = 45.0  # longer than a token call can take (its timeouts add up to well under this)
LEASE_WAIT_S = 20.0
PERSIST_ATTEMPTS = 3


class PrivateTokenProvider:
    """A sub-account private-integration token (GHL_PRIVATE_TOKEN) for its one location; it cannot be refreshed."""

    def __init__(self, token: SecretStr, location_id: str) -> None:
        self._token = token
        self._location_id = location_id

    def access_token(self, location_id: str) -> str:
        if location_id != self._location_id:
            raise Forbidden(f"no token for location {location_id}: GHL_PRIVATE_TOKEN is for GHL_LOCATION_ID only")
        return self._token.get_secret_value()

    def refresh(self, location_id: str, rejected_token: str) -> str:
        raise AuthExpired("GHL rejected the private integration token: replace GHL_PRIVATE_TOKEN")


class OAuthTokenProvider:
    """Marketplace OAuth tokens from the token store, refreshed shortly before they expire or after a 401."""

    def __init__(
        self,
        store: TokenStore,
        app: OAuthApp,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        margin_s: float = REFRESH_MARGIN_S,
        lease_s: float = LEASE_S,
        lease_wait_s: float = LEASE_WAIT_S,
    ) -> None:
        self._store = store
        self._app = app
        self._clock = clock
        self._sleep = sleep
        self._margin_s = margin_s
        self._lease_s = lease_s
        self._lease_wait_s = lease_wait_s
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._cache: dict[str, StoredTokens] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def access_token(self, location_id: str) -> str:
        cached = self._cache.get(location_id)
        if cached is not None and self._fresh(cached):
            return cached.access_token
        stored = self._read(location_id)
        if self._fresh(stored):
            return stored.access_token
        return self._refresh(location_id, stale=stored.access_token)

    def refresh(self, location_id: str, rejected_token: str) -> str:
        return self._refresh(location_id, stale=rejected_token)

    def _fresh(self, tokens: StoredTokens) -> bool:
        # Never more than half the lifetime as margin, or a short-lived token would be refreshed on every call.
        margin = min(self._margin_s, tokens.lifetime_s / 2)
        return tokens.expires_at - margin > self._clock()

    def _read(self, location_id: str) -> StoredTokens:
        stored = self._store.get(location_id)
        if stored is None:
            raise AuthExpired(f"the app is not installed on location {location_id}")
        self._cache[location_id] = stored
        return stored

    def _lock_of(self, location_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(location_id, threading.Lock())

    def _refresh(self, location_id: str, stale: str) -> str:
        """A token other than `stale`: one another worker just stored, or one this worker refreshes now."""
        with self._lock_of(location_id):  # threads of this process queue here instead of on the lease
            deadline = time.monotonic() + self._lease_wait_s
            while True:
                stored = self._read(location_id)
                if stored.access_token != stale and self._fresh(stored):
                    return stored.access_token
                if not stored.leased_by_other(self._owner, self._clock()):
                    leased = self._store.try_lease(stored, self._owner, self._lease_s)
                    if leased is not None:
                        return self._rotate(leased)
                if time.monotonic() >= deadline:
                    raise Unavailable(f"the token refresh of location {location_id} is held by another worker")
                self._sleep(random.uniform(0.05, 0.25))

    def _rotate(self, leased: StoredTokens) -> str:
        location_id = leased.location_id
        try:
            tokens = self._app.refresh(leased.refresh_token)
        except TokenRejected as exc:
            current = self._store.get(location_id)
            if current is not None and current.refresh_token != leased.refresh_token:
                self._cache[location_id] = current  # someone rotated it after all (a lease that had expired)
                return current.access_token
            self._store.release(leased)
            telemetry.alert(
                "token_refresh_failed",
                f"GHL rejected the refresh token of location {location_id}; re-install the app",
                location_id=location_id,
                status_code=exc.status,
            )
            raise AuthExpired(f"refresh rejected for location {location_id}: re-install the app") from exc
        except Unavailable:
            self._store.release(leased)
            raise
        saved = self._persist(location_id, tokens)
        self._cache[location_id] = saved
        return saved.access_token

    def _persist(self, location_id: str, tokens: TokenResponse) -> StoredTokens:
        """Store the new pair before anyone uses it: the old refresh token is already spent."""
        attempt = 1
        while True:
            try:
                return self._store.save(location_id, tokens)
            except Unavailable:
                if attempt >= PERSIST_ATTEMPTS:
                    telemetry.alert(
                        "token_refresh_failed",
                        f"new tokens of location {location_id} could not be stored",
                        location_id=location_id,
                        detail="persist_failed",
                    )
                    raise
                self._sleep(random.uniform(0.1, 0.5) * attempt)
                attempt += 1
