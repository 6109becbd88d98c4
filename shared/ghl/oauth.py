"""GHL marketplace OAuth: the consent URL with a signed `state`, and the token endpoint (code and refresh grants)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr, ValidationError

from shared import telemetry
from shared.ghl.errors import TokenRejected, Unavailable
from shared.ghl.models import TokenResponse
from shared.lazy import serial_imports
from sync_core.hashing import same_secret

if TYPE_CHECKING:
    from shared.settings import Settings

log = telemetry.get_logger("ghl")

# What the sync needs (docs/oauth/Scopes.md): read calendars, read/write appointments and contacts, read locations.
SCOPES = (
    "calendars.readonly",
    "calendars/events.readonly",
    "calendars/events.write",
    "contacts.readonly",
    "contacts.write",
    "locations.readonly",
)
STATE_TTL_S = 600
CALLBACK_ROUTE = "/api/ghl/oauth/callback"
TOKEN_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=5.0)
_STATE_KEY_LABEL = b"rv3-ghl-sync/oauth-state/v1"
OAUTH_SETTINGS = ("GHL_CLIENT_ID", "GHL_CLIENT_SECRET")


class InvalidState(ValueError):
    """The callback's `state` was not signed by us, was tampered with, or expired."""


@dataclass(frozen=True)
class SignedState:
    """A verified `state`: its single-use nonce and when it stops being accepted (epoch seconds)."""

    nonce: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StateSigner:
    """HMAC-SHA256 over a nonce and an expiry, with a key derived from the client secret (never the secret itself)."""

    def __init__(self, client_secret: SecretStr, ttl_s: float = STATE_TTL_S) -> None:
        self._key = hmac.new(client_secret.get_secret_value().encode(), _STATE_KEY_LABEL, hashlib.sha256).digest()
        self._ttl_s = ttl_s

    def sign(self, now: float) -> str:
        payload = json.dumps({"n": secrets.token_urlsafe(18), "exp": round(now + self._ttl_s)}, separators=(",", ":"))
        body = _b64(payload.encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, state: str, now: float) -> SignedState:
        body, _, mac = state.partition(".")
        if not body or not mac or not same_secret(mac, self._mac(body)):
            raise InvalidState("bad signature")
        try:
            claims = json.loads(_unb64(body))
            signed = SignedState(nonce=str(claims["n"]), expires_at=float(claims["exp"]))
        except (ValueError, KeyError, TypeError):
            raise InvalidState("unreadable state") from None
        if now >= signed.expires_at:
            raise InvalidState("expired")
        return signed

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


class OAuthApp:
    """The marketplace app's side of OAuth: where to send the installer, and GHL's `/oauth/token` endpoint."""

    def __init__(
        self,
        *,
        base_url: str,
        marketplace_url: str,
        client_id: str,
        client_secret: SecretStr,
        redirect_uri: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = TOKEN_TIMEOUT,
    ) -> None:
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.states = StateSigner(client_secret)
        self._secret = client_secret
        self._marketplace_url = marketplace_url.rstrip("/")
        self._timeout = timeout
        self._http = httpx.Client(base_url=base_url.rstrip("/"), transport=transport, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings, transport: httpx.BaseTransport | None = None) -> OAuthApp:
        with serial_imports:
            from shared.settings import SettingsError

        if not settings.ghl_client_id or not settings.ghl_client_secret:
            raise SettingsError(
                [(key, "the marketplace app's credentials (needed for OAuth)") for key in OAUTH_SETTINGS]
            )
        return cls(
            base_url=settings.ghl_base_url,
            marketplace_url=settings.ghl_marketplace_url,
            client_id=settings.ghl_client_id,
            client_secret=settings.ghl_client_secret,
            redirect_uri=settings.ghl_redirect_uri,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        """The marketplace page where a clinic admin picks the location and approves the scopes."""
        query = {
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "scope": " ".join(SCOPES),
            "state": state,
        }
        return f"{self._marketplace_url}/v2/oauth/chooselocation?{urlencode(query)}"

    def exchange_code(self, code: str, redirect_uri: str) -> TokenResponse:
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})

    def refresh(self, refresh_token: str) -> TokenResponse:
        """Rotate the pair: GHL answers a new access AND refresh token; the old refresh token is spent."""
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token(self, grant: dict[str, str]) -> TokenResponse:
        form = {
            "client_id": self.client_id,
            "client_secret": self._secret.get_secret_value(),
            "user_type": "Location",
            **grant,
        }
        kind = grant["grant_type"]
        try:
            response = self._http.post(
                "/oauth/token", data=form, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            # Codes and refresh tokens are single-use: an exchange that timed out after sending is not retried.
            raise Unavailable(f"oauth {kind}: no answer from GHL ({type(exc).__name__})") from exc
        trace_id = response.headers.get("x-trace-id")
        if response.status_code in (400, 401, 403, 422):
            log.warning("oauth %s rejected by GHL: status=%s trace_id=%s", kind, response.status_code, trace_id)
            raise TokenRejected(f"oauth {kind} rejected", status=response.status_code, trace_id=trace_id)
        if not response.is_success:
            raise Unavailable(
                f"oauth {kind}: GHL answered {response.status_code}", status=response.status_code, trace_id=trace_id
            )
        try:
            return TokenResponse.model_validate_json(response.content)
        except ValidationError:
            raise Unavailable(f"oauth {kind}: unreadable token response", trace_id=trace_id) from None
