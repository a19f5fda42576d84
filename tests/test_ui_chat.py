"""Chat turns as the page runs them (controller level, with fake assistants)."""

from __future__ import annotations

import threading

from paperchat.errors import LLMUnavailable
from paperchat.settings import Settings
from tests.fixtures.ui import ANSWER_TEXT, FakeBackends, make_services
from ui.chat import AskOptions, ChatController, ChatState, ChatView, TurnGuard, make_options
from ui.render import EMPTY_SOURCES
from ui.services import Services


def run(controller: ChatController, question: str, state: ChatState, **options: object):
    return list(controller.ask(question, [], state, AskOptions(**options)))  # type: ignore[arg-type]


def test_answer_streams_in_growing_pieces_then_shows_linked_markers(settings: Settings) -> None:
    views = run(ChatController(make_services(settings)), "How are concepts erased?", ChatState())

    partial = [v.messages[-1]["content"] for v in views[:-1]]
    assert len(partial) > 5
    assert all(len(a) < len(b) for a, b in zip(partial, partial[1:], strict=False))
    final = views[-1]
    assert final.messages[0] == {"role": "user", "content": "How are concepts erased?"}
    assert 'href="#src-1-1"' in final.messages[-1]["content"]
    assert 'id="src-1-2"' in final.sources_html


def test_follow_up_question_gets_the_earlier_turn_as_history(settings: Settings) -> None:
    services = make_services(settings)
    controller = ChatController(services)
    state = ChatState()

    run(controller, "How are concepts erased?", state)
    views = run(controller, "Without retraining?", state)

    backends = services._factory
    assert isinstance(backends, FakeBackends)
    calls = backends.built["extractive"].calls
    assert calls[0]["history"] == []
    assert calls[1]["history"] == [
        {"role": "user", "content": "How are concepts erased?"},
        {"role": "assistant", "content": ANSWER_TEXT},
    ]
    assert 'href="#src-2-1"' in views[-1].messages[-1]["content"]  # second turn's own cards
    assert views[-1].sources_html.index("Q2:") < views[-1].sources_html.index("Q1:")


def test_controls_reach_the_assistant(settings: Settings) -> None:
    services = make_services(settings)
    options = make_options(3, "2024", "2021", "extractive")

    list(ChatController(services).ask("q", [], ChatState(), options))

    backends = services._factory
    assert isinstance(backends, FakeBackends)
    call = backends.built["extractive"].calls[0]
    assert (call["k"], call["year_from"], call["year_to"]) == (3, 2021, 2024)


def test_any_year_means_no_filter() -> None:
    options = make_options(5, "any", None, "")

    assert (options.year_from, options.year_to, options.backend) == (None, None, None)


def test_unreachable_llm_shows_a_message_and_offers_the_extractive_answer(
    settings: Settings,
) -> None:
    services = make_services(settings, default="local")  # the fake local server is down
    controller = ChatController(services)
    state = ChatState()

    failed = run(controller, "How are concepts erased?", state)[-1]

    assert failed.offer_fallback
    assert "unreachable" in failed.messages[-1]["content"]
    assert "refused the connection" in failed.messages[-1]["content"]
    assert state.failed_question == "How are concepts erased?"

    retried = list(controller.retry_fallback(failed.messages, state, AskOptions()))[-1]

    assert not retried.offer_fallback
    assert [m["role"] for m in retried.messages] == ["user", "assistant"]
    assert 'class="pc-cite"' in retried.messages[-1]["content"]


def test_blank_question_changes_nothing(settings: Settings) -> None:
    views = run(ChatController(make_services(settings)), "   ", ChatState())

    assert len(views) == 1
    assert views[0].messages == []


def test_question_asked_during_start_up_waits_and_says_so(settings: Settings) -> None:
    services = Services(settings, FakeBackends(), backends=["extractive"])
    steps = ChatController(services).ask("q", [], ChatState(), AskOptions())

    first = next(steps)
    assert "Still preparing" in first.messages[-1]["content"]
    threading.Timer(0.05, services.prepare).start()
    rest = list(steps)

    assert 'class="pc-cite"' in rest[-1].messages[-1]["content"]


def test_failed_start_up_is_reported_in_the_chat(settings: Settings) -> None:
    def broken(backend: str) -> object:
        raise RuntimeError("no store at /nowhere")

    services = Services(settings, broken, backends=["extractive"])  # type: ignore[arg-type]
    services.prepare()

    views = run(ChatController(services), "q", ChatState())

    assert services.state == "failed"
    assert "no store at /nowhere" in views[-1].messages[-1]["content"]


def test_start_up_with_a_dead_llm_still_serves_and_warns(settings: Settings) -> None:
    backends = FakeBackends(failing=set(), broken={"local"})
    services = make_services(settings, default="local", backends=backends)

    views = run(ChatController(services), "How are concepts erased?", ChatState())

    assert services.state == "ready"
    assert services.warning is not None
    assert "Extractive answers still work" in services.warning
    assert "did not start" in services.warning
    assert views[-1].offer_fallback
    assert "did not start" in views[-1].messages[-1]["content"]


def _views(closed: list[bool]):
    try:
        for i in range(5):
            yield ChatView(
                messages=[{"role": "assistant", "content": str(i)}],
                sources_html="",
                state=ChatState(),
            )
    finally:
        closed.append(True)


def test_new_chat_ends_a_turn_still_streaming_with_an_empty_view() -> None:
    turns = TurnGuard()
    closed: list[bool] = []
    stream = turns.guard("s1", _views(closed))
    first = next(stream)
    turns.new_chat("s1")
    rest = list(stream)

    assert first.messages[0]["content"] == "0"
    assert len(rest) == 1  # only the empty view: Gradio repeats a stream's last chunk
    assert rest[0].messages == [] and rest[0].sources_html == EMPTY_SOURCES
    assert closed == [True]  # the answer's generator was closed (the model stops)


def test_new_chat_in_one_session_leaves_another_session_streaming() -> None:
    turns = TurnGuard()
    stream = turns.guard("s1", _views([]))
    next(stream)
    turns.new_chat("s2")

    assert [v.messages[0]["content"] for v in stream] == ["1", "2", "3", "4"]
    turns.forget("s2")
    turns.forget("never-seen")


# -- bounds and what the chat shows --------------------------------------------------------------


def test_over_long_question_or_huge_k_is_refused_without_asking(settings: Settings) -> None:
    services = make_services(settings.model_copy(update={"max_question_chars": 20}))
    controller = ChatController(services)

    long_views = run(controller, "x" * 21, ChatState())
    k_views = run(controller, "short question", ChatState(), k=10**6)

    backends = services._factory
    assert isinstance(backends, FakeBackends)
    assert "extractive" not in backends.built or backends.built["extractive"].calls == []
    assert "PAPERCHAT_MAX_QUESTION_CHARS" in long_views[-1].messages[-1]["content"]
    assert "PAPERCHAT_MAX_K" in k_views[-1].messages[-1]["content"]


def test_chat_longer_than_max_messages_is_refused(settings: Settings) -> None:
    services = make_services(settings.model_copy(update={"max_messages": 4}))
    earlier = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}] * 2

    views = list(ChatController(services).ask("one more?", earlier, ChatState(), AskOptions()))

    assert "Start a new conversation" in views[-1].messages[-1]["content"]


def test_streamed_text_is_inert_markdown(settings: Settings) -> None:
    class Planted:
        def stream(self, question: str, **_: object):  # type: ignore[no-untyped-def]
            yield "See ![x](http://evil.example/p.png) "
            yield "and [y](javascript:alert(1))"
            raise LLMUnavailable("stopped", detail="upstream said secret things")

    services = Services(settings, lambda name: Planted(), backends=["extractive"])  # type: ignore[arg-type,return-value]
    services.prepare = lambda: None  # type: ignore[method-assign]
    services._finish("ready", "Ready.")

    views = run(ChatController(services), "q", ChatState())

    shown = [v.messages[-1]["content"] for v in views]
    assert any("evil.example" in s for s in shown)  # the streamed text was shown...
    assert not any("](" in s or "![" in s for s in shown)  # ...but never as Markdown
    assert "upstream said" not in shown[-1]  # the server's own words stay server-side
