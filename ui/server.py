"""Serving: the FastAPI app with Gradio mounted, behind one gate (`ui.guard`), run by uvicorn.

Who may connect is `ui.access`'s policy (local by default; credentials for anything else);
`ui.guard.Guard` enforces it, with the Host check and the body-size caps, in front of every
route. `serve` also keeps Gradio's upload cache inside the data dir and redacts secrets from
every log line.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI
from gradio.utils import get_upload_folder

from paperchat.redact import install_log_redaction
from paperchat.settings import Settings
from ui.access import Access
from ui.api import build_api
from ui.app import build_app, page_options
from ui.guard import Guard, GuardPolicy
from ui.services import Services

MB = 1024 * 1024


def create_app(services: Services, access: Access) -> FastAPI:
    """Return the app serving /v1/*, /healthz and the Gradio page at /, behind `Guard`."""
    settings = services.settings
    api = build_api(services)
    demo = build_app(services)
    demo.queue(default_concurrency_limit=4)
    app = gr.mount_gradio_app(
        api,
        demo,
        path="/",
        max_file_size=f"{settings.max_upload_mb}mb",
        ssr_mode=False,
        footer_links=["api"],
        **page_options(),
    )
    policy = GuardPolicy(
        access,
        max_body_bytes=settings.max_request_kb * 1024,
        max_upload_bytes=settings.max_upload_mb * MB,
        upload_cache=Path(get_upload_folder()),
    )
    app.add_middleware(Guard, policy=policy)
    return app


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
    config = uvicorn.Config(app, host=host, port=port, log_level="info")  # sets up its logging
    root = logging.getLogger()
    if not root.handlers:  # paperchat's own warnings and errors, redacted like uvicorn's
        root.addHandler(logging.StreamHandler(sys.stderr))
    install_log_redaction(services.secrets)
    services.start_preparing()
    uvicorn.Server(config).run()
