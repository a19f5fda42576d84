"""The one error handler of `paperchat`: one prefix, one exit-code table, no stack traces.

Every command runs inside `handled()` (the root group, `PaperchatGroup`, wraps each
invocation), so a failure looks the same whichever command hit it: one `error: ...` line on
stderr, secrets masked (`paperchat.redact`), and the exit status of `EXIT_CODES`. Commands
raise `PaperchatError`s (their message is what the user reads) or `typer.BadParameter`; they
do not print errors or pick exit codes themselves, except `EXIT_FAILED` for a run that
finished with some records rejected or ids not found.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

from paperchat.errors import ConfigError, LLMUnavailable, PaperchatError

PREFIX = "error: "

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "done (an answer that abstains is done too)",
    EXIT_FAILED: "failed (store missing or empty, model or server unavailable, another writer "
    "busy), or finished with some records rejected or ids not found",
    EXIT_USAGE: "usage error, bad setting (PAPERCHAT_* or .env) or refused configuration",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
"""Every exit status a `paperchat` command returns, and what it means."""

EXIT_CODES_HELP = "Exit status:\n\n" + "\n\n".join(f"  {c:<3} {m}" for c, m in EXIT_CODES.items())
"""The table as help text (the root `--help`; each command's help names its own codes)."""

_UsageError: type[Exception] = typer.BadParameter.__mro__[1]
"""click's `UsageError` as Typer raises it (Typer 0.29 vendors click, so not `click.UsageError`)."""


def message(err: PaperchatError) -> str:
    """What the user reads for `err`: its message, secrets masked, the fallback offered.

    An `LLMUnavailable` whose backend names a fallback says how to use it.
    """
    from paperchat.redact import redact

    text = str(err).strip()
    fallback = err.fallback if isinstance(err, LLMUnavailable) else None
    if fallback and f"--llm {fallback}" not in text:
        text = f"{text} Run with --llm {fallback} for an answer that needs no model."
    return redact(text, _secrets())


def report(text: str) -> None:
    """Print one error line on stderr with the one prefix (secrets masked)."""
    from paperchat.redact import redact

    typer.echo(PREFIX + redact(text, _secrets()), err=True)


def exit_code(err: PaperchatError) -> int:
    """The exit status of `err`: a configuration refused is a usage error, the rest failed."""
    return EXIT_USAGE if isinstance(err, ConfigError) else EXIT_FAILED


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Turn every expected failure into one `error: ...` line and its exit status.

    `PaperchatError` gives its message (`exit_code`); an invalid `Settings` gives the fields
    and what is wrong with them (exit 2); a usage error gives click's usage line, then the
    message (exit 2). Ctrl-C passes through: Typer exits 130 without a traceback. Anything else
    is a bug and keeps its traceback.
    """
    from pydantic import ValidationError

    try:
        yield
    except PaperchatError as err:
        report(message(err))
        raise typer.Exit(exit_code(err)) from None
    except ValidationError as err:
        if err.title != "Settings":
            raise
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        report(f"invalid setting ({problems}); see .env.example")
        raise typer.Exit(EXIT_USAGE) from None
    except _UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # a bare group: click prints its help
            raise
        ctx = getattr(err, "ctx", None)
        if ctx is not None:
            typer.echo(ctx.get_usage(), err=True)
            typer.echo(f"Try '{ctx.command_path} --help' for help.\n", err=True)
        report(err.format_message())  # type: ignore[attr-defined]
        raise typer.Exit(EXIT_USAGE) from None


class PaperchatGroup(TyperGroup):
    """The root command group: runs every subcommand inside `handled()`."""

    def invoke(self, ctx: Any) -> Any:
        """Invoke the chosen subcommand (parsing its options) under the one error handler."""
        with handled():
            return super().invoke(ctx)


def _secrets() -> list[str]:
    """Secret values of the current settings, to mask; none when the settings do not load."""
    from paperchat.redact import secret_values
    from paperchat.settings import Settings

    try:
        return secret_values(Settings())
    except ValueError:  # an invalid setting: the generic patterns of `redact` still apply
        return []
