"""Token-aware chunking: split an abstract into overlapping chunks on sentence boundaries.

Sizes are counted in tiktoken `cl100k_base` tokens (loaded offline from the cache that
`paperchat.offline.apply_offline_env` points `TIKTOKEN_CACHE_DIR` at). Each chunk is embedded
as title, newline, text (see `Chunk.embed_text`), so the title's tokens count against the
embedding model's window: `window_tokens` caps title + chunk. The default cap keeps every chunk
inside all-MiniLM-L6-v2's 256 word-piece window (cl100k tokens run 0.95-1.2 word pieces each
on abstracts; `tests/test_chunking.py` checks the whole sample corpus with the real tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.records import Paper
from paperchat.text import count_tokens, encoding, split_chunk_sentences

#: cl100k tokens of title + chunk that stay under all-MiniLM-L6-v2's 256 word pieces.
MINILM_WINDOW_TOKENS = 200
#: Longer titles are cut for embedding (they are kept whole in the metadata).
MAX_TITLE_TOKENS = 48
#: Never squeeze a chunk's text below this many tokens, however long the title.
MIN_TEXT_TOKENS = 32


@dataclass(frozen=True)
class Chunk:
    """One piece of a paper's abstract, ready to embed and store.

    Attributes:
        paper_id: The paper it belongs to.
        index: Position in the paper, from 0.
        n_chunks: How many chunks the paper has (stored so a half-written paper is detectable).
        text: The chunk text (a run of whole sentences where possible), without the title.
        title: The paper's title as embedded (cut to `MAX_TITLE_TOKENS`), "" for untitled.
        n_tokens: cl100k tokens in `text`.
    """

    paper_id: str
    index: int
    n_chunks: int
    text: str
    title: str
    n_tokens: int

    @property
    def chunk_id(self) -> str:
        """Deterministic store id: `paper_id#index`."""
        return f"{self.paper_id}#{self.index}"

    @property
    def embed_text(self) -> str:
        """What the embedding model sees: title, newline, text (just the text when untitled)."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def _tokens(text: str) -> int:
    """cl100k tokens of `text`; special-token text such as `<|endoftext|>` counts as text."""
    return count_tokens(text, special_as_text=True)


def chunk_paper(
    paper: Paper,
    chunk_tokens: int,
    overlap: int,
    *,
    window_tokens: int | None = MINILM_WINDOW_TOKENS,
) -> list[Chunk]:
    """Split a paper's abstract into chunks of at most `chunk_tokens` tokens.

    Chunks are runs of whole sentences; a sentence longer than a chunk is split between
    words. Consecutive chunks share up to `overlap` tokens of trailing text.

    Args:
        paper: The paper to split.
        chunk_tokens: Largest chunk text, in cl100k tokens, title excluded.
        overlap: Tokens of the previous chunk's end repeated at the next chunk's start.
        window_tokens: Cap on title + chunk tokens (the embedding model's window in cl100k
            tokens); `None` for models with a window far above `chunk_tokens`.

    Returns:
        The chunks, in order; at least one for any non-empty abstract.
    """
    title = _cut_title(paper.title)
    budget = chunk_tokens
    if window_tokens is not None:
        budget = min(budget, max(window_tokens - _tokens(title) - 1, MIN_TEXT_TOKENS))
    overlap = min(overlap, budget // 2)
    texts = _pack(_pieces(paper.abstract, budget), budget, overlap)
    return [
        Chunk(
            paper_id=paper.paper_id,
            index=i,
            n_chunks=len(texts),
            text=text,
            title=title,
            n_tokens=_tokens(text),
        )
        for i, text in enumerate(texts)
    ]


def _cut_title(title: str) -> str:
    tokens = encoding().encode(title, disallowed_special=())
    if len(tokens) <= MAX_TITLE_TOKENS:
        return title
    return _cut_words(title, MAX_TITLE_TOKENS)


def _cut_words(text: str, limit: int) -> str:
    """Return the longest run of leading whole words of `text` within `limit` tokens."""
    words = text.split()
    kept: list[str] = []
    for word in words:
        if _tokens(" ".join([*kept, word])) > limit:
            break
        kept.append(word)
    return " ".join(kept) if kept else _cut_tokens(text, limit)[0]


def _cut_tokens(text: str, limit: int) -> list[str]:
    """Split text with no usable spaces into pieces of `limit` tokens each."""
    tokens = encoding().encode(text, disallowed_special=())
    pieces = []
    for start in range(0, len(tokens), limit):
        piece = encoding().decode(tokens[start : start + limit]).strip()
        if piece:
            pieces.append(piece)
    return pieces


def _pieces(text: str, budget: int) -> list[tuple[str, int]]:
    """Sentences with their token counts; sentences over `budget` split between words."""
    pieces: list[tuple[str, int]] = []
    for sentence in split_chunk_sentences(text):
        n = _tokens(sentence)
        if n <= budget:
            pieces.append((sentence, n))
            continue
        for part in _split_long(sentence, budget):
            pieces.append((part, _tokens(part)))
    return pieces


def _split_long(sentence: str, budget: int) -> list[str]:
    """Split an over-long sentence into runs of words, each within `budget` tokens."""
    parts: list[str] = []
    current: list[str] = []
    for word in sentence.split():
        if _tokens(word) > budget:
            if current:
                parts.append(" ".join(current))
                current = []
            parts.extend(_cut_tokens(word, budget))
            continue
        if current and _tokens(" ".join([*current, word])) > budget:
            parts.append(" ".join(current))
            current = []
        current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


def _pack(pieces: list[tuple[str, int]], budget: int, overlap: int) -> list[str]:
    """Greedily pack pieces into chunks within `budget`, each starting with an overlap tail."""
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    fresh = False  # does `current` hold anything beyond the overlap carried from the last chunk?
    for piece in pieces:
        if current and _joined_tokens([*current, piece]) > budget:
            if fresh:
                chunks.append(" ".join(text for text, _ in current))
                current = _tail(current, overlap)
            while current and _joined_tokens([*current, piece]) > budget:
                current = current[1:]
        current.append(piece)
        fresh = True
    if fresh:
        chunks.append(" ".join(text for text, _ in current))
    return chunks


def _joined_tokens(pieces: list[tuple[str, int]]) -> int:
    """Token count of the pieces joined by spaces (an upper bound: a leading space merges)."""
    return sum(n for _, n in pieces) + len(pieces) - 1


def _tail(pieces: list[tuple[str, int]], overlap: int) -> list[tuple[str, int]]:
    """Trailing pieces of a chunk within `overlap` tokens; the last piece's end words if none."""
    if overlap <= 0:
        return []
    tail: list[tuple[str, int]] = []
    for piece in reversed(pieces):
        if _joined_tokens([piece, *tail]) > overlap:
            break
        tail.insert(0, piece)
    if tail:
        return tail
    words = pieces[-1][0].split()
    kept: list[str] = []
    for word in reversed(words[1:]):  # never the whole piece: that would not be a tail
        candidate = " ".join([word, *kept])
        if _tokens(candidate) > overlap:
            break
        kept.insert(0, word)
    return [(" ".join(kept), _tokens(" ".join(kept)))] if kept else []
