from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval.compare import compare_runs, render_comparison
from eval.grounding import RATE_METRICS
from eval.harness import RunMeta, RunReport, build_report, rescore_results, run_questions
from eval.judges import LexicalJudge
from eval.questions import EvalQuestion, load_questions
from eval.report import breakdown, load_report, write_reports
from eval.report_html import histogram_svg, metric_bars_svg
from paperchat.cli import app
from paperchat.errors import InputError
from paperchat.settings import Settings
from tests.fixtures.eval import (
    Q_ADAPTERS,
    Q_LAVA,
    Q_SOUL,
    ScriptedAssistant,
    baseline_answers,
    improved_answers,
)

QUESTIONS = [
    EvalQuestion(question=Q_ADAPTERS, relevant_ids=["p:adapters"], id="q1"),
    EvalQuestion(question=Q_SOUL, relevant_ids=["p:soul", "p:other"], id="q2"),
    EvalQuestion(question=Q_LAVA, answerable=False, id="q3"),
]


def make_run(answers: dict, name: str = "run") -> RunReport:
    results = run_questions(ScriptedAssistant(answers), LexicalJudge(), QUESTIONS)
    meta = RunMeta(
        created_at="2026-01-01T00:00:00+00:00",
        dataset=f"{name}.jsonl",
        llm="scripted",
        judge=LexicalJudge().describe(),
        seed=7,
    )
    return build_report(results, meta)


def test_reports_are_written_as_json_markdown_and_html(tmp_path: Path) -> None:
    paths = write_reports(make_run(baseline_answers()), tmp_path / "run")
    assert sorted(p.name for p in paths.values()) == ["report.html", "report.json", "report.md"]
    data = json.loads(paths["json"].read_text())
    assert data["meta"]["seed"] == 7 and data["meta"]["judge"]["name"] == "lexical"
    first = data["questions"][0]
    assert first["answer"]["citations"][0]["paper_id"] == "p:adapters"
    assert [v["supported"] for v in first["score"]["sentences"]] == [True, False]
    assert data["metrics"]["citation_recall"] == pytest.approx(0.75)


def test_report_json_round_trips_to_the_same_run(tmp_path: Path) -> None:
    run = make_run(baseline_answers())
    write_reports(run, tmp_path)
    assert load_report(tmp_path) == run
    assert load_report(tmp_path / "report.json") == run


def test_markdown_report_shows_metrics_questions_and_unsupported_sentences(tmp_path: Path) -> None:
    md = write_reports(make_run(baseline_answers()), tmp_path)["md"].read_text()
    assert "| Citation recall | 0.750 | 3 sentences |" in md
    assert "| Abstention on unanswerable | 1.000 | 1 unanswerable |" in md
    assert f"| q3 | {Q_LAVA} | no | yes |" in md
    assert "- unsupported ([1] p:adapters): Adapters add only 36% parameters" in md
    assert "- [1] p:adapters not needed for: SOUL is a second-order" in md


def test_html_report_has_a_bar_per_metric_and_a_latency_histogram(tmp_path: Path) -> None:
    html = write_reports(make_run(baseline_answers()), tmp_path)["html"].read_text()
    assert html.count("<svg") == 2
    assert len(re.findall(r'<rect class="bar"', html)) == len(RATE_METRICS)  # all have values
    assert len(re.findall(r'<rect class="bin"', html)) == 10
    assert "http" not in html.split("<body>")[0]  # no external resources


def test_metric_bars_scale_with_the_value_and_skip_missing_metrics() -> None:
    svg = metric_bars_svg({"citation_recall": 0.5, "faithfulness": None}, width=640)
    widths = re.findall(r'class="bar" x="\d+" y="\d+" width="([\d.]+)"', svg)
    assert widths == ["175.0"]  # (640 - 230 - 60) * 0.5
    assert "–" in svg


def test_latency_histogram_counts_values_into_bins() -> None:
    svg = histogram_svg([1.0, 1.0, 2.0, 3.0], bins=2)
    assert re.findall(r"<title>(\d+)</title>", svg) == ["2", "2"]
    assert "No latencies" in histogram_svg([])


def test_compare_reports_each_question_that_got_better_or_worse() -> None:
    comp = compare_runs(make_run(baseline_answers()), make_run(improved_answers()))
    verdicts = {q.question: q.verdict for q in comp.questions}
    assert verdicts == {Q_ADAPTERS: "better", Q_SOUL: "worse", Q_LAVA: "same"}
    soul = next(q for q in comp.questions if q.question == Q_SOUL)
    assert soul.changes == {"citation_recall": (1.0, 0.0), "citation_precision": (0.5, 0.0)}
    recall = next(m for m in comp.metrics if m.metric == "citation_recall")
    assert (recall.a, recall.b, recall.verdict) == (0.75, 0.5, "worse")
    text = render_comparison(comp)
    assert "1 better, 1 worse, 0 mixed, 1 unchanged" in text
    assert text.index("WORSE  What is SOUL?") < text.index("BETTER How many parameters")


def test_compare_counts_a_newly_refused_answerable_question_as_worse() -> None:
    from tests.fixtures.eval import abstention

    answers = baseline_answers()
    answers[Q_SOUL] = abstention(Q_SOUL)
    comp = compare_runs(make_run(baseline_answers()), make_run(answers))
    soul = next(q for q in comp.questions if q.question == Q_SOUL)
    assert soul.verdict == "worse" and soul.changes["abstained"] == (False, True)
    false_abstention = next(m for m in comp.metrics if m.metric == "false_abstention")
    assert (false_abstention.delta, false_abstention.verdict) == (0.5, "worse")


def test_compare_command_prints_text_and_json(tmp_path: Path) -> None:
    write_reports(make_run(baseline_answers()), tmp_path / "a")
    write_reports(make_run(improved_answers()), tmp_path / "b")
    runner = CliRunner()
    text = runner.invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert text.exit_code == 0, text.output
    assert "1 better, 1 worse" in text.output
    as_json = runner.invoke(
        app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]
    )
    assert json.loads(as_json.output)["questions"][0]["verdict"] == "better"


def test_compare_command_says_what_to_pass_when_the_run_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "compare", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 1
    assert "no report here; pass a run folder or its report.json" in result.output


def test_dataset_loader_names_the_bad_line_and_fills_ids(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('# comment\n{"question": "A?"}\n\n{"question": "B?", "answerable": false}\n')
    questions = load_questions(good)
    assert [(q.id, q.answerable, q.relevant_ids) for q in questions] == [
        ("q2", True, None),
        ("q4", False, None),
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "A?"}\n{"relevant_ids": ["x"]}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: question: Field required"):
        load_questions(bad)


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["--llm", "gpt-5"], "'--llm': must be one of local, extractive, tiny, openai", 2),
        (["--dataset", "missing.jsonl"], "missing.jsonl: cannot read the dataset", 1),
    ],
)
def test_grounding_command_explains_bad_options_before_loading_anything(
    args: list[str],
    message: str,
    status: int,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["eval", "grounding", *args])
    assert result.exit_code == status
    assert message in result.output
    assert not (tmp_path / "data").exists()


def test_report_breaks_relevance_down_by_kind_and_wording_when_labelled() -> None:
    labelled = [
        q.model_copy(update={"wording": "lexical"} if q.answerable else {"kind": "off_topic"})
        for q in QUESTIONS
    ]
    results = run_questions(ScriptedAssistant(baseline_answers()), LexicalJudge(), labelled)
    report = build_report(results, RunMeta(created_at="t", dataset="d.jsonl", llm="scripted"))
    rows = breakdown(report)
    answerable = sum(q.answerable for q in QUESTIONS)
    assert any(r.startswith(f"| answerable, lexical | {answerable} |") for r in rows)
    assert any(r.startswith("| out of corpus, off_topic | 1 |") for r in rows)
    assert breakdown(make_run(baseline_answers())) == []  # unlabelled questions: no breakdown


def test_rescoring_keeps_the_answers_and_applies_the_new_judge() -> None:
    class Rejects(LexicalJudge):
        name = "rejects"

        def supports(self, claim: str, evidence: str) -> bool:
            return False

    run = make_run(baseline_answers())
    again = rescore_results(run.questions, Rejects())
    assert [r.answer for r in again] == [r.answer for r in run.questions]
    answered = [r.score for r in again if r.score and not r.score.abstained]
    assert answered and all(s.citation_recall == 0.0 for s in answered)
