"""The OpenAI-compatible HTTP API, driven by the real `openai` client against a running app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from paperchat.settings import Settings
from tests.fixtures.ui import ANSWER_TEXT, HITS, FakeBackends, start_server
from ui.access import Access
from ui.server import BackgroundServer
from ui.services import Services


def client_for(server: BackgroundServer, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)


def test_chat_completion_returns_cited_answer_with_references_and_citations(
    ui_server: BackgroundServer,
) -> None:
    reply = client_for(ui_server).chat.completions.create(
        model="paperchat",
        messages=[{"role": "user", "content": "How are concepts erased from diffusion models?"}],
    )

    message = reply.choices[0].message
    assert message.content is not None
    assert message.content.startswith(ANSWER_TEXT)
    assert "References:\n[1] Erasing Concepts from Diffusion Models (2023)." in message.content
    citations = (message.model_extra or {})["citations"]
    assert [c["number"] for c in citations] == [1, 2]
    assert [c["paper_id"] for c in citations] == [h.paper_id for h in HITS]
    assert reply.choices[0].finish_reason == "stop"


def test_streamed_chat_completion_concatenates_to_the_answer_and_ends_with_citations(
    ui_server: BackgroundServer,
) -> None:
    stream = client_for(ui_server).chat.completions.create(
        model="paperchat-extractive",
        messages=[{"role": "user", "content": "How are concepts erased?"}],
        stream=True,
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(ANSWER_TEXT)
    assert "\n\nReferences:\n[1] " in text
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 5  # streamed piece by piece, not in one block
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert [c["number"] for c in (final.model_extra or {})["citations"]] == [1, 2]


def test_follow_up_passes_earlier_turns_without_references_as_history(
    fake_services: Services, ui_server: BackgroundServer
) -> None:
    client_for(ui_server).chat.completions.create(
        model="paperchat",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "How are concepts erased?"},
            {"role": "assistant", "content": ANSWER_TEXT + "\n\nReferences:\n[1] Erasing ..."},
            {"role": "user", "content": "And without retraining?"},
        ],
        extra_body={"k": 3, "year_from": 2023},
    )

    backends = fake_services._factory
    assert isinstance(backends, FakeBackends)
    call = backends.built["extractive"].calls[-1]
    assert call["question"] == "And without retraining?"
    assert call["history"] == [
        {"role": "user", "content": "How are concepts erased?"},
        {"role": "assistant", "content": ANSWER_TEXT},
    ]
    assert (call["k"], call["year_from"], call["year_to"]) == (3, 2023, None)


def test_models_lists_paperchat_and_one_model_per_backend(ui_server: BackgroundServer) -> None:
    ids = [m.id for m in client_for(ui_server).models.list()]

    assert ids == ["paperchat", "paperchat-extractive", "paperchat-local", "paperchat-tiny"]


def test_unknown_model_is_a_404_naming_the_served_models(ui_server: BackgroundServer) -> None:
    with pytest.raises(openai.NotFoundError, match="paperchat-extractive"):
        client_for(ui_server).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )


def test_unreachable_llm_is_a_503_that_points_to_the_extractive_model(
    ui_server: BackgroundServer,
) -> None:
    with pytest.raises(openai.InternalServerError, match="paperchat-extractive") as caught:
        client_for(ui_server).chat.completions.create(
            model="paperchat-local", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 503


def test_healthz_says_ready_and_nothing_else(ui_server: BackgroundServer) -> None:
    response = httpx.get(f"{ui_server.url}/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_healthz_is_503_while_the_model_and_index_are_prepared(
    fake_services: Services,
) -> None:
    waiting = Services(fake_services.settings, FakeBackends(), backends=["extractive"])
    server = start_server(waiting)
    try:
        response = httpx.get(f"{server.url}/healthz")
        refused = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": "paperchat", "messages": [{"role": "user", "content": "hi"}]},
        )
    finally:
        server.stop()

    assert response.status_code == 503
    assert response.json() == {"status": "not ready"}
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "not_ready"


@pytest.fixture
def token_server(fake_services: Services) -> Iterator[BackgroundServer]:
    access = Access(page_auth=None, api_token="s3cret-token")
    server = start_server(fake_services, access)
    yield server
    server.stop()


def test_configured_bearer_token_is_required_for_v1(token_server: BackgroundServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        client_for(token_server, key="wrong").models.list()
    no_header = httpx.get(f"{token_server.url}/v1/models")

    ids = [m.id for m in client_for(token_server, key="s3cret-token").models.list()]

    assert no_header.status_code == 401
    assert "paperchat" in ids


def test_healthz_needs_no_token(token_server: BackgroundServer) -> None:
    assert httpx.get(f"{token_server.url}/healthz").status_code == 200


def test_page_password_opens_the_api_by_basic_auth_but_no_bearer_guess_does(
    fake_services: Services,
) -> None:
    server = start_server(fake_services, Access(page_auth=("ann", "pw"), api_token=None))
    try:
        guessed = httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer anything"})
        basic = httpx.get(f"{server.url}/v1/models", auth=("ann", "pw"))
    finally:
        server.stop()

    assert guessed.status_code == 401
    assert "PAPERCHAT_API_TOKEN" in guessed.json()["error"]["message"]
    assert basic.status_code == 200


# -- Gradio's own API (named endpoints, for gradio_client) ---------------------------------------


def test_gradio_client_ask_endpoint_returns_the_cited_answer(ui_server: BackgroundServer) -> None:
    from gradio_client import Client

    client = Client(ui_server.url, verbose=False)
    answer = client.predict(
        question="How are concepts erased?", k=2, backend="extractive", api_name="/ask"
    )

    assert answer["text"] == ANSWER_TEXT
    assert [c["number"] for c in answer["citations"]] == [1, 2]
    assert answer["citations"][0]["title"] == HITS[0].title


def test_gradio_client_retrieve_endpoint_returns_papers(ui_server: BackgroundServer) -> None:
    from gradio_client import Client

    hits = Client(ui_server.url, verbose=False).predict(
        question="concept erasure", k=1, api_name="/retrieve"
    )

    assert [h["paper_id"] for h in hits] == [HITS[0].paper_id]


def test_gradio_api_lists_only_the_named_endpoints(ui_server: BackgroundServer) -> None:
    info = httpx.get(f"{ui_server.url}/gradio_api/info").json()

    assert set(info["named_endpoints"]) == {"/ask", "/retrieve"}


@pytest.mark.slow
def test_real_extractive_assistant_answers_an_openai_client_from_the_sample_corpus(
    sample_store_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ui.wiring import real_services

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    services = real_services(sample_store_settings.model_copy(update={"llm": "extractive"}))
    services.prepare()
    server = start_server(services)
    try:
        reply = client_for(server).chat.completions.create(
            model="paperchat",
            messages=[{"role": "user", "content": "What is machine unlearning used for?"}],
        )
    finally:
        server.stop()

    message = reply.choices[0].message
    citations = (message.model_extra or {})["citations"]
    assert citations, message.content
    assert message.content is not None
    assert "[1]" in message.content.split("References:")[0]
    assert f"[1] {citations[0]['title']}" in message.content


# -- bounds and safe output ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"k": 10**6}, "PAPERCHAT_MAX_K"),
        ({"messages": [{"role": "user", "content": "x" * 3000}]}, "PAPERCHAT_MAX_QUESTION_CHARS"),
        ({"messages": [{"role": "user", "content": "q"}] * 60}, "PAPERCHAT_MAX_MESSAGES"),
        ({"messages": "not a list"}, "invalid request: messages"),
        ({"k": "many"}, "invalid request: k"),
    ],
)
def test_requests_out_of_bounds_get_a_400_in_openai_shape(
    ui_server: BackgroundServer, body: dict, words: str
) -> None:
    request = {"model": "paperchat", "messages": [{"role": "user", "content": "q"}], **body}

    response = httpx.post(f"{ui_server.url}/v1/chat/completions", json=request)

    assert response.status_code == 400
    assert words in response.json()["error"]["message"]
    known = {key: request.pop(key) for key in ("model", "messages")}
    with pytest.raises(openai.BadRequestError):  # the openai client reads it as a 400 too
        client_for(ui_server).chat.completions.create(**known, extra_body=request)


def test_script_urls_never_reach_citations_or_references(fake_services: Services) -> None:
    import tests.fixtures.ui as fixtures

    planted = [HITS[0].model_copy(update={"url": "javascript:alert(1)"}), HITS[1]]
    original = fixtures.HITS[:]
    fixtures.HITS[:] = planted
    server = start_server(fake_services)
    try:
        reply = client_for(server).chat.completions.create(
            model="paperchat", messages=[{"role": "user", "content": "q"}]
        )
    finally:
        fixtures.HITS[:] = original
        server.stop()

    message = reply.choices[0].message
    assert "javascript:" not in (message.content or "")
    assert [c["url"] for c in (message.model_extra or {})["citations"]] == [None, None]
