"""Lines of a JSONL stream → records: the chunks worker processes parse, and the parsing.

A chunk is a run of whole lines (:class:`LineChunk`): read a block at a time from a plain
file, line by line from a compressed stream or standard input (so a stream that breaks keeps
every whole line before the break). :func:`parse_chunk` turns one into :class:`RawRecord` s
with orjson where it gives what ``json`` gives, and ``json`` otherwise (same values, same
error messages). JSONL is split on ``\\n`` only: U+2028, U+2029 and U+0085 inside JSON
strings are text, not line breaks (../shared/cases C09).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

#: Errors a truncated or corrupt compressed stream raises while being read.
_STREAM_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error)


class RawRecord:
    """One record as read from a file.

    Attributes:
        line: 1-based line number (JSONL, CSV: the line the record starts on) or record
            number (JSON arrays, Parquet rows).
        data: the parsed record, or ``None`` when it could not be parsed.
        text: the record's raw text (for ``rejects.raw``); given as valid UTF-8 bytes it is
            decoded only when read (most records are never rejected).
        error: why it could not be parsed, when ``data`` is ``None``.
    """

    __slots__ = ("_text", "data", "error", "line")

    def __init__(
        self, line: int, data: dict[str, Any] | None, text: str | bytes, error: str | None = None
    ) -> None:
        self.line = line
        self.data = data
        self._text = text
        self.error = error

    @property
    def text(self) -> str:
        """The raw text (decoded from UTF-8 on first use)."""
        if isinstance(self._text, bytes):
            self._text = self._text.decode("utf-8")
        return self._text

    def __repr__(self) -> str:
        return f"RawRecord(line={self.line}, data={self.data!r}, error={self.error!r})"


@dataclass(slots=True)
class LineChunk:
    """Consecutive whole lines of a JSONL stream, the unit a worker process parses.

    Attributes:
        first: 1-based line number of the first line.
        data: the lines' bytes, each ending in ``\\n`` (a file's last line may not).
        count: how many lines ``data`` holds.
        error: why the stream ended after these lines (a broken compressed file); it
            becomes a rejected record on the next line number.
    """

    first: int
    data: bytes
    count: int
    error: str | None = None


def _decode_line(raw: bytes, lineno: int) -> tuple[str | None, str | None]:
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"


#: JSON's own names of the values ``json.loads`` returns (RFC 8259 §3).
_JSON_TYPES = {
    type(None): "null", bool: "boolean", int: "number", float: "number",
    str: "string", list: "array", dict: "object",
}  # fmt: skip


def json_type(value: Any) -> str:
    """JSON's name of a parsed value's type (``null``, ``array``, ``string`` …)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def json_error(exc: json.JSONDecodeError) -> str:
    """A record's error for JSON that does not parse: the parser's message and column (the
    message "…starting at" gets no second "at")."""
    return f"not JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})"


def _parse_json_line(text: str, lineno: int) -> RawRecord:
    stripped = text.strip()
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        return RawRecord(lineno, None, text, json_error(exc))
    except RecursionError:  # json's C parser recurses per nesting level
        return RawRecord(lineno, None, text, "not JSON (nested too deeply to read)")
    if not isinstance(data, dict):
        return RawRecord(lineno, None, text, f"a JSON {json_type(data)}, not an object")
    return RawRecord(lineno, data, text)


#: Maps every digit byte to ``0`` and every other byte to a space (see :func:`fast_loads`).
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
#: 19 digits in a row: a JSON integer this long may not fit 64 bits, which orjson reads as a
#: float where ``json`` keeps the exact int.
_LONG_NUMBER = b"0" * 19


def fast_loads(body: bytes) -> Any:
    """``json.loads`` of UTF-8 JSON bytes, parsed by orjson when it gives the same value.

    Returns:
        The parsed value, or ``None`` when orjson cannot be trusted with ``body`` or refuses
        it (NaN, numbers out of range, lone surrogates, invalid UTF-8, surrounding non-JSON
        whitespace): the caller then falls back to ``json``, which also words the errors.
    """
    import orjson

    if _LONG_NUMBER in body.translate(_DIGITS):
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def parse_line(line: bytes, lineno: int, end: bytes = b"\n") -> RawRecord | None:
    """One JSONL line as a record; ``None`` for a blank line.

    Args:
        line: the line without its ``\\n``.
        lineno: its 1-based number.
        end: the ``\\n`` that ended it (``b""`` for a last line without one); part of the
            raw text kept for a line that is not UTF-8.

    The fast path (orjson on the bytes) returns exactly what the ``json`` path does;
    anything it does not parse goes through ``json`` for the same value or error message.
    """
    stripped = line.rstrip(b"\r\n")
    bom = lineno == 1 and stripped.startswith(b"\xef\xbb\xbf")
    body = stripped[3:] if bom else stripped
    data = fast_loads(body)
    if isinstance(data, dict):
        return RawRecord(lineno, data, body)  # orjson accepted it: valid UTF-8
    text, error = _decode_line(stripped, lineno)
    if text is None:
        raw = (line + end)[:200] if len(line) < 200 else line[:200]
        return RawRecord(lineno, None, raw.decode("utf-8", "replace"), error)
    if not text.strip():  # a blank line is no record (JSONL files often end with one)
        return None
    return _parse_json_line(text, lineno)


def parse_chunk(chunk: LineChunk) -> list[RawRecord]:
    """The records of a chunk of lines, in order (a broken stream's reject last)."""
    lines = chunk.data.split(b"\n")
    last = lines.pop()  # b"" after a final \n, else a last line without one
    records = []
    for offset, line in enumerate(lines):
        record = parse_line(line, chunk.first + offset)
        if record is not None:
            records.append(record)
    if last:
        record = parse_line(last, chunk.first + len(lines), b"")
        if record is not None:
            records.append(record)
    if chunk.error is not None:
        records.append(RawRecord(chunk.first + chunk.count, None, "", chunk.error))
    return records


#: A chunk ends after about this many bytes (and, read line by line, this many lines).
CHUNK_BYTES = 1 << 20
CHUNK_LINES = 1_000


def line_chunks(handle: IO[bytes]) -> Iterator[LineChunk]:
    """Chunks of a compressed stream or standard input, read line by line: a stream that
    breaks keeps every whole line before the break."""
    first, lines, size = 1, [], 0
    with handle:
        try:
            for raw in handle:  # binary iteration splits on b"\n" only
                lines.append(raw)
                size += len(raw)
                if len(lines) >= CHUNK_LINES or size >= CHUNK_BYTES:
                    yield LineChunk(first, b"".join(lines), len(lines))
                    first, lines, size = first + len(lines), [], 0
        except stream_errors() as exc:
            error = f"compressed file ends early or is corrupt: {exc}"
            yield LineChunk(first, b"".join(lines), len(lines), error)
            return
    if lines:
        yield LineChunk(first, b"".join(lines), len(lines))


def block_chunks(handle: IO[bytes]) -> Iterator[LineChunk]:
    """Chunks of a plain file, read a block at a time and cut after its last ``\\n``
    (Python never touches the lines one by one here)."""
    first, tail = 1, b""
    with handle:
        try:
            while block := handle.read(CHUNK_BYTES):
                block = tail + block if tail else block
                end = block.rfind(b"\n") + 1
                if end == 0:  # one line longer than a block: read on
                    tail = block
                    continue
                data, tail = block[:end], block[end:]
                count = data.count(b"\n")
                yield LineChunk(first, data, count)
                first += count
        except OSError as exc:
            error = f"compressed file ends early or is corrupt: {exc}"
            yield LineChunk(first, b"", 0, error)
            return
    if tail:
        yield LineChunk(first, tail, 1)


def stream_errors() -> tuple[type[BaseException], ...]:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - a declared dependency
        return _STREAM_ERRORS
    return (*_STREAM_ERRORS, zstandard.ZstdError)
