"""The page in headless Chromium, signed in: planted papers neither fetch nor run anything."""

from __future__ import annotations

from typing import Any

import pytest

from tests.adversarial.conftest import RunningServer, leaked, open_signed_in

pytestmark = pytest.mark.browser

ERASURE = "How does concept erasure change a diffusion model?"


def test_planted_images_links_and_scripts_are_inert_on_the_page(
    browser: Any, secured: RunningServer
) -> None:
    view = open_signed_in(browser, secured)
    try:
        view.page.locator("#pc-question textarea").fill(ERASURE)
        view.page.locator("#pc-ask").click()
        view.page.locator("#pc-chat a.pc-cite").first.wait_for()
        view.page.locator("#pc-sources .pc-card").first.wait_for()
        view.page.wait_for_timeout(1000)  # let any image the answer carried start loading
        chat = view.page.locator("#pc-chat")
        images = chat.locator("img").count()
        scripts = view.page.locator("#pc-chat script, #pc-sources script").count()
        hrefs = [
            a.get_attribute("href") or ""
            for a in view.page.locator("#pc-chat a, #pc-sources a").all()
        ]
        answer = chat.inner_text()
    finally:
        view.close()

    assert "erasure" in answer.lower()  # the planted paper answered
    assert view.outside == []
    assert images == 0 and scripts == 0
    assert all(h.startswith(("#src-", "https://arxiv.example/")) for h in hrefs), hrefs


def test_llm_failure_on_the_page_shows_no_secret(browser: Any, secured: RunningServer) -> None:
    view = open_signed_in(browser, secured)
    try:
        choose_backend(view.page, "openai")
        view.page.locator("#pc-question textarea").fill("What damps gradient BOOM oscillation?")
        assert view.page.locator("#pc-backend input").input_value() == "openai"
        view.page.locator("#pc-ask").click()
        view.page.locator("#pc-chat", has_text="unreachable").wait_for()
        text = view.page.locator("body").inner_text()
        html = view.page.content()
    finally:
        view.close()

    assert leaked(text) == [] and leaked(html) == []


def choose_backend(page: Any, name: str) -> None:
    """Pick `name` from the backend dropdown by clicking its option.

    Typing the name and pressing Enter raced Gradio's filtering of the list: when Enter came
    before the list showed the match, nothing was selected and the dropdown went back to
    the default on blur (the question was then answered by `extractive`).
    """
    page.locator("#pc-backend input").click()
    page.get_by_role("option", name=name, exact=True).click()
    page.locator("#pc-backend input").press("Tab")
