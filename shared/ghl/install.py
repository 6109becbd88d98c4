"""The marketplace install: the consent-page redirect, then code → stored tokens → active location in SQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared import telemetry
from shared.ghl.errors import GhlError, TokenRejected, Unavailable
from shared.ghl.oauth import CALLBACK_ROUTE, InvalidState, OAuthApp
from shared.http import ApiError
from shared.lazy import serial_imports

if TYPE_CHECKING:
    from shared.ghl.client import GhlClient
    from shared.ghl.models import TokenResponse
    from shared.ghl.token_store import TokenStore
    from shared.settings import Settings
    from shared.store.database import Database

log = telemetry.get_logger("ghl")

T = TypeVar("T")
RESTART = "Inicie la instalación de nuevo desde el enlace de autorización."


@dataclass(frozen=True)
class Installation:
    location_id: str
    name: str
    timezone: str
    new_location: bool


def callback_url(request_url: str) -> str:
    """This app's callback on the host that served `request_url` (when GHL_REDIRECT_URI is not set)."""
    parts = urlsplit(request_url)
    return f"{parts.scheme}://{parts.netloc}{CALLBACK_ROUTE}"


def authorize_url(settings: Settings, request_url: str, clock: Callable[[], float] = time.time) -> str:
    """GHL's consent page for this app, with a fresh signed `state` (valid 10 minutes, single use)."""
    app = OAuthApp.from_settings(settings)
    try:
        return app.authorize_url(app.states.sign(clock()), app.redirect_uri or callback_url(request_url))
    finally:
        app.close()


class Installer:
    """Completes an install; every failure the installer can see is an ApiError with a Spanish message."""

    def __init__(
        self,
        app: OAuthApp,
        store: TokenStore,
        database: Database,
        client: GhlClient,
        *,
        default_timezone: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._store = store
        self._database = database
        self._client = client
        self._default_timezone = default_timezone
        self._clock = clock

    @classmethod
    @contextmanager
    def from_settings(cls, settings: Settings, database: Database) -> Iterator[Installer]:
        with serial_imports:
            from shared.ghl import rate_limits
            from shared.ghl.client import GhlClient
            from shared.ghl.rate_budget import TableRateBudget
            from shared.ghl.tables import RATE_BUDGET_TABLE, TOKENS_TABLE, table_client
            from shared.ghl.token_store import TokenStore
            from shared.ghl.tokens import OAuthTokenProvider

        app = OAuthApp.from_settings(settings)
        store = TokenStore(table_client(settings, TOKENS_TABLE))
        budget = TableRateBudget(table_client(settings, RATE_BUDGET_TABLE), rate_limits(settings))
        client = GhlClient(settings.ghl_base_url, OAuthTokenProvider(store, app), budget)
        try:
            yield cls(app, store, database, client, default_timezone=settings.timezone)
        finally:
            client.close()
            app.close()

    def complete(self, *, code: str | None, state: str | None, request_url: str) -> Installation:
        """Verify `state` before anything else, then exchange the code, store the tokens, record the location."""
        try:
            signed = self._app.states.verify(state or "", self._clock())
        except InvalidState as exc:
            log.warning("oauth callback with an invalid state (%s)", exc)
            raise ApiError(
                400, "invalid_state", f"El enlace de instalación no es válido o ya venció. {RESTART}"
            ) from None
        if not code:
            raise ApiError(400, "missing_code", f"GHL no envió el código de autorización. {RESTART}")
        if not self._unavailable_as_503(lambda: self._store.claim_state(signed.nonce, signed.expires_at)):
            raise ApiError(400, "state_already_used", f"Este enlace de instalación ya fue usado. {RESTART}")
        tokens = self._exchange(code, request_url)
        location_id = tokens.locationId
        if not location_id:
            raise ApiError(
                400,
                "location_install_required",
                "La app debe instalarse en una subcuenta (location) de GHL, no a nivel de agencia.",
            )
        self._unavailable_as_503(lambda: self._store.save(location_id, tokens))
        name, timezone = self._describe(location_id)
        new = upsert_location(self._database, location_id, name, timezone)
        log.info(
            "ghl app installed on location %s",
            location_id,
            extra={"event": "ghl.installed", "location_id": location_id, "new_location": new},
        )
        return Installation(location_id=location_id, name=name, timezone=timezone, new_location=new)

    def _exchange(self, code: str, request_url: str) -> TokenResponse:
        try:
            return self._app.exchange_code(code, self._app.redirect_uri or callback_url(request_url))
        except TokenRejected:
            raise ApiError(
                400, "invalid_code", f"GHL rechazó el código de autorización (vencido o ya usado). {RESTART}"
            ) from None
        except Unavailable:
            raise ApiError(
                503, "ghl_unavailable", "No se pudo contactar a GHL. Intente de nuevo en unos minutos."
            ) from None

    def _describe(self, location_id: str) -> tuple[str, str]:
        """The location's name and time zone from GHL; the id and the app's zone if GHL cannot say now."""
        try:
            location = self._client.get_location(location_id)
        except GhlError as exc:
            log.warning("location %s installed without its details: %s", location_id, exc.code)
            return location_id, self._default_timezone
        return (location.name or location_id)[:200], _known_zone(location.timezone, self._default_timezone)

    @staticmethod
    def _unavailable_as_503(action: Callable[[], T]) -> T:
        try:
            return action()
        except Unavailable:
            raise ApiError(
                503, "storage_unavailable", "No se pudo guardar la instalación. Intente de nuevo en unos minutos."
            ) from None


def _known_zone(name: str | None, default: str) -> str:
    try:
        return str(ZoneInfo(name)) if name else default
    except (ZoneInfoNotFoundError, ValueError):
        return default


def upsert_location(database: Database, location_id: str, name: str, timezone: str) -> bool:
    """Add the location as active if new, else refresh its name and zone; True when it was added."""
    with serial_imports:
        import sqlalchemy as sa

        from shared.store.schema import locations

    now = datetime.now(UTC)
    changes = {"name": name, "timezone": timezone, "updated_at": now}
    by_id = locations.c.ghl_location_id == location_id
    try:
        with database.transaction() as conn:
            if conn.execute(sa.update(locations).where(by_id).values(**changes)).rowcount:
                return False
            conn.execute(
                sa.insert(locations).values(ghl_location_id=location_id, is_active=True, created_at=now, **changes)
            )
            return True
    except sa.exc.IntegrityError:
        # Two callbacks for the same location raced and the other inserted it first.
        with database.transaction() as conn:
            conn.execute(sa.update(locations).where(by_id).values(**changes))
        return False
