"""The page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Needs `apt-get install -y chromium` (the Playwright Python package is a dev dependency; its
own browser download is not used). Screenshots go to `test-artifacts/` at the repo root.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from paperchat.settings import Settings
from tests.fixtures.ui import ANSWER_TEXT, FakeBackends, FakeCorpus, make_services, start_server
from ui.server import BackgroundServer
from ui.services import Services

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_MS = 60_000  # generous: two CPU cores shared with other test runs


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("browser tests need Debian's Chromium: apt-get install -y chromium")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A Playwright page on one server, with the helpers the tests share."""

    def __init__(self, browser: Any, server: BackgroundServer) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.outside: list[str] = []
        self.page.route("**/*", self._only_local)
        self.page.goto(server.url, wait_until="load")
        self.page.locator("#pc-question textarea").wait_for()

    def _only_local(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "http://localhost:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def ask(self, question: str) -> None:
        self.page.locator("#pc-question textarea").fill(question)
        self.page.locator("#pc-ask").click()

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


OpenPage = Callable[[Services], Page]


@pytest.fixture
def open_page(browser: Any) -> Iterator[OpenPage]:
    pages: list[Page] = []
    servers: list[BackgroundServer] = []

    def _open(services: Services) -> Page:
        server = start_server(services)
        servers.append(server)
        pages.append(Page(browser, server))
        return pages[-1]

    yield _open
    for page in pages:
        page.close()
    for server in servers:
        server.stop()


def test_question_streams_an_answer_whose_marker_links_to_its_source_card(
    settings: Settings, open_page: OpenPage
) -> None:
    gate = threading.Event()
    view: Page = open_page(make_services(settings, backends=FakeBackends(gate=gate)))

    view.ask("How are concepts erased from diffusion models?")
    first_half = ANSWER_TEXT.split(" [1]")[0][:40]
    view.page.locator('#pc-chat [data-testid="bot"]', has_text=first_half).wait_for()
    streaming_markers = view.page.locator("#pc-chat a.pc-cite").count()
    gate.set()
    marker = view.page.locator("#pc-chat a.pc-cite").first
    marker.wait_for()

    assert streaming_markers == 0  # half an answer was shown before the rest arrived
    assert marker.inner_text() == "[1]"
    assert marker.get_attribute("href") == "#src-1-1"
    card = view.page.locator("#pc-sources #src-1-1")
    card.wait_for()
    assert card.is_visible()
    assert "Erasing Concepts from Diffusion Models" in card.inner_text()
    assert "cross-attention layers to erase a concept" in card.locator("mark").inner_text()
    marker.click()
    view.page.locator("#src-1-1.pc-flash").wait_for()  # the click scrolled to and lit the card
    assert view.outside == []
    view.shot("ui-fake.png")


def test_two_sessions_keep_their_own_chats_and_a_slow_answer_blocks_no_one(
    settings: Settings, open_page: OpenPage
) -> None:
    gate = threading.Event()
    slow = "Slow question from Ann?"
    services = make_services(settings, backends=FakeBackends(gate=gate, slow_question=slow))
    ann = open_page(services)
    bob = Page(ann.context.browser, ann.server)
    try:
        ann.ask(slow)
        ann.page.locator('#pc-chat [data-testid="bot"]', has_text="Concepts are").wait_for()
        bob.ask("Quick question from Bob?")
        bob.page.locator("#pc-chat a.pc-cite").first.wait_for()  # while Ann's answer waits
        bob_chat = bob.page.locator("#pc-chat").inner_text()
        ann_waiting = ann.page.locator("#pc-chat a.pc-cite").count()
        gate.set()
        ann.page.locator("#pc-chat a.pc-cite").first.wait_for()
        ann_chat = ann.page.locator("#pc-chat").inner_text()
    finally:
        gate.set()
        bob.close()

    assert ann_waiting == 0
    assert "Quick question from Bob?" in bob_chat and slow not in bob_chat
    assert slow in ann_chat and "Quick question from Bob?" not in ann_chat


def test_example_question_on_the_empty_chat_is_answered_when_clicked(
    settings: Settings, open_page: OpenPage
) -> None:
    view: Page = open_page(make_services(settings))

    view.page.get_by_text(
        "How can a concept be erased from a text-to-image diffusion model?"
    ).click()
    view.page.locator("#pc-chat a.pc-cite").first.wait_for()

    user = view.page.locator('#pc-chat [data-testid="user"]').first.inner_text()
    assert user.strip() == "How can a concept be erased from a text-to-image diffusion model?"


def test_unreachable_llm_shows_a_message_and_the_extractive_answer_on_request(
    settings: Settings, open_page: OpenPage
) -> None:
    view: Page = open_page(make_services(settings, default="local"))

    view.ask("How are concepts erased?")
    view.page.locator("#pc-chat", has_text="is unreachable").wait_for()
    retry = view.page.locator("#pc-retry")
    retry.wait_for()
    retry.click()
    view.page.locator("#pc-chat a.pc-cite").first.wait_for()

    assert view.page.locator("#pc-chat", has_text="is unreachable").count() == 0
    assert view.page.locator("#pc-backend input").input_value() == "extractive"


def test_new_chat_clears_the_conversation_and_the_sources(
    settings: Settings, open_page: OpenPage
) -> None:
    view: Page = open_page(make_services(settings))
    view.ask("How are concepts erased?")
    view.page.locator("#pc-chat a.pc-cite").first.wait_for()

    view.page.locator("#pc-new").click()
    view.page.locator("#pc-sources .pc-empty").wait_for()

    # The chat and the sources panel are separate DOM updates: wait, then check both.
    expect(view.page.locator('#pc-chat [data-testid="bot"]')).to_have_count(0)
    expect(view.page.locator("#pc-sources .pc-card")).to_have_count(0)


def test_new_chat_stops_an_answer_still_streaming(settings: Settings, open_page: OpenPage) -> None:
    gate = threading.Event()
    view: Page = open_page(make_services(settings, backends=FakeBackends(gate=gate)))
    view.ask("How are concepts erased from diffusion models?")
    first_half = ANSWER_TEXT.split(" [1]")[0][:40]
    view.page.locator('#pc-chat [data-testid="bot"]', has_text=first_half).wait_for()

    view.page.locator("#pc-new").click()
    expect(view.page.locator('#pc-chat [data-testid="bot"]')).to_have_count(0)
    gate.set()  # the cancelled answer may now finish server-side; the page must not show it
    view.page.wait_for_timeout(1500)

    assert view.page.locator('#pc-chat [data-testid="bot"]').count() == 0
    assert view.page.locator("#pc-chat a.pc-cite").count() == 0


def test_page_says_it_is_preparing_until_the_model_and_index_are_ready(
    settings: Settings, open_page: OpenPage
) -> None:
    services = make_services(settings, prepare=False)
    view: Page = open_page(services)
    preparing = view.page.locator("#pc-status", has_text="Preparing").is_visible()

    services.prepare()
    view.page.locator("#pc-status", has_text="Ready: ask about 445 papers").wait_for()

    assert preparing


def test_uploaded_file_is_ingested_and_its_rejected_records_listed(
    settings: Settings, open_page: OpenPage, tmp_path: Path
) -> None:
    services = make_services(settings)
    view: Page = open_page(services)
    upload = tmp_path / "my papers.jsonl"
    upload.write_text('{"id": "1", "title": "T", "abstract": "A."}\n', encoding="utf-8")

    view.page.get_by_role("tab", name="Corpus").click()
    assert "445" in view.page.locator("#pc-corpus").inner_text()
    view.page.locator("#pc-upload input[type=file]").set_input_files(str(upload))
    view.page.locator("#pc-ingest", has_text="2 added").wait_for()

    assert isinstance(services.corpus, FakeCorpus)
    [stored] = services.corpus.ingested
    assert stored.name.endswith("_my_papers.jsonl")
    assert "abstract is empty" in view.page.locator("#pc-rejected").inner_text()


@pytest.mark.slow
def test_real_extractive_assistant_answers_from_the_sample_corpus_in_the_browser(
    sample_store_settings: Settings,
    open_page: OpenPage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from ui.wiring import real_services

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    services = real_services(sample_store_settings.model_copy(update={"llm": "extractive"}))
    services.prepare()
    assert services.state == "ready", services.message
    view: Page = open_page(services)

    view.ask("How can a concept be erased from a text-to-image diffusion model?")
    marker = view.page.locator("#pc-chat a.pc-cite").first
    marker.wait_for()

    card = view.page.locator(f"#pc-sources {marker.get_attribute('href')}")
    card.wait_for()
    assert card.is_visible()
    assert card.locator(".pc-card-title").inner_text().strip()
    view.shot("ui.png")


def test_sign_in_form_opens_the_page_and_the_page_answers(settings: Settings, browser: Any) -> None:
    from ui.access import Access

    server = start_server(make_services(settings), Access(("ann", "pw"), "tok"))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(server.url, wait_until="load")
        on_form = page.url
        page.locator("input[name=username]").fill("ann")
        page.locator("input[name=password]").fill("wrong")
        page.locator("button[type=submit]").click()
        page.get_by_text("Wrong user name or password").wait_for()
        page.locator("input[name=username]").fill("ann")
        page.locator("input[name=password]").fill("pw")
        page.locator("button[type=submit]").click()
        page.locator("#pc-question textarea").fill("How are concepts erased?")
        page.locator("#pc-ask").click()
        marker = page.locator("#pc-chat a.pc-cite").first
        marker.wait_for()
        answered = marker.inner_text()
    finally:
        context.close()
        server.stop()

    assert on_form.endswith("/login")
    assert answered == "[1]"
