"""The one home of paperchat's text concepts: tokens, sentences, stop words, `[n]` markers.

Pure functions and constants, imported by ingest, rag, ui and eval alike: the cl100k tokenizer
(loaded lazily from the offline cache) with token counting and truncation, sentence splitting,
the stop-word lists, the citation-marker patterns, abstract clean-up and the bag of content terms
used to score sentences. Where two callers need different behaviour (a splitter or a stop-word
list that a stored index or a calibrated threshold depends on), both are kept here as named
variants, each saying why it differs.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

_ABBREVIATIONS = frozenset(
    {
        "e.g", "i.e", "et al", "al", "fig", "figs", "eq", "eqs", "cf", "vs", "etc", "approx",
        "resp", "sec", "no", "dr", "prof", "mr", "ms", "st", "ca", "viz", "incl", "ref", "refs",
    }
)  # fmt: skip
# -- stop words ------------------------------------------------------------------------------

# Evidence selection's list (`content_terms`, `key_words`: sentence scoring, follow-up
# condensing); it also drops question filler ("tell", "explain", "paper").
EVIDENCE_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during each
    few for from further had has have having he her here hers him his how i if in into is it
    its itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours paper papers work works propose proposed
    method methods approach use uses used using show shows study studies based new via
    tell give list find explain describe say says one ones any anything
    did get gets got many much whose well""".split()
)

# The lexical support check's list (`rag.answering.support`: the answer verifier and the
# eval's lexical judge); both sets of thresholds were calibrated with exactly this list.
SUPPORT_STOPWORDS = frozenset(
    """a about again against all also am an and any are as at be because been
    being between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is it
    its itself just me my of off on once only or other our ours out over own same
    she should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your yours via using use used uses based paper work propose proposed
    present presents introduce introduces show shows shown approach method methods new novel
    et al e g i etc""".split()
)

# Keyword search's list (`ingest.keyword_index.terms`): the persisted FTS5 index holds
# documents cut with it, and TITLE_WEIGHT was tuned with it; changing it needs a reindex.
# bm25s's STOPWORDS_EN_PLUS (NLTK's English list), plus "could" and "would". It includes
# question words ("what", "how", "does", "can"); questions are full of them, and with a short
# list they matched titles such as "What Is ..." and outvoted real matches.
KEYWORD_STOPWORDS = frozenset(
    """a about above after again against ain all am an and any are aren aren't as at be because
    been before being below between both but by can couldn couldn't d did didn didn't do does
    doesn doesn't doing don don't down during each few for from further had hadn hadn't has
    hasn hasn't have haven haven't having he her here hers herself him himself his how i if in
    into is isn isn't it it's its itself just ll m ma me mightn mightn't more most mustn
    mustn't my myself needn needn't no nor not now o of off on once only or other our ours
    ourselves out over own re s same shan shan't she she's should should've shouldn shouldn't so
    some such t than that that'll the their theirs them themselves then there these they this
    those through to too under until up ve very was wasn wasn't we were weren weren't what when
    where which while who whom why will with won won't wouldn wouldn't y you you'd you'll
    you're you've your yours yourself yourselves could would""".split()
)

# The page's highlight list (`ui.render.best_sentence`: which snippet sentence to highlight);
# its own short list, kept so the page highlights what it highlighted before.
HIGHLIGHT_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how in into is it its of on or "
    "our that the their these this to was we what when which who why with".split()
)

# -- citation markers ------------------------------------------------------------------------

_NUMBER = r"(?:sources?\s*)?\d+"
_SEPARATOR = r"\s*(?:,|;|-|–|and)\s*"
MARKER = re.compile(rf"\[\s*{_NUMBER}(?:{_SEPARATOR}{_NUMBER})*\s*\]", re.IGNORECASE)
"""A citation marker as a model writes it: `[1]`, `[1, 2]`, `[1-3]`, `[Source 2]`."""

CITATION_MARKER = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
"""A marker as paperchat writes it in answers: `[2]` or `[1, 3]` (no ranges, no words)."""

LINK_MARKER = re.compile(r"\[(\d+)\]")
"""One `[n]`, its number captured: the page links only single-number markers to source cards."""

_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
_LATEX_COMMAND_WITH_ARG = re.compile(r"\\[A-Za-z]+\s*\{([^{}]*)\}")
_LATEX_SYMBOLS = {r"\%": "%", r"\approx": "~", r"\times": "x", r"\sim": "~", r"\&": "&"}
_LATEX_BARE_COMMAND = re.compile(r"\\[A-Za-z]+")
_INLINE_REFERENCE = re.compile(r"\s*\[\d+(?:\s*[,;\-–]\s*\d+)*\]")
_DELIMITER_TAG = re.compile(r"</?\s*sources?\s*>", re.IGNORECASE)
_BOUNDARY = re.compile(r"([.!?][\"')\]]*)\s+(?=[^a-z\s])")


# -- tokens ----------------------------------------------------------------------------------

ENCODING = "cl100k_base"


@lru_cache(maxsize=1)
def encoding() -> Any:
    """cl100k_base, read from llama-index's bundled cache unless TIKTOKEN_CACHE_DIR says else.

    Library callers that skipped `apply_offline_env()` would otherwise make tiktoken download
    the encoding; the first call points TIKTOKEN_CACHE_DIR at the bundled copy (if unset).
    """
    import tiktoken

    from paperchat.offline import tiktoken_cache_dir

    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir()))
    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str, *, special_as_text: bool = False) -> int:
    """Count `text`'s tokens with tiktoken's cl100k_base encoding.

    Args:
        text: The text.
        special_as_text: Count special-token text such as `<|endoftext|>` as plain text (the
            chunker's way: every abstract can be stored) instead of raising tiktoken's
            ValueError (rag's way, kept as it was).
    """
    if not text:
        return 0
    if special_as_text:
        return len(encoding().encode(text, disallowed_special=()))
    return len(encoding().encode(text))


def truncate_tokens(text: str, max_tokens: int) -> str:
    """Cut `text` to at most `max_tokens` tokens (cl100k), ending with an ellipsis when cut."""
    tokens = encoding().encode(text)
    if len(tokens) <= max_tokens:
        return text
    cut = encoding().decode(tokens[: max(max_tokens - 1, 0)])
    return cut.rsplit(" ", 1)[0].rstrip(",;: ") + "…"


def clean_abstract(text: str) -> str:
    r"""Make abstract text cheaper and safer to show a model.

    LaTeX markup is unwrapped (`\textit{APP}` -> `APP`, `$...$` -> `...`), the abstract's own
    numeric references (`LoRA [23]`) are removed so they cannot be mistaken for source markers,
    and `<sources>` delimiter tags are removed so an abstract cannot close the data block.
    """
    previous = None
    while previous != text:
        previous, text = text, _LATEX_COMMAND_WITH_ARG.sub(r"\1", text)
    for symbol, plain in _LATEX_SYMBOLS.items():
        text = text.replace(symbol, plain)
    text = _LATEX_BARE_COMMAND.sub("", text).replace("$", "")
    text = _INLINE_REFERENCE.sub("", text)
    text = _DELIMITER_TAG.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences.

    A boundary is `.`, `!` or `?` (plus closing quotes or brackets) followed by whitespace and a
    character that is not a lower-case letter, unless the word before the full stop is a known
    abbreviation (`e.g.`, `et al.`, `Fig.`) or a single letter (an initial).
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        stop = match.start(1)
        if text[stop] == "." and _ends_with_abbreviation(text[start:stop]):
            continue
        piece = text[start : match.end(1)].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _ends_with_abbreviation(before: str) -> bool:
    words = before.rsplit(None, 2)
    if not words:
        return False
    last = words[-1].lower().lstrip("(")
    two = " ".join(words[-2:]).lower() if len(words) >= 2 else last
    return last in _ABBREVIATIONS or two in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


# A sentence ends at . ! or ? followed by space and a capital, digit, quote or bracket.
_CHUNK_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def split_chunk_sentences(text: str) -> list[str]:
    """Split text into sentences at `.`, `!` or `?` followed by a capitalised word.

    The chunker's splitter (no abbreviation rule): the stored chunks were cut with it, so a
    different splitter would change chunk texts and need a re-ingest.
    """
    return [s.strip() for s in _CHUNK_SENTENCE_END.split(text) if s.strip()]


_SNIPPET_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])|\s*…\s*")


def split_snippet_sentences(text: str) -> list[str]:
    """Split text into sentences: end punctuation followed by a capital, or an ellipsis gap.

    The page's splitter (`ui.render`): it also cuts at "…", where a shortened snippet skips
    text, so a highlighted sentence never spans the gap.
    """
    return [s for s in (part.strip() for part in _SNIPPET_SENTENCE_END.split(text)) if s]


ANSWER_MIN_WORDS = 4
_ANSWER_SPLIT = re.compile(r"(?<=[.!?…])\s+(?=[\"'(]?[A-Z0-9])|(?<=\])\s+(?=[A-Z])|\n+")
_MARKER_AFTER_STOP = re.compile(rf"([.!?])((?:\s*{CITATION_MARKER.pattern})+)")
_ANSWER_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|et al|vs|cf|etc|Fig|Eq|No|approx|resp)|\b[A-Z])\.$"
)
_ANSWER_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def word_count(text: str) -> int:
    """Words and numbers of `text`, its `[n]` markers not counted."""
    return len(re.findall(r"[A-Za-z0-9]+", CITATION_MARKER.sub(" ", text)))


def split_answer_sentences(text: str, min_words: int = ANSWER_MIN_WORDS) -> list[str]:
    """Split answer text into sentences, keeping their [n] markers; drop short fragments.

    The grounding eval's splitter (`eval.grounding`): its published figures were measured with
    it. Markers written after the full stop (`... works. [2]`) are moved before it so they stay
    with their sentence. Abbreviations (e.g., i.e., et al.) and decimals do not end a sentence.
    Sentences under `min_words` words (headings, "Sources:") are dropped.
    """
    text = _MARKER_AFTER_STOP.sub(r"\2\1", text)
    pieces: list[str] = []
    for piece in _ANSWER_SPLIT.split(text):
        piece = _ANSWER_BULLET.sub("", piece).strip()
        if not piece:
            continue
        if pieces and _ANSWER_ABBREVIATION.search(pieces[-1]):
            pieces[-1] = f"{pieces[-1]} {piece}"
        else:
            pieces.append(piece)
    return [p for p in pieces if word_count(p) >= min_words]


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_terms(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words of `text` without stop words, in order of appearance."""
    terms = []
    for word in _WORD.findall(text):
        lowered = word.lower()
        if lowered in EVIDENCE_STOPWORDS or (len(lowered) < 2 and not lowered.isdigit()):
            continue
        terms.append(_stem(lowered))
    return terms


def key_words(text: str) -> list[str]:
    """Content words of `text` as written (case kept), without stop words, first use only."""
    seen: set[str] = set()
    words = []
    for word in _WORD.findall(text):
        lowered = word.lower()
        if lowered in EVIDENCE_STOPWORDS or len(lowered) < 2 or lowered in seen:
            continue
        seen.add(lowered)
        words.append(word)
    return words


_FIRST_PERSON = {
    "we": "the authors",
    "our": "their",
    "ours": "theirs",
    "us": "them",
    "ourselves": "themselves",
}
_FIRST_PERSON_WORD = re.compile(r"\b(We|we|Our|our|Ours|ours|us|ourselves)\b")


def third_person(text: str) -> str:
    """Report an abstract's first person in the third: "We propose" -> "The authors propose".

    Answer sentences speak about papers; an abstract's "we"/"our" copied into them would read
    as the assistant's own work. Upper-case "US" (the country) is left alone.
    """

    def _swap(match: re.Match[str]) -> str:
        word = match.group(0)
        plain = _FIRST_PERSON[word.lower()]
        return plain[0].upper() + plain[1:] if word[0].isupper() else plain

    return _FIRST_PERSON_WORD.sub(_swap, text)
