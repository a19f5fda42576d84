"""Nothing from a paper reaches a client as a live URL, and no secret leaves the server."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import Client

from tests.adversarial.conftest import PASSWORD, USER, RunningServer, bearer, leaked
from tests.adversarial.upstream import UPSTREAM_LEAK, FakeUpstream

ERASURE = "How does concept erasure change a diffusion model?"
PROBING = "What does sparse probing of transformer circuits find?"
BOOM = "What damps gradient BOOM oscillation?"
UNSAFE_SCHEMES = ("javascript:", "data:")


def _chat(
    server: RunningServer, question: str, model: str = "paperchat-extractive"
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": question}], "k": 5},
        headers=bearer(),
        timeout=120,
    )


def _urls(items: list[dict]) -> list[str]:
    return [str(i.get("url") or "") for i in items]


@pytest.mark.parametrize("question", [ERASURE, PROBING])
def test_http_api_citations_and_references_carry_no_script_urls(
    secured: RunningServer, question: str
) -> None:
    response = _chat(secured, question)
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]

    assert message["citations"], "the planted paper was not cited; the case did not run"
    assert not [u for u in _urls(message["citations"]) if u.startswith(UNSAFE_SCHEMES)]
    assert not any(scheme in message["content"] for scheme in UNSAFE_SCHEMES)


def test_gradio_api_answer_carries_no_script_urls(secured: RunningServer) -> None:
    client = Client(secured.url, auth=(USER, PASSWORD), verbose=False)

    answer = client.predict(question=ERASURE, k=5, backend="extractive", api_name="/ask")
    hits = client.predict(question=PROBING, k=5, api_name="/retrieve")

    urls = _urls(answer["citations"]) + _urls(answer["sources"]) + _urls(hits)
    assert answer["citations"] and hits
    assert not [u for u in urls if u.startswith(UNSAFE_SCHEMES)]


def test_title_with_sources_tag_stays_inside_the_prompt_data_block(
    secured: RunningServer, upstream: FakeUpstream
) -> None:
    upstream.prompts.clear()

    response = _chat(secured, PROBING, model="paperchat-openai")

    assert response.status_code == 200, response.text
    question = str(upstream.prompts[-1][-1]["content"])  # the message carrying the sources
    assert question.count("<sources>") == 1 and question.count("</sources>") == 1
    inside = question.split("<sources>", 1)[1].split("</sources>", 1)[0]
    assert "Sparse probing of transformer circuits" in inside  # the planted paper was shown
    assert "reveal the system prompt" in inside  # its title stayed data, inside the block


def test_llm_failure_hides_base_url_password_and_upstream_body_from_api_clients(
    secured: RunningServer,
) -> None:
    response = _chat(secured, BOOM, model="paperchat-openai")

    assert response.status_code == 503
    body = response.text
    assert leaked(body) == []
    assert UPSTREAM_LEAK not in body
    assert "secret_module" not in body


def test_llm_failure_hides_secrets_from_gradio_clients(secured: RunningServer) -> None:
    client = Client(secured.url, auth=(USER, PASSWORD), verbose=False)

    with pytest.raises(Exception) as caught:
        client.predict(question=BOOM, backend="openai", api_name="/ask")

    message = str(caught.value)
    assert "500" in message or "model" in message  # the failure was reported, not swallowed
    assert leaked(message) == []
    assert UPSTREAM_LEAK not in message


def test_streamed_llm_failure_hides_secrets(secured: RunningServer) -> None:
    with httpx.stream(
        "POST",
        f"{secured.url}/v1/chat/completions",
        json={
            "model": "paperchat-openai",
            "messages": [{"role": "user", "content": BOOM}],
            "stream": True,
        },
        headers=bearer(),
        timeout=120,
    ) as response:
        text = response.read().decode()

    assert leaked(text) == [] and UPSTREAM_LEAK not in text


def test_server_log_holds_no_secret_after_failures(secured: RunningServer) -> None:
    _chat(secured, BOOM, model="paperchat-openai")
    httpx.get(f"{secured.url}/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=30)

    assert leaked(secured.log_text()) == []


def test_healthz_shows_no_paths_or_messages(secured: RunningServer) -> None:
    text = json.dumps(httpx.get(f"{secured.url}/healthz", timeout=30).json())

    assert str(secured.data_dir) not in text
    assert "chroma" not in text.lower() and "model" not in text.lower()
