"""Text helpers shared by evidence selection, citations and extractive answers.

Pure functions: token counting (tiktoken cl100k, loaded lazily from the offline cache), abstract
clean-up, sentence splitting and the bag of content terms used to score sentences.
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
_STOPWORDS = frozenset(
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

_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
_LATEX_COMMAND_WITH_ARG = re.compile(r"\\[A-Za-z]+\s*\{([^{}]*)\}")
_LATEX_SYMBOLS = {r"\%": "%", r"\approx": "~", r"\times": "x", r"\sim": "~", r"\&": "&"}
_LATEX_BARE_COMMAND = re.compile(r"\\[A-Za-z]+")
_INLINE_REFERENCE = re.compile(r"\s*\[\d+(?:\s*[,;\-–]\s*\d+)*\]")
_DELIMITER_TAG = re.compile(r"</?\s*sources?\s*>", re.IGNORECASE)
_BOUNDARY = re.compile(r"([.!?][\"')\]]*)\s+(?=[^a-z\s])")


@lru_cache(maxsize=1)
def _encoding() -> Any:
    """cl100k_base, read from llama-index's bundled cache unless TIKTOKEN_CACHE_DIR says else.

    Library callers that skipped `apply_offline_env()` would otherwise make tiktoken download
    the encoding; the first call points TIKTOKEN_CACHE_DIR at the bundled copy (if unset).
    """
    import tiktoken

    from paperchat.offline import tiktoken_cache_dir

    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir()))
    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """Count `text`'s tokens with tiktoken's cl100k_base encoding."""
    return len(_encoding().encode(text)) if text else 0


def truncate_tokens(text: str, max_tokens: int) -> str:
    """Cut `text` to at most `max_tokens` tokens (cl100k), ending with an ellipsis when cut."""
    tokens = _encoding().encode(text)
    if len(tokens) <= max_tokens:
        return text
    cut = _encoding().decode(tokens[: max(max_tokens - 1, 0)])
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
        if lowered in _STOPWORDS or (len(lowered) < 2 and not lowered.isdigit()):
            continue
        terms.append(_stem(lowered))
    return terms


def key_words(text: str) -> list[str]:
    """Content words of `text` as written (case kept), without stop words, first use only."""
    seen: set[str] = set()
    words = []
    for word in _WORD.findall(text):
        lowered = word.lower()
        if lowered in _STOPWORDS or len(lowered) < 2 or lowered in seen:
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
