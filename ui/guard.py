"""One gate in front of every route: Host and Origin, the credential, the body size.

`Guard` is ASGI middleware around the whole app (FastAPI with Gradio mounted on it), so it
sees every request before routing and before a byte of the body is read. In order:

1. `Host` must name this server (DNS rebinding: a page on attacker.example that re-resolves to
   127.0.0.1 still sends `Host: attacker.example`), and an `Origin`, when sent, must be this
   server (a form on another site posting to 127.0.0.1). Refused: 400 / 403.
2. When a credential is configured (`ui.access`), every route but `/healthz` needs one;
   `/login` and `/logout` are answered here. Refused: 401 (JSON, OpenAI's error shape), or,
   for a browser opening a page, a redirect to the sign-in form.
3. The declared body size must be within `max_request_kb` (`max_upload_mb` for Gradio's upload
   route), and a body must declare its size. Refused: 413 / 411. Uploads waiting in Gradio's
   cache are bounded too (429 when `PENDING_UPLOADS` files' worth are waiting).
"""

from __future__ import annotations

import asyncio
import html
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ui.access import SESSION_COOKIE, Access, Credentials

PUBLIC_PATHS = frozenset({"/healthz"})
LOGIN_PATHS = frozenset({"/login", "/login/"})
LOGOUT_PATHS = frozenset({"/logout", "/logout/"})
UPLOAD_PATH = "/gradio_api/upload"
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes allowed on top of `max_upload_mb` for the multipart envelope of one upload."""
MAX_LOGIN_BYTES = 16 * 1024
FAILED_LOGIN_DELAY_S = 0.5
"""Each failed sign-in waits this long, one at a time: about two guesses a second in all."""
PENDING_UPLOADS = 5
"""Gradio's upload cache may hold this many largest-allowed files; more waits (429)."""
PENDING_UPLOAD_TTL_S = 900.0
"""An upload not ingested within this long is deleted when the cache is full."""
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class GuardPolicy:
    """What `Guard` enforces.

    Attributes:
        access: Credentials and the Host names served.
        max_body_bytes: Largest body of any request but an upload.
        max_upload_bytes: Largest upload file (the upload route's body may add
            `MULTIPART_OVERHEAD`).
        upload_cache: Gradio's upload folder, whose waiting files are bounded; None: unbounded.
    """

    access: Access
    max_body_bytes: int
    max_upload_bytes: int
    upload_cache: Path | None = None


class Guard:
    """ASGI middleware enforcing a `GuardPolicy` on every HTTP and WebSocket request."""

    def __init__(self, app: ASGIApp, policy: GuardPolicy) -> None:
        self.app = app
        self.policy = policy
        self.credentials = Credentials(policy.access)
        self._failed_logins = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a refused request here; pass any other to the app."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._foreign(headers)
        path = scope["path"]
        if refusal is None and self.policy.access.required:
            if path in LOGIN_PATHS and scope["type"] == "http":
                await self._login(scope, receive, send, headers)
                return
            if path in LOGOUT_PATHS and scope["type"] == "http":
                await self._logout(scope, receive, send, headers)
                return
            if path not in PUBLIC_PATHS and not self._signed_in(headers):
                refusal = _unauthorized(scope, headers)
        if refusal is None and scope["type"] == "http":
            refusal = await self._body_refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await refusal(scope, receive, send)

    # -- checks ------------------------------------------------------------------------------

    def _foreign(self, headers: Headers) -> Response | None:
        host = headers.get("host", "")
        allowed = self.policy.access.allowed_hosts
        if not host or (allowed is not None and host_name(host) not in allowed):
            return _error(
                400, "this server does not answer to that Host name; set "
                "PAPERCHAT_ALLOWED_HOSTS to serve it", "invalid_request_error", "bad_host",
            )  # fmt: skip
        origin = headers.get("origin")
        if origin is not None and not self._same_site(origin, host):
            return _error(
                403, "requests from other web sites are refused", "invalid_request_error",
                "bad_origin",
            )  # fmt: skip
        return None

    def _same_site(self, origin: str, host: str) -> bool:
        netloc = urlsplit(origin).netloc.lower()
        if not netloc:
            return False  # "null": a sandboxed frame or a file:// page
        if netloc == host.lower():
            return True
        allowed = self.policy.access.allowed_hosts
        return allowed is not None and host_name(netloc) in allowed

    def _signed_in(self, headers: Headers) -> bool:
        authorization = headers.get("authorization")
        if authorization and self.credentials.header_ok(authorization):
            return True
        return self.credentials.session_ok(_session(headers))

    async def _body_refusal(self, scope: Scope, headers: Headers) -> Response | None:
        if scope["method"] not in _BODY_METHODS and "content-length" not in headers:
            return None
        upload = scope["path"] == UPLOAD_PATH
        limit = (
            self.policy.max_upload_bytes + MULTIPART_OVERHEAD
            if upload
            else self.policy.max_body_bytes
        )
        length = headers.get("content-length")
        if length is None:
            if "transfer-encoding" in headers:
                return _error(411, "send the body with a Content-Length", "invalid_request_error")
            return None
        if not length.isdigit():
            return _error(400, "bad Content-Length", "invalid_request_error")
        if int(length) > limit:
            setting = "PAPERCHAT_MAX_UPLOAD_MB" if upload else "PAPERCHAT_MAX_REQUEST_KB"
            return _error(
                413, f"the request body is {int(length):,} bytes; the limit is {limit:,} "
                f"({setting})", "invalid_request_error", "body_too_large",
            )  # fmt: skip
        if upload and self.policy.upload_cache is not None:
            cache, quota = self.policy.upload_cache, PENDING_UPLOADS * self.policy.max_upload_bytes
            if await anyio.to_thread.run_sync(pending_bytes, cache) > quota:
                return _error(
                    429, "too many uploads are waiting to be ingested; try again in a few "
                    "minutes", "rate_limit_error", "uploads_pending",
                )  # fmt: skip
        return None

    # -- sign-in -----------------------------------------------------------------------------

    async def _login(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        if scope["method"] != "POST":
            await HTMLResponse(login_page(self.policy.access))(scope, receive, send)
            return
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_LOGIN_BYTES:
            await _error(413, "sign-in form too large", "invalid_request_error")(
                scope, receive, send
            )
            return
        form = parse_qs((await _read_body(receive)).decode("utf-8", "replace"))
        user = form.get("username", [""])[0].strip()
        password = form.get("password", [""])[0]
        browser = _wants_html(headers)
        if not self.credentials.password_ok(user, password):
            async with self._failed_logins:  # one failure at a time, each slowed down
                await asyncio.sleep(FAILED_LOGIN_DELAY_S)
            response: Response = (
                HTMLResponse(login_page(self.policy.access, failed=True), status_code=401)
                if browser
                else _error(401, "wrong user name or password", "authentication_error")
            )
        else:
            response = RedirectResponse("/", 303) if browser else JSONResponse({"success": True})
            response.set_cookie(
                SESSION_COOKIE,
                self.credentials.open_session(),
                max_age=int(self.credentials.ttl_s),
                httponly=True,
                samesite="lax",
                secure=scope.get("scheme") == "https",
            )
        await response(scope, receive, send)

    async def _logout(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        self.credentials.close_session(_session(headers))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        await response(scope, receive, send)


def host_name(host: str) -> str:
    """Return the lower-case name of a Host header value, without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    name, _, port = host.rpartition(":")
    return (name if name and port.isdigit() else host).rstrip(".")


def pending_bytes(folder: Path, now: float | None = None) -> int:
    """Bytes of uploads waiting in `folder`; uploads older than `PENDING_UPLOAD_TTL_S` go first."""
    if not folder.is_dir():
        return 0
    now = time.time() if now is None else now
    total = 0
    for path in folder.rglob("*"):
        try:
            stat = path.stat()
            if not path.is_file():
                continue
            if now - stat.st_mtime > PENDING_UPLOAD_TTL_S:
                path.unlink()
                continue
        except OSError:
            continue  # removed meanwhile (ingested)
        total += stat.st_size
    return total


def _session(headers: Headers) -> str | None:
    return cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)


def _wants_html(headers: Headers) -> bool:
    return "text/html" in headers.get("accept", "")


def _unauthorized(scope: Scope, headers: Headers) -> Response:
    page = not scope["path"].startswith(("/v1/", "/gradio_api/"))
    if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and page:
        if _wants_html(headers):
            return RedirectResponse("/login", 303)
    response = _error(
        401, "sign in first: send 'Authorization: Bearer <PAPERCHAT_API_TOKEN>', or sign in "
        "at /login with PAPERCHAT_UI_AUTH's user and password", "authentication_error",
        "invalid_api_key",
    )  # fmt: skip
    response.headers["WWW-Authenticate"] = 'Bearer realm="paperchat"'
    return response


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": code}}, status_code=status
    )


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += message.get("body", b"")
        if len(body) > MAX_LOGIN_BYTES or not message.get("more_body", False):
            return body[:MAX_LOGIN_BYTES]


def login_page(access: Access, failed: bool = False) -> str:
    """Return the sign-in form (self-contained: no script, no outside resource)."""
    ways = []
    if access.page_auth is not None:
        ways.append("PAPERCHAT_UI_AUTH's user name and password")
    if access.api_token is not None:
        ways.append("any user name and PAPERCHAT_API_TOKEN as the password")
    error = '<p class="err">Wrong user name or password.</p>' if failed else ""
    return _LOGIN_HTML.format(hint=html.escape(" or ".join(ways)), error=error)


_LOGIN_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paperchat: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; display: flex; justify-content: center;
       margin-top: 12vh; }}
form {{ display: flex; flex-direction: column; gap: 0.6em; width: 20em; }}
input, button {{ font-size: 1em; padding: 0.4em; }}
.err {{ color: #a00; }} .hint {{ opacity: 0.7; font-size: 0.9em; }}
</style></head>
<body><form method="post" action="/login" id="pc-login">
<h2>paperchat</h2>{error}
<label>User name <input name="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
<p class="hint">Sign in with {hint}.</p>
</form></body></html>
"""
