"""Read log files into records, one at a time, keeping each record's line number.

Supported containers: JSONL, JSON (an array of records, or one object), CSV and Parquet,
each optionally gzip-compressed (``.gz``). JSONL is split on ``\\n`` only: U+2028, U+2029 and
U+0085 inside JSON strings are text, not line breaks (see ../shared/cases C09).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from levers_cli.errors import InputFileError

#: File name endings levers reads, without a compression suffix.
KNOWN_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")


@dataclass(slots=True)
class RawRecord:
    """One record as read from a file.

    Attributes:
        line: 1-based line number (JSONL, CSV: the line the record starts on) or record
            number (JSON arrays, Parquet rows).
        data: the parsed record, or ``None`` when it could not be parsed.
        text: the record's raw text (for ``rejects.raw`` and content hashes).
        error: why it could not be parsed, when ``data`` is ``None``.
    """

    line: int
    data: dict[str, Any] | None
    text: str
    error: str | None = None


@dataclass(slots=True)
class RecordSource:
    """An opened log file: its container kind, its columns (CSV/Parquet) and its records."""

    path: str
    kind: str
    columns: list[str] | None = None
    _records: Iterator[RawRecord] = field(default_factory=lambda: iter(()))

    def __iter__(self) -> Iterator[RawRecord]:
        return self._records


def container_kind(path: str) -> str:
    """Return ``jsonl``, ``json``, ``csv`` or ``parquet`` from a file name (``.gz`` ignored).

    Raises:
        InputFileError: the ending is none of the supported ones.
    """
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise InputFileError(
        path, "unsupported file type; expected .jsonl, .json, .csv or .parquet (optionally .gz)"
    )


def _open_binary(path: str) -> IO[bytes]:
    raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller's generator
    if path.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def open_records(path: str) -> RecordSource:
    """Open a log file and return its records lazily.

    Raises:
        InputFileError: the file is missing, a directory, empty of bytes it can decode,
            or of an unsupported type.
    """
    if not os.path.exists(path):
        raise InputFileError(path, "no such file")
    if os.path.isdir(path):
        raise InputFileError(path, "is a directory; name the files inside it")
    kind = container_kind(path)
    if kind == "jsonl":
        return RecordSource(path, kind, None, _jsonl_records(path))
    if kind == "json":
        return _json_source(path)
    if kind == "csv":
        return _csv_source(path)
    return _parquet_source(path)


def _decode_line(raw: bytes, lineno: int) -> tuple[str | None, str | None]:
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"


def _parse_json_line(text: str, lineno: int) -> RawRecord:
    stripped = text.strip()
    if not stripped:
        return RawRecord(lineno, None, text, "empty line")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        return RawRecord(lineno, None, text, f"not JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(data, dict):
        return RawRecord(lineno, None, text, f"a JSON {type(data).__name__}, not an object")
    return RawRecord(lineno, data, text)


def _jsonl_records(path: str) -> Iterator[RawRecord]:
    lineno = 0
    with _open_binary(path) as handle:
        try:
            for raw in handle:  # binary iteration splits on b"\n" only
                lineno += 1
                text, error = _decode_line(raw.rstrip(b"\r\n"), lineno)
                if text is None:
                    yield RawRecord(lineno, None, raw[:200].decode("utf-8", "replace"), error)
                    continue
                yield _parse_json_line(text, lineno)
        except (EOFError, OSError, zlib.error) as exc:
            yield RawRecord(
                lineno + 1, None, "", f"compressed file ends early or is corrupt: {exc}"
            )


def _json_source(path: str) -> RecordSource:
    with _open_binary(path) as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    if not head:
        return RecordSource(path, "json", None, iter(()))
    if head[:1] == b"{":
        first_line = head.split(b"\n", 1)[0]
        try:
            json.loads(first_line)
        except json.JSONDecodeError:
            pass
        else:  # one object per line: JSON Lines in a .json file
            return RecordSource(path, "jsonl", None, _jsonl_records(path))
    return RecordSource(path, "json", None, _json_document_records(path))


def _json_document_records(path: str) -> Iterator[RawRecord]:
    with _open_binary(path) as handle:
        data = handle.read()
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"not a JSON document ({exc})") from None
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items, 1):
        text = json.dumps(item, ensure_ascii=False)
        if isinstance(item, dict):
            yield RawRecord(index, item, text)
        else:
            yield RawRecord(index, None, text, f"a JSON {type(item).__name__}, not an object")


def _csv_source(path: str) -> RecordSource:
    binary = _open_binary(path)
    stream = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        stream.close()
        raise InputFileError(path, f"unreadable CSV header ({exc})", line=1) from None
    if header is None:
        stream.close()
        return RecordSource(path, "csv", [], iter(()))
    columns = [c.strip() for c in header]
    return RecordSource(path, "csv", columns, _csv_records(path, stream, reader, columns))


def _csv_records(
    path: str, stream: io.TextIOWrapper, reader: Any, columns: list[str]
) -> Iterator[RawRecord]:
    with stream:
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as exc:
                yield RawRecord(start, None, "", f"unreadable CSV row ({exc})")
                start = reader.line_num + 1
                continue
            text = ",".join(row)
            if len(row) != len(columns):
                yield RawRecord(
                    start, None, text, f"{len(row)} fields where the header has {len(columns)}"
                )
            else:
                yield RawRecord(start, dict(zip(columns, row, strict=True)), text)
            start = reader.line_num + 1


def _parquet_source(path: str) -> RecordSource:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputFileError(path, f"not a Parquet file ({exc})") from None
    columns = list(parquet.schema_arrow.names)

    def records() -> Iterator[RawRecord]:
        index = 0
        for batch in parquet.iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                index += 1
                yield RawRecord(index, row, json.dumps(row, default=str, ensure_ascii=False))

    return RecordSource(path, "parquet", columns, records())


def expand_inputs(paths: list[str]) -> list[str]:
    """Expand directories (recursively, supported file types only) and keep files as given.

    Raises:
        InputFileError: a path does not exist.
    """
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(
                str(p)
                for p in Path(path).rglob("*")
                if p.is_file() and p.name.lower().removesuffix(".gz").endswith(KNOWN_SUFFIXES)
            )
            files.extend(found)
        elif not os.path.exists(path):
            raise InputFileError(path, "no such file")
        else:
            files.append(path)
    return files
