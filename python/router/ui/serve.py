"""The `/ui` routes: the dashboard's static files (read once per worker from the package), login, logout and
the session's CSRF token. Everything else the dashboard shows comes from the management API."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..admin.routing import decode_body
from ..errors import NotFound
from ..governance.keys import Principal, awaited
from ..governance.rbac import actor_for
from ..store.records import AuditEvent
from ..store.ui_session_tables import UiSession
from .sessions import LoginBody, check_same_origin, clear_cookie, set_cookie

if TYPE_CHECKING:
    from ..server.app import App
    from ..server.exchange import Exchange

PREFIX = "/ui"
STATIC = Path(__file__).parent / "static"
# Scripts only from our own files (no inline script, no eval), no framing, no referrer leaking key ids in URLs.
SECURITY_HEADERS = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
]
_LOGIN_BODY_LIMIT = 4096
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


class Asset(msgspec.Struct, frozen=True):
    body: bytes
    content_type: str
    etag: str


def load_assets(root: Path = STATIC) -> dict[str, Asset]:
    """Every file under static/, by URL path. Only these paths are ever served: no file system lookups per
    request, so no path traversal."""
    assets = {}
    for file in sorted(root.rglob("*")):
        if not file.is_file() or file.name.startswith("."):
            continue
        body = file.read_bytes()
        kind = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[f"{PREFIX}/{file.relative_to(root).as_posix()}"] = Asset(body, kind, etag)
    return assets


def _send_asset(ex: Exchange, asset: Asset) -> None:
    headers = [*SECURITY_HEADERS, ("cache-control", "no-cache"), ("etag", asset.etag)]
    if ex.headers.get("if-none-match") == asset.etag:
        ex.send_bytes(304, b"", asset.content_type, headers)
        return
    ex.send_bytes(200, asset.body, asset.content_type, headers)


def _send_json(ex: Exchange, status: int, payload: object, extra: list[tuple[str, str]] | None = None) -> None:
    ex.send_bytes(
        status, msgspec.json.encode(payload), extra=[*SECURITY_HEADERS, ("cache-control", "no-store"), *(extra or [])]
    )


async def dispatch(app: App, ex: Exchange) -> None:
    ui = app.ui_sessions
    if ui is None:
        raise NotFound(f"Unknown route: {ex.scope.method} {ex.scope.path}.", code="unknown_route")
    method, path = ex.scope.method, ex.scope.path
    if path == PREFIX and method in ("GET", "HEAD"):
        ex.send_bytes(308, b"", "text/plain", [*SECURITY_HEADERS, ("location", PREFIX + "/")])
        return
    if path == PREFIX + "/login" and method == "POST":
        await _login(app, ex)
        return
    if path == PREFIX + "/logout" and method == "POST":
        # Same checks as any state-changing call: a forged logout is a nuisance, not a breach, but still refused.
        principal = await awaited(ui.authenticate(ex))
        ui.logout(ex)
        _audit(app, principal, "ui.logout", ex)
        _send_json(ex, 200, {"logged_out": True}, [clear_cookie(ex)])
        return
    if path == PREFIX + "/session" and method == "GET":
        session = ui.current(ex)
        principal = await awaited(ui.keys.authenticate_digest(session.key_hash))
        _send_json(ex, 200, _session_view(app, principal, session))
        return
    if method in ("GET", "HEAD"):
        asset = app.ui_assets.get(PREFIX + "/index.html" if path == PREFIX + "/" else path)
        if asset is not None:
            _send_asset(ex, asset)
            return
    raise NotFound(f"Unknown route: {method} {path}.", code="unknown_route")


def _session_view(app: App, principal: Principal, session: UiSession) -> dict[str, object]:
    actor = actor_for(principal, app.store)
    return {
        "csrf_token": session.csrf_token,
        "expires_at": session.expires_at,
        "idle_timeout": app.config.dashboard.session_idle_timeout,
        "you": {"actor": actor.id, "role": actor.role, "user_id": actor.user_id, "key_name": principal.name},
    }


def _audit(app: App, principal: Principal, action: str, ex: Exchange) -> None:
    """Sign-ins and sign-outs in the audit log (a plain append: no change epoch, no key cache reload)."""
    actor = actor_for(principal, app.store)
    detail = {"client": ex.scope.client.rpartition(":")[0] or ex.scope.client, "key_name": principal.name}
    app.store.append_audit([AuditEvent(app.clock(), actor.id, action, "ui_session", principal.key_id, detail=detail)])


async def _login(app: App, ex: Exchange) -> None:
    check_same_origin(ex)
    raw = await app.read_body(ex, _LOGIN_BODY_LIMIT)
    key = decode_body(raw, LoginBody).key.strip()
    # Exactly the management API's check of a bearer key, failure budget included.
    principal = await awaited(app.authenticate_key(ex, key))
    assert app.ui_sessions is not None
    token, session = app.ui_sessions.login(key, principal, ex.scope.client)
    _audit(app, principal, "ui.login", ex)
    max_age = int(app.config.dashboard.session_max_age)
    _send_json(ex, 200, _session_view(app, principal, session), [set_cookie(ex, token, max_age)])
