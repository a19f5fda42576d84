"""Support judges: does a piece of evidence (an abstract) support a claim (an answer sentence)?

Two judges share one small protocol:

* `LexicalJudge`: deterministic and instant. Content-token and phrase (bigram) overlap, with
  every number and every name in the claim required to appear in the evidence, and a negation
  check: `rag.answering.support`, the check paperchat's answer verifier also uses (with its
  own thresholds; reports of verified answers say so). Its blind spots are written down in
  docs/grounding.md.
* `LLMJudge`: any LlamaIndex LLM (e.g. `rag.models.llm.build_llm(settings).llm`) asked a
  strict yes/no question per (claim, evidence) pair. Replies are cached on disk, keyed by model
  and prompt, so re-running an evaluation costs nothing for pairs already judged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from paperchat.text import CITATION_MARKER
from rag.answering.support import support


def strip_markers(text: str) -> str:
    """Text without [n] markers and with tidy spacing before punctuation."""
    text = re.sub(r"\s+", " ", CITATION_MARKER.sub("", text))
    return re.sub(r"\s+([.,;:!?])", r"\1", text).strip()


@runtime_checkable
class Judge(Protocol):
    """Decides whether `evidence` supports `claim`.

    Implementations must be deterministic for a given (claim, evidence) pair, so that scores
    can be reproduced.
    """

    name: str

    def supports(self, claim: str, evidence: str) -> bool:
        """Return True when `evidence` states or directly implies everything in `claim`."""
        ...

    def supports_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """Judge several (claim, evidence) pairs; same order as `pairs`."""
        ...

    def describe(self) -> dict[str, Any]:
        """What identifies this judge in a report: name, model, thresholds or prompt hash."""
        ...


# -- lexical ---------------------------------------------------------------------------------


class LexicalJudge:
    """Deterministic overlap judge; see docs/grounding.md for what it cannot see.

    A claim is supported when (1) every number in it appears in the evidence, (2) every
    name-like word (capitalised mid-sentence, or with inner capitals: `LoRA`, `BERT`) appears in
    the evidence, (3) its negations agree with the evidence sentence that matches it best,
    (4) no direction word is flipped ("fewer errors" where the evidence says "more errors"),
    (5) at least `min_token_recall` of its distinct content words occur in the evidence, and
    (6) at least `min_bigram_recall` of its adjacent content-word pairs occur there as adjacent
    pairs too (phrase overlap).
    """

    name = "lexical"

    def __init__(self, min_token_recall: float = 0.75, min_bigram_recall: float = 0.35) -> None:
        self.min_token_recall = min_token_recall
        self.min_bigram_recall = min_bigram_recall

    def describe(self) -> dict[str, Any]:
        """Name and thresholds, for the report."""
        return {
            "name": self.name,
            "min_token_recall": self.min_token_recall,
            "min_bigram_recall": self.min_bigram_recall,
        }

    def explain(self, claim: str, evidence: str) -> dict[str, Any]:
        """The numbers the decision rests on (for debugging and the calibration report)."""
        found = support(claim, evidence)
        return {
            "missing_numbers": list(found.missing_numbers),
            "missing_names": list(found.missing_names),
            "unmatched_negation": found.negation_mismatch,
            "flipped_direction": found.flipped_direction,
            "token_recall": found.token_recall,
            "bigram_recall": found.bigram_recall,
            "n_tokens": found.n_tokens,
        }

    def supports(self, claim: str, evidence: str) -> bool:
        """Apply the six tests in the class docstring."""
        return support(claim, evidence).passes(self.min_token_recall, self.min_bigram_recall)

    def supports_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """Judge each pair in order."""
        return [self.supports(claim, evidence) for claim, evidence in pairs]


# -- LLM -------------------------------------------------------------------------------------

JUDGE_PROMPT = """You check whether a scientific abstract supports a claim.

Abstract:
\"\"\"
{evidence}
\"\"\"

Claim: {claim}

Answer "yes" only if the abstract states or directly implies everything in the claim, \
including every number, name and direction of effect. Answer "no" if any part of the claim is \
missing from the abstract, contradicts it, or changes a number. Reply with one word: yes or no.
Answer:"""

_VERDICT = re.compile(r"\b(yes|no|not supported|unsupported|supported|true|false)\b")
_POSITIVE = {"yes", "supported", "true"}


def parse_verdict(reply: str) -> bool | None:
    """Read a yes/no reply: the first verdict word wins; None when there is none.

    Tolerates case, punctuation, markdown and preambles ("**Yes.**", "Answer: no", "The claim is
    not supported").
    """
    match = _VERDICT.search(reply.lower())
    if match is None:
        return None
    return match.group(1) in _POSITIVE


class LLMJudge:
    """Asks an LLM a strict yes/no support question per (claim, evidence) pair, with a disk cache.

    Args:
        llm: a LlamaIndex LLM (anything with `.complete(prompt) -> CompletionResponse`).
        model_id: names the model in cache keys and reports; defaults to the LLM's class and
            `metadata.model_name`.
        cache_dir: folder for cached replies (one JSON file per pair); None disables caching.
        prompt: the template, with `{claim}` and `{evidence}` slots.
        max_evidence_chars: evidence is cut to this length so a small context window holds it.
    """

    name = "llm"

    def __init__(
        self,
        llm: Any,
        *,
        model_id: str | None = None,
        cache_dir: Path | None = None,
        prompt: str = JUDGE_PROMPT,
        max_evidence_chars: int = 6000,
    ) -> None:
        self.llm = llm
        self.model_id = model_id or f"{type(llm).__name__}:{llm.metadata.model_name}"
        self.cache_dir = cache_dir
        self.prompt = prompt
        self.max_evidence_chars = max_evidence_chars
        self.calls = 0
        self.cache_hits = 0
        self.unparsed = 0

    @property
    def prompt_hash(self) -> str:
        """Short hash of the prompt template (changes when the wording changes)."""
        return hashlib.sha256(self.prompt.encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        """Name, model and prompt hash, for the report."""
        return {"name": self.name, "model": self.model_id, "prompt_hash": self.prompt_hash}

    def _cache_path(self, prompt: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(f"{self.model_id}\n{prompt}".encode()).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.json"

    def _ask(self, prompt: str) -> str:
        path = self._cache_path(prompt)
        if path is not None and path.exists():
            self.cache_hits += 1
            return str(json.loads(path.read_text(encoding="utf-8"))["reply"])
        self.calls += 1
        reply = str(self.llm.complete(prompt).text)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            record = {"model": self.model_id, "prompt": prompt, "reply": reply}
            tmp.write_text(json.dumps(record), encoding="utf-8")
            tmp.replace(path)
        return reply

    def supports(self, claim: str, evidence: str) -> bool:
        """Ask the model; an unreadable reply counts as "no" (and is counted in `unparsed`)."""
        claim = strip_markers(claim)
        prompt = self.prompt.format(claim=claim, evidence=evidence[: self.max_evidence_chars])
        verdict = parse_verdict(self._ask(prompt))
        if verdict is None:
            self.unparsed += 1
            return False
        return verdict

    def supports_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """Judge each pair in order (the local server answers one request at a time)."""
        return [self.supports(claim, evidence) for claim, evidence in pairs]
