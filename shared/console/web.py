"""The console's HTTP side: who may see or act, forms read safely, actions logged, pages rendered from templates."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from shared import telemetry
from shared.console import auth
from shared.http import ApiError
from shared.lazy import serial_imports

if TYPE_CHECKING:
    from jinja2 import Environment

    from shared.work import Work

log = telemetry.get_logger("console")

HERE = Path(__file__).resolve().parent
STATIC = {"htmx.min.js": "text/javascript", "console.css": "text/css"}
MAX_FORM_BYTES = 8 * 1024
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Session:
    """A signed-in request: who, and the anti-forgery token their pages' forms carry."""

    principal: auth.Principal
    token: str


def _path(req: func.HttpRequest) -> str:
    parts = urlsplit(str(req.url))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def viewer(req: func.HttpRequest, work: Work) -> Session:
    """The request's session; sign-in first when nobody is signed in, 403 without a console role."""
    principal = auth.signed_in(req, work.settings)
    if principal is None:
        raise ApiError(302, "sign_in_required", "Inicie sesión.", headers={"Location": auth.sign_in_url(_path(req))})
    if principal.role is None:
        raise ApiError(
            403,
            "console_role_required",
            "Su usuario no tiene acceso a la consola; pida a un administrador el rol de lector u operador.",
        )
    return Session(principal, auth.issue_token(auth.signing_key(work.settings), principal.user_id))


def check_form(req: func.HttpRequest, work: Work, user_id: str, form: Mapping[str, str]) -> None:
    """A state-changing request must come from the console's own pages: same site, and a valid token."""
    if not auth.same_site(req):
        raise ApiError(403, "cross_site_request", "Solicitud rechazada: no viene de las páginas de la consola.")
    token = form.get(auth.TOKEN_FIELD) or req.headers.get(auth.TOKEN_HEADER) or ""
    if not auth.token_valid(auth.signing_key(work.settings), user_id, token):
        raise ApiError(
            403,
            "csrf_token_invalid",
            "Solicitud rechazada: falta el código de seguridad del formulario o caducó. Recargue la página y"
            " vuelva a intentarlo.",
        )


def operator(req: func.HttpRequest, work: Work) -> tuple[Session, dict[str, str]]:
    """An action's session and form: signed in, from the console's pages, and with the operator role."""
    principal = auth.signed_in(req, work.settings)
    if principal is None:
        raise ApiError(401, "sign_in_required", "Inicie sesión para realizar esta acción.")
    form = read_form(req)
    check_form(req, work, principal.user_id, form)
    if not principal.may_act:
        raise ApiError(
            403,
            "operator_role_required",
            "Solo un operador puede realizar esta acción; su usuario puede consultar pero no modificar.",
        )
    return Session(principal, auth.issue_token(auth.signing_key(work.settings), principal.user_id)), form


def read_form(req: func.HttpRequest) -> dict[str, str]:
    """An urlencoded form, bounded; the first value of each field."""
    raw = req.get_body() or b""
    if len(raw) > MAX_FORM_BYTES:
        raise ApiError(413, "payload_too_large", "El formulario es demasiado grande.")
    kind = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if raw and kind != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "Se esperaba un formulario (application/x-www-form-urlencoded).")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_form", "El formulario no se pudo leer.") from None
    return {name: values[0] for name, values in fields.items()}


def logged_action(session: Session, action: str, run: Callable[[], Any], **ids: Any) -> Any:
    """Run a staff action and log it: what, on what, by whom (their id, never their name), and how it ended."""
    started = time.perf_counter()
    fields = {"actor": session.principal.user_id, "role": session.principal.role, **ids}
    try:
        result = run()
    except ApiError as exc:
        telemetry.log_operation(log, f"console.{action}", success=False, started=started, error_code=exc.code, **fields)
        raise
    telemetry.log_operation(log, f"console.{action}", success=True, started=started, **fields)
    return result


def redirect(location: str, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """After an action, back to a page (303: the browser GETs it, so a reload does not repeat the action)."""
    return func.HttpResponse(status_code=303, headers={"Location": location, **PAGE_HEADERS, **(headers or {})})


@cache
def _environment() -> Environment:
    with serial_imports:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    env.filters["local_time"] = local_time
    env.globals["TOKEN_FIELD"] = auth.TOKEN_FIELD
    return env


def local_time(value: Any) -> Any:
    """A date and time (or its ISO text, as reports store it) in the app's time zone, as staff read it."""
    with serial_imports:
        from shared.settings import get_settings
        from sync_core.times import zone

    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return value
    if moment.tzinfo is None:
        return moment.strftime("%d/%m/%Y %H:%M")
    return moment.astimezone(zone(get_settings().timezone)).strftime("%d/%m/%Y %H:%M")


@cache
def _fingerprint(name: str) -> str:
    return hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """A static file's address, changed whenever its content changes (so it can be cached for long)."""
    return f"{auth.CONSOLE_PATH}/static/{name}?v={_fingerprint(name)}"


def page(template: str, status_code: int = 200, **context: Any) -> func.HttpResponse:
    html = _environment().get_template(template).render({"session": None, "notice": None, **context})
    return func.HttpResponse(
        html, status_code=status_code, headers=dict(PAGE_HEADERS), mimetype="text/html", charset="utf-8"
    )


def error_page(error: ApiError) -> func.HttpResponse:
    """An error as the console shows it: its Spanish message and its code, with the status it carries."""
    if error.status in (301, 302, 303):
        return func.HttpResponse(status_code=error.status, headers={**PAGE_HEADERS, **error.headers})
    response = page("error.html", status_code=error.status, error=error, session=None)
    response.headers.update(error.headers)
    return response


def static_file(name: str) -> func.HttpResponse:
    kind = STATIC.get(name)
    if kind is None:
        raise ApiError(404, "not_found", "El archivo no existe.")
    body = (HERE / "static" / name).read_bytes()
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}
    return func.HttpResponse(body, status_code=200, headers=headers, mimetype=kind, charset="utf-8")
