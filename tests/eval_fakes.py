"""Deterministic stand-ins for the eval harness tests: a scripted assistant and fixed answers."""

from __future__ import annotations

from rag.types import Answer, Citation, Hit, Timings

ADAPTERS_ID = "p:adapters"
ADAPTERS = (
    "Adapter modules add only a few trainable parameters per task. "
    "On GLUE, adapters attain within 0.4% of the performance of full fine-tuning, adding only "
    "3.6% parameters per task."
)
SOUL_ID = "p:soul"
SOUL = (
    "SOUL is a second-order unlearning framework built upon the Sophia optimizer. "
    "SOUL consistently outperforms conventional first-order methods across unlearning tasks."
)


def hit(paper_id: str, abstract: str) -> Hit:
    return Hit(
        paper_id=paper_id, title=paper_id, score=1.0, snippet=abstract[:40], abstract=abstract
    )


def cited_answer(question: str, text: str, seconds: float = 1.0) -> Answer:
    """An answer over the two fixture papers: [1] = adapters, [2] = SOUL."""
    return Answer(
        question=question,
        standalone_question=question,
        text=text,
        citations=[
            Citation(number=1, paper_id=ADAPTERS_ID, title="Adapters", snippet=""),
            Citation(number=2, paper_id=SOUL_ID, title="SOUL", snippet=""),
        ],
        sources=[hit(ADAPTERS_ID, ADAPTERS), hit(SOUL_ID, SOUL)],
        backend="scripted",
        timings=Timings(total_s=seconds),
    )


def abstention(question: str) -> Answer:
    return Answer(
        question=question,
        standalone_question=question,
        abstained=True,
        text="The papers I have do not answer this.",
        abstain_reason="low similarity",
        nearest=[hit(SOUL_ID, SOUL)],
        backend="scripted",
        timings=Timings(total_s=0.5),
    )


class ScriptedAssistant:
    """Answers from a dict; records the questions it was asked."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def ask(self, question: str) -> Answer:
        self.asked.append(question)
        return self.answers[question]


Q_ADAPTERS = "How many parameters do adapters add on GLUE?"
Q_SOUL = "What is SOUL?"
Q_LAVA = "What is the boiling point of lava?"


def baseline_answers() -> dict[str, Answer]:
    """Hand-scored with the lexical judge (see test_eval_smoke):

    * Q_ADAPTERS: 2 sentences; the first supported by [1]; the second changes 3.6% to 36%, so
      unsupported. Recall 1/2, precision 1/2 (its [1] supports nothing), faithfulness 1/2.
    * Q_SOUL: 1 sentence citing [1][2]; [2] supports it, [1] does not and is not needed.
      Recall 1, precision 1/2, faithfulness 1.
    * Q_LAVA (unanswerable): abstains.
    """
    return {
        Q_ADAPTERS: cited_answer(
            Q_ADAPTERS,
            "On GLUE, adapters attain within 0.4% of the performance of full fine-tuning [1]. "
            "Adapters add only 36% parameters per task [1].",
            seconds=2.0,
        ),
        Q_SOUL: cited_answer(
            Q_SOUL,
            "SOUL is a second-order unlearning framework built upon the Sophia optimizer [1][2].",
            seconds=3.0,
        ),
        Q_LAVA: abstention(Q_LAVA),
    }


def improved_answers() -> dict[str, Answer]:
    """Q_ADAPTERS fixed (both sentences supported); Q_SOUL now answers with the wrong paper."""
    answers = baseline_answers()
    answers[Q_ADAPTERS] = cited_answer(
        Q_ADAPTERS,
        "On GLUE, adapters attain within 0.4% of the performance of full fine-tuning [1]. "
        "Adapters add only 3.6% parameters per task [1].",
    )
    answers[Q_SOUL] = cited_answer(
        Q_SOUL, "SOUL is a second-order unlearning framework built upon the Sophia optimizer [1]."
    )
    return answers
