"""Synthesis: turn selected evidence into an `Answer`, with an LLM (streamed) or extractively.

The steps, each a function: `abstain_reason` (is retrieval close enough?), `build_messages`
(numbered sources inside data delimiters), `stream_llm_answer` (stream, hold back a possible
refusal token, rewrite `[n]` markers as they arrive, count usage) and `extractive_result`.
`rag.assistant.Assistant` strings them together.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from llama_index.core.llms import LLM, ChatMessage, ChatResponse, MessageRole

from paperchat.errors import LLMUnavailable, PaperchatError
from rag import prompts
from rag.citations import (
    MarkerRewriter,
    attribute_uncited,
    build_citations,
    correct_miscitations,
    rewrite_markers,
    trailing_markers,
    uncited_sentences,
)
from rag.evidence import Evidence, header
from rag.extractive import extractive_answer
from rag.llm import usage_of
from rag.text import clean_abstract, content_terms
from rag.types import Answer, Hit, Timings, Usage


@dataclass
class Turn:
    """What one question has gathered before synthesis: the stage timings and token counts."""

    question: str
    standalone: str
    backend: str
    started: float = field(default_factory=time.perf_counter)
    retrieve_s: float = 0.0
    first_token_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def timings(self) -> Timings:
        """Timings so far, total measured now."""
        return Timings(
            retrieve_s=round(self.retrieve_s, 4),
            first_token_s=None if self.first_token_s is None else round(self.first_token_s, 4),
            total_s=round(time.perf_counter() - self.started, 4),
        )

    def usage(self) -> Usage:
        """Token counts so far."""
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)

    def mark_first_token(self) -> None:
        """Record the time to the first answer token (once)."""
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started


def best_similarity(hits: Sequence[Hit]) -> float | None:
    """Best dense similarity among the hits; None when dense search saw none of them."""
    values = [hit.dense_similarity for hit in hits if hit.dense_similarity is not None]
    return max(values) if values else None


def lexical_coverage(question: str, hits: Sequence[Hit]) -> float:
    """Largest share of the question's content terms found in one hit's title and abstract.

    Rescues questions whose key word the embedder does not know ("What is SOUL?" has a dense
    similarity of 0.16 to the SOUL abstract, because all-MiniLM-L6-v2 reads "soul" as a word).
    """
    wanted = set(content_terms(question))
    if not wanted:
        return 0.0
    best = 0
    for hit in hits:
        have = set(content_terms(clean_abstract(f"{hit.title} {hit.abstract or hit.snippet}")))
        best = max(best, len(wanted & have))
    return best / len(wanted)


def abstain_reason(question: str, hits: Sequence[Hit], threshold: float) -> str | None:
    """The abstention message when retrieval found nothing relevant enough, else None.

    Relevant enough: the best dense similarity reaches `threshold`, or one retrieved paper
    contains every content term of the question (see `lexical_coverage`); docs/abstention.md
    has the calibration.
    """
    if not hits:
        return prompts.ABSTAIN_NO_HITS
    best = best_similarity(hits)
    if best is None or best >= threshold:
        return None
    if lexical_coverage(question, hits) >= 1.0:
        return None
    return prompts.ABSTAIN_LOW_SIMILARITY


def abstention(turn: Turn, reason: str, hits: Sequence[Hit]) -> Answer:
    """An Answer that says the corpus does not answer and names the nearest papers."""
    return Answer(
        question=turn.question,
        standalone_question=turn.standalone,
        text=reason,
        abstained=True,
        abstain_reason=reason,
        nearest=list(hits),
        backend=turn.backend,
        usage=turn.usage(),
        timings=turn.timings(),
    )


def format_sources(evidence: Sequence[Evidence]) -> str:
    """The numbered sources block: `[n] Title (year)` then the selected sentences."""
    return "\n\n".join(
        prompts.SOURCE_TEMPLATE.format(header=header(number, item.hit), text=item.text)
        for number, item in enumerate(evidence, start=1)
    )


def build_messages(question: str, evidence: Sequence[Evidence]) -> list[ChatMessage]:
    """System prompt, the worked demo exchange, then the delimited sources and the question."""
    user = prompts.USER_TEMPLATE.format(sources=format_sources(evidence), question=question)
    return [
        ChatMessage(role=MessageRole.SYSTEM, content=prompts.SYSTEM_PROMPT),
        ChatMessage(role=MessageRole.USER, content=prompts.DEMO_USER),
        ChatMessage(role=MessageRole.ASSISTANT, content=prompts.DEMO_ANSWER),
        ChatMessage(role=MessageRole.USER, content=user),
    ]


def finished_answer(turn: Turn, text: str, order: list[int], dropped: int,
                    evidence: Sequence[Evidence]) -> Answer:  # fmt: skip
    """The final cited Answer for rewritten `text` whose markers used sources in `order`."""
    return Answer(
        question=turn.question,
        standalone_question=turn.standalone,
        text=text,
        citations=build_citations(order, evidence),
        sources=[item.hit for item in evidence],
        uncited_sentences=uncited_sentences(text),
        dropped_markers=dropped,
        backend=turn.backend,
        usage=turn.usage(),
        timings=turn.timings(),
    )


def extractive_result(turn: Turn, hits: Sequence[Hit], evidence: Sequence[Evidence]) -> Answer:
    """The no-LLM answer, or an abstention when no sentence mentions the question's terms."""
    raw = extractive_answer(evidence)
    if not raw:
        return abstention(turn, prompts.ABSTAIN_NO_SENTENCE, hits)
    turn.mark_first_token()
    text, order, dropped = rewrite_markers(raw, len(evidence))
    return finished_answer(turn, text.strip(), order, dropped, evidence)


_REFUSAL_PHRASE = re.compile(
    r"\b(do(es)? not|don't|doesn't|cannot|can't|no)\b[^.]{0,40}\b(answer|information|mention|"
    r"provide|contain|say|specif|address)",
    re.IGNORECASE,
)


def is_refusal(text: str, cited: bool = False) -> bool:
    """True when the reply contains the refusal token, or cites nothing and says it cannot answer.

    Small models sometimes paraphrase the refusal ("The sources do not mention ..."); without
    any citation such a reply is treated as a refusal too.
    """
    if prompts.REFUSAL_TOKEN in text.upper().replace(" ", "_"):
        return True
    return not cited and bool(_REFUSAL_PHRASE.search(text))


def _could_be_refusal(text: str) -> bool:
    head = text.strip().upper().replace(" ", "_")
    return prompts.REFUSAL_TOKEN.startswith(head) or head.startswith(prompts.REFUSAL_TOKEN)


def stream_llm_answer(
    llm: LLM, turn: Turn, hits: Sequence[Hit], evidence: Sequence[Evidence]
) -> Iterator[str | Answer]:
    """Stream the model's answer as rewritten text deltas, then yield the final Answer.

    The opening of the reply is held back while it could still be the refusal token, so a
    refusal never reaches the screen; a refusal anywhere in the reply becomes an abstention.
    Then a marker that plainly points at the wrong source is re-pointed
    (`correct_miscitations`) and uncited sentences that restate one source are cited
    (`attribute_uncited`); markers written before their sentence are moved after it
    (`trailing_markers`). So the final text can differ in its markers from what streamed:
    display the final `Answer.text`.
    """
    messages = build_messages(turn.standalone, evidence)
    rewriter = MarkerRewriter(len(evidence))
    raw, shown, released = "", "", False
    last: ChatResponse | None = None
    try:
        for chunk in llm.stream_chat(messages):
            last = chunk
            delta = chunk.delta or ""
            if not delta:
                continue
            turn.mark_first_token()
            raw += delta
            if not released and _could_be_refusal(raw):
                continue
            out = rewriter.feed(delta if released else raw)
            released = True
            if out:
                shown += out
                yield out
    except PaperchatError:
        raise
    except Exception as err:  # any client/server failure: the user gets one clear message
        raise llm_failure(turn.backend, err) from err
    tail = rewriter.finish()
    if tail:
        shown += tail
        yield tail
    usage = usage_of(messages, raw, last)
    turn.prompt_tokens += usage.prompt_tokens
    turn.completion_tokens += usage.completion_tokens
    text, order, dropped = shown.strip(), rewriter.order, rewriter.dropped
    corrected, fixed = correct_miscitations(trailing_markers(raw.strip()), evidence)
    if fixed:
        text, order, dropped = rewrite_markers(corrected, len(evidence))
        text = text.strip()
    text = trailing_markers(text)
    text, order, _ = attribute_uncited(text, order, evidence)
    if is_refusal(raw, cited=bool(order)):
        yield abstention(turn, prompts.ABSTAIN_MODEL_REFUSED, hits)
    elif not text:
        yield abstention(turn, prompts.ABSTAIN_EMPTY_ANSWER, hits)
    else:
        yield finished_answer(turn, text, order, dropped, evidence)


def llm_failure(backend: str, err: BaseException) -> LLMUnavailable:
    """An LLMUnavailable that says what failed and what to do."""
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return LLMUnavailable(
        f"The {backend} model did not answer ({detail}). "
        "Try again, or use the extractive answer (--llm extractive), which needs no model."
    )
