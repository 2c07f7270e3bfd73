"""Read log files into records, one at a time, keeping each record's line number.

Supported containers: JSONL, JSON (an array of records, streamed, or one object), CSV and
Parquet, each optionally gzip- or zstd-compressed (recognised by their magic bytes, whatever the
name), and ``-`` for standard input (JSONL or a JSON array). JSONL is split on ``\\n`` only:
U+2028, U+2029 and U+0085 inside JSON strings are text, not line breaks (../shared/cases C09).
Nothing is read whole: a 5 GB file streams.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from levers_cli.errors import InputFileError
from levers_cli.ingest.records import (
    LineChunk,
    RawRecord,
    block_chunks,
    json_type,
    line_chunks,
    parse_chunk,
    stream_errors,
)

#: File name endings levers reads, without a compression suffix.
KNOWN_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")
COMPRESSION_SUFFIXES = (".gz", ".zst")
STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(slots=True)
class RecordSource:
    """An opened log file: its container kind, its columns (CSV/Parquet) and its records."""

    path: str
    kind: str
    columns: list[str] | None = None
    _records: Iterator[RawRecord] = field(default_factory=lambda: iter(()))
    #: JSONL only: the same records as chunks of raw lines (parse them with
    #: :func:`parse_chunk`, e.g. in worker processes). Iterate one or the other, not both.
    line_chunks: Iterator[LineChunk] | None = None

    def __iter__(self) -> Iterator[RawRecord]:
        return self._records


def container_kind(path: str) -> str:
    """Return ``jsonl``, ``json``, ``csv`` or ``parquet`` from a file name (``.gz`` ignored).

    Raises:
        InputFileError: the ending is none of the supported ones.
    """
    name = path.lower()
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(EXTRA_SUFFIXES):  # an llm logs.db is claimed before the readers are asked
        raise InputFileError(
            path,
            "not an llm logs database: levers reads .db/.sqlite files only as simonw/llm's "
            "SQLite logs.db (--format llm-logs), and this file is not one",
        )
    raise InputFileError(
        path,
        "unsupported file type; expected .jsonl, .json, .csv or .parquet (optionally .gz or .zst)",
    )


class _Unclosable(io.BufferedReader):
    """Standard input, readable and peekable, that a ``with`` block does not close."""

    def close(self) -> None:
        pass


def _open_binary(path: str) -> IO[bytes]:
    """Open ``path`` (or standard input for ``-``) for binary reading, decompressing gzip
    and zstd streams recognised by their magic bytes."""
    raw: io.BufferedReader
    if path == STDIN:
        stdin = sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer
        # typeshed says BinaryIO; a BufferedReader reads any binary stream with readinto
        raw = _Unclosable(stdin)  # type: ignore[arg-type]
    else:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    magic = raw.peek(4)[:4]
    if magic.startswith(_GZIP_MAGIC):
        # a binary stream; typeshed types GzipFile as a BufferedIOBase, not an IO[bytes]
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if magic == _ZSTD_MAGIC:
        return io.BufferedReader(_ZstdFrames(raw))
    return raw


#: Compressed bytes read at a time from a zstd file (their output is held whole: 32 KiB
#: of highly repetitive logs can give megabytes).
_ZSTD_READ = 1 << 15


class _ZstdFrames(io.RawIOBase):
    """A zstd stream of one or more frames, decompressed as it is read.

    zstandard's ``stream_reader`` ends quietly when its input stops inside a frame (a cut
    download or copy), so a truncated file would read as a shorter one; this reader raises
    ``zstandard.ZstdError`` there instead, as :mod:`gzip` raises ``EOFError``. It follows
    frames with ``decompressobj`` (``eof`` and ``unused_data``: python-zstandard's API docs).
    """

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._raw = raw
        self._error = zstandard.ZstdError
        self._dctx = zstandard.ZstdDecompressor()
        self._frame = self._dctx.decompressobj()
        self._in_frame = False  # bytes of the current frame read, its end not yet
        self._out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out:
            data = self._raw.read(_ZSTD_READ)
            if not data:
                if self._in_frame:
                    raise self._error("zstd data ends inside a frame (the file is cut short)")
                return 0
            self._out = memoryview(self._decompress(data))
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _decompress(self, data: bytes) -> bytes:
        parts = []
        while data:
            parts.append(self._frame.decompress(data))
            self._in_frame = True
            if not self._frame.eof:
                break
            data = self._frame.unused_data  # the next frame's first bytes
            self._frame = self._dctx.decompressobj()
            self._in_frame = False
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_records(path: str) -> RecordSource:
    """Open a log file and return its records lazily.

    Raises:
        InputFileError: the file is missing, a directory, empty of bytes it can decode,
            or of an unsupported type.
    """
    if path == STDIN:
        return _json_source(path)
    if not os.path.exists(path):
        raise InputFileError(path, "no such file")
    if os.path.isdir(path):
        raise InputFileError(path, "is a directory; name the files inside it")
    kind = container_kind(path)
    if kind == "jsonl":
        return _jsonl_source(path, _open_binary(path))
    if kind == "json":
        return _json_source(path)
    if kind == "csv":
        return _csv_source(path)
    return _parquet_source(path)


def _jsonl_source(path: str, handle: IO[bytes]) -> RecordSource:
    plain = (
        isinstance(handle, io.BufferedReader)
        and isinstance(handle.raw, io.FileIO)
        and not isinstance(handle, _Unclosable)
    )
    chunks = block_chunks(handle) if plain else line_chunks(handle)
    records = (record for chunk in chunks for record in parse_chunk(chunk))
    return RecordSource(path, "jsonl", None, records, chunks)


def _json_source(path: str) -> RecordSource:
    """JSON Lines, a JSON array (streamed element by element) or one JSON object, told apart
    by the first bytes."""
    handle = _open_binary(path)
    head = handle.peek(65536) if hasattr(handle, "peek") else b""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"[":
        return RecordSource(path, "json", None, _json_array_records(path, handle))
    if start == b"{":
        first_line = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
        try:
            json.loads(first_line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return RecordSource(path, "json", None, _json_array_records(path, handle))
    return _jsonl_source(path, handle)


def _json_array_records(path: str, handle: IO[bytes]) -> Iterator[RawRecord]:
    """Elements of a top-level JSON array (or the one top-level object), streamed with ijson;
    the record number is the element's position."""
    import ijson

    index = 0
    with handle:
        peeked = handle.peek(65536) if hasattr(handle, "peek") else b""
        prefix = "item" if peeked.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"[" else ""
        try:
            for item in ijson.items(handle, prefix, use_float=True):
                index += 1
                text = json.dumps(item, ensure_ascii=False)
                if isinstance(item, dict):
                    yield RawRecord(index, item, text)
                else:
                    yield RawRecord(index, None, text, f"a JSON {json_type(item)}, not an object")
        except (ijson.JSONError, ijson.IncompleteJSONError, *stream_errors()) as exc:
            yield RawRecord(index + 1, None, "", f"JSON document ends early or is broken: {exc}")


def _csv_source(path: str) -> RecordSource:
    binary = _open_binary(path)
    stream = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        stream.close()
        raise InputFileError(path, f"unreadable CSV header ({exc})", line=1) from None
    except stream_errors() as exc:
        stream.close()
        raise InputFileError(path, f"compressed file ends early or is corrupt: {exc}") from None
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
            except stream_errors() as exc:
                yield RawRecord(start, None, "", f"compressed file ends early or is corrupt: {exc}")
                return
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


@dataclass(slots=True)
class InputFiles:
    """What a run reads: the files, in order, and the files left out of the folders it was
    given because their names are no log's, counted by kind (``{".txt": 2, ".png": 1}``)."""

    files: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def find_inputs(paths: list[str], exclude: frozenset[str] = frozenset()) -> InputFiles:
    """Expand directories (recursively, supported file types only) and glob patterns the
    shell left unexpanded (``'logs/*.jsonl'``); keep files as given. Files found in a folder
    whose real path is in ``exclude`` (levers' own summary and workspace) are left out
    silently; other files of a folder that are no log are counted in ``skipped``.

    Raises:
        InputFileError: a path does not exist, or a pattern matches nothing.
    """
    found = InputFiles()
    skipped: Counter[str] = Counter()
    _expand(paths, exclude, found.files, skipped)
    found.skipped = dict(skipped.most_common())
    return found


def expand_inputs(paths: list[str], exclude: frozenset[str] = frozenset()) -> list[str]:
    """The files of :func:`find_inputs`.

    Raises:
        InputFileError: a path does not exist, or a pattern matches nothing.
    """
    return find_inputs(paths, exclude).files


def _expand(
    paths: list[str], exclude: frozenset[str], files: list[str], skipped: Counter[str]
) -> None:
    for path in paths:
        if os.path.isdir(path):
            for found in sorted(Path(path).rglob("*"), key=str):
                if not found.is_file() or os.path.realpath(found) in exclude:
                    continue
                if _known_name(found.name):
                    files.append(str(found))
                else:
                    skipped[_file_kind(found.name)] += 1
        elif path == STDIN:
            files.append(path)
        elif not os.path.exists(path) and glob.has_magic(path):
            matched = sorted(glob.glob(path, recursive=True))
            if not matched:
                raise InputFileError(path, "no file matches this pattern")
            _expand(matched, exclude, files, skipped)
        elif not os.path.exists(path):
            raise InputFileError(path, "no such file")
        else:
            files.append(path)


def _known_name(name: str) -> bool:
    name = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    return name.endswith(KNOWN_SUFFIXES) or name.endswith(EXTRA_SUFFIXES)


def _file_kind(name: str) -> str:
    """A file's kind for the skipped-files count: its ending (``.txt``, ``.txt.gz``), or
    ``no extension``."""
    suffix = Path(name).suffix.lower()
    if suffix in COMPRESSION_SUFFIXES:
        suffix = Path(name[: -len(suffix)]).suffix.lower() + suffix
    return suffix or "no extension"


#: Endings of containers read by an adapter of their own (``llm``'s SQLite ``logs.db``).
EXTRA_SUFFIXES = (".db", ".sqlite", ".sqlite3")
