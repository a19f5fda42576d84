"""CI smoke test of the grounding harness.

1. A tiny fixture with a scripted assistant, scored by the lexical judge, against numbers worked
   out by hand (see `tests.fixtures.eval.baseline_answers`).
2. The real thing, end to end through `paperchat eval grounding`: the extractive assistant over
   the sample store, lexical judge, reports on disk; and the same run twice gives the same
   numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval.harness import RunMeta, build_report, run_questions
from eval.judges import LexicalJudge
from eval.questions import EvalQuestion, default_dataset, load_questions
from eval.report import load_report
from paperchat.cli import app
from paperchat.settings import Settings
from tests.fixtures.eval import Q_ADAPTERS, Q_LAVA, Q_SOUL, ScriptedAssistant, baseline_answers


def test_harness_numbers_match_the_hand_computed_fixture() -> None:
    questions = [
        EvalQuestion(question=Q_ADAPTERS, relevant_ids=["p:adapters"]),
        EvalQuestion(question=Q_SOUL, relevant_ids=["p:soul", "p:other"]),
        EvalQuestion(question=Q_LAVA, answerable=False),
    ]
    assistant = ScriptedAssistant(baseline_answers())
    results = run_questions(assistant, LexicalJudge(), questions)
    report = build_report(results, RunMeta(created_at="t", dataset="fixture"))
    assert assistant.asked == [Q_ADAPTERS, Q_SOUL, Q_LAVA]
    per_question = [
        (r.score.citation_recall, r.score.citation_precision, r.score.faithfulness)
        for r in results
        if r.score is not None
    ]
    assert per_question == [(0.5, 0.5, 0.5), (1.0, 0.5, 1.0), (None, None, None)]
    m = report.metrics
    assert m.citation_recall == pytest.approx(0.75)
    assert m.citation_precision == pytest.approx(0.5)
    assert m.faithfulness == pytest.approx(0.75)
    assert (m.abstention_accuracy, m.false_abstention) == (1.0, 0.0)
    assert (m.retrieval_hit, m.retrieval_recall) == (1.0, pytest.approx(0.75))


SMOKE_QUESTIONS = [
    {
        "question": "How does SOUL use second-order optimization for LLM unlearning?",
        "relevant_ids": ["p:d4ad722d7858ad37"],
    },
    {
        "question": "How many parameters per task do adapter modules add on GLUE?",
        "relevant_ids": ["p:76a7635c2917c038"],
    },
    {
        "question": "What is the recommended daily intake of vitamin D for adults?",
        "answerable": False,
    },
]


@pytest.fixture
def sample_env(
    sample_store_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Env for the CLI: the sample store, extractive answers, no stray .env; a tiny dataset."""
    for name in ("PAPERCHAT_LLM", "PAPERCHAT_LLM_BASE_URL", "PAPERCHAT_CHROMA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(sample_store_settings.data_dir))
    monkeypatch.setenv("PAPERCHAT_MODEL_DIR", str(sample_store_settings.model_dir))
    monkeypatch.chdir(tmp_path)
    dataset = tmp_path / "smoke.jsonl"
    dataset.write_text("".join(json.dumps(q) + "\n" for q in SMOKE_QUESTIONS))
    return dataset


def _grounding(dataset: Path, out: Path) -> dict:
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "grounding",
            "--dataset",
            str(dataset),
            "--llm",
            "extractive",
            "--judge",
            "lexical",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.slow
def test_grounding_command_runs_extractive_with_lexical_judge_end_to_end(
    sample_env: Path, tmp_path: Path
) -> None:
    printed = _grounding(sample_env, tmp_path / "run1")
    report = load_report(tmp_path / "run1")
    assert printed["metrics"] == report.metrics.model_dump(mode="json")
    assert {p.name for p in (tmp_path / "run1").iterdir()} == {
        "report.json",
        "report.md",
        "report.html",
    }
    assert report.meta.llm == "extractive" and report.meta.judge["name"] == "lexical"
    assert report.meta.settings["llm"] == "extractive"
    assert "openai_api_key" not in report.meta.settings
    assert report.meta.versions["python"].startswith("3.11")
    answered = [r for r in report.questions[:2] if r.answer and not r.answer.abstained]
    assert answered, "the extractive assistant answered none of the answerable questions"
    for r in answered:
        assert r.score is not None and r.answer is not None
        # Extractive answers quote abstract sentences, each citing its own source.
        assert r.score.citation_recall == 1.0, r.answer.text
        assert r.score.faithfulness == 1.0, r.answer.text
    assert report.metrics.retrieval_hit == 1.0


@pytest.mark.slow
def test_same_extractive_lexical_run_twice_gives_identical_numbers(
    sample_env: Path, tmp_path: Path
) -> None:
    first = _grounding(sample_env, tmp_path / "a")
    second = _grounding(sample_env, tmp_path / "b")
    assert first["metrics"] == second["metrics"]
    a, b = load_report(tmp_path / "a"), load_report(tmp_path / "b")
    assert [q.score for q in a.questions] == [q.score for q in b.questions]
    assert [q.answer.text for q in a.questions if q.answer] == [
        q.answer.text for q in b.questions if q.answer
    ]
    compared = CliRunner().invoke(
        app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")]
    )
    assert "0 better, 0 worse, 0 mixed, 3 unchanged" in compared.output


def test_shipped_dev_set_has_answerable_and_unanswerable_questions_with_known_ids() -> None:
    from eval.judge_calibration import corpus_abstracts
    from tests.conftest import SAMPLE_DIR

    questions = load_questions(default_dataset("dev_grounding.jsonl"))
    known = corpus_abstracts([SAMPLE_DIR])
    answerable = [q for q in questions if q.answerable]
    assert len(answerable) >= 20 and len(questions) - len(answerable) >= 10
    assert all(q.relevant_ids and set(q.relevant_ids) <= set(known) for q in answerable)
    assert len({q.question for q in questions}) == len(questions)
