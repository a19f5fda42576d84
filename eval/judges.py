"""Support judges: does a piece of evidence (an abstract) support a claim (an answer sentence)?

Two judges share one small protocol:

* `LexicalJudge`: deterministic and instant. Content-token and phrase (bigram) overlap, with
  every number and every name in the claim required to appear in the evidence, and a negation
  check. Its blind spots are written down in docs/grounding.md.
* `LLMJudge`: any LlamaIndex LLM (e.g. `rag.llm.build_llm(settings).llm`) asked a strict yes/no
  question per (claim, evidence) pair. Replies are cached on disk, keyed by model and prompt, so
  re-running an evaluation costs nothing for pairs already judged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

CITATION_MARKER = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")

_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,]\d+)*")
_STOPWORDS = frozenset(
    """a about again against all also am an and any are as at be because been
    being between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is it
    its itself just me my of off on once only or other our ours out over own same
    she should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your yours via using use used uses based paper work propose proposed
    present presents introduce introduces show shows shown approach method methods new novel
    et al e g i etc""".split()
)
_NUMBER_WORDS = frozenset(
    """zero two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred thousand million billion trillion twice triple""".split()
)
# Negation cues, by class: a claim may not add a cue of any class that its best-matching
# evidence sentence lacks, nor drop a "not" the sentence has ("without" may be dropped: "X runs
# in 3 s" is implied by "X runs in 3 s without retraining").
_NEGATION_CLASS = {
    **dict.fromkeys("not no never cannot nor neither none".split(), "not"),
    **dict.fromkeys("fail fails failed unable lack lacks".split(), "fail"),
    "without": "without",
}
_NEGATIONS = frozenset(_NEGATION_CLASS)
# Direction words and their opposites: "fewer errors" where the evidence says "more errors".
_OPPOSITES = {
    "more": {"fewer", "less"},
    "fewer": {"more"},
    "less": {"more"},
    "higher": {"lower"},
    "lower": {"higher"},
    "larger": {"smaller"},
    "smaller": {"larger"},
    "increas": {"reduc", "decreas", "lower"},
    "reduc": {"increas", "rais"},
    "decreas": {"increas"},
    "improv": {"degrad", "hurt", "damag"},
    "degrad": {"improv"},
    "outperform": {"underperform"},
    "underperform": {"outperform"},
    "before": {"after"},
    "after": {"before"},
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# LaTeX left in abstracts: `Evo\textbf{Lved}` reads as `EvoLved`, `$\boldsymbol{50.72\%}$` as 50.72.
_LATEX = re.compile(r"\\[A-Za-z]+\*?\{|[{}$]")


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


def _stem(word: str) -> str:
    """Crude suffix stripping so 'models'/'model' and 'improves'/'improved' meet."""
    if any(ch.isdigit() for ch in word) or len(word) <= 3:
        return word
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + repl
    return word


def _normalise_number(token: str) -> str:
    return token.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", token) else token


def _words(text: str) -> list[str]:
    text = _LATEX.sub("", CITATION_MARKER.sub(" ", text))
    text = text.replace("n't", " not").replace("n’t", " not")
    return [_normalise_number(w) for w in _WORD.findall(text)]


def content_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed content words of `text` in order (stopwords and [n] removed)."""
    out = []
    for word in _words(text):
        low = word.lower()
        if low not in _STOPWORDS and low not in _NEGATIONS:
            out.append(_stem(low))
    return out


def _numbers(words: list[str]) -> set[str]:
    """Numbers in digits ("3.6", "16B", "40x40") and in words ("six", "twice")."""
    lowered = (w.lower() for w in words)
    return {w for w in lowered if any(ch.isdigit() for ch in w) or w in _NUMBER_WORDS}


def _names(words: list[str]) -> set[str]:
    """Words that look like names: capitalised mid-sentence, or with inner capitals."""
    names = set()
    for i, word in enumerate(words):
        inner_caps = any(ch.isupper() for ch in word[1:])
        if inner_caps or (i > 0 and word[:1].isupper()):
            names.add(word.lower())
    return names


def _best_sentence(claim: str, evidence: str) -> list[str]:
    """Words of the evidence sentence sharing the most content words with the claim."""
    wanted = set(content_tokens(claim))
    best: list[str] = []
    best_overlap = -1
    for sentence in _SENTENCE_END.split(evidence):
        overlap = len(wanted & set(content_tokens(sentence)))
        if overlap > best_overlap:
            best, best_overlap = _words(sentence), overlap
    return best


def _negation_classes(words: list[str]) -> set[str]:
    return {_NEGATION_CLASS[w.lower()] for w in words if w.lower() in _NEGATION_CLASS}


def _negated_words(words: list[str]) -> set[str]:
    """Stemmed content words right after a "not"-class cue ("does not imply X" -> imply)."""
    negated = set()
    for i, word in enumerate(words):
        if _NEGATION_CLASS.get(word.lower()) == "not":
            following = content_tokens(" ".join(words[i + 1 : i + 4]))
            if following:
                negated.add(following[0])
    return negated


def _negation_mismatch(claim_words: list[str], sentence_words: list[str]) -> bool:
    """The claim adds a negation the sentence lacks, or drops a "not" on a word it repeats."""
    claim, sentence = _negation_classes(claim_words), _negation_classes(sentence_words)
    if claim - sentence:
        return True
    if "not" in claim:
        return False
    return bool(_negated_words(sentence_words) & set(content_tokens(" ".join(claim_words))))


def _flipped_direction(claim_tokens: list[str], ev_bigrams: set[tuple[str, str]]) -> bool:
    """A direction word + its object ("fewer error") absent, its opposite ("more error") there."""
    for word, following in zip(claim_tokens, claim_tokens[1:], strict=False):
        opposites = _OPPOSITES.get(word, set())
        if opposites and (word, following) not in ev_bigrams:
            if any((o, following) in ev_bigrams for o in opposites):
                return True
    return False


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
        claim_words, ev_words = _words(claim), _words(evidence)
        ev_lower = {w.lower() for w in ev_words}
        ev_stems = {_stem(w) for w in ev_lower}
        claim_tokens = content_tokens(claim)
        ev_tokens = content_tokens(evidence)
        distinct = set(claim_tokens)
        token_recall = len(distinct & set(ev_tokens)) / len(distinct) if distinct else 0.0
        bigrams = set(zip(claim_tokens, claim_tokens[1:], strict=False))
        ev_bigrams = set(zip(ev_tokens, ev_tokens[1:], strict=False))
        bigram_recall = len(bigrams & ev_bigrams) / len(bigrams) if bigrams else 1.0
        return {
            "missing_numbers": sorted(_numbers(claim_words) - ev_lower),
            "missing_names": sorted(
                n for n in _names(claim_words) if n not in ev_lower and _stem(n) not in ev_stems
            ),
            "unmatched_negation": _negation_mismatch(claim_words, _best_sentence(claim, evidence)),
            "flipped_direction": _flipped_direction(claim_tokens, ev_bigrams),
            "token_recall": token_recall,
            "bigram_recall": bigram_recall,
            "n_tokens": len(distinct),
        }

    def supports(self, claim: str, evidence: str) -> bool:
        """Apply the six tests in the class docstring."""
        why = self.explain(claim, evidence)
        return (
            why["n_tokens"] > 0
            and not why["missing_numbers"]
            and not why["missing_names"]
            and not why["unmatched_negation"]
            and not why["flipped_direction"]
            and why["token_recall"] >= self.min_token_recall
            and why["bigram_recall"] >= self.min_bigram_recall
        )

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
