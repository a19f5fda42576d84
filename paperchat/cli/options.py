"""Option types every `paperchat` command shares, and the settings they override.

One definition each: `--llm` (checked against the backend registry), `--k` (default
`PAPERCHAT_TOP_K`), the year range, `--json`. Defaults that come from settings are `None`
here and resolved in the command body (`load_settings`, `top_k`), so `--help` loads nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, get_args

import typer

from paperchat.settings import LLMBackend

if TYPE_CHECKING:
    from paperchat.settings import Settings

_BACKEND_NAMES = ", ".join(get_args(LLMBackend))


def check_llm(value: str | None) -> str | None:
    """Reject a backend name the registry (`rag.answering.backends`) does not know: exit 2."""
    if value is None:
        return None
    from rag.answering.backends import backends

    names = [info.name for info in backends()]
    if value not in names:
        raise typer.BadParameter(f"must be one of {', '.join(names)}, not {value!r}")
    return value


LLMOption = Annotated[
    str | None,
    typer.Option(
        "--llm",
        callback=check_llm,
        metavar="BACKEND",
        show_default=False,
        help=f"Answering backend: {_BACKEND_NAMES} (default PAPERCHAT_LLM, else local). "
        "extractive needs no model.",
    ),
]
JudgeLLMOption = Annotated[
    str | None,
    typer.Option(
        "--judge-llm",
        callback=check_llm,
        metavar="BACKEND",
        show_default=False,
        help="Backend of the llm judge (local, tiny, openai). Default: the answering backend, "
        "or local when that is extractive.",
    ),
]
KOption = Annotated[
    int | None,
    typer.Option(
        "--k", "-k", min=1, max=50, show_default=False,
        help="Papers to retrieve (default PAPERCHAT_TOP_K, else 5).",
    ),
]  # fmt: skip
YearFrom = Annotated[
    int | None,
    typer.Option(
        "--year-from", help="Only papers from this year on (papers without a year drop out)."
    ),
]
YearTo = Annotated[
    int | None,
    typer.Option("--year-to", help="Only papers up to this year (papers without a year drop out)."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def load_settings(llm: str | None = None) -> Settings:
    """The settings from PAPERCHAT_* and .env, with `--llm` applied when given.

    Raises:
        pydantic.ValidationError: A setting is invalid (the error handler exits 2).
    """
    from paperchat.settings import Settings

    return Settings(llm=llm) if llm is not None else Settings()


def check_years(year_from: int | None, year_to: int | None) -> None:
    """Reject a year range that ends before it starts (a usage error)."""
    if year_from is not None and year_to is not None and year_from > year_to:
        raise typer.BadParameter(
            f"--year-from {year_from} is after --year-to {year_to}", param_hint="--year-from"
        )


def check_split(split: str | None) -> None:
    """Reject a dataset split other than tune or heldout (a usage error)."""
    if split not in (None, "tune", "heldout"):
        raise typer.BadParameter(f"choose tune or heldout, not {split!r}", param_hint="--split")
