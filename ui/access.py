"""Who may use the web server: the bind policy, the credentials, and signed-in sessions.

A loopback bind (the default 127.0.0.1) needs no credential. Any other bind needs
`PAPERCHAT_UI_AUTH` (user:password) or `PAPERCHAT_API_TOKEN`, or an explicit `--insecure`.
Whenever either is set, on any bind, every route but `/healthz` needs ONE of these
credentials (`ui.guard` checks it in front of every route):

- `Authorization: Bearer <PAPERCHAT_API_TOKEN>` (the openai client's `api_key`,
  gradio_client's `headers=`);
- `Authorization: Basic` with PAPERCHAT_UI_AUTH's user and password (`curl -u`);
- the session cookie that `POST /login` sets for UI_AUTH's user and password, or for any user
  name with the API token as password (the page's sign-in form, gradio_client's `auth=`).

All three open the same routes: the page, Gradio's API, uploads and `/v1/*` alike.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from paperchat.errors import ConfigError
from paperchat.settings import Settings

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SESSION_COOKIE = "paperchat-session"
SESSION_TTL_S = 7 * 24 * 3600.0
MAX_SESSIONS = 1024
"""Signed-in sessions kept at once; the oldest is dropped past this."""


def is_local(host: str) -> bool:
    """Return True for addresses only this machine can reach (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """Who may use the server, and by which Host names.

    Attributes:
        page_auth: (user, password) from PAPERCHAT_UI_AUTH, or None.
        api_token: PAPERCHAT_API_TOKEN, or None.
        allowed_hosts: Host header names served (lower case); None serves any.
    """

    page_auth: tuple[str, str] | None
    api_token: str | None
    allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES

    @property
    def required(self) -> bool:
        """True when every route (but /healthz) needs a credential."""
        return self.page_auth is not None or self.api_token is not None


def parse_auth(value: str) -> tuple[str, str]:
    """Split `user:password`; raise `ConfigError` if either part is empty."""
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError("PAPERCHAT_UI_AUTH must look like user:password (both non-empty)")
    return user, password


def access_for(host: str, settings: Settings, insecure: bool = False) -> Access:
    """Return the access rules for binding `host`, or refuse with `ConfigError`.

    Raises:
        ConfigError: a non-local bind with neither credential and without `insecure`.
    """
    page_auth = parse_auth(settings.ui_auth) if settings.ui_auth else None
    token = settings.api_token.get_secret_value() if settings.api_token else None
    extra = frozenset(settings.allowed_host_names)
    if is_local(host):
        return Access(page_auth, token, LOOPBACK_NAMES | {host.strip("[]").lower()} | extra)
    if page_auth is None and token is None and not insecure:
        raise ConfigError(
            f"refusing to bind {host}: anyone on the network could use this server. Set "
            "PAPERCHAT_UI_AUTH=user:password or PAPERCHAT_API_TOKEN (either one then guards "
            "every route), or pass --insecure if the network is trusted. The default "
            "127.0.0.1 needs neither."
        )
    return Access(page_auth, token, LOOPBACK_NAMES | extra if extra else None)


class Credentials:
    """Checks credentials and keeps the signed-in sessions (in memory, lost on restart).

    Args:
        access: The configured credentials.
        ttl_s: How long a session stays signed in.
        clock: Monotonic seconds; tests pass their own.
    """

    def __init__(
        self,
        access: Access,
        ttl_s: float = SESSION_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.access = access
        self.ttl_s = ttl_s
        self.clock = clock
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()

    def password_ok(self, user: str, password: str) -> bool:
        """True for UI_AUTH's user and password, or any user with the API token as password."""
        ok = False
        if self.access.page_auth is not None:
            want_user, want_password = self.access.page_auth
            ok = _same(user, want_user) & _same(password, want_password)
        if self.access.api_token is not None:
            ok = _same(password, self.access.api_token) | ok
        return ok

    def header_ok(self, authorization: str) -> bool:
        """True for a valid `Bearer <token>` or `Basic <user:password>` header value."""
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.access.api_token is not None:
            return _same(value, self.access.api_token)
        if scheme.lower() == "basic" and self.access.page_auth is not None:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, _, password = decoded.partition(":")
            want_user, want_password = self.access.page_auth
            return _same(user, want_user) & _same(password, want_password)
        return False

    def open_session(self) -> str:
        """Return a new session id (after a successful sign-in)."""
        session = secrets.token_urlsafe(32)
        with self._lock:
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session] = self.clock() + self.ttl_s
        return session

    def session_ok(self, session: str | None) -> bool:
        """True for a live session id."""
        if not session:
            return False
        with self._lock:
            expires = self._sessions.get(session)
            if expires is not None and expires < self.clock():
                del self._sessions[session]
                return False
        return expires is not None

    def close_session(self, session: str | None) -> None:
        """Sign a session out."""
        with self._lock:
            self._sessions.pop(session or "", None)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
