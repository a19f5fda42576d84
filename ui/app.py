"""The Gradio page: chat with streamed, cited answers; sources panel; controls; corpus panel.

`build_app(services)` only lays out components and wires events; the work is done by
`ui.chat.ChatController` (chat turns), `ui.render` (HTML) and `ui.uploads` (file checks).
Two named API endpoints, `ask` and `retrieve`, are usable from `gradio_client`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import gradio as gr

from paperchat.errors import PaperchatError, StoreBusy
from paperchat.limits import check_k, check_question
from paperchat.redact import redact
from ui.chat import EXAMPLE_QUESTIONS, ChatController, ChatState, TurnGuard, make_options
from ui.render import CSS, EMPTY_SOURCES, HEAD, inert, safe_answer, safe_hit
from ui.services import Services
from ui.uploads import ACCEPTED_SUFFIXES, UploadError, discard_upload, save_upload, write_report

log = logging.getLogger(__name__)

_SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"]
_MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]

_PROGRESS = gr.Progress(track_tqdm=True)  # Gradio fills in a tracker per call; shows tqdm bars

ANY_YEAR = "any"
YEAR_CHOICES: list[str] = [ANY_YEAR, *(str(y) for y in range(date.today().year, 1969, -1))]

CHAT_CONCURRENCY = 2
"""Answers generated at once (the local model is shared; others wait in Gradio's queue)."""


def page_options() -> dict[str, Any]:
    """Return the theme, CSS and head script for `gr.mount_gradio_app` (system fonts: offline)."""
    theme = gr.themes.Soft(font=_SYSTEM_FONTS, font_mono=_MONO_FONTS)
    return {"theme": theme, "css": CSS, "head": HEAD}


def status_banner(services: Services) -> str:
    """Return the start-up banner: preparing, failed, or a one-line corpus summary."""
    if services.state == "preparing":
        return (
            '<div class="pc-banner preparing">⏳ Preparing the language model and the search '
            "index before the first answer; you can type your question meanwhile.</div>"
        )
    if services.state == "failed":
        return f'<div class="pc-banner failed">⚠️ {html.escape(services.message)}</div>'
    stats = services.corpus_stats()
    if stats is not None and stats.papers == 0:
        return (
            '<div class="pc-banner failed">The paper store is empty: run <code>paperchat '
            "ingest data/sample</code>, or upload a file on the Corpus tab.</div>"
        )
    what = f"{stats.papers} papers" if stats else "the corpus"
    if services.warning:
        return (
            f'<div class="pc-banner failed">Ready to ask about {what}, but: '
            f"{html.escape(services.warning)}</div>"
        )
    return f'<div class="pc-banner ready">Ready: ask about {what}.</div>'


def corpus_markdown(services: Services) -> str:
    """Return the corpus panel's facts."""
    stats = services.corpus_stats()
    if stats is None:
        return "Corpus details are not available."
    return (
        f"**{stats.papers}** papers in **{stats.chunks}** chunks  \n"
        f"Embedding model: {inert(stats.embedder)}  \n"
        f"Store: {inert(redact(stats.location, services.secrets))}"
    )


def build_app(services: Services) -> gr.Blocks:
    """Return the page's Blocks, wired to `services` (shared by every session)."""
    controller = ChatController(services)
    turns = TurnGuard()
    settings = services.settings
    with gr.Blocks(title="paperchat", analytics_enabled=False) as demo:
        gr.Markdown(
            "## paperchat\nAnswers from scientific paper abstracts; every claim cites its paper."
        )
        banner = gr.HTML(status_banner(services), elem_id="pc-status")
        timer = gr.Timer(1.0, active=services.state == "preparing")
        state = gr.State(ChatState())
        with gr.Tabs():
            with gr.Tab("Chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(
                            elem_id="pc-chat",
                            label="paperchat",
                            height=520,
                            examples=[{"text": q} for q in EXAMPLE_QUESTIONS],
                            placeholder="Ask a question about the papers, or pick an example.",
                            feedback_options=None,
                        )
                        retry = gr.Button("Answer extractively", visible=False, elem_id="pc-retry")
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False,
                                placeholder="Ask about the papers…",
                                scale=5,
                                elem_id="pc-question",
                            )
                            send = gr.Button("Ask", variant="primary", scale=1, elem_id="pc-ask")
                        with gr.Row():
                            year_from = gr.Dropdown(
                                YEAR_CHOICES, value=ANY_YEAR, label="From year", elem_id="pc-from"
                            )
                            year_to = gr.Dropdown(
                                YEAR_CHOICES, value=ANY_YEAR, label="To year", elem_id="pc-to"
                            )
                            k = gr.Slider(
                                1, 20, value=settings.top_k, step=1, label="Papers to retrieve"
                            )
                            backend = gr.Dropdown(
                                services.backends,
                                value=services.default_backend,
                                label="LLM backend",
                                elem_id="pc-backend",
                            )
                        new_chat = gr.Button("New chat", elem_id="pc-new")
                    with gr.Column(scale=2):
                        gr.Markdown("### Sources")
                        sources = gr.HTML(EMPTY_SOURCES, elem_id="pc-sources")
            with gr.Tab("Corpus"):
                corpus = gr.Markdown(corpus_markdown(services), elem_id="pc-corpus")
                upload = gr.File(
                    label=f"Add papers: {' '.join(ACCEPTED_SUFFIXES)} (up to "
                    f"{settings.max_upload_mb} MB)",
                    file_types=list(ACCEPTED_SUFFIXES),
                    interactive=services.corpus is not None,
                    elem_id="pc-upload",
                )
                ingest_result = gr.Markdown(elem_id="pc-ingest")
                rejected = gr.Dataframe(
                    headers=["where", "reason"],
                    label="Rejected records",
                    interactive=False,
                    elem_id="pc-rejected",
                )

        def on_ask(
            request: gr.Request,
            text: str,
            messages: list[dict[str, Any]],
            st: ChatState,
            *controls: Any,
        ) -> Iterator[tuple[Any, ...]]:
            options = make_options(*controls)
            chunks = controller.ask(text, messages, st, options)
            for view in turns.guard(_session(request), chunks):
                yield (
                    "",
                    view.messages,
                    view.sources_html,
                    view.state,
                    gr.update(visible=view.offer_fallback),
                )

        def on_example(
            messages: list[dict[str, Any]],
            st: ChatState,
            k_value: float,
            low: str,
            high: str,
            chosen: str,
            evt: gr.SelectData,
            request: gr.Request,
        ) -> Iterator[tuple[Any, ...]]:
            text = str(evt.value.get("text", ""))
            yield from on_ask(request, text, messages, st, k_value, low, high, chosen)

        def on_retry(
            request: gr.Request, messages: list[dict[str, Any]], st: ChatState, *controls: Any
        ) -> Iterator[tuple[Any, ...]]:
            options = make_options(*controls)
            fallback = st.fallback or options.backend
            chunks = controller.retry_fallback(messages, st, options)
            for view in turns.guard(_session(request), chunks):
                yield (
                    view.messages,
                    view.sources_html,
                    view.state,
                    gr.update(visible=False),
                    fallback,
                )

        def on_new_chat(request: gr.Request) -> tuple[Any, ...]:
            turns.new_chat(_session(request))
            return [], EMPTY_SOURCES, ChatState(), gr.update(visible=False), ""

        def on_tick() -> tuple[Any, ...]:
            done = services.state != "preparing"
            return status_banner(services), corpus_markdown(services), gr.Timer(active=not done)

        def on_upload(file_path: str | None, progress: gr.Progress = _PROGRESS) -> tuple:
            return _ingest_upload(services, file_path, progress)

        controls = [k, year_from, year_to, backend]
        ask_outputs = [question, chatbot, sources, state, retry]
        private: dict[str, Any] = {"api_visibility": "private"}
        answer_queue: dict[str, Any] = {
            "concurrency_id": "answer",
            "concurrency_limit": CHAT_CONCURRENCY,
        }
        for trigger in (question.submit, send.click):
            trigger(
                on_ask,
                [question, chatbot, state, *controls],
                ask_outputs,
                **private,
                **answer_queue,
            )
        chatbot.example_select(
            on_example, [chatbot, state, *controls], ask_outputs, **private, **answer_queue
        )
        retry.click(
            on_retry,
            [chatbot, state, *controls],
            [chatbot, sources, state, retry, backend],
            **private,
            **answer_queue,
        )
        # An answer still streaming is ended by `turns` (see TurnGuard), not by `cancels=`.
        new_chat.click(on_new_chat, None, [chatbot, sources, state, retry, question], **private)
        quiet: dict[str, Any] = {"show_progress": "hidden", **private}
        timer.tick(on_tick, None, [banner, corpus, timer], **quiet)
        demo.load(on_tick, None, [banner, corpus, timer], **quiet)
        upload.upload(
            on_upload,
            [upload],
            [ingest_result, rejected, corpus],
            concurrency_id="ingest",
            concurrency_limit=1,
            **private,
        )

        def on_unload(request: gr.Request) -> None:
            turns.forget(_session(request))

        demo.unload(on_unload)
        _named_endpoints(services)
    return demo


def _session(request: gr.Request | None) -> str:
    """Return the browser session's id (one per open page)."""
    return str(getattr(request, "session_hash", None) or "")


def _ingest_upload(services: Services, file_path: str | None, progress: Any) -> tuple:
    """Check, store, ingest and delete one uploaded file; return (summary, rejected, corpus).

    The file is deleted once ingested or refused; a report of the outcome stays
    (`ui.uploads.write_report`). While another process writes the store (a CLI ingest), the
    upload is refused with `StoreBusy.public`: the page user is told the store is busy, the
    server log names the writer.
    """
    if not file_path:
        return "", [], corpus_markdown(services)
    source = Path(file_path)
    if services.corpus is None:
        discard_upload(source)
        return "Uploads are not available here.", [], corpus_markdown(services)
    try:
        saved = save_upload(source, source.name, services.settings)
        try:
            progress(0.0, desc=f"Ingesting {saved.name}")
            summary = services.corpus.ingest(saved, lambda frac, desc: progress(frac, desc=desc))
        finally:
            discard_upload(saved)
        write_report(saved, summary, services.settings)
    except (UploadError, StoreBusy) as err:
        log.warning("upload %s refused: %s", source.name, err)  # the writer's details: log only
        return f"**Refused:** {inert(services.public_message(err))}", [], corpus_markdown(services)
    except PaperchatError as err:
        log.warning("upload %s failed: %s", source.name, err)
        failed = f"**Ingest failed:** {inert(services.public_message(err))}"
        return failed, [], corpus_markdown(services)
    text = (
        f"**{inert(saved.name)}**: {summary.added} added, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {len(summary.rejected)} rejected."
    )
    rows = [[where, reason] for where, reason in summary.rejected]
    return text, rows, corpus_markdown(services)


def _named_endpoints(services: Services) -> None:
    """Register the `ask` and `retrieve` API endpoints (for `gradio_client`)."""

    def ask(
        question: str,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        backend: str | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the papers, with citations.

        Args:
            question: The question.
            k: Papers to retrieve (default: the server's top_k).
            year_from: Earliest publication year, or None.
            year_to: Latest publication year, or None.
            backend: LLM backend (local, extractive, tiny, openai), or None for the default.

        Returns:
            The `Answer` as JSON: text with [n] markers, citations, abstained, sources.
        """
        try:
            question = check_question(question, services.settings)
            k = check_k(k, services.settings)
            services.wait_ready()
            answer = services.assistant(backend).ask(
                question, k=k, year_from=year_from, year_to=year_to
            )
        except PaperchatError as err:
            raise gr.Error(services.public_message(err)) from err
        return safe_answer(answer).model_dump(mode="json")

    def retrieve(
        question: str,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return the papers that best match a question (no LLM).

        Args:
            question: The question or search text.
            k: Papers to return (default: the server's top_k).
            year_from: Earliest publication year, or None.
            year_to: Latest publication year, or None.

        Returns:
            One JSON object per paper: paper_id, title, year, url, authors, snippet, score.
        """
        try:
            question = check_question(question, services.settings)
            k = check_k(k, services.settings)
            services.wait_ready()
            hits = services.assistant().retrieve(
                question, k=k, year_from=year_from, year_to=year_to
            )
        except PaperchatError as err:
            raise gr.Error(services.public_message(err)) from err
        return [safe_hit(h).model_dump(mode="json") for h in hits]

    gr.api(ask, api_name="ask")
    gr.api(retrieve, api_name="retrieve")


__all__ = ["build_app", "page_options", "status_banner"]
