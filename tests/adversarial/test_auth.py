"""One credential for every route: each route the app has refuses a request without it.

The routes are enumerated from the app itself (FastAPI with Gradio mounted), so a route added
later is attacked too without editing this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import openai
import pytest
from gradio_client import Client

from paperchat.settings import Settings
from tests.adversarial.conftest import (
    PASSWORD,
    TOKEN,
    USER,
    RunningServer,
    bearer,
    login_cookies,
)

PUBLIC = {"/healthz", "/logout"}
"""Routes answered without a credential: readiness, and sign-out (which only clears a cookie)."""

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_DUMMY = {"api_name": "ask", "size": "192", "path_or_url": "/etc/passwd", "url_path": "x"}


def app_routes(tmp: Path) -> list[tuple[str, str]]:
    """(method, path) of every route of the app `paperchat ui` serves, params filled in."""
    from tests.fixtures.ui import make_services
    from ui.server import create_app

    try:
        from ui.access import access_for
    except ImportError:  # before ui.access existed (the suite also runs against old code)
        from ui.server import access_for  # type: ignore[attr-defined,no-redef]

    settings = Settings(
        _env_file=None,
        data_dir=tmp / "data",
        model_dir=tmp / "models",
        llm="extractive",
        api_token=TOKEN,
        ui_auth=f"{USER}:{PASSWORD}",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(tmp / "gradio"))
        app = create_app(make_services(settings), access_for("127.0.0.1", settings))
    found: set[tuple[str, str]] = set()
    _walk(app.routes, "", found)
    return sorted(found)


def _walk(routes: list[object], prefix: str, found: set[tuple[str, str]]) -> None:
    for route in routes:
        path = prefix + str(getattr(route, "path", "") or "")
        children = getattr(route, "routes", None)
        if children is None and hasattr(route, "original_router"):  # starlette's include
            children = route.original_router.routes
        if children:
            _walk(list(children), path.rstrip("/"), found)
            continue
        concrete = _PARAM.sub(lambda m: _DUMMY.get(m.group(1), "x"), path) or "/"
        for method in getattr(route, "methods", None) or {"GET"}:
            found.add((method, concrete))


def _status(
    server: RunningServer, method: str, path: str, headers: dict[str, str] | None = None
) -> int:
    """The status of one request; the body is not read (some routes stream forever)."""
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    with httpx.stream(
        method,
        server.url + path,
        headers={"Accept": "application/json", **(headers or {})},
        timeout=30,
        **body,  # type: ignore[arg-type]
    ) as response:
        return response.status_code


@pytest.mark.parametrize("target", ["secured", "token_only"])
def test_every_route_refuses_a_request_without_the_credential(
    request: pytest.FixtureRequest, tmp_path: Path, target: str
) -> None:
    server: RunningServer = request.getfixturevalue(target)
    routes = app_routes(tmp_path)
    assert ("POST", "/v1/chat/completions") in routes and ("POST", "/gradio_api/upload") in routes
    routes += [("GET", "/no/such/route"), ("POST", "/gradio_api/run/retrieve")]

    answered = {}
    for method, path in routes:
        if path in PUBLIC:
            continue
        status = _status(server, method, path)
        if status != 401:
            answered[f"{method} {path}"] = status

    assert answered == {}, f"{len(answered)} of {len(routes)} routes served without credential"


@pytest.mark.parametrize("target", ["secured", "token_only"])
def test_wrong_token_is_refused_everywhere(request: pytest.FixtureRequest, target: str) -> None:
    server: RunningServer = request.getfixturevalue(target)
    wrong = {"Authorization": "Bearer not-the-token"}

    codes = {
        path: _status(server, method, path, headers=wrong)
        for method, path in [
            ("GET", "/v1/models"),
            ("GET", "/gradio_api/info"),
            ("POST", "/gradio_api/call/ask"),
            ("GET", "/config"),
            ("GET", "/"),
        ]
    }

    assert set(codes.values()) == {401}, codes


def test_healthz_reveals_ready_and_nothing_else(secured: RunningServer) -> None:
    response = httpx.get(f"{secured.url}/healthz", timeout=30)

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_openai_client_with_the_token_is_answered(secured: RunningServer) -> None:
    client = openai.OpenAI(base_url=f"{secured.url}/v1", api_key=TOKEN, max_retries=0)

    reply = client.chat.completions.create(
        model="paperchat-extractive",
        messages=[
            {"role": "user", "content": "How does concept erasure change a diffusion model?"}
        ],
    )

    assert reply.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{secured.url}/v1", api_key="wrong", max_retries=0).models.list()


def test_gradio_client_with_the_page_password_is_answered(secured: RunningServer) -> None:
    client = Client(secured.url, auth=(USER, PASSWORD), verbose=False)

    hits = client.predict(question="sparse probing", k=2, api_name="/retrieve")

    assert hits and all("paper_id" in h for h in hits)


def test_gradio_client_with_the_bearer_token_is_answered(secured: RunningServer) -> None:
    client = Client(secured.url, headers=bearer(), verbose=False)

    hits = client.predict(question="sparse probing", k=2, api_name="/retrieve")

    assert hits and all("paper_id" in h for h in hits)


def test_gradio_client_without_credentials_cannot_connect(token_only: RunningServer) -> None:
    with pytest.raises(Exception, match="(?i)credential|401|login|authenticat"):
        Client(token_only.url, verbose=False).predict(question="q", api_name="/retrieve")


def test_page_session_cookie_opens_the_api_too(secured: RunningServer) -> None:
    cookies = login_cookies(secured)

    response = httpx.get(f"{secured.url}/v1/models", cookies=cookies, timeout=30)

    assert response.status_code == 200
    assert "paperchat" in response.text
