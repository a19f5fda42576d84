"""The shared text module keeps its named variants apart: each differs where its comment says."""

from __future__ import annotations

import pytest

from paperchat.offline import apply_offline_env
from paperchat.text import (
    CITATION_MARKER,
    EVIDENCE_STOPWORDS,
    HIGHLIGHT_STOPWORDS,
    KEYWORD_STOPWORDS,
    LINK_MARKER,
    MARKER,
    SUPPORT_STOPWORDS,
    count_tokens,
    split_answer_sentences,
    split_chunk_sentences,
    split_sentences,
    split_snippet_sentences,
)

TEXT = "Adapters help, e.g. The small model wins. It ends … Next part is here."


def test_only_the_shared_splitter_keeps_an_abbreviation_inside_its_sentence() -> None:
    assert split_sentences(TEXT)[0] == "Adapters help, e.g. The small model wins."
    assert split_chunk_sentences(TEXT)[:2] == ["Adapters help, e.g.", "The small model wins."]


def test_the_chunk_splitter_cuts_only_at_end_punctuation_before_a_capital() -> None:
    text = "First part; Second part. third stays. Fourth (x). [5] Sixth"
    assert split_chunk_sentences(text) == [
        "First part; Second part. third stays.",
        "Fourth (x).",
        "[5] Sixth",
    ]


def test_only_the_snippet_splitter_cuts_at_an_ellipsis_gap() -> None:
    assert "It ends" in split_snippet_sentences(TEXT)
    assert "It ends … Next part is here." in split_sentences(TEXT)
    assert "It ends … Next part is here." in split_chunk_sentences(TEXT)


def test_the_answer_splitter_moves_trailing_markers_and_drops_short_fragments() -> None:
    text = "Sources:\n- LoRA adapts large models cheaply. [2] QLoRA also quantises the base model."
    assert split_answer_sentences(text) == [
        "LoRA adapts large models cheaply [2].",
        "QLoRA also quantises the base model.",
    ]


def test_marker_patterns_match_what_each_caller_reads() -> None:
    text = "A [1]. B [2, 3]. C [1-2]. D [Source 4]."
    assert MARKER.findall(text) == ["[1]", "[2, 3]", "[1-2]", "[Source 4]"]
    assert CITATION_MARKER.findall(text) == ["[1]", "[2, 3]"]
    assert LINK_MARKER.findall(text) == ["1"]


def test_special_token_text_counts_as_text_only_when_asked() -> None:
    apply_offline_env()
    assert count_tokens("a <|endoftext|> b", special_as_text=True) > 3
    with pytest.raises(ValueError, match="special token"):
        count_tokens("a <|endoftext|> b")
    assert count_tokens("") == 0


@pytest.mark.parametrize(
    ("word", "lists"),
    [
        ("what", {"evidence", "support", "keyword", "highlight"}),
        ("paper", {"evidence", "support"}),
        ("tell", {"evidence"}),
        ("novel", {"support"}),
        ("herself", {"keyword"}),
    ],
)
def test_each_stopword_list_keeps_its_own_words(word: str, lists: set[str]) -> None:
    named = {
        "evidence": EVIDENCE_STOPWORDS,
        "support": SUPPORT_STOPWORDS,
        "keyword": KEYWORD_STOPWORDS,
        "highlight": HIGHLIGHT_STOPWORDS,
    }
    assert {name for name, words in named.items() if word in words} == lists
