"""OAuth tokens per location in Table storage (`ghltokens`), with the refresh lease and used install states."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.ghl.errors import Unavailable
from shared.ghl.tables import ensure_table
from shared.lazy import serial_imports

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from shared.ghl.models import TokenResponse

# One entity per location (PartitionKey = location id, RowKey "oauth") holds the current pair and, while a
# worker refreshes it, a lease (owner + expiry) taken with the entity's ETag so only one worker spends the
# single-use refresh token. Tokens never leave this module in a log line or a repr.

TOKENS_ROW = "oauth"
# Install states live beside the tokens; "_" never starts a GHL location id.
STATES_PARTITION = "_oauth_state"


@dataclass(frozen=True)
class StoredTokens:
    location_id: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float
    lifetime_s: float
    scope: str
    company_id: str | None
    lease_owner: str | None
    lease_until: float
    etag: str = field(repr=False)

    def leased_by_other(self, owner: str, now: float) -> bool:
        return bool(self.lease_owner) and self.lease_owner != owner and self.lease_until > now


class TokenStore:
    """Reads and writes the `ghltokens` table; every storage failure surfaces as Unavailable."""

    def __init__(self, table: TableClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock
        self._table_ready = False

    def get(self, location_id: str) -> StoredTokens | None:
        with serial_imports:
            from azure.core.exceptions import ResourceNotFoundError

        with self._storage("read tokens"):
            try:
                entity = self._table.get_entity(location_id, TOKENS_ROW)
            except ResourceNotFoundError:
                return None
        return _tokens_of(entity, str(entity.metadata.get("etag", "")))

    def save(self, location_id: str, tokens: TokenResponse) -> StoredTokens:
        """Store a new pair (install or refresh), replacing the old one and any lease on it."""
        with serial_imports:
            from azure.data.tables import UpdateMode

        if tokens.refresh_token is None:
            raise ValueError("GHL answered no refresh token")
        entity = {
            "PartitionKey": location_id,
            "RowKey": TOKENS_ROW,
            "access_token": tokens.access_token.get_secret_value(),
            "refresh_token": tokens.refresh_token.get_secret_value(),
            "expires_at": self._clock() + tokens.expires_in,
            "expires_in": float(tokens.expires_in),
            "scope": tokens.scope or "",
            "company_id": tokens.companyId or "",
            "lease_owner": "",
            "lease_until": 0.0,
        }
        with self._storage("save tokens"):
            written = self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        return _tokens_of(entity, str(written.get("etag", "")))

    def try_lease(self, current: StoredTokens, owner: str, seconds: float) -> StoredTokens | None:
        """Take the refresh lease if `current` is still what is stored; None when another worker got there first."""
        with serial_imports:
            from azure.core import MatchConditions
            from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
            from azure.data.tables import UpdateMode

        lease_until = self._clock() + seconds
        lease = {
            "PartitionKey": current.location_id,
            "RowKey": TOKENS_ROW,
            "lease_owner": owner,
            "lease_until": lease_until,
        }
        with self._storage("lease tokens"):
            try:
                written = self._table.update_entity(
                    lease, mode=UpdateMode.MERGE, etag=current.etag, match_condition=MatchConditions.IfNotModified
                )
            except ResourceNotFoundError:
                return None
            except HttpResponseError as exc:
                if exc.status_code == 412:
                    return None
                raise
        return StoredTokens(
            location_id=current.location_id,
            access_token=current.access_token,
            refresh_token=current.refresh_token,
            expires_at=current.expires_at,
            lifetime_s=current.lifetime_s,
            scope=current.scope,
            company_id=current.company_id,
            lease_owner=owner,
            lease_until=lease_until,
            etag=str(written.get("etag", "")),
        )

    def release(self, leased: StoredTokens) -> None:
        """Give the lease back without changing the tokens (a refresh that failed and may be tried again)."""
        with serial_imports:
            from azure.core import MatchConditions
            from azure.core.exceptions import AzureError
            from azure.data.tables import UpdateMode

        entity = {"PartitionKey": leased.location_id, "RowKey": TOKENS_ROW, "lease_owner": "", "lease_until": 0.0}
        # On failure the lease simply expires; someone may already hold a newer one.
        with contextlib.suppress(AzureError):
            self._table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=leased.etag, match_condition=MatchConditions.IfNotModified
            )

    def locations(self) -> list[str]:
        """Locations with stored tokens (the app is installed there)."""
        with self._storage("list locations"):
            rows = self._table.query_entities(f"RowKey eq '{TOKENS_ROW}'", select=["PartitionKey"])
            return sorted(str(row["PartitionKey"]) for row in rows)

    def claim_state(self, nonce: str, expires_at: float) -> bool:
        """Mark an install `state` as used; False when it was used before (a replayed callback)."""
        with serial_imports:
            from azure.core.exceptions import ResourceExistsError

        entity = {"PartitionKey": STATES_PARTITION, "RowKey": nonce, "expires_at": expires_at}
        with self._storage("claim state"):
            try:
                self._table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    @contextmanager
    def _storage(self, what: str) -> Iterator[None]:
        """Turn any storage failure into Unavailable, naming the operation but nothing stored."""
        with serial_imports:
            from azure.core.exceptions import AzureError

        try:
            if not self._table_ready:
                ensure_table(self._table)
                self._table_ready = True
            yield
        except AzureError as exc:
            raise Unavailable(f"token store: {what} failed ({type(exc).__name__})") from exc


def _tokens_of(entity: Any, etag: str) -> StoredTokens:
    return StoredTokens(
        location_id=str(entity["PartitionKey"]),
        access_token=str(entity.get("access_token", "")),
        refresh_token=str(entity.get("refresh_token", "")),
        expires_at=float(entity.get("expires_at", 0.0)),
        lifetime_s=float(entity.get("expires_in", 0.0)),
        scope=str(entity.get("scope", "")),
        company_id=str(entity.get("company_id") or "") or None,
        lease_owner=str(entity.get("lease_owner") or "") or None,
        lease_until=float(entity.get("lease_until", 0.0)),
        etag=etag,
    )
