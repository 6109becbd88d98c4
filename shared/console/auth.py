"""Who is using the console and what they may do: the signed-in principal, its app role, anti-forgery tokens.

In Azure, App Service Authentication (Entra ID) signs staff in and hands the app `X-MS-CLIENT-PRINCIPAL`
(base64 JSON with the token's claims); the platform removes that header from what clients send, so it is only
trusted where the platform says authentication is on (`WEBSITE_AUTH_ENABLED`). Locally, a development sign-in
(`CONSOLE_DEV_SIGNIN=true`, refused in Azure) keeps the same principal in a signed cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

from shared.http import ApiError
from shared.settings import running_in_azure

if TYPE_CHECKING:
    import azure.functions as func

    from shared.settings import Settings

# The app roles of the console's Entra app registration (infra/scripts/console-app-registration.sh declares them).
OPERATOR_ROLE = "Console.Operator"
VIEWER_ROLE = "Console.Viewer"
Role = Literal["operator", "viewer"]

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_NAME_CLAIMS = ("name", "preferred_username")
MAX_PRINCIPAL_CHARS = 32 * 1024

DEV_COOKIE = "console_dev"
TOKEN_FIELD = "csrf_token"  # noqa: S105 - the form field's name, not a secret
TOKEN_HEADER = "x-csrf-token"  # noqa: S105 - a header name
TOKEN_TTL_S = 12 * 3600
CONSOLE_PATH = "/api/console"

# Locally, without CONSOLE_SIGNING_KEY: one key per process (the local host is one process); tokens it signed
# stop being valid when it restarts, and the pages simply issue new ones.
_PROCESS_KEY = secrets.token_bytes(32)


@dataclass(frozen=True)
class Principal:
    """A signed-in member of staff: a stable id (Entra object id), a display name, the app roles granted."""

    user_id: str
    name: str
    roles: frozenset[str]
    development: bool = False

    @property
    def role(self) -> Role | None:
        if OPERATOR_ROLE in self.roles:
            return "operator"
        if VIEWER_ROLE in self.roles:
            return "viewer"
        return None

    @property
    def may_act(self) -> bool:
        return self.role == "operator"


def read_client_principal(value: str, *, principal_id: str | None = None) -> Principal | None:
    """App Service Authentication's `X-MS-CLIENT-PRINCIPAL` (base64 JSON: `auth_typ`, `name_typ`, `role_typ`,
    `claims: [{typ, val}]`); None when it is not one."""
    if len(value) > MAX_PRINCIPAL_CHARS:
        return None
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None
    claims = data.get("claims") if isinstance(data, dict) else None
    if not isinstance(claims, list):
        return None
    pairs = [
        (claim["typ"], claim["val"])
        for claim in claims
        if isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str)
    ]
    role_types = {*_ROLE_CLAIMS, data.get("role_typ")}
    name_types = (data.get("name_typ"), *_NAME_CLAIMS)
    roles = frozenset(val for typ, val in pairs if typ in role_types)
    user_id = next((val for typ, val in pairs if typ in _ID_CLAIMS), None) or principal_id
    name = next((val for kind in name_types for typ, val in pairs if typ == kind and val), None)
    if not user_id:
        return None
    return Principal(user_id=user_id, name=name or "Usuario", roles=roles)


def signing_key(settings: Settings) -> bytes:
    if settings.console_signing_key is not None:
        return settings.console_signing_key.get_secret_value().encode()
    if running_in_azure():
        raise ApiError(
            503,
            "console_not_configured",
            "Falta CONSOLE_SIGNING_KEY: la consola no puede proteger sus formularios sin ella.",
        )
    return _PROCESS_KEY


def _sign(key: bytes, purpose: str, text: str) -> str:
    digest = hmac.new(key, f"{purpose}\n{text}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue_token(key: bytes, user_id: str, now: float | None = None) -> str:
    """An anti-forgery token for the forms of `user_id`'s pages: when it was issued, signed with the user."""
    issued = str(int(time.time() if now is None else now))
    signature = _sign(key, "csrf", "\n".join((user_id, issued)))
    return f"{issued}.{signature}"


def token_valid(key: bytes, user_id: str, token: str, now: float | None = None) -> bool:
    issued, _, signature = token.partition(".")
    if not issued.isascii() or not issued.isdigit() or len(issued) > 12:
        return False
    age = (time.time() if now is None else now) - int(issued)
    if not -300 <= age <= TOKEN_TTL_S:
        return False
    return hmac.compare_digest(signature, _sign(key, "csrf", "\n".join((user_id, issued))))


def dev_cookie_value(key: bytes, principal: Principal) -> str:
    body = {"id": principal.user_id, "name": principal.name, "roles": sorted(principal.roles)}
    text = base64.urlsafe_b64encode(json.dumps(body, ensure_ascii=False).encode()).decode()
    return f"{text}.{_sign(key, 'dev', text)}"


def _dev_principal(key: bytes, value: str) -> Principal | None:
    text, _, signature = value.partition(".")
    if not hmac.compare_digest(signature, _sign(key, "dev", text)):
        return None
    try:
        body: Any = json.loads(base64.urlsafe_b64decode(text))
    except (binascii.Error, ValueError):
        return None
    return Principal(body["id"], body["name"], frozenset(body["roles"]), development=True)


def dev_principal(name: str, role: Role) -> Principal:
    """The principal the development sign-in makes: the name typed, the role chosen."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "usuario"
    return Principal(
        user_id=f"dev-{slug}",
        name=name,
        roles=frozenset({OPERATOR_ROLE if role == "operator" else VIEWER_ROLE}),
        development=True,
    )


def cookie(req: func.HttpRequest, name: str) -> str | None:
    try:
        jar = SimpleCookie(req.headers.get("cookie") or "")
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


SIGN_IN_UNAVAILABLE = ApiError(
    503,
    "console_sign_in_unavailable",
    "La consola no tiene inicio de sesión: en Azure lo da App Service Authentication (Entra ID); en una máquina"
    " de desarrollo, active CONSOLE_DEV_SIGNIN=true.",
)


def signed_in(req: func.HttpRequest, settings: Settings) -> Principal | None:
    """Who sent the request, or None when nobody is signed in."""
    if running_in_azure():
        if os.environ.get("WEBSITE_AUTH_ENABLED", "").lower() != "true":
            raise SIGN_IN_UNAVAILABLE  # without it the principal headers are whatever the client sent
        header = req.headers.get(PRINCIPAL_HEADER)
        return read_client_principal(header, principal_id=req.headers.get(PRINCIPAL_ID_HEADER)) if header else None
    if not settings.console_dev_signin:
        raise SIGN_IN_UNAVAILABLE
    value = cookie(req, DEV_COOKIE)
    return _dev_principal(signing_key(settings), value) if value else None


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    inside = path == CONSOLE_PATH or (path or "").startswith((f"{CONSOLE_PATH}/", f"{CONSOLE_PATH}?"))
    if path and inside and "\\" not in path:
        return path
    return f"{CONSOLE_PATH}/"


def sign_in_url(next_path: str) -> str:
    target = quote(safe_next(next_path), safe="/")
    if running_in_azure():
        return f"/.auth/login/aad?post_login_redirect_uri={target}"
    return f"{CONSOLE_PATH}/entrar?next={target}"


def sign_out_url() -> str | None:
    """Azure's sign-out address; None locally, where signing out is a form of the console itself."""
    return f"/.auth/logout?post_logout_redirect_uri={CONSOLE_PATH}/" if running_in_azure() else None


def same_site(req: func.HttpRequest) -> bool:
    """The browser says the request comes from the console's own pages (Fetch metadata, Origin, Referer). A
    client that sends none of them (not a browser) still needs the anti-forgery token."""
    fetch_site = (req.headers.get("sec-fetch-site") or "").lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return False
    source = req.headers.get("origin") or req.headers.get("referer")
    if not source:
        return True
    hosts = {h.lower() for h in (req.headers.get("host"), req.headers.get("x-forwarded-host")) if h}
    hosts.add(urlsplit(req.url).netloc.lower())
    return source != "null" and urlsplit(source).netloc.lower() in hosts
