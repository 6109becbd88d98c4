"""OAuth 2.0 as GHL runs it: a consent page that installs at once, a token endpoint, and bearer checks.

Access tokens expire after the configured lifetime; refresh tokens rotate and are single-use (GHL's docs
only say a new one is issued on refresh; the sandbox enforces the stricter, widely reported behaviour).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from .endpoints import Endpoint
from .errors import EXPIRED_TOKEN, bad_request, unauthorized, unprocessable
from .sandbox import Sandbox, sandbox_of
from .state import AccessToken, AuthCode, Clock, Grant, RefreshToken, SandboxState, new_id

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
INVALID_CLIENT = "Invalid client: client credentials are invalid"
INVALID_CODE = "Invalid grant: authorization code is invalid"
INVALID_REFRESH = "Invalid grant: refresh token is invalid"


def authenticate(state: SandboxState, clock: Clock, authorization: str | None) -> Grant:
    """The grant behind an `Authorization: Bearer` header: an OAuth access or private-integration token."""
    scheme, _, value = (authorization or "").partition(" ")
    token = state.access_tokens.get(value.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise unauthorized()
    if token.expires_at is not None and clock.time() >= token.expires_at:
        raise unauthorized(EXPIRED_TOKEN)
    return token.grant


def issue_tokens(sandbox: Sandbox, grant: Grant) -> dict[str, object]:
    state, auth, now = sandbox.state, sandbox.config.auth, sandbox.clock.time()
    access, refresh = f"sbx-at-{new_id(48)}", f"sbx-rt-{new_id(48)}"
    state.access_tokens[access] = AccessToken(access, grant, now + auth.access_token_ttl_seconds)
    state.refresh_tokens[refresh] = RefreshToken(refresh, grant, now + auth.refresh_token_ttl_seconds)
    ttl = auth.access_token_ttl_seconds
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": int(ttl) if ttl == int(ttl) else ttl,
        "refresh_token": refresh,
        "scope": " ".join(grant.scopes),
        "userType": "Location",
        "locationId": grant.location_id,
        "companyId": grant.company_id,
        "userId": grant.user_id,
        "isBulkInstallation": False,
    }


def _redeem_code(sandbox: Sandbox, client_id: str, form: dict[str, str]) -> Grant:
    code = sandbox.state.codes.get(form.get("code", ""))
    if (
        code is None
        or code.used
        or code.grant.client_key != client_id
        or sandbox.clock.time() >= code.expires_at
        or form.get("redirect_uri", code.redirect_uri) != code.redirect_uri
    ):
        raise unauthorized(INVALID_CODE)
    code.used = True
    return code.grant


def _redeem_refresh(sandbox: Sandbox, client_id: str, form: dict[str, str]) -> Grant:
    token = sandbox.state.refresh_tokens.get(form.get("refresh_token", ""))
    if token is None or token.used or token.grant.client_key != client_id or sandbox.clock.time() >= token.expires_at:
        raise unauthorized(INVALID_REFRESH)
    token.used = True
    return token.grant


async def token(request: Request) -> Response:
    sandbox = sandbox_of(request)
    parsed = parse_qs((await request.body()).decode(errors="replace"), keep_blank_values=True)
    form = {key: values[-1] for key, values in parsed.items()}
    missing = [f"{k} should not be empty" for k in ("client_id", "client_secret", "grant_type") if not form.get(k)]
    if missing:
        raise unprocessable(*missing)
    grant_type = form["grant_type"]
    if grant_type not in GRANT_TYPES:
        raise unprocessable(f"grant_type must be one of the following values: {', '.join(GRANT_TYPES)}")
    client = sandbox.state.oauth_clients.get(form["client_id"])
    if client is None or client.client_secret != form["client_secret"]:
        raise unauthorized(INVALID_CLIENT)
    if form.get("user_type", "Location") != "Location":
        raise bad_request("The sandbox issues Sub-Account (Location) tokens only")
    if grant_type == "authorization_code":
        grant = _redeem_code(sandbox, client.client_id, form)
    elif grant_type == "refresh_token":
        grant = _redeem_refresh(sandbox, client.client_id, form)
    else:
        raise bad_request("client_credentials is not available for this app")
    return JSONResponse(issue_tokens(sandbox, grant))


async def choose_location(request: Request) -> Response:
    """The marketplace consent page, answered as if the admin picked the sandbox's install location."""
    sandbox = sandbox_of(request)
    state, params = sandbox.state, request.query_params
    client = state.oauth_clients.get(params.get("client_id", ""))
    redirect_uri, scope = params.get("redirect_uri", ""), params.get("scope", "")
    if params.get("response_type") != "code":
        raise bad_request("response_type must be code")
    if client is None:
        raise bad_request("Invalid client_id")
    if not redirect_uri or (client.redirect_uris and redirect_uri not in client.redirect_uris):
        raise bad_request("Invalid redirect_uri")
    if not scope.split():
        raise bad_request("scope should not be empty")
    # Not GHL's: lets a test install on a location other than the configured consent location.
    location = state.locations.get(params.get("sandbox_location_id") or state.consent_location_id or "")
    if location is None:
        raise bad_request("No location to install the app on")
    installer = next((u.id for u in state.users.values() if u.location_id == location.id), "installer")
    grant = Grant(client.client_id, location.id, location.company_id, installer, tuple(scope.split()))
    code = AuthCode(new_id(40), grant, redirect_uri, sandbox.clock.time() + sandbox.config.auth.code_ttl_seconds)
    state.codes[code.code] = code
    query = {"code": code.code, **({"state": params["state"]} if "state" in params else {})}
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)


ENDPOINTS = [
    Endpoint("POST", "/oauth/token", token),
    Endpoint("GET", "/v2/oauth/chooselocation", choose_location),
    # The path older GHL docs used for the same page.
    Endpoint("GET", "/oauth/chooselocation", choose_location),
]
