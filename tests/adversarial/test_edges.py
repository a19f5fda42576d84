"""The edges of the real server: foreign Host and Origin, oversize bodies, unbounded requests."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from gradio_client import Client

from tests.adversarial.conftest import PASSWORD, USER, RunningServer, bearer, login_cookies

QUESTION = "How does concept erasure change a diffusion model?"


def _chat(server: RunningServer, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "paperchat-extractive", **body},
        headers={**bearer(), **headers},
        timeout=120,
    )


def _ask(question: str = QUESTION, **extra: object) -> dict:
    return {"messages": [{"role": "user", "content": question}], **extra}


# -- DNS rebinding and cross-site requests -------------------------------------------------------


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "10.0.0.7"])
def test_foreign_host_header_is_refused_even_with_the_token(
    secured: RunningServer, host: str
) -> None:
    headers = {"Host": host.format(port=secured.port)}

    page = httpx.get(f"{secured.url}/", headers={**bearer(), **headers}, timeout=30)
    api = _chat(secured, _ask(), **headers)

    assert (page.status_code, api.status_code) == (400, 400)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}"])
def test_loopback_host_names_are_served(secured: RunningServer, host: str) -> None:
    response = httpx.get(
        f"{secured.url}/v1/models",
        headers={**bearer(), "Host": host.format(port=secured.port)},
        timeout=30,
    )

    assert response.status_code == 200


def test_request_from_a_foreign_web_page_is_refused(secured: RunningServer) -> None:
    response = _chat(secured, _ask(), Origin="http://evil.example")

    assert response.status_code == 403


# -- body size: credential first, then the cap, both before the body is read ---------------------


def _raw_post_without_body(server: RunningServer, length: int, auth: bool) -> tuple[int, float]:
    """Send only the headers of a POST announcing `length` bytes; return (status, seconds)."""
    head = [
        "POST /v1/chat/completions HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if auth:
        head.append(f"Authorization: {bearer()['Authorization']}")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
        except TimeoutError:
            return -1, time.monotonic() - started
    return int(status_line.split()[1]), time.monotonic() - started


def test_unauthenticated_huge_body_is_refused_before_it_is_read(secured: RunningServer) -> None:
    status, seconds = _raw_post_without_body(secured, 1_000_000_000, auth=False)

    assert status == 401 and seconds < 10


def test_authenticated_huge_body_is_refused_before_it_is_read(secured: RunningServer) -> None:
    status, seconds = _raw_post_without_body(secured, 1_000_000_000, auth=True)

    assert status == 413 and seconds < 10


def test_oversize_upload_is_refused(secured: RunningServer) -> None:
    response = httpx.post(
        f"{secured.url}/gradio_api/upload",
        files={"files": ("big.jsonl", b"x" * (2 * 1024 * 1024), "application/json")},
        cookies=login_cookies(secured),
        timeout=60,
    )

    assert response.status_code == 413


# -- bounds: k, question length, message count ---------------------------------------------------


def _refused(response: httpx.Response, word: str) -> bool:
    return 400 <= response.status_code < 500 and word in response.text


def test_huge_k_is_refused_by_the_http_api(secured: RunningServer) -> None:
    assert _refused(_chat(secured, _ask(k=10**6)), "k")


def test_huge_question_is_refused_by_the_http_api(secured: RunningServer) -> None:
    response = _chat(secured, _ask("concept erasure " * 10_000))

    assert _refused(response, "question")


def test_too_many_messages_are_refused_by_the_http_api(secured: RunningServer) -> None:
    turns = [{"role": "user", "content": f"question {i}"} for i in range(5_000)]

    response = _chat(secured, {"messages": [*turns, {"role": "user", "content": QUESTION}]})

    assert _refused(response, "messages")


@pytest.fixture(scope="module")
def gradio(secured: RunningServer) -> Client:
    return Client(secured.url, auth=(USER, PASSWORD), verbose=False)


@pytest.mark.parametrize("endpoint", ["/ask", "/retrieve"])
def test_huge_k_is_refused_by_the_gradio_api(gradio: Client, endpoint: str) -> None:
    with pytest.raises(Exception, match=r"\bk\b"):
        gradio.predict(question=QUESTION, k=10**6, api_name=endpoint)


@pytest.mark.parametrize("endpoint", ["/ask", "/retrieve"])
def test_huge_question_is_refused_by_the_gradio_api(gradio: Client, endpoint: str) -> None:
    with pytest.raises(Exception, match="(?i)question"):
        gradio.predict(question="concept erasure " * 10_000, api_name=endpoint)
