import re
from pathlib import Path

import pytest

from eval.retrieval_eval import DEFAULT_DATASET, load_dataset
from ingest.parsers import iter_input_files, parse_file
from ingest.records import Paper
from paperchat.errors import InputError

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
_ACRONYM = re.compile(r"\b[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*\b")  # SOUL, LoRA, RWL-GNN, ...


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
        title_acronyms = {
            a.lower() for pid in q.relevant_ids for a in _ACRONYM.findall(corpus[pid].title)
        }
        used = {a.lower() for a in _ACRONYM.findall(q.question)} & title_acronyms
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
