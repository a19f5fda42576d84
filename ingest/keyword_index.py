"""The persisted keyword index: SQLite FTS5 over every chunk (title + text), ranked by bm25().

One file per store, `DATA_DIR/keywords-<collection>.sqlite3`, beside the embedded Chroma store
(with a Chroma server too: the file is local, keyed by the base collection name). It holds one
FTS5 table per data collection (the live one, and one being built aside by a rebuild), so a
swap needs no file rename: readers follow the store's pointer to the other table.

`ingest.store.ChromaStore` is the only writer: each of its writes updates this index right
after Chroma, and each collection's row in `collections` records the store generation the
table matches, or NULL while a write is under way (`begin` .. `mark`). A table whose
generation disagrees with the store's (a kill between the two writes, an interrupted write, a
store built before this index existed) is rebuilt once from the store's chunks.

Tokens: the text is cut into words as `terms()` does (lower case, two or more word
characters, `paperchat.text.KEYWORD_STOPWORDS` dropped: the same as the old in-memory BM25,
so document lengths match), then FTS5's porter stemmer over unicode61 (diacritics folded)
stems them. Questions go through the same `terms()`, each term quoted, OR-ed
(`match_expression`): no question text ever reaches FTS5's query syntax.

Common words are left out of the query (`KeywordIndex.selective`): an OR query scores every
chunk that has any of its words, so one word found in most chunks makes a question cost as
much as the store is large, while bm25 gives such a word almost no weight. A word stays when
it is in at most `MAX_DF` of the chunks or in at most `MIN_DF` chunks (a short list costs
little whatever its share); its stem's document frequency comes from an `fts5vocab` table in
the connection's temp schema (nothing is added to the file). When every word is more common
than that, only the rarest stays. Frequencies are cached per table and generation.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ingest.rows import PaperFilter
from paperchat.settings import Settings
from paperchat.text import KEYWORD_STOPWORDS

INDEX_FILE = "keywords-{collection}.sqlite3"
TOKENIZER = "porter unicode61 remove_diacritics 2"
TITLE_WEIGHT = 1.25
"""bm25() weight of a title hit against a text hit (1.0: as if the title opened the text).
Tuned on the dev retrieval set (the only split; 0.5-3 tried): 1.25 matched the old bm25s
index's hit@1 and recall@10 keyword-only, and hybrid's on every metric (README, "Measured")."""
MAX_DF = 0.5
"""Largest share of chunks a question word may be found in and still be searched (1.0: every
word). Tuned on half of the dev retrieval set and reported on the other half (docs/scale.md,
"Keyword search at scale")."""
MIN_DF = 2_000
"""A question word found in at most this many chunks is always searched, whatever its share:
so small stores search every word, as before."""
BUSY_TIMEOUT_S = 60.0
"""How long a connection waits for another process's write transaction (e.g. a rebuild)."""

_WORD = re.compile(r"(?u)\b\w\w+\b")
_UNTITLED = "Untitled: "  # display titles made from an abstract's opening words


def terms(text: str) -> list[str]:
    """The words of `text` that keyword search matches: lower case, stopwords dropped."""
    return [w for w in _WORD.findall(text.lower()) if w not in KEYWORD_STOPWORDS]


def match_expression(words: Sequence[str]) -> str:
    """An FTS5 query matching any of `words`, each quoted (so `AND`, `NEAR`, `"`, `-` are text)."""
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def index_path(settings: Settings) -> Path:
    """Where the keyword index of the store `settings` names lives."""
    return settings.data_dir / INDEX_FILE.format(collection=settings.collection)


@dataclass(frozen=True)
class KeywordRow:
    """One chunk as the index sees it."""

    row_id: str
    paper_id: str
    year: int | None
    title: str  # the paper's display title ("Untitled: ..." titles are not indexed)
    text: str


@dataclass(frozen=True)
class KeywordHit:
    """A matching chunk and its bm25 score (higher is better, always > 0)."""

    row_id: str
    score: float


class KeywordIndex:
    """The FTS5 index file; one table per data collection. Thread-safe; opened on first use.

    Args:
        path: The SQLite file (created on first use), or ":memory:" for a per-process index.
        title_weight: bm25() weight of the title column (the text column's is 1).
        max_df: Largest share of chunks a question word may be found in and still be
            searched (`MAX_DF`; 1.0 searches every word).
        min_df: A word in at most this many chunks is searched whatever its share (`MIN_DF`).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        title_weight: float = TITLE_WEIGHT,
        max_df: float = MAX_DF,
        min_df: int = MIN_DF,
    ) -> None:
        self.path = path
        self.title_weight = title_weight
        self.max_df = max_df
        self.min_df = min_df
        self._stats: dict[str, _TermStats] = {}  # per table, for one generation
        self.rebuilds = 0  # rebuilds done by this process (persisted total: `rebuild_count`)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    # -- state -------------------------------------------------------------------------------

    def generation(self, collection: str) -> int | None:
        """The store generation the collection's table matches; None if unknown or mid-write."""
        row = self._one("SELECT generation FROM collections WHERE name = ?", (collection,))
        return None if row is None or row[0] is None else int(row[0])

    def rebuild_count(self, collection: str) -> int:
        """How many times the collection's table was rebuilt from the store, by any process."""
        row = self._one("SELECT rebuilds FROM collections WHERE name = ?", (collection,))
        return 0 if row is None else int(row[0])

    def size(self, collection: str) -> int:
        """Number of chunks indexed for the collection."""
        with self._write() as db:  # a short transaction: creates the table if missing
            table = self._table(db, collection)
            return int(db.execute(f"SELECT count(*) FROM {table}_rows").fetchone()[0])

    def counts(self, collection: str, generation: int) -> tuple[int, int] | None:
        """(papers, chunks) in the collection's table, if it matches `generation`.

        Papers are counted as the store counts them: distinct papers with a chunk 0 row (row
        id `paper_id#0@version`, or scheme 1's `paper_id#0`: `ingest.rows.index_of_row` in
        SQL, anchored at the paper id's length), so a paper a killed ingest left without its
        chunk 0 is not one. None when the table is missing, mid-write or at
        another generation. The generation and the counts come from one read transaction.
        """
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                row = db.execute(
                    "SELECT tab, generation FROM collections WHERE name = ?", (collection,)
                ).fetchone()
                if row is None or row[1] != generation or not _TABLE.fullmatch(row[0]):
                    return None
                rows = f"{row[0]}_rows"
                (chunks,) = db.execute(f"SELECT count(*) FROM {rows}").fetchone()
                (papers,) = db.execute(
                    f"SELECT count(DISTINCT paper_id) FROM {rows} WHERE "
                    "substr(row_id, length(paper_id) + 1, 3) = '#0@' "
                    "OR substr(row_id, length(paper_id) + 1) = '#0'"
                ).fetchone()
            finally:
                db.execute("COMMIT")
        return int(papers), int(chunks)

    # -- writes, each its own transaction -----------------------------------------------------

    def begin(self, collection: str) -> None:
        """Mark the table mid-write (generation NULL) before the store writes Chroma."""
        with self._write() as db:
            self._table(db, collection)
            db.execute("UPDATE collections SET generation = NULL WHERE name = ?", (collection,))

    def mark(self, collection: str, generation: int) -> None:
        """Record that the table matches the store at `generation` (its write has ended)."""
        with self._write() as db:
            self._table(db, collection)
            db.execute(
                "UPDATE collections SET generation = ? WHERE name = ?", (generation, collection)
            )

    def add(self, collection: str, rows: Iterable[KeywordRow]) -> None:
        """Insert rows, replacing any with the same row id."""
        with self._write() as db:
            self._insert(db, self._table(db, collection), rows, replace=True)

    def delete_rows(self, collection: str, row_ids: Sequence[str]) -> None:
        """Delete rows by row id (unknown ids are ignored)."""
        with self._write() as db:
            self._delete_in(db, self._table(db, collection), "row_id", row_ids)

    def delete_papers(self, collection: str, paper_ids: Sequence[str]) -> None:
        """Delete every row of the given papers."""
        with self._write() as db:
            self._delete_in(db, self._table(db, collection), "paper_id", paper_ids)

    def rebuild(
        self, collection: str, generation: int, pages: Iterable[Sequence[KeywordRow]]
    ) -> bool:
        """Replace the table with `pages` and record `generation`, in one transaction.

        Skipped (False) when the table already matches `generation`: another process rebuilt
        it while this one waited for the write lock. Memory stays at one page of rows.
        """
        with self._write() as db:
            if self.generation(collection) == generation:
                return False
            count = self.rebuild_count(collection) + 1
            self._drop(db, collection)
            table = self._table(db, collection)
            for page in pages:
                self._insert(db, table, page, replace=False)
            db.execute(
                "UPDATE collections SET generation = ?, rebuilds = ? WHERE name = ?",
                (generation, count, collection),
            )
        self.rebuilds += 1
        return True

    def drop(self, collection: str) -> None:
        """Delete the collection's table (its collection was deleted)."""
        with self._write() as db:
            self._drop(db, collection)

    # -- reading -------------------------------------------------------------------------------

    def search(
        self,
        collection: str,
        words: Sequence[str],
        n: int,
        paper_filter: PaperFilter | None = None,
    ) -> list[KeywordHit]:
        """The `n` best chunks matching any of `words` (see `terms`), best first.

        Only chunks of papers `paper_filter` keeps (as `ingest.store.chroma_where` does for
        dense search: a paper without a year never matches a year bound).
        """
        if not words or n <= 0:
            return []
        row = self._one("SELECT tab, generation FROM collections WHERE name = ?", (collection,))
        if row is None:
            return []
        table = row[0]
        with self._lock:
            words = self._selective(self._conn(), table, row[1], words)
        sql = (
            f"SELECT r.row_id, -bm25({table}, ?, 1.0) AS score FROM {table} "
            f"JOIN {table}_rows r ON r.id = {table}.rowid WHERE {table} MATCH ?"
        )
        params: list[object] = [self.title_weight, match_expression(words)]
        years = paper_filter or PaperFilter()
        if years.year_from is not None:
            sql += " AND r.year >= ?"
            params.append(int(years.year_from))
        if years.year_to is not None:
            sql += " AND r.year <= ?"
            params.append(int(years.year_to))
        sql += " ORDER BY score DESC, r.row_id LIMIT ?"
        params.append(int(n))
        with self._lock:
            found = self._conn().execute(sql, params).fetchall()
        return [KeywordHit(str(rid), float(score)) for rid, score in found]

    def selective(self, collection: str, words: Sequence[str]) -> list[str]:
        """The words of `words` that `search` searches (order kept; see the module docstring)."""
        row = self._one("SELECT tab, generation FROM collections WHERE name = ?", (collection,))
        if row is None:
            return list(words)
        with self._lock:
            return self._selective(self._conn(), row[0], row[1], words)

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._stats.clear()  # temp tables go with the connection

    # -- internals -----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # explicit BEGIN/COMMIT only
                check_same_thread=False,  # guarded by self._lock
            )
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: safe against a killed process
            db.execute(
                "CREATE TABLE IF NOT EXISTS collections (name TEXT PRIMARY KEY, tab TEXT NOT "
                "NULL, generation INTEGER, rebuilds INTEGER NOT NULL DEFAULT 0)"
            )
            self._db = db
        return self._db

    def _selective(
        self, db: sqlite3.Connection, table: str, generation: int | None, words: Sequence[str]
    ) -> list[str]:
        """`words` less the common ones (see the module docstring); the rarest always stays."""
        if self.max_df >= 1.0 or len(set(words)) <= 1:
            return list(words)
        stats = self._stats.get(table)
        if stats is None or generation is None or stats.generation != generation:
            stats = _TermStats(db, table, generation)
            if generation is not None:
                self._stats[table] = stats
        limit = max(self.max_df * stats.rows, self.min_df)
        if stats.rows <= limit:  # no word can be in more chunks than there are: keep all
            return list(words)
        counts = stats.document_counts(words)
        kept = [w for w in words if counts[w] <= limit]
        return kept or [min(words, key=lambda w: counts[w])]

    def _one(self, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
        with self._lock:
            row = self._conn().execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (nested calls join the outer one)."""
        with self._lock:
            db = self._conn()
            if db.in_transaction:
                yield db
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _table(self, db: sqlite3.Connection, collection: str) -> str:
        """The collection's FTS5 table name, creating the tables on first use."""
        row = db.execute("SELECT tab FROM collections WHERE name = ?", (collection,)).fetchone()
        if row is not None:
            return str(row[0])
        table = _table_name(collection)
        db.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(title, body, tokenize='{TOKENIZER}')")
        db.execute(
            f"CREATE TABLE {table}_rows (id INTEGER PRIMARY KEY, row_id TEXT NOT NULL UNIQUE, "
            "paper_id TEXT NOT NULL, year INTEGER)"
        )
        db.execute(f"CREATE INDEX {table}_paper ON {table}_rows (paper_id)")
        db.execute(
            "INSERT INTO collections (name, tab, generation) VALUES (?, ?, NULL)",
            (collection, table),
        )
        return table

    def _insert(
        self, db: sqlite3.Connection, table: str, rows: Iterable[KeywordRow], *, replace: bool
    ) -> None:
        rows = list(rows)
        if replace:
            self._delete_in(db, table, "row_id", [r.row_id for r in rows])
        for row in rows:
            cur = db.execute(
                f"INSERT INTO {table}_rows (row_id, paper_id, year) VALUES (?, ?, ?)",
                (row.row_id, row.paper_id, row.year),
            )
            title = "" if row.title.startswith(_UNTITLED) else row.title
            db.execute(
                f"INSERT INTO {table} (rowid, title, body) VALUES (?, ?, ?)",
                (cur.lastrowid, " ".join(terms(title)), " ".join(terms(row.text))),
            )

    @classmethod
    def _delete_in(
        cls,
        db: sqlite3.Connection,
        table: str,
        column: Literal["row_id", "paper_id"],
        values: Sequence[str],
    ) -> None:
        """Delete the rows whose `column` is one of `values`, 500 SQL parameters at a time."""
        for start in range(0, len(values), 500):
            part = list(values[start : start + 500])
            cls._delete_where(db, table, f"{column} IN ({','.join('?' * len(part))})", part)

    @staticmethod
    def _delete_where(
        db: sqlite3.Connection, table: str, where: str, params: Sequence[object]
    ) -> None:
        ids = [i for (i,) in db.execute(f"SELECT id FROM {table}_rows WHERE {where}", params)]
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            db.execute(f"DELETE FROM {table} WHERE rowid IN ({marks})", part)
            db.execute(f"DELETE FROM {table}_rows WHERE id IN ({marks})", part)

    @staticmethod
    def _drop(db: sqlite3.Connection, collection: str) -> None:
        row = db.execute("SELECT tab FROM collections WHERE name = ?", (collection,)).fetchone()
        if row is None:
            return
        db.execute(f"DROP TABLE IF EXISTS {row[0]}")
        db.execute(f"DROP TABLE IF EXISTS {row[0]}_rows")
        db.execute("DELETE FROM collections WHERE name = ?", (collection,))


class _TermStats:
    """Chunk count and per-stem document frequencies of one table at one generation.

    Stems come from FTS5's own tokenizer (a scratch FTS5 table in the temp schema, so a word
    is stemmed exactly as a query stems it), frequencies from an `fts5vocab` table over the
    data table, also in the temp schema. Both cost a read of the stem's list of chunks: once
    per stem and generation.
    """

    def __init__(self, db: sqlite3.Connection, table: str, generation: int | None) -> None:
        self.generation = generation
        self._db = db
        self._vocab = f"temp.{table}_vocab"
        db.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {self._vocab} USING "
            f"fts5vocab(main, {table}, 'row')"
        )
        db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.kw_words USING fts5(word, "
            f"tokenize='{TOKENIZER}')"
        )
        db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.kw_words_terms USING "
            "fts5vocab(temp, kw_words, 'instance')"
        )
        self.rows = int(db.execute(f"SELECT count(*) FROM {table}_rows").fetchone()[0])
        self._stem_df: dict[str, int] = {}

    def document_counts(self, words: Sequence[str]) -> dict[str, int]:
        """Chunks holding each word's stem(s) (a word FTS5 cuts in two: its rarer part)."""
        stems = self._stems(list(dict.fromkeys(words)))
        return {w: min((self._df(s) for s in stems[w]), default=0) for w in words}

    def _stems(self, words: list[str]) -> dict[str, list[str]]:
        db = self._db
        db.execute("DELETE FROM temp.kw_words")
        db.executemany(
            "INSERT INTO temp.kw_words (rowid, word) VALUES (?, ?)", list(enumerate(words))
        )
        stems: dict[str, list[str]] = {w: [] for w in words}
        for doc, term in db.execute(
            "SELECT doc, term FROM temp.kw_words_terms ORDER BY doc, offset"
        ):
            stems[words[int(doc)]].append(str(term))
        return stems

    def _df(self, stem: str) -> int:
        found = self._stem_df.get(stem)
        if found is None:
            row = self._db.execute(
                f"SELECT doc FROM {self._vocab} WHERE term = ?", (stem,)
            ).fetchone()
            found = self._stem_df[stem] = int(row[0]) if row else 0
        return found


_TABLE = re.compile(r"kw_[0-9a-f]{16}")
"""What `_table_name` makes: the only table names SQL is built from."""


@functools.cache
def _table_name(collection: str) -> str:
    """A safe SQL identifier for any collection name."""
    return "kw_" + hashlib.sha256(collection.encode()).hexdigest()[:16]
