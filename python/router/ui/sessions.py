"""Dashboard login sessions: a gateway API key exchanged for an HttpOnly cookie, and the checks a cookie-carrying
management call must pass (timeouts, CSRF token, same-origin).

The session only remembers which key logged in (its digest): every call re-authenticates that key exactly as
the management API authenticates a bearer key, so RBAC, revocation, expiry and an owner made inactive apply to
the session at once, in every worker.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec

from ..config import DashboardConfig
from ..errors import PermissionDenied, Unauthorized
from ..governance.keys import Principal, hash_key
from ..store.ui_session_tables import UiSession

if TYPE_CHECKING:
    from ..governance.keys import KeyCache
    from ..server.exchange import Exchange
    from ..store import Store

COOKIE = "router_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_seen_at is written at most this often per session: a busy page must not turn every read into a write.
_TOUCH_EVERY = 30.0


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    key: str


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def session_cookie(ex: Exchange) -> str | None:
    """The session token from the Cookie header, if any."""
    raw = ex.headers.get("cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def over_tls(ex: Exchange) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a proxy that says so)."""
    if ex.scope.scheme == "https":
        return True
    return (ex.headers.get("x-forwarded-proto") or "").split(",")[0].strip().lower() == "https"


def set_cookie(ex: Exchange, token: str, max_age: int) -> tuple[str, str]:
    secure = "; Secure" if over_tls(ex) else ""
    return "set-cookie", f"{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"


def clear_cookie(ex: Exchange) -> tuple[str, str]:
    secure = "; Secure" if over_tls(ex) else ""
    return "set-cookie", f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"


def check_same_origin(ex: Exchange) -> None:
    """Refuse a request a browser says came from another site. SameSite=Strict already keeps the cookie off
    cross-site requests; this and the CSRF token are the second and third lines."""
    site = ex.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise PermissionDenied("Cross-site requests are refused.", code="cross_site_request")
    origin = ex.headers.get("origin")
    if origin is not None:
        # Behind a reverse proxy that rewrites Host, the browser's host arrives as X-Forwarded-Host.
        hosts = {h.strip().lower() for h in (ex.headers.get("host"), ex.headers.get("x-forwarded-host")) if h}
        if origin == "null" or urlsplit(origin).netloc.lower() not in hosts:
            raise PermissionDenied("Cross-origin requests are refused.", code="cross_site_request")


class UiSessions:
    """Create, check and end dashboard sessions; one per worker, state in the store."""

    def __init__(self, config: DashboardConfig, store: Store, keys: KeyCache, clock: Callable[[], float]) -> None:
        self.config = config
        self.store = store
        self.keys = keys
        self.clock = clock

    def login(self, key: str, principal: Principal, client: str) -> tuple[str, UiSession]:
        """A new session for an authenticated key: (the cookie's token, the stored session)."""
        now = self.clock()
        self.store.prune_ui_sessions(now, self.config.session_idle_timeout)
        token = secrets.token_urlsafe(32)
        session = UiSession(
            token_hash=token_hash(token),
            key_hash=hash_key(key),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.config.session_max_age,
            client=client.rpartition(":")[0] or client,  # the address, without the port
        )
        self.store.create_ui_session(session)
        return token, session

    def current(self, ex: Exchange) -> UiSession:
        """The caller's live session, or 401 (none, unknown, idle too long, past its absolute timeout)."""
        token = session_cookie(ex)
        if token is None or len(token) > 128:
            raise Unauthorized("Not logged in to the dashboard.", code="session_missing")
        digest = token_hash(token)
        session = self.store.get_ui_session(digest)
        now = self.clock()
        if session is None:
            raise Unauthorized("The dashboard session is unknown or has ended; log in again.", code="session_expired")
        if now >= session.expires_at or now - session.last_seen_at >= self.config.session_idle_timeout:
            self.store.delete_ui_session(digest)
            raise Unauthorized("The dashboard session has timed out; log in again.", code="session_expired")
        if now - session.last_seen_at >= _TOUCH_EVERY:
            self.store.touch_ui_session(digest, now)
        return session

    def authenticate(self, ex: Exchange) -> Principal | Awaitable[Principal]:
        """A management call carrying the session cookie instead of a key: the session's key, re-authenticated;
        state-changing methods also need the session's CSRF token and a same-origin request."""
        session = self.current(ex)
        if ex.scope.method not in SAFE_METHODS:
            check_same_origin(ex)
            sent = ex.headers.get(CSRF_HEADER) or ""
            if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                raise PermissionDenied(
                    f"Missing or wrong {CSRF_HEADER} header: state-changing calls from the dashboard need the "
                    "session's CSRF token.",
                    code="csrf_token_invalid",
                )
        return self.keys.authenticate_digest(session.key_hash)

    def logout(self, ex: Exchange) -> None:
        token = session_cookie(ex)
        if token is not None:
            self.store.delete_ui_session(token_hash(token))
