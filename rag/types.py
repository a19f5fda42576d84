"""Typed results shared by retrieval, answering, the UI and the eval harness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Hit(BaseModel):
    """One retrieved paper (chunk hits folded into their paper; best chunk as the snippet)."""

    model_config = ConfigDict(frozen=True)

    paper_id: str = Field(description="Stable paper id (`arxiv:<id>` or `p:<hash>`).")
    title: str = Field(description="Display title (untitled papers get the abstract's opening).")
    score: float = Field(
        description="Fused retrieval score; higher is better. Rank, not a probability."
    )
    year: int | None = Field(default=None, description="Publication year when known.")
    date: str | None = Field(default=None, description="Date text as the source gave it.")
    url: str | None = Field(default=None, description="Link to the paper when known.")
    authors: list[str] = Field(default_factory=list, description="Author names when known.")
    author_count: int | None = Field(default=None, description="Number of authors when known.")
    snippet: str = Field(description="Text of the best-matching chunk.")
    abstract: str = Field(default="", description="The whole abstract (for evidence selection).")
    dense_similarity: float | None = Field(
        default=None,
        description="Best cosine similarity of any chunk to the question, if "
        "dense search found this paper (used for abstention).",
    )


class Citation(BaseModel):
    """A numbered reference in an answer. `number` is the [n] the text uses."""

    model_config = ConfigDict(frozen=True)

    number: int = Field(
        description="Marker number in the answer text, 1-based, in order of first use."
    )
    paper_id: str = Field(description="Stable id of the cited paper.")
    title: str = Field(description="Display title.")
    year: int | None = Field(default=None, description="Publication year when known.")
    url: str | None = Field(default=None, description="Link to the paper when known.")
    authors: list[str] = Field(default_factory=list, description="Author names when known.")
    author_count: int | None = Field(default=None, description="Number of authors when known.")
    snippet: str = Field(description="The evidence text from this paper that the model was shown.")
    supporting: list[str] = Field(
        default_factory=list,
        description="The abstract's sentences that verification found backing the answer "
        "sentences citing this paper (for highlighting).",
    )


EditKind = Literal["dropped", "replaced", "recited", "attributed", "uncited_source"]


class Edit(BaseModel):
    """What verification changed in one sentence of the model's draft (rag.answering.verify)."""

    model_config = ConfigDict(frozen=True)

    kind: EditKind = Field(
        description="dropped (not shown), replaced (by its source's own sentence), recited "
        "(cited to the source that says it), attributed (an uncited sentence got its source), "
        "uncited_source (a cited paper that does not say it lost its marker)."
    )
    original: str = Field(description="The sentence as the model wrote it, markers removed.")
    result: str | None = Field(default=None, description="What is shown instead; None: dropped.")
    cited: list[str] = Field(default_factory=list, description="Paper ids the model cited.")
    now_cited: list[str] = Field(
        default_factory=list, description="Paper ids cited after verification."
    )
    reason: str = Field(description="Why, in words a reader understands.")


class Usage(BaseModel):
    """Token counts for one answer (server-reported, else counted with tiktoken)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


class Timings(BaseModel):
    """Wall-clock seconds of the stages of one answer."""

    retrieve_s: float = 0.0
    first_token_s: float | None = Field(
        default=None, description="To the model's first token (or the extractive text)."
    )
    first_text_s: float | None = Field(
        default=None, description="To the first verified sentence the user sees."
    )
    total_s: float = 0.0


class Answer(BaseModel):
    """A cited answer, or an abstention that names the nearest papers."""

    question: str = Field(description="The question as asked.")
    standalone_question: str = Field(description="The question rewritten without chat context.")
    text: str = Field(description="Answer text with [n] markers matching `citations`.")
    citations: list[Citation] = Field(default_factory=list, description="Cited papers, by number.")
    abstained: bool = Field(default=False, description="True when the corpus does not answer.")
    abstain_reason: str | None = Field(default=None, description="Why it abstained.")
    nearest: list[Hit] = Field(
        default_factory=list, description="On abstention: the closest papers found."
    )
    sources: list[Hit] = Field(
        default_factory=list,
        description="The papers source selection passed to the model (or the extractive "
        "answer), in prompt order.",
    )
    retrieved: list[Hit] = Field(
        default_factory=list,
        description="Every paper retrieval returned, best first; `sources` is chosen from them.",
    )
    uncited_sentences: list[str] = Field(
        default_factory=list, description="Answer sentences that carry no citation."
    )
    dropped_markers: int = Field(
        default=0, description="[n] markers that pointed to no source and were removed."
    )
    edits: list[Edit] = Field(
        default_factory=list,
        description="What verification changed, in answer order (dropped sentences included).",
    )
    quoted: bool = Field(
        default=False,
        description="Verification dropped every sentence the model wrote (none invented a "
        "number or name), so the answer quotes the chosen papers' own sentences instead.",
    )
    draft: str = Field(
        default="",
        description="The backend's reply as written, before parsing and verification (numbered "
        "as the prompt numbered the sources; empty when no backend was asked).",
    )
    backend: str = Field(default="", description="LLM backend that wrote the answer.")
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)

    @property
    def removed_sentences(self) -> list[str]:
        """Sentences the model wrote that verification did not show."""
        return [e.original for e in self.edits if e.kind in ("dropped", "replaced")]
