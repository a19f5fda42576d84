"""The gate in front of every route (`ui.guard`), on the real app served by uvicorn.

The adversarial suite (tests/adversarial) attacks a real `paperchat ui` process; these are the
same rules, checked quickly in-process, plus the parts that need a clock or a folder.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from paperchat.settings import Settings
from tests.fixtures.ui import make_services, start_server
from ui.access import LOOPBACK_NAMES, SESSION_COOKIE, Access, Credentials
from ui.guard import PENDING_UPLOAD_TTL_S, host_name, login_page, pending_bytes
from ui.server import BackgroundServer
from ui.services import Services

TOKEN = "guard-token-1"
PAGE = ("ann", "guard-pw")


@pytest.fixture
def guarded(fake_services: Services) -> Iterator[BackgroundServer]:
    fake_services.settings = fake_services.settings.model_copy(update={"max_request_kb": 16})
    server = start_server(fake_services, Access(PAGE, TOKEN, LOOPBACK_NAMES))
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:7860", "127.0.0.1"),
        ("LocalHost:80", "localhost"),
        ("[::1]:7860", "::1"),
        ("[::1]", "::1"),
        ("example.org.", "example.org"),
        ("attacker.example:7860", "attacker.example"),
    ],
)
def test_host_name_strips_port_brackets_and_case(header: str, name: str) -> None:
    assert host_name(header) == name


def test_open_local_server_refuses_foreign_host_and_origin(ui_server: BackgroundServer) -> None:
    url = f"{ui_server.url}/v1/models"

    assert httpx.get(url).status_code == 200
    assert httpx.get(url, headers={"Host": f"[::1]:{ui_server.port}"}).status_code == 200
    assert httpx.get(url, headers={"Host": "rebind.attacker.example"}).status_code == 400
    assert httpx.get(url, headers={"Origin": "http://evil.example"}).status_code == 403
    assert httpx.get(url, headers={"Origin": ui_server.url}).status_code == 200


def test_every_credential_opens_every_route(guarded: BackgroundServer) -> None:
    login = httpx.post(f"{guarded.url}/login", data={"username": "x", "password": TOKEN})
    basic = base64.b64encode(":".join(PAGE).encode()).decode()
    ways = {
        "bearer": {"headers": {"Authorization": f"Bearer {TOKEN}"}},
        "basic": {"headers": {"Authorization": f"Basic {basic}"}},
        "token sign-in": {"cookies": login.cookies},
    }

    codes = {
        (name, path): httpx.get(f"{guarded.url}{path}", **kwargs).status_code  # type: ignore[arg-type]
        for name, kwargs in ways.items()
        for path in ("/v1/models", "/gradio_api/info", "/config")
    }

    assert set(codes.values()) == {200}, codes
    assert httpx.get(f"{guarded.url}/v1/models").status_code == 401


def test_browser_without_session_is_sent_to_the_sign_in_form(guarded: BackgroundServer) -> None:
    page = httpx.get(f"{guarded.url}/", headers={"Accept": "text/html"})
    form = httpx.get(f"{guarded.url}/login", headers={"Accept": "text/html"})

    assert (page.status_code, page.headers["location"]) == (303, "/login")
    assert form.status_code == 200 and 'name="password"' in form.text
    assert "<script" not in form.text and "http" not in form.text.split("<body>", 1)[1]


def test_wrong_password_is_refused_slowly_and_sets_no_cookie(guarded: BackgroundServer) -> None:
    started = time.monotonic()
    wrong = httpx.post(f"{guarded.url}/login", data={"username": "ann", "password": "nope"})

    assert wrong.status_code == 401
    assert SESSION_COOKIE not in wrong.cookies
    assert time.monotonic() - started >= 0.4


def test_sign_in_from_the_form_redirects_and_logout_ends_the_session(
    guarded: BackgroundServer,
) -> None:
    form = {"username": PAGE[0], "password": PAGE[1]}
    signed = httpx.post(f"{guarded.url}/login", data=form, headers={"Accept": "text/html"})
    cookies = signed.cookies

    before = httpx.get(f"{guarded.url}/v1/models", cookies=cookies).status_code
    out = httpx.get(f"{guarded.url}/logout", cookies=cookies)
    after = httpx.get(f"{guarded.url}/v1/models", cookies=cookies).status_code

    assert (signed.status_code, signed.headers["location"]) == (303, "/")
    assert before == 200 and out.status_code == 303 and after == 401


def test_body_over_the_cap_is_refused_before_parsing(guarded: BackgroundServer) -> None:
    body = {"model": "paperchat", "messages": [{"role": "user", "content": "x" * 20_000}]}

    response = httpx.post(
        f"{guarded.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert response.status_code == 413
    assert "PAPERCHAT_MAX_REQUEST_KB" in response.json()["error"]["message"]


def test_healthz_needs_no_credential_and_says_only_ready(guarded: BackgroundServer) -> None:
    response = httpx.get(f"{guarded.url}/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_sessions_expire_and_are_capped() -> None:
    now = [0.0]
    credentials = Credentials(Access(PAGE, None), ttl_s=10, clock=lambda: now[0])
    session = credentials.open_session()

    assert credentials.session_ok(session)
    now[0] = 11
    assert not credentials.session_ok(session)
    assert not credentials.session_ok("made-up")


def test_password_and_header_checks() -> None:
    both = Credentials(Access(PAGE, TOKEN))
    page_only = Credentials(Access(PAGE, None))

    assert both.password_ok("ann", "guard-pw") and both.password_ok("anyone", TOKEN)
    assert not both.password_ok("bob", "guard-pw")
    assert not page_only.password_ok("anyone", TOKEN)
    assert both.header_ok(f"Bearer {TOKEN}") and not page_only.header_ok(f"Bearer {TOKEN}")
    assert not both.header_ok("Basic !!!not-base64")


def test_login_page_names_the_credentials_it_accepts() -> None:
    assert "PAPERCHAT_UI_AUTH" in login_page(Access(PAGE, None))
    assert "PAPERCHAT_API_TOKEN" in login_page(Access(None, TOKEN))


def test_pending_uploads_older_than_the_ttl_are_deleted_and_not_counted(tmp_path: Path) -> None:
    fresh, stale = tmp_path / "a" / "fresh.jsonl", tmp_path / "b" / "stale.jsonl"
    for path in (fresh, stale):
        path.parent.mkdir()
        path.write_bytes(b"x" * 1000)
    old = time.time() - PENDING_UPLOAD_TTL_S - 5
    os.utime(stale, (old, old))

    assert pending_bytes(tmp_path) == 1000
    assert fresh.exists() and not stale.exists()


def test_upload_route_answers_429_when_too_many_uploads_wait(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = settings.data_dir / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    services = make_services(settings.model_copy(update={"max_upload_mb": 1}))
    (cache / "waiting").mkdir(parents=True)
    (cache / "waiting" / "big.jsonl").write_bytes(b"x" * (5 * 1024 * 1024 + 1))
    server = start_server(services)
    try:
        response = httpx.post(
            f"{server.url}/gradio_api/upload",
            files={"files": ("a.jsonl", b"{}\n", "application/json")},
        )
    finally:
        server.stop()

    assert response.status_code == 429
