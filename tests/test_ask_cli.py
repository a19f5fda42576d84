from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import rag.factory
from paperchat.cli import app
from paperchat.cli.ask import _render
from paperchat.settings import Settings
from rag.answering.response import AnswerStream
from rag.types import Answer, Citation, Edit


@pytest.fixture
def cli_env(settings: Settings, sample_store_settings: Settings, monkeypatch) -> None:
    """The CLI reads its settings from the environment: point it at the sample store."""
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(sample_store_settings.data_dir))
    monkeypatch.setenv("PAPERCHAT_MODEL_DIR", str(settings.model_dir))
    monkeypatch.setenv("PAPERCHAT_LLM", "local")  # --llm must override it


def test_ask_extractive_cites_the_soul_paper_with_numbered_references(cli_env):
    result = CliRunner().invoke(app, ["ask", "What is SOUL?", "--llm", "extractive"])
    assert result.exit_code == 0, result.output
    answer, references = result.output.split("References:")
    assert "SOUL" in answer
    assert "[1]" in answer
    # the sample corpus lists SOUL without a title: its display title is the abstract's opening
    assert "[1] Untitled: Large Language Models (LLMs) have highlighted" in references


def test_ask_json_for_an_out_of_corpus_question_is_an_abstention(cli_env):
    result = CliRunner().invoke(
        app, ["ask", "Who won the 2018 World Cup?", "--llm", "extractive", "--json"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["abstained"] is True
    assert answer["citations"] == []
    assert answer["text"].startswith("The corpus does not say")
    assert len(answer["nearest"]) >= 1


def test_chat_follow_up_uses_history_and_slash_commands_work(cli_env):
    result = CliRunner().invoke(
        app,
        ["chat", "--llm", "extractive"],
        input="What is SOUL?\nand how does it compare with first-order methods?\n/new\n/quit\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("References:") == 2
    assert "(new conversation)" in result.output
    assert "outperforms conventional first-order methods" in result.output


def test_ask_refused_configuration_is_one_line_and_exit_status_2(settings: Settings, monkeypatch):
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(app, ["ask", "What is SOUL?", "--llm", "openai"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "OPENAI_API_KEY" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def _answer(text: str, **extra) -> Answer:
    citation = Citation(number=1, paper_id="p:1", title="SOUL paper", year=2024, snippet="s")
    return Answer(question="q", standalone_question="q", text=text, citations=[citation], **extra)


def test_live_render_streams_then_lists_references(capsys):
    events = iter(["SOUL unlearns", " data [1].", _answer("SOUL unlearns data [1].")])
    _render(AnswerStream(events), live=True)
    out = capsys.readouterr().out
    assert out.count("SOUL unlearns data [1].") == 1
    assert "[1] SOUL paper (2024)" in out


def test_live_render_prints_the_abstention_that_replaced_the_streamed_text(capsys):
    refusal = Answer(
        question="q", standalone_question="q", text="The corpus does not say.", abstained=True
    )
    _render(AnswerStream(iter(["SOUL unlearns data [1].", refusal])), live=True)
    out = capsys.readouterr().out
    assert out.index("SOUL unlearns data [1].") < out.index("The corpus does not say.")


def test_render_lists_the_sentences_verification_removed(capsys):
    edit = Edit(
        kind="dropped",
        original="It was used in the Milgram experiment.",
        cited=["p:1"],
        reason="its cited abstract does not say it",
    )
    final = _answer("SOUL unlearns data [1].", edits=[edit])
    _render(AnswerStream(iter(["SOUL unlearns data [1].", final])), live=False)
    out = capsys.readouterr().out
    assert "Verification removed 1 sentence" in out
    assert "It was used in the Milgram experiment. (its cited abstract does not say it)" in out


def test_ask_dash_answers_one_json_line_per_question_with_one_assistant(cli_env, monkeypatch):
    built: list[str] = []
    real_build = rag.factory.build_assistant

    def counting(settings, retriever=None):
        built.append(settings.llm)
        return real_build(settings, retriever)

    monkeypatch.setattr(rag.factory, "build_assistant", counting)
    stdin = "What is SOUL?\n\nWho won the 2018 World Cup?\n"
    result = CliRunner().invoke(app, ["ask", "-", "--llm", "extractive"], input=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [a["question"] for a in lines] == ["What is SOUL?", "Who won the 2018 World Cup?"]
    assert lines[0]["abstained"] is False and lines[0]["citations"]
    assert lines[1]["abstained"] is True
    assert built == ["extractive"]
