"""Serving: the bind policy (local by default), the FastAPI app with Gradio mounted, uvicorn.

Binding anything but a loopback address needs `PAPERCHAT_UI_AUTH` (user:password for the page)
or an explicit `--insecure`; the HTTP API then needs `Authorization: Bearer
<PAPERCHAT_API_TOKEN>`. A configured API token is enforced on every bind.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from dataclasses import dataclass

import gradio as gr
import uvicorn
from fastapi import FastAPI

from paperchat.errors import ConfigError
from paperchat.settings import Settings
from ui.api import BearerAuth, build_api
from ui.app import build_app, page_options
from ui.services import Services


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
    """Who may use the server.

    Attributes:
        page_auth: (user, password) for the Gradio page, or None.
        api_token: Bearer token for /v1/*, or None.
        api_token_required: /v1/* refuses requests without a token (non-local bind).
    """

    page_auth: tuple[str, str] | None
    api_token: str | None
    api_token_required: bool


def parse_auth(value: str) -> tuple[str, str]:
    """Split `user:password`; raise `ConfigError` if either part is empty."""
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError("PAPERCHAT_UI_AUTH must look like user:password (both non-empty)")
    return user, password


def access_for(host: str, settings: Settings, insecure: bool = False) -> Access:
    """Return the access rules for binding `host`, or refuse with `ConfigError`.

    Raises:
        ConfigError: a non-local bind without `PAPERCHAT_UI_AUTH` and without `insecure`.
    """
    page_auth = parse_auth(settings.ui_auth) if settings.ui_auth else None
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if is_local(host):
        return Access(page_auth, token, api_token_required=False)
    if page_auth is None and not insecure:
        raise ConfigError(
            f"refusing to bind {host}: anyone on the network could use this server. Set "
            "PAPERCHAT_UI_AUTH=user:password (and PAPERCHAT_API_TOKEN for the HTTP API), or "
            "pass --insecure if the network is trusted. The default 127.0.0.1 needs neither."
        )
    return Access(page_auth, token, api_token_required=not insecure)


def create_app(services: Services, access: Access) -> FastAPI:
    """Return the FastAPI app serving /v1/*, /healthz and the Gradio page at /."""
    api = build_api(services, BearerAuth(access.api_token, access.api_token_required))
    demo = build_app(services)
    demo.queue(default_concurrency_limit=4)
    return gr.mount_gradio_app(
        api,
        demo,
        path="/",
        auth=access.page_auth,
        auth_message="paperchat: sign in with PAPERCHAT_UI_AUTH's user and password.",
        max_file_size=f"{services.settings.max_upload_mb}mb",
        ssr_mode=False,
        footer_links=["api"],
        **page_options(),
    )


def use_data_dir_for_uploads(settings: Settings) -> None:
    """Point Gradio's upload cache inside the data dir, so uploads never land elsewhere."""
    folder = (settings.data_dir / "gradio-uploads").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)


class BackgroundServer:
    """uvicorn running an app in a daemon thread (tests and embedding); `stop()` ends it."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="paperchat-http", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        """Start serving and wait until the socket listens."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if not self._server.started:
            raise RuntimeError("the web server did not start; see the log above")
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:7860."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=30)


def serve(services: Services, host: str, port: int, access: Access) -> None:
    """Prepare in the background and serve until interrupted (blocking)."""
    use_data_dir_for_uploads(services.settings)
    app = create_app(services, access)
    services.start_preparing()
    uvicorn.run(app, host=host, port=port, log_level="info")
