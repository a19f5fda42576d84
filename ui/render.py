"""HTML and Markdown for the page: answers with linked `[n]` markers, source cards, corpus facts.

Everything here is a pure function of typed results (`Answer`, `Citation`, `Hit`), so it is
tested without a browser.

Text from papers, models or users never becomes markup: it goes through `inert`, which
HTML-escapes it and also defuses what Markdown would turn into a live element (the chat
renders Markdown): `![img](url)`, `[link](url)`, reference definitions, bare URLs and
e-mail addresses that it would auto-link, and `$$` maths. The only links in an answer are
the app's own `[n]` markers; the only links in a source card are the paper's http(s) URL
(`safe_url`). `safe_answer` applies the same URL rule to what the APIs return.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from paperchat.text import HIGHLIGHT_STOPWORDS, LINK_MARKER, split_snippet_sentences
from rag.types import Answer, Citation, Hit

_MARKDOWN_ACTIVE = str.maketrans(
    {"[": "&#91;", "]": "&#93;", ":": "&#58;", "@": "&#64;", "$": "&#36;", "\\": "&#92;"}
)
_WWW = re.compile(r"(?i)\bwww\.")
_WORD = re.compile(r"[a-z0-9]+")
_MAX_AUTHORS_SHOWN = 3


def anchor_id(turn: int, number: int) -> str:
    """Return the HTML id of source card `number` of chat turn `turn` (both 1-based)."""
    return f"src-{turn}-{number}"


def inert(text: str) -> str:
    r"""Return `text` as Markdown that renders exactly as the text, with no live element.

    HTML is escaped; `[`, `]`, `:`, `@`, `$` and `\` become character references, so no image,
    link, reference definition, auto-linked URL or e-mail address, or maths can form; the
    browser shows the same characters.
    """
    escaped = html.escape(text, quote=True).translate(_MARKDOWN_ACTIVE)
    return _WWW.sub(lambda m: m.group(0)[:3] + "&#46;", escaped)


def safe_url(url: str | None) -> str | None:
    """Return `url` if it is an http(s) URL with a host, else None (`javascript:`, `data:`, ...)."""
    if not url:
        return None
    cleaned = url.strip()
    parts = urlsplit(cleaned)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if any(ord(c) < 32 or c.isspace() for c in cleaned):
        return None
    return cleaned


def safe_hit(hit: Hit) -> Hit:
    """Return `hit` with a URL that `safe_url` would not pass removed."""
    url = safe_url(hit.url)
    return hit if url == hit.url else hit.model_copy(update={"url": url})


def safe_answer(answer: Answer) -> Answer:
    """Return `answer` with every URL that `safe_url` would not pass removed (for the APIs)."""
    citations = [
        c if safe_url(c.url) == c.url else c.model_copy(update={"url": safe_url(c.url)})
        for c in answer.citations
    ]
    return answer.model_copy(
        update={
            "citations": citations,
            "sources": [safe_hit(h) for h in answer.sources],
            "nearest": [safe_hit(h) for h in answer.nearest],
        }
    )


def link_markers(text: str, citations: Sequence[Citation], turn: int) -> str:
    """Turn each `[n]` that names a citation into a link to its source card; the rest is inert.

    Markers without a matching citation are left as (inert) text. The link carries the title
    as a tooltip, so hovering a marker names the paper.
    """
    titles = {c.number: c.title for c in citations}
    parts: list[str] = []
    start = 0
    for match in LINK_MARKER.finditer(text):
        number = int(match.group(1))
        if number not in titles:
            continue
        title = html.escape(titles[number], quote=True)
        parts.append(inert(text[start : match.start()]))
        parts.append(
            f'<a class="pc-cite" href="#{anchor_id(turn, number)}" title="{title}">[{number}]</a>'
        )
        start = match.end()
    parts.append(inert(text[start:]))
    return "".join(parts)


def answer_markdown(answer: Answer, turn: int) -> str:
    """Return the chat message for a finished answer: text with linked markers, or abstention."""
    if answer.abstained:
        reason = answer.abstain_reason or "the papers in the store do not answer it"
        text = answer.text.strip() or "I could not find an answer to this in the papers."
        body = link_markers(text, answer.citations, turn)
        nearest = " The nearest papers are listed under Sources." if answer.nearest else ""
        return f"{body}\n\n*Not answered from the corpus: {inert(reason)}.{nearest}*"
    return link_markers(answer.text, answer.citations, turn) + verification_note(answer)


def verification_note(answer: Answer) -> str:
    """The sentences of the model's draft that verification kept from the reader, if any."""
    removed = [e for e in answer.edits if e.kind in ("dropped", "replaced")]
    if not removed:
        return ""
    count = len(removed)
    lines = [
        f"\n\n<small>*Checked against the abstracts: {count} sentence"
        f"{'s' if count > 1 else ''} of the model's draft "
        f"{'were' if count > 1 else 'was'} not shown because the cited abstracts do not say "
        f"{'them' if count > 1 else 'it'}:*</small>"
    ]
    lines += [f"\n- <small><s>{inert(e.original)}</s> ({inert(e.reason)})</small>" for e in removed]
    if answer.quoted:
        lines.append("\n\n<small>*Shown instead: the papers' own sentences.*</small>")
    return "".join(lines)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in HIGHLIGHT_STOPWORDS and len(w) > 1}


def sentences_citing(answer_text: str, number: int) -> list[str]:
    """Return the answer's sentences that carry the marker `[number]`."""
    marker = f"[{number}]"
    return [s for s in split_snippet_sentences(answer_text) if marker in s]


def best_sentence(snippet: str, queries: Iterable[str]) -> str | None:
    """Return the snippet sentence sharing the most words with any query, or None if none do."""
    query_words = [_words(q) for q in queries]
    best: tuple[float, str] | None = None
    for sentence in split_snippet_sentences(snippet):
        words = _words(sentence)
        if not words:
            continue
        score = max((len(words & q) / (len(q) ** 0.5 or 1.0) for q in query_words), default=0.0)
        if score > 0 and (best is None or score > best[0]):
            best = (score, sentence)
    return best[1] if best else None


def highlight(snippet: str, sentence: str | None) -> str:
    """Return the escaped snippet with `sentence` wrapped in `<mark>`."""
    if not sentence or sentence not in snippet:
        return html.escape(snippet)
    before, _, after = snippet.partition(sentence)
    return f"{html.escape(before)}<mark>{html.escape(sentence)}</mark>{html.escape(after)}"


def people(authors: Sequence[str], author_count: int | None) -> str | None:
    """Return "A, B, C et al." / "5 authors" / None for a card's byline."""
    if authors:
        shown = ", ".join(authors[:_MAX_AUTHORS_SHOWN])
        return shown + (" et al." if len(authors) > _MAX_AUTHORS_SHOWN else "")
    if author_count:
        return f"{author_count} author{'s' if author_count != 1 else ''}"
    return None


def _card(
    *,
    card_id: str | None,
    label: str,
    title: str,
    url: str | None,
    year: int | None,
    byline: str | None,
    paper_id: str,
    snippet_html: str,
) -> str:
    safe_title = html.escape(title)
    link = safe_url(url)
    if link:
        heading = (
            f'<a href="{html.escape(link, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer nofollow" referrerpolicy="no-referrer">{safe_title}</a>'
        )
    else:
        heading = safe_title
    meta = [str(year) if year else "year unknown"]
    if byline:
        meta.append(html.escape(byline))
    meta.append(f"<code>{html.escape(paper_id)}</code>")
    id_attr = f' id="{card_id}"' if card_id else ""
    return (
        f'<div class="pc-card"{id_attr}>'
        f'<div class="pc-card-title"><span class="pc-num">{label}</span> {heading}</div>'
        f'<div class="pc-meta">{" · ".join(meta)}</div>'
        f'<p class="pc-snippet">{snippet_html}</p>'
        "</div>"
    )


def citation_card(citation: Citation, turn: int, answer_text: str, question: str) -> str:
    """Return one source card; the snippet sentence that supports the answer is highlighted."""
    verified = [s for s in citation.supporting if s in citation.snippet]
    queries = sentences_citing(answer_text, citation.number) or [question]
    sentence = verified[0] if verified else best_sentence(citation.snippet, queries)
    return _card(
        card_id=anchor_id(turn, citation.number),
        label=f"[{citation.number}]",
        title=citation.title,
        url=citation.url,
        year=citation.year,
        byline=people(citation.authors, citation.author_count),
        paper_id=citation.paper_id,
        snippet_html=highlight(citation.snippet, sentence),
    )


def hit_card(hit: Hit, question: str, label: str = "·") -> str:
    """Return a card for a retrieved (not cited) paper, e.g. the nearest papers on abstention."""
    return _card(
        card_id=None,
        label=label,
        title=hit.title,
        url=hit.url,
        year=hit.year,
        byline=people(hit.authors, hit.author_count),
        paper_id=hit.paper_id,
        snippet_html=highlight(hit.snippet, best_sentence(hit.snippet, [question])),
    )


def turn_sources(answer: Answer, turn: int) -> str:
    """Return the sources section of one answered question (cards for each cited paper)."""
    question = html.escape(answer.question)
    if answer.citations:
        cards = "".join(
            citation_card(c, turn, answer.text, answer.question) for c in answer.citations
        )
    elif answer.nearest:
        cards = '<p class="pc-note">No paper answers this; the nearest ones:</p>' + "".join(
            hit_card(h, answer.question) for h in answer.nearest
        )
    else:
        cards = '<p class="pc-note">No sources cited.</p>'
    return (
        f'<section class="pc-turn" id="turn-{turn}">'
        f'<div class="pc-question">Q{turn}: {question}</div>{cards}</section>'
    )


EMPTY_SOURCES = (
    '<div class="pc-empty">Sources appear here: one card per cited paper, '
    "with the sentence that supports the answer highlighted.</div>"
)


def sources_panel(sections: Sequence[str]) -> str:
    """Return the whole sources panel: newest question first."""
    if not sections:
        return EMPTY_SOURCES
    return '<div class="pc-sources">' + "".join(reversed(sections)) + "</div>"


def references_block(citations: Sequence[Citation]) -> str:
    """Return a plain-text references list ("[1] Title (2023). url") for API clients."""
    if not citations:
        return ""
    lines = ["References:"]
    for c in citations:
        year = f" ({c.year})" if c.year else ""
        link = safe_url(c.url)
        url = f" {link}" if link else ""
        lines.append(f"[{c.number}] {c.title}{year}.{url} <{c.paper_id}>")
    return "\n".join(lines)


CSS = """
#pc-status .pc-banner { padding: 0.6em 1em; border-radius: 8px; margin: 0; }
.pc-banner.preparing { background: #fff7e0; border: 1px solid #f0c36d; }
.pc-banner.failed { background: #fdecea; border: 1px solid #e0a0a0; }
.pc-banner.ready { background: #eef8ee; border: 1px solid #9fd29f; }
.pc-sources { display: flex; flex-direction: column; gap: 0.8em; }
.pc-turn { display: flex; flex-direction: column; gap: 0.5em; }
.pc-question { font-weight: 600; opacity: 0.8; }
.pc-card { border: 1px solid #d0d7de; border-radius: 8px; padding: 0.6em 0.8em;
           scroll-margin-top: 1em; }
.pc-card:target, .pc-card.pc-flash { outline: 3px solid #f0a020; }
.pc-card-title { font-weight: 600; }
.pc-num { color: #b35900; margin-right: 0.3em; }
.pc-meta { font-size: 0.85em; opacity: 0.75; margin: 0.2em 0; }
.pc-snippet { font-size: 0.9em; margin: 0.3em 0 0 0; }
.pc-snippet mark { background: #fff0a8; padding: 0 0.1em; }
.pc-empty, .pc-note { opacity: 0.7; font-style: italic; }
a.pc-cite { text-decoration: none; font-weight: 600; }
"""

# Citation links scroll the sources panel instead of following the link (Gradio opens chat
# links in a new tab otherwise).
HEAD = """
<script>
document.addEventListener("click", function (event) {
  const link = event.target.closest && event.target.closest("a.pc-cite");
  if (!link) { return; }
  const id = (link.getAttribute("href") || "").replace(/^#/, "");
  const card = document.getElementById(id);
  if (!card) { return; }
  event.preventDefault();
  event.stopPropagation();
  card.scrollIntoView({behavior: "smooth", block: "center"});
  card.classList.add("pc-flash");
  setTimeout(function () { card.classList.remove("pc-flash"); }, 1500);
}, true);
</script>
"""
