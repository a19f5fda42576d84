import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from eval.questions import (
    OUT_OF_CORPUS_KINDS,
    EvalQuestion,
    assign_splits,
    default_dataset,
    load_questions,
)
from eval.retrieval_eval import DEFAULT_DATASET, load_dataset
from ingest.parsers import iter_input_files, parse_file
from ingest.records import Paper
from paperchat.errors import InputError

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
_ACRONYM = re.compile(r"\b[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*\b")  # SOUL, LoRA, RWL-GNN, ...
ANSWERS = default_dataset("dev_answers.jsonl")
OLDER_SETS = ("dev_retrieval.jsonl", "dev_grounding.jsonl", "dev_unanswerable.jsonl")


def title_acronyms_used(question: str, paper_ids: Iterable[str], corpus: dict[str, Paper]) -> set:
    """Acronyms of the papers' titles (SOUL, LoRA, ...) that the question uses, lower-cased."""
    title_acronyms = {a.lower() for pid in paper_ids for a in _ACRONYM.findall(corpus[pid].title)}
    return {a.lower() for a in _ACRONYM.findall(question)} & title_acronyms


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@pytest.fixture(scope="module")
def corpus() -> dict[str, Paper]:
    papers: dict[str, Paper] = {}
    for path in iter_input_files([SAMPLE_DIR]):
        for result in parse_file(path):
            if isinstance(result, Paper):
                papers.setdefault(result.paper_id, result)
    return papers


@pytest.fixture(scope="module")
def questions():
    return load_dataset(DEFAULT_DATASET)


def test_dev_set_has_at_least_forty_answerable_questions(questions):
    assert len(questions) >= 40
    assert all(q.answerable and q.relevant_ids for q in questions)


def test_at_least_half_of_the_dev_set_is_paraphrased(questions):
    paraphrased = [q for q in questions if q.wording == "paraphrase"]
    assert len(paraphrased) * 2 >= len(questions)
    assert len(paraphrased) >= 20


def test_every_relevant_id_exists_in_the_parsed_sample_corpus(questions, corpus):
    assert len(corpus) == 445
    missing = {pid for q in questions for pid in q.relevant_ids if pid not in corpus}
    assert not missing


def test_some_questions_have_several_relevant_papers(questions):
    multi = [q for q in questions if len(set(q.relevant_ids)) > 1]
    assert len(multi) >= 5
    assert any(q.wording == "paraphrase" for q in multi)


def test_questions_are_unique_and_ids_not_repeated_within_a_question(questions):
    texts = [q.question.lower() for q in questions]
    assert len(set(texts)) == len(texts)
    assert all(len(set(q.relevant_ids)) == len(q.relevant_ids) for q in questions)


def test_paraphrased_questions_avoid_acronyms_from_their_papers_titles(questions, corpus):
    for q in questions:
        if q.wording != "paraphrase":
            continue
        used = title_acronyms_used(q.question, q.relevant_ids, corpus)
        assert not used, (q.question, used)


def test_malformed_dataset_line_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"question": "ok?", "relevant_ids": ["p:1"], "wording": "lexical"}\n'
        '{"question": "no wording", "relevant_ids": []}\n'
    )
    with pytest.raises(InputError) as err:
        load_dataset(path)
    assert f"{path}:2" in str(err.value)
    assert "wording" in str(err.value)


# -- dev_answers.jsonl: answer relevance, every answering paper labelled, tune / held-out --------


@pytest.fixture(scope="module")
def answers() -> list[EvalQuestion]:
    return load_questions(ANSWERS)


def test_answer_set_ids_are_unique_and_questions_distinct(answers):
    ids = [q.id for q in answers]
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]
    texts = [_normalised(q.question) for q in answers]
    assert len(set(texts)) == len(texts), [t for t, n in Counter(texts).items() if n > 1]


def test_every_paper_id_in_the_answer_set_exists_in_the_parsed_corpus(answers, corpus):
    assert len(corpus) == 445
    named = {
        pid
        for q in answers
        for pid in [*(q.relevant_ids or []), *q.topic_ids, *q.hard_negative_ids]
    }
    assert named - corpus.keys() == set()


def test_answer_set_labels_are_consistent(answers):
    for q in answers:
        relevant = q.relevant_ids or []
        assert q.wording and q.kind and q.split, q.id
        assert len(set(relevant)) == len(relevant), q.id
        assert not set(relevant) & set(q.hard_negative_ids), q.id
        if q.kind == "single":
            assert q.answerable and len(relevant) == 1, q.id
        elif q.kind == "multi":
            assert q.answerable and 2 <= len(relevant) <= 8, q.id
        else:
            assert q.kind in OUT_OF_CORPUS_KINDS and not q.answerable and not relevant, q.id


def test_answer_set_size_and_mix(answers):
    answerable = [q for q in answers if q.answerable]
    assert 110 <= len(answerable) <= 140
    assert 0.2 <= sum(q.kind == "multi" for q in answerable) / len(answerable) <= 0.35
    assert 25 <= len(answers) - len(answerable) <= 40
    assert {q.kind for q in answers if not q.answerable} == set(OUT_OF_CORPUS_KINDS)


def test_both_splits_are_balanced_in_every_stratum(answers):
    def count(split: str) -> Counter:
        return Counter((q.answerable, q.wording, q.kind) for q in answers if q.split == split)

    tune, heldout = count("tune"), count("heldout")
    assert sum(tune.values()) and sum(heldout.values())
    for stratum in tune.keys() | heldout.keys():
        assert abs(tune[stratum] - heldout[stratum]) <= 1, stratum
    for split in ("tune", "heldout"):
        rows = [q for q in answers if q.split == split]
        answerable = [q for q in rows if q.answerable]
        assert len(answerable) >= 55, split
        assert abs(sum(q.wording == "paraphrase" for q in answerable) * 2 - len(answerable)) <= 4
        assert sum(q.kind == "multi" for q in answerable) >= 12, split
        assert {q.kind for q in rows if not q.answerable} == set(OUT_OF_CORPUS_KINDS), split


def test_recorded_split_is_the_deterministic_rule(answers):
    assert {q.id: q.split for q in answers} == assign_splits(answers)


def test_paraphrased_answer_questions_avoid_acronyms_from_their_papers_titles(answers, corpus):
    for q in answers:
        if q.wording == "paraphrase":
            used = title_acronyms_used(q.question, [*(q.relevant_ids or []), *q.topic_ids], corpus)
            assert not used, (q.id, q.question, used)


def test_no_held_out_question_repeats_a_question_of_the_older_dev_sets(answers):
    older = {
        _normalised(q.question)
        for name in OLDER_SETS
        for q in load_questions(default_dataset(name))
    }
    repeated = [q.id for q in answers if q.split == "heldout" and _normalised(q.question) in older]
    assert not repeated


def test_loader_keeps_only_the_requested_split(answers):
    tune = load_questions(ANSWERS, split="tune")
    assert tune and {q.split for q in tune} == {"tune"}
    assert len(tune) + len(load_questions(ANSWERS, split="heldout")) == len(answers)
    with pytest.raises(InputError, match="no split labels"):
        load_questions(default_dataset("dev_grounding.jsonl"), split="tune")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"question": "q", "relevant_ids": ["p:1"], "kind": "multi"}', "at least two relevant"),
        ('{"question": "q", "relevant_ids": ["p:1", "p:2"], "kind": "single"}', "exactly one"),
        (
            '{"question": "q", "answerable": false, "relevant_ids": ["p:1"], "kind": "near_miss"}',
            "no relevant_ids",
        ),
        ('{"question": "q", "relevant_ids": ["p:1"], "split": "train"}', "split"),
    ],
)
def test_loader_rejects_labels_that_contradict_each_other(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "fine", "relevant_ids": ["p:1"], "kind": "single"}\n' + row)
    with pytest.raises(InputError, match=rf"bad.jsonl:2: .*{message}"):
        load_questions(path)
