r"""Input files read a line at a time, in binary, each line decoded on its own.

One byte that is not UTF-8 costs its line, not the file, and memory holds one line however
big the file is. Lines are numbered from 1 as editors number them (split on `\n` only; a
trailing `\r` is dropped; a UTF-8 byte order mark before line 1 is skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.records import Rejection

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Line:
    """One decoded line of an input file.

    Attributes:
        number: 1-based line number.
        text: The line without its line ending; U+FFFD where a byte was not UTF-8.
        bad: Where the line stops being UTF-8 (`byte 0xe9 at column 4`), or None.
    """

    number: int
    text: str
    bad: str | None = None


def read_lines(path: Path, on_bytes: Callable[[int], None] | None = None) -> Iterator[Line]:
    """Yield the file's lines as they are read; `on_bytes` gets each raw line's size."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if on_bytes is not None:
                on_bytes(len(raw))
            yield decode_line(number, raw)


def decode_line(number: int, raw: bytes) -> Line:
    r"""Decode one raw line (with or without its `\n`) as UTF-8, marking it when it is not."""
    chunk = raw.removesuffix(b"\n").rstrip(b"\r")
    if number == 1:
        chunk = chunk.removeprefix(_BOM)
    try:
        return Line(number, chunk.decode("utf-8"))
    except UnicodeDecodeError as err:
        where = f"byte 0x{chunk[err.start]:02x} at column {err.start + 1}"
        return Line(number, chunk.decode("utf-8", errors="replace"), where)


def not_utf8(name: str, number: int, where: str) -> Rejection:
    """The rejection for line `number`, not valid UTF-8 at `where` (a `Line.bad`)."""
    return Rejection(name, number, f"not valid UTF-8 ({where}); re-save the file as UTF-8")
