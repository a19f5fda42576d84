from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from eval.judge_calibration import (
    LabelledPair,
    calibrate,
    corpus_abstracts,
    load_pairs,
    wilson_interval,
)
from eval.judges import Judge, LexicalJudge, LLMJudge, parse_verdict
from eval.questions import default_dataset
from paperchat.errors import InputError
from paperchat.settings import Settings
from tests.conftest import SAMPLE_DIR
from tests.fixtures.models import QueuedLLM

ADAPTERS = (
    "Adapter modules yield a compact and extensible model; they add only a few trainable "
    "parameters per task, and new tasks can be added without revisiting previous ones. The "
    "parameters of the original network remain fixed, yielding a high degree of parameter "
    "sharing. On GLUE, we attain within 0.4% of the performance of full fine-tuning, adding "
    "only 3.6% parameters per task. Experiments cover six benchmarks. For example, when using "
    "a fixed threshold, detectors make more false positive errors on shorter text."
)


@pytest.fixture
def lexical() -> LexicalJudge:
    return LexicalJudge()


def test_both_judges_satisfy_the_judge_protocol(tmp_path: Path) -> None:
    assert isinstance(LexicalJudge(), Judge)
    assert isinstance(LLMJudge(QueuedLLM(), cache_dir=tmp_path), Judge)


def test_lexical_judge_accepts_a_claim_copied_from_the_abstract_with_its_marker(
    lexical: LexicalJudge,
) -> None:
    claim = "On GLUE, adapters attain within 0.4% of the performance of full fine-tuning [1]."
    assert lexical.supports(claim, ADAPTERS)


def test_lexical_judge_rejects_a_changed_number(lexical: LexicalJudge) -> None:
    assert lexical.supports("Adapters add only 3.6% parameters per task.", ADAPTERS)
    assert not lexical.supports("Adapters add only 36% parameters per task.", ADAPTERS)


def test_lexical_judge_rejects_a_changed_number_written_in_words(lexical: LexicalJudge) -> None:
    assert lexical.supports("Experiments cover six benchmarks.", ADAPTERS)
    assert not lexical.supports("Experiments cover eight benchmarks.", ADAPTERS)


def test_lexical_judge_rejects_a_name_the_evidence_never_mentions(lexical: LexicalJudge) -> None:
    assert not lexical.supports(
        "On SuperGLUE, adapters attain within 0.4% of the performance of full fine-tuning.",
        ADAPTERS,
    )


def test_lexical_judge_rejects_an_added_or_dropped_negation(lexical: LexicalJudge) -> None:
    assert not lexical.supports(
        "The parameters of the original network do not remain fixed.", ADAPTERS
    )
    evidence = "The guaranteed improvement does not imply the universality of the protocol."
    assert not lexical.supports(
        "The guaranteed improvement implies universality of the protocol.", evidence
    )


def test_lexical_judge_rejects_a_flipped_direction_word(lexical: LexicalJudge) -> None:
    assert lexical.supports("Detectors make more false positive errors on shorter text.", ADAPTERS)
    assert not lexical.supports(
        "Detectors make fewer false positive errors on shorter text.", ADAPTERS
    )


def test_lexical_judge_rejects_a_same_topic_claim_with_little_overlap(
    lexical: LexicalJudge,
) -> None:
    assert not lexical.supports("Adapters train faster than prompt tuning on small GPUs.", ADAPTERS)


def test_lexical_judge_misses_a_paraphrase_in_other_words(lexical: LexicalJudge) -> None:
    # A documented blind spot (docs/grounding.md): same meaning, different words.
    assert not lexical.supports("The pretrained weights are frozen.", ADAPTERS)


def test_lexical_judge_is_deterministic_and_batch_matches_single(lexical: LexicalJudge) -> None:
    pairs = [
        ("Adapters add only 3.6% parameters per task.", ADAPTERS),
        ("Adapters add only 36% parameters per task.", ADAPTERS),
    ]
    assert lexical.supports_many(pairs) == [lexical.supports(c, e) for c, e in pairs]
    assert lexical.supports_many(pairs) == [True, False]


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Yes", True),
        ("no.", False),
        ("**Yes.** The abstract says so.", True),
        ("Answer: NO", False),
        ("The claim is not supported.", False),
        ("Supported", True),
        ("I cannot tell", None),
        ("", None),
    ],
)
def test_llm_verdict_parser_reads_the_first_verdict_word(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


def test_llm_judge_asks_one_strict_question_per_pair_with_claim_and_abstract(
    tmp_path: Path,
) -> None:
    llm = QueuedLLM(["Yes.", "no"])
    judge = LLMJudge(llm, cache_dir=tmp_path)
    assert judge.supports_many([("Claim one [1].", "Abstract A."), ("Claim two.", "B.")]) == [
        True,
        False,
    ]
    assert len(llm.prompts) == 2
    assert "Claim: Claim one." in llm.prompts[0] and "Abstract A." in llm.prompts[0]
    assert "[1]" not in llm.prompts[0]
    assert "yes or no" in llm.prompts[0]


def test_llm_judge_rerun_is_served_from_the_disk_cache(tmp_path: Path) -> None:
    first = QueuedLLM(["no"])
    assert LLMJudge(first, cache_dir=tmp_path).supports("Claim.", "Abstract.") is False
    again = QueuedLLM(["yes"])  # would say yes if asked
    judge = LLMJudge(again, cache_dir=tmp_path)
    assert judge.supports("Claim.", "Abstract.") is False
    assert again.prompts == [] and judge.cache_hits == 1
    entry = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert entry["reply"] == "no" and entry["model"] == judge.model_id


def test_llm_judge_cache_is_keyed_by_model(tmp_path: Path) -> None:
    LLMJudge(QueuedLLM(["no"]), model_id="model-a", cache_dir=tmp_path).supports("C.", "E.")
    other = QueuedLLM(["yes"])
    assert LLMJudge(other, model_id="model-b", cache_dir=tmp_path).supports("C.", "E.") is True
    assert len(other.prompts) == 1


def test_llm_judge_counts_an_unreadable_reply_as_unsupported(tmp_path: Path) -> None:
    judge = LLMJudge(QueuedLLM(["maybe?"]), cache_dir=None)
    assert judge.supports("Claim.", "Abstract.") is False
    assert judge.unparsed == 1


class ConstantJudge:
    name = "constant"

    def __init__(self, answer: bool) -> None:
        self.answer = answer

    def supports(self, claim: str, evidence: str) -> bool:
        return self.answer

    def supports_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        return [self.answer for _ in pairs]

    def describe(self) -> dict[str, object]:
        return {"name": self.name}


def test_calibration_counts_agreements_per_label_and_kind() -> None:
    pairs = [
        LabelledPair(claim="a", paper_id="p", evidence="e", supported=True, kind="verbatim"),
        LabelledPair(claim="b", paper_id="p", evidence="e", supported=True, kind="verbatim"),
        LabelledPair(claim="c", paper_id="p", evidence="e", supported=False, kind="negation"),
    ]
    cal = calibrate(ConstantJudge(True), pairs)
    assert (cal.tp, cal.fp, cal.tn, cal.fn) == (2, 1, 0, 0)
    assert cal.accuracy == pytest.approx(2 / 3)
    assert cal.precision == pytest.approx(2 / 3) and cal.recall == 1.0
    assert cal.by_kind == {
        "negation": {"n": 1, "accuracy": 0.0},
        "verbatim": {"n": 2, "accuracy": 1.0},
    }
    assert [m["claim"] for m in cal.mistakes] == ["c"]
    assert calibrate(ConstantJudge(False), pairs).precision is None


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_labelled_pair_without_evidence_or_known_paper_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"claim": "x", "paper_id": "p:none", "supported": true}\n')
    with pytest.raises(InputError, match=r"pairs.jsonl:1: .*p:none"):
        load_pairs(path, {})


def test_shipped_calibration_set_is_large_balanced_and_grounded_in_the_sample_corpus() -> None:
    pairs = load_pairs(default_dataset("judge_calibration.jsonl"), corpus_abstracts([SAMPLE_DIR]))
    assert len(pairs) >= 80
    kinds = {p.kind for p in pairs}
    assert {"number_changed", "entity_swap", "negation", "same_topic"} <= kinds
    positives = sum(p.supported for p in pairs)
    assert 0.3 < positives / len(pairs) < 0.7
    # Regression floor for the lexical judge (measured 0.918; see docs/grounding.md).
    assert calibrate(LexicalJudge(), pairs).accuracy >= 0.88


def test_judge_command_reports_lexical_calibration_figures(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from paperchat.cli import app

    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["eval", "judge", "--corpus", str(SAMPLE_DIR), "--json"])
    assert result.exit_code == 0, result.output
    [cal] = json.loads(result.output)
    assert cal["judge"]["name"] == "lexical" and cal["n"] >= 80
    assert cal["tp"] + cal["fp"] + cal["tn"] + cal["fn"] == cal["n"]
    text = CliRunner().invoke(app, ["eval", "judge", "--corpus", str(SAMPLE_DIR)])
    assert "accuracy" in text.output and "number_changed" in text.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--judge", "llm", "--judge-llm", "extractive"], "the llm judge needs a model"),
        (["--judge", "oracle"], "--judge must be one of lexical, llm"),
    ],
)
def test_judge_command_explains_a_judge_it_cannot_build(
    args: list[str],
    message: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from paperchat.cli import app

    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["eval", "judge", "--corpus", str(SAMPLE_DIR), *args])
    assert result.exit_code == 2  # a judge that cannot be built is a refused configuration
    assert message in result.output


def test_llm_judge_on_the_answering_backend_reuses_its_model(settings: Settings) -> None:
    from paperchat.cli.eval.grounding import make_judge

    local = settings.model_copy(update={"llm": "local"})
    llm = QueuedLLM(["yes"])
    judge, handle = make_judge("llm", None, local, shared=("local", "local:qwen", llm))
    assert handle is None and isinstance(judge, LLMJudge)
    assert judge.model_id == "local:qwen" and judge.llm is llm
    assert judge.cache_dir == settings.data_dir / "eval" / "judge-cache"
    lexical, none = make_judge("lexical", None, local, shared=("local", "local:qwen", llm))
    assert isinstance(lexical, LexicalJudge) and none is None


def test_lexical_judge_reads_through_latex_markup_in_abstracts(lexical: LexicalJudge) -> None:
    evidence = (
        "Our method discovers an optimization algorithm, Lion (Evo\\textbf{Lved Sign "
        "Momentum}), and reduces density by up to $\\boldsymbol{50.72\\%}$ on RoBERTa."
    )
    assert lexical.supports("The method discovers Lion (EvoLved Sign Momentum).", evidence)
    assert lexical.supports("It reduces density by up to 50.72% on RoBERTa.", evidence)
