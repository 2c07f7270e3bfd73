"""The DuckDB workspace: one file that every command reads and writes.

Tables and columns are those of :mod:`levers_cli.schema` (../shared/DESIGN.md §2).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from levers_cli.errors import WorkspaceError
from levers_cli.schema import CALL_COLUMNS, DDL, INGEST_COLUMNS, JSON_COLUMNS

DEFAULT_WORKSPACE = os.path.join(".levers", "levers.duckdb")
WORKSPACE_ENV = "LEVERS_WORKSPACE"


def default_workspace_path() -> str:
    """``$LEVERS_WORKSPACE`` when set, else ``.levers/levers.duckdb``."""
    return os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE


@lru_cache(maxsize=1)
def call_arrow_schema() -> Any:
    """The pyarrow schema of :data:`levers_cli.schema.INGEST_COLUMNS` (JSON columns as text,
    ``ts`` as UTC microseconds, decimals as float64), the form :meth:`Workspace.append_calls`
    loads."""
    import pyarrow as pa

    kinds: dict[str, pa.DataType] = {
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "JSON": pa.string(),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
        "DECIMAL(18,9)": pa.float64(),
    }
    return pa.schema([(name, kinds[CALL_COLUMNS[name].split()[0]]) for name in INGEST_COLUMNS])


class _Connection:
    """A DuckDB connection whose relational ``sql()`` first completes any result an earlier
    ``execute()`` left unfetched. DuckDB 2 refuses relational work on a connection with a
    pending result ("call complete() or abort()"), which a ``fetchone()`` leaves behind."""

    def __init__(self, con: Any) -> None:
        self._con = con

    def sql(self, query: str, **kwargs: Any) -> Any:
        self._con.complete()
        return self._con.sql(query, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class Workspace:
    """An open DuckDB workspace.

    Args:
        path: the database file; its folder is created when missing. ``":memory:"`` for tests.
        create: create the file when missing (``False`` for commands that only read one).
        read_only: open an existing file read-only (a partition task beside other readers;
            DuckDB lets several processes read a file no process writes); no table is
            created or migrated, and any write raises.

    Raises:
        WorkspaceError: the file cannot be opened (locked by another process, not DuckDB).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.path = str(path or default_workspace_path())
        self.read_only = read_only
        if read_only:
            create = False
        if self.path != ":memory:":
            if not create and not os.path.exists(self.path):
                raise WorkspaceError(
                    f"no workspace at {self.path}; run `levers analyze LOGS` first "
                    "(or point -w / $LEVERS_WORKSPACE at one)"
                )
            _check_is_duckdb(self.path)
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._connect()

    def _connect(self) -> None:
        import duckdb

        try:
            connection = duckdb.connect(self.path, read_only=self.read_only)
        except duckdb.Error as exc:
            raise WorkspaceError(_open_failure(self.path, str(exc))) from None
        self.con: Any = _Connection(connection)
        self.con.execute("SET TimeZone = 'UTC'")
        if self.read_only:
            return
        for statement in DDL:
            self.con.execute(statement)
        for name, kind in CALL_COLUMNS.items():  # workspaces made by an older levers
            if "PRIMARY KEY" not in kind:
                self.con.execute(f"ALTER TABLE calls ADD COLUMN IF NOT EXISTS {name} {kind}")

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Close the file for the block and open it again after it, so that other processes
        (an engine's partition tasks) can open it read-only meanwhile; temporary tables do
        not survive.

        Raises:
            WorkspaceError: an in-memory workspace (no file another process could open), or
                the file cannot be opened again afterwards.
        """
        if self.path == ":memory:":
            raise WorkspaceError(
                "an in-memory workspace cannot be shared with other processes; use a file"
            )
        self.con.close()
        try:
            yield
        finally:
            self._connect()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_run_id(self) -> int:
        """The id of a new run (1 for the first)."""
        row = self.con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchone()
        return int(row[0]) if row else 1

    def append_calls(self, table: Any, *, check_stored: bool = True) -> tuple[int, int]:
        """Insert an Arrow table of call rows (:func:`call_arrow_schema`; its ``call_id``s
        distinct), leaving out rows whose ``call_id`` is stored already.

        A row whose ``call_id`` is stored for a *different* record (another ``record_hash``)
        is not a duplicate: it is stored under ``call_id~`` + the first 12 characters of its
        ``record_hash``, unless that id is stored too.

        Args:
            table: the rows.
            check_stored: ``False`` when no row can be stored already (the caller checked
                against everything inserted since the table was empty): the rows go in as
                they are, without a look-up.

        Returns:
            ``(rows stored, rows re-identified because their id was taken)``.
        """
        if table.num_rows == 0:
            return 0, 0
        collided = 0
        if check_stored:
            table, collided = self._settle_ids(table)
        names = ", ".join(INGEST_COLUMNS)
        # read by name from this frame (DuckDB's replacement scan), not con.register(): a
        # table registered inside a transaction stays referenced until it commits, and one
        # ingest run is one transaction (1M calls kept 3 GB of Arrow batches alive)
        new_calls = _json_typed(table)  # noqa: F841
        self.con.execute(f"INSERT INTO calls ({names}) SELECT {names} FROM new_calls")
        return table.num_rows, collided

    def _stored_hashes(self, ids: list[str | None]) -> dict[int, str | None]:
        """Position in ``ids`` → ``record_hash`` of the stored call with that id (a hash join
        of the ids against ``calls``; ids not stored are absent)."""
        import pyarrow as pa

        positions = pa.array(range(len(ids)), pa.int64())
        probe_ids = pa.table({"i": positions, "call_id": ids})  # noqa: F841
        found = self.con.execute(  # probe_ids by name, as in append_calls
            "SELECT p.i, c.record_hash FROM probe_ids p JOIN calls c USING (call_id)"
        ).fetchall()
        return {int(i): stored for i, stored in found}

    def _settle_ids(self, table: Any) -> tuple[Any, int]:
        """Drop the rows of ``table`` already stored; re-identify those whose id a different
        record holds. Returns the rows to insert and how many were re-identified."""
        import pyarrow as pa

        ids = table.column("call_id").to_pylist()
        stored = self._stored_hashes(ids)
        if not stored:
            return table, 0
        hashes = table.column("record_hash").to_pylist()
        keep = [True] * len(ids)
        renamed: list[int] = []
        for i, stored_hash in stored.items():
            if stored_hash == hashes[i]:
                keep[i] = False  # the same record, stored already
            else:  # the same id on a different record (hash NULL-safe compared, as before)
                ids[i] = f"{ids[i]}~{(hashes[i] or '')[:12]}"
                renamed.append(i)
        if renamed:
            taken = self._stored_hashes([ids[i] for i in renamed])
            for position in taken:
                keep[renamed[position]] = False
        column = table.schema.get_field_index("call_id")
        table = table.set_column(column, "call_id", pa.array(ids, pa.string()))
        return table.filter(pa.array(keep, pa.bool_())), len(renamed)

    @contextmanager
    def memory_limit(self, limit: str) -> Iterator[None]:
        """Cap DuckDB's memory (``SET memory_limit``, e.g. ``'2GB'``) inside the block, then
        restore the previous cap. Over the cap DuckDB writes to its temporary directory
        instead of growing: one ingest transaction of a million calls otherwise keeps its
        uncommitted rows in memory (default cap: 80 % of RAM)."""
        setting = "SELECT current_setting('memory_limit')"
        before = self.con.execute(setting).fetchone()
        self.con.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            self.con.execute("RESET memory_limit")  # the default, exactly
            if before and self.con.execute(setting).fetchone() != before:  # a cap set before
                self.con.execute(f"SET memory_limit = '{before[0]}'")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one transaction: committed when it ends, rolled back when it
        raises (Ctrl-C included), so readers never see half of its writes."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def load_temp(self, name: str, columns: dict[str, Any]) -> None:
        """Create (or replace) temporary table ``name`` from column arrays in one bulk load.

        Args:
            name: the temporary table's name.
            columns: column name → list, NumPy array or pyarrow array (all one length). A 2-D
                float32 array becomes a ``FLOAT[]`` column (one row per vector).

        DuckDB's ``executemany`` inserts row by row (≈ 4 s per 1,000 vectors here); an Arrow
        table loads in one statement.
        """
        import numpy as np
        import pyarrow as pa

        arrays = {}
        for column, values in columns.items():
            if isinstance(values, np.ndarray) and values.ndim == 2:
                rows, width = values.shape
                offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * width, pa.int32())
                flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).ravel())
                values = pa.ListArray.from_arrays(offsets, flat)
            arrays[column] = values
        frame = pa.table(arrays)  # noqa: F841 - read by the SQL below
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM frame")

    def insert_rejects(self, rows: Sequence[tuple[str, int, str, str]], run_id: int) -> None:
        """Store rejected records as ``(source_file, source_line, error, raw)``; one already
        stored with the same four values (the same file read again) is not stored twice."""
        if rows:
            files, lines, errors, raws = (list(c) for c in zip(*rows, strict=True))
            self.load_temp(
                "new_rejects",
                {"file": files, "line": lines, "error": errors, "raw": raws},
            )
            self.con.execute(  # a record rejected again on a re-read is kept once
                """INSERT INTO rejects SELECT file, line, error, raw, ? FROM new_rejects n
                   WHERE NOT EXISTS (SELECT 1 FROM rejects r WHERE r.source_file = n.file
                     AND r.source_line = n.line AND r.error = n.error AND r.raw = n.raw)""",
                [run_id],
            )
            self.con.execute("DROP TABLE new_rejects")

    def rejects(self, limit: int = 50) -> list[dict[str, Any]]:
        """The first ``limit`` rejected records by run, file and line: dicts of ``run_id``,
        ``file``, ``line`` (1-based), ``error`` (the reason) and ``raw`` (the record's text)."""
        cursor = self.con.execute(
            """SELECT run_id, source_file, source_line, error, raw FROM rejects
               ORDER BY run_id, source_file, source_line LIMIT ?""",
            [int(limit)],
        )
        keys = ("run_id", "file", "line", "error", "raw")
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def record_run(
        self,
        run_id: int,
        command: str,
        started_at: datetime,
        finished_at: datetime,
        files: list[dict[str, Any]],
        counts: tuple[int, int, int, int, int],
        version: str,
    ) -> None:
        """Store one ingest run: its files (path, size, sha256, format, counts) and totals,
        ``counts`` = (read, stored, duplicates, skipped, rejected)."""
        self.con.execute(
            """INSERT INTO runs (run_id, command, started_at, finished_at, files, records_read,
                   stored, duplicates, skipped, rejected, levers_version)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [run_id, command, started_at, finished_at, json.dumps(files), *counts, version],
        )

    def count(self, table: str, where: str = "TRUE") -> int:
        """Rows of ``table`` matching the SQL condition ``where``."""
        rows = self.con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchall()
        return int(rows[0][0]) if rows else 0

    def require_calls(self) -> None:
        """Raises WorkspaceError when the workspace holds no calls."""
        if self.count("calls") == 0:
            raise WorkspaceError(
                f"workspace {self.path} holds no calls; run `levers analyze LOGS` first"
            )

    def require_analysis(self) -> None:
        """Raise unless every stored call went through ``levers analyze`` to the end.

        Categories are the last thing ``analyze`` writes (after pricing and conversations), so
        a call without one means the run that stored it stopped early: Ctrl-C or a failed
        embedder during embedding, or calls only read by ``levers ingest``. Figures built on
        such a workspace would price routing, caps and LoRA at $0 and call it a plan. Every
        command that reads categories (simulate, report, check, the exports, the label sheet)
        goes through this one check.

        Raises:
            WorkspaceError: the workspace holds no calls, or some calls have no category; the
                message says how to finish (``levers analyze`` with no files resumes from the
                stored embeddings).
        """
        self.require_calls()
        pending = self.count("calls", "category_id IS NULL")
        if pending:
            finish = f"levers analyze -w {shlex.quote(self.path)}"
            raise WorkspaceError(
                f"workspace {self.path} is not fully analyzed (calls without a category: "
                f"{pending:,} of {self.count('calls'):,}; an analyze was interrupted, or the "
                f"calls were only ingested); run `{finish}` with no files to finish it"
            )


def _json_typed(table: Any) -> Any:
    """``table`` with its JSON columns' text typed as Arrow's canonical JSON
    extension, which DuckDB reads as its JSON type: the text goes in as it is, without the
    VARCHAR → JSON cast that parses every document again (ingest writes valid JSON)."""
    import pyarrow as pa

    if not hasattr(pa, "json_"):  # pyarrow < 19: the cast it is
        return table
    for name in JSON_COLUMNS:
        index = table.schema.get_field_index(name)
        column = table.column(index)
        if not pa.types.is_string(column.type):
            continue
        chunks = [pa.ExtensionArray.from_storage(pa.json_(), chunk) for chunk in column.chunks]
        # pyarrow-stubs have no chunked_array overload for an extension type
        typed = pa.chunked_array(chunks, type=pa.json_())  # type: ignore[call-overload]
        table = table.set_column(index, pa.field(name, pa.json_()), typed)
    return table


#: The holder of a conflicting lock, as DuckDB names it when a second process opens the file
#: (duckdb 2.0.1 on Linux): ``IO Error: Could not set lock on file "…": Conflicting lock is
#: held in /usr/bin/python3.11 (PID 12338). See also https://duckdb.org/docs/…/concurrency``.
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def _open_failure(path: str, error: str) -> str:
    """The one-line message for a workspace DuckDB would not open: the process that holds
    it when another one does (a second ``levers analyze`` while the first runs), else
    DuckDB's own first line."""
    holder = _LOCK_HOLDER.search(error)
    if holder is not None or "Conflicting lock" in error:
        who = f" (PID {holder['pid']}, {holder['program']})" if holder else ""
        return (
            f"workspace {path} is in use by another process{who}, e.g. a levers run that has "
            "not finished; wait for it to end, or use another workspace with -w"
        )
    return f"cannot open workspace {path}: {error.splitlines()[0] if error else 'unknown error'}"


#: DuckDB's database file header carries these bytes at offset 8 (storage format docs).
_DUCKDB_MAGIC = b"DUCK"


def _check_is_duckdb(path: str) -> None:
    """Refuse an existing file that is not a DuckDB database (``-w logs.jsonl`` by mistake).

    Raises:
        WorkspaceError: the path is a folder, or a non-empty file without DuckDB's header.
    """
    if os.path.isdir(path):
        raise WorkspaceError(
            f"workspace {path} is a folder; name a file, e.g. {path}/levers.duckdb"
        )
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb") as handle:
        header = handle.read(16)
    if header[8:12] != _DUCKDB_MAGIC:
        raise WorkspaceError(
            f"workspace {path} is not a DuckDB database (is it a log file?); "
            "pass the logs as arguments and -w a .duckdb file"
        )
