"""Entra ID access tokens for Azure SQL (`SQL_AUTH=entra`), handed to pyodbc on each new pooled connection."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import event

from shared.lazy import serial_imports

if TYPE_CHECKING:
    import requests
    from sqlalchemy import Engine

SQL_RESOURCE = "https://database.windows.net"
SQL_SCOPE = f"{SQL_RESOURCE}/.default"
# msodbcsql pre-connect attribute that carries an Entra access token instead of a password.
SQL_COPT_SS_ACCESS_TOKEN = 1256
REFRESH_MARGIN = timedelta(minutes=5)
HTTP_TIMEOUT_SECONDS = 10.0

# The driver refuses an access token next to any other credential, and SQLAlchemy adds
# Trusted_Connection=Yes on its own whenever the URL has no user name.
_CREDENTIAL_KEYWORDS = frozenset({"authentication", "trusted_connection", "integrated security", "uid", "pwd"})


class EntraTokenError(RuntimeError):
    """Entra ID did not hand out a token for Azure SQL; the message never contains a secret."""

    code = "sql_token_unavailable"


@dataclass(frozen=True)
class AccessToken:
    """A bearer token for Azure SQL and the moment it stops being accepted."""

    token: str = field(repr=False)
    expires_on: datetime


class EntraTokenSource(Protocol):
    """Anything that can produce a currently valid Azure SQL token."""

    def get_token(self, now: datetime) -> AccessToken: ...


def pack_access_token(token: str) -> bytes:
    """Lays a token out as msodbcsql expects it: 4-byte little-endian length, then UTF-16-LE bytes."""
    raw = token.encode("utf-16-le")
    return struct.pack("<I", len(raw)) + raw


class CachedTokenSource:
    """Reuses one token until it is within `margin` of expiry; safe to share between threads."""

    def __init__(self, source: EntraTokenSource, margin: timedelta = REFRESH_MARGIN) -> None:
        self._source = source
        self._margin = margin
        self._lock = threading.Lock()
        self._current: AccessToken | None = None

    def get_token(self, now: datetime) -> AccessToken:
        # Fetching under the lock means a burst of new connections triggers one Entra call, not many.
        with self._lock:
            if self._current is None or now >= self._current.expires_on - self._margin:
                self._current = self._source.get_token(now)
            return self._current


class MsalTokenSource:
    """Asks Entra through msal: the app's managed identity in Azure, a service principal elsewhere."""

    def __init__(self, acquire: Callable[[], Mapping[str, Any]]) -> None:
        self._acquire = acquire

    @classmethod
    def managed_identity(cls, client_id: str | None = None) -> MsalTokenSource:
        """User-assigned identity when `client_id` (AZURE_CLIENT_ID) is given, else system-assigned."""
        client: Any = None

        def acquire() -> Mapping[str, Any]:
            nonlocal client
            if client is None:  # built on first use so msal and requests stay out of cold start
                with serial_imports:
                    import msal

                identity = (
                    msal.UserAssignedManagedIdentity(client_id=client_id)
                    if client_id
                    else msal.SystemAssignedManagedIdentity()
                )
                client = msal.ManagedIdentityClient(identity, http_client=_token_http_client())
            result: Mapping[str, Any] = client.acquire_token_for_client(resource=SQL_RESOURCE)
            return result

        return cls(acquire)

    @classmethod
    def service_principal(cls, *, tenant_id: str, client_id: str, client_secret: str) -> MsalTokenSource:
        """Client-credentials flow for a registered app that was made a user of the database."""
        app: Any = None

        def acquire() -> Mapping[str, Any]:
            nonlocal app
            if app is None:
                with serial_imports:
                    import msal

                app = msal.ConfidentialClientApplication(
                    client_id,
                    client_credential=client_secret,
                    authority=f"https://login.microsoftonline.com/{tenant_id}",
                    http_client=_token_http_client(),
                )
            result: Mapping[str, Any] = app.acquire_token_for_client(scopes=[SQL_SCOPE])
            return result

        return cls(acquire)

    def get_token(self, now: datetime) -> AccessToken:
        try:
            result = self._acquire()
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors, msal's are ValueErrors
            raise EntraTokenError(f"Entra token request failed ({type(exc).__name__})") from None
        token = result.get("access_token")
        if not token:
            raise EntraTokenError(
                f"Entra refused the Azure SQL token request: {result.get('error', 'unknown_error')}"
                f" (correlation_id={result.get('correlation_id', '-')})"
            )
        return AccessToken(token=str(token), expires_on=now + timedelta(seconds=int(result["expires_in"])))


class DeveloperLoginTokenSource:
    """Uses the developer's own `azd auth login` / `az login`, for migrations and tools run by hand."""

    def get_token(self, now: datetime) -> AccessToken:
        with serial_imports:
            from azure.core.exceptions import ClientAuthenticationError
            from azure.identity import AzureCliCredential, AzureDeveloperCliCredential, ChainedTokenCredential

        credential = ChainedTokenCredential(AzureDeveloperCliCredential(), AzureCliCredential())
        try:
            issued = credential.get_token(SQL_SCOPE)
        except ClientAuthenticationError:
            raise EntraTokenError("No developer login found: run `azd auth login` or `az login`") from None
        return AccessToken(token=issued.token, expires_on=datetime.fromtimestamp(issued.expires_on, UTC))


def token_source_from_env(env: Mapping[str, str]) -> EntraTokenSource:
    """Picks the credential for where the code runs, from the standard Azure SDK variable names.

    AZURE_CLIENT_SECRET set: service principal (with AZURE_TENANT_ID, AZURE_CLIENT_ID).
    IDENTITY_ENDPOINT set (App Service / Functions): managed identity, user-assigned if AZURE_CLIENT_ID.
    Otherwise: the developer's azd / az login.
    """
    client_id = env.get("AZURE_CLIENT_ID") or None
    if env.get("AZURE_CLIENT_SECRET"):
        missing = [key for key in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if not env.get(key)]
        if missing:
            raise EntraTokenError(f"AZURE_CLIENT_SECRET is set but {', '.join(missing)} is missing")
        return MsalTokenSource.service_principal(
            tenant_id=env["AZURE_TENANT_ID"],
            client_id=env["AZURE_CLIENT_ID"],
            client_secret=env["AZURE_CLIENT_SECRET"],
        )
    if env.get("IDENTITY_ENDPOINT"):
        return MsalTokenSource.managed_identity(client_id)
    return DeveloperLoginTokenSource()


def strip_credentials(odbc_connection_string: str) -> str:
    """Drops every credential keyword (they conflict with an access token), keeping braces intact."""
    kept = [
        attribute
        for attribute in _split_odbc_attributes(odbc_connection_string)
        if attribute.split("=", 1)[0].strip().lower() not in _CREDENTIAL_KEYWORDS
    ]
    return ";".join(kept)


def install_entra_token(
    engine: Engine,
    source: EntraTokenSource,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Makes every new DBAPI connection of `engine` log in with a fresh-enough Entra token."""
    tokens = source if isinstance(source, CachedTokenSource) else CachedTokenSource(source)

    @event.listens_for(engine, "do_connect")
    def _connect_with_token(dialect: Any, conn_rec: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if cargs:
            cargs[0] = strip_credentials(cargs[0])
        for keyword in ("user", "password", "uid", "pwd"):
            cparams.pop(keyword, None)
        attrs_before = dict(cparams.get("attrs_before") or {})
        attrs_before[SQL_COPT_SS_ACCESS_TOKEN] = pack_access_token(tokens.get_token(clock()).token)
        cparams["attrs_before"] = attrs_before


def _split_odbc_attributes(connection_string: str) -> list[str]:
    """Splits on `;` except inside a `{...}` value, where `}}` stands for a literal `}`."""
    attributes: list[str] = []
    current: list[str] = []
    in_braces = False
    index = 0
    while index < len(connection_string):
        char = connection_string[index]
        current.append(char)
        if in_braces:
            if char == "}":
                if connection_string[index + 1 : index + 2] == "}":
                    current.append("}")
                    index += 1
                else:
                    in_braces = False
        elif char == "{" and "".join(current[:-1]).rstrip().endswith("="):
            in_braces = True
        elif char == ";":
            current.pop()
            attributes.append("".join(current))
            current = []
        index += 1
    attributes.append("".join(current))
    return [attribute for attribute in attributes if attribute.strip()]


def _token_http_client() -> requests.Session:
    """HTTP session for msal with a timeout on every call and a short, jittered, bounded retry."""
    with serial_imports:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

    class _TimeoutSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
            return super().request(*args, **kwargs)

    retry = Retry(
        total=2,
        backoff_factor=0.5,
        backoff_jitter=0.5,
        backoff_max=4,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # token requests have no side effects, so POST may be retried too
        respect_retry_after_header=False,  # a long Retry-After would stall a connection attempt
    )
    session = _TimeoutSession()
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session
