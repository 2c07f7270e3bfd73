"""Nothing lost: odd bytes, broken containers and awkward inputs never raise a traceback,
and read = stored + duplicates + skipped + rejected always holds."""

from __future__ import annotations

import gzip
import io
import json
import sys

import pytest

from levers_cli.errors import InputFileError
from levers_cli.ingest.pipeline import ingest_files


def row(i: int, text: str = "question") -> dict:
    return {"text": f"{text} {i}", "model": "gpt-4o-mini", "input_tokens": 5, "output_tokens": 1}


def lines(n: int, text: str = "question") -> bytes:
    return b"".join(json.dumps(row(i, text)).encode() + b"\n" for i in range(n))


def reconciles(result) -> bool:
    return result.read == result.stored + result.duplicates + result.skipped + result.rejected


def test_bom_crlf_and_non_utf8_line(ws, tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(row(1)).encode()
        + b"\r\n"
        + b'{"text": "caf\xe9", "model": "gpt-4o"}\r\n'  # Latin-1 byte: not UTF-8
        + json.dumps(row(2)).encode()
        + b"\r\n"
    )
    result = ingest_files(ws, [str(path)])
    assert (result.read, result.stored, result.rejected) == (3, 2, 1)
    error = ws.con.execute("SELECT source_line, error FROM rejects").fetchone()
    assert error[0] == 2 and "not UTF-8" in error[1]


def test_truncated_gzip_keeps_what_was_read(ws, tmp_path):
    payload = gzip.compress(lines(2000))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(payload[: len(payload) // 2])
    result = ingest_files(ws, [str(path)])
    assert reconciles(result)
    assert result.stored > 0 and result.rejected == 1
    assert "ends early" in ws.con.execute("SELECT error FROM rejects").fetchone()[0]


def test_truncated_zstd_says_so(ws, tmp_path):
    """zstandard's stream reader ends quietly inside a cut frame: levers says so instead."""
    import zstandard

    payload = zstandard.ZstdCompressor().compress(lines(5000))  # several 128 KiB blocks
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(payload[: len(payload) // 2])
    result = ingest_files(ws, [str(path)])
    assert reconciles(result)
    assert result.stored > 0 and result.rejected == 1
    assert ws.con.execute("SELECT error FROM rejects").fetchone()[0] == (
        "compressed file ends early or is corrupt: zstd data ends inside a frame "
        "(the file is cut short)"
    )


def test_zstd_frames_one_after_another(ws, tmp_path):
    import zstandard

    compressor = zstandard.ZstdCompressor()
    path = tmp_path / "two-frames.jsonl.zst"  # e.g. two files concatenated with cat
    path.write_bytes(compressor.compress(lines(3, "a")) + compressor.compress(lines(4, "b")))
    result = ingest_files(ws, [str(path)])
    assert (result.read, result.stored, result.rejected) == (7, 7, 0)


@pytest.mark.parametrize("suffix", ["gz", "zst"])
def test_truncated_compressed_csv_says_so(ws, tmp_path, suffix):
    import zstandard

    text = "text,model\n" + "".join(f"question {i},gpt-4o-mini\n" for i in range(20000))
    compress = gzip.compress if suffix == "gz" else zstandard.ZstdCompressor().compress
    payload = compress(text.encode())
    path = tmp_path / f"cut.csv.{suffix}"
    path.write_bytes(payload[: len(payload) // 2])
    result = ingest_files(ws, [str(path)])
    assert reconciles(result)
    assert result.stored > 0 and result.rejected == 1
    error = ws.con.execute("SELECT error FROM rejects").fetchone()[0]
    assert error.startswith("compressed file ends early or is corrupt: ")


def test_folder_counts_the_files_it_skips_by_kind(ws, tmp_path):
    folder = tmp_path / "export"
    (folder / "img").mkdir(parents=True)
    (folder / "calls.jsonl").write_bytes(lines(2))
    (folder / "README.txt").write_text("not a log")
    (folder / "notes.TXT").write_text("not a log either")
    (folder / "img" / "chart.png").write_bytes(b"\x89PNG")
    (folder / "old.txt.gz").write_bytes(gzip.compress(b"text"))
    (folder / "Makefile").write_text("all:")
    result = ingest_files(ws, [str(folder)])
    assert (len(result.files), result.stored) == (1, 2)
    assert result.skipped_files == {".txt": 2, ".png": 1, ".txt.gz": 1, "no extension": 1}
    assert result.as_dict()["skipped_files"] == result.skipped_files
    alone = ingest_files(ws, [str(folder / "calls.jsonl")])  # a file named is not a folder run
    assert alone.skipped_files == {}


def test_zstd_and_gzip_recognised_by_content(ws, tmp_path):
    import zstandard

    zst = tmp_path / "a.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(lines(3, "zst")))
    misnamed = tmp_path / "b.jsonl"  # gzip bytes without .gz
    misnamed.write_bytes(gzip.compress(lines(4, "gz")))
    result = ingest_files(ws, [str(zst), str(misnamed)])
    assert [(f.read, f.stored) for f in result.files] == [(3, 3), (4, 4)]


def test_ten_megabyte_line(ws, tmp_path):
    path = tmp_path / "big.jsonl"
    big = dict(row(0), text="long " * 2_000_000)  # 10 MB of text in one record
    path.write_text(json.dumps(big) + "\n" + json.dumps(row(1)) + "\n")
    result = ingest_files(ws, [str(path)])
    assert (result.stored, result.rejected) == (2, 0)


def test_empty_file_and_directory_and_glob(ws, tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    folder = tmp_path / "dump" / "week-48"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_bytes(lines(2, "a"))
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(lines(3, "b")))
    (folder / "notes.txt").write_text("not a log")
    result = ingest_files(ws, [str(tmp_path / "empty.jsonl"), str(tmp_path / "dump")])
    assert [(f.read, f.stored) for f in result.files] == [(0, 0), (2, 2), (3, 3)]
    again = ingest_files(ws, [str(folder / "*.jsonl*")])
    assert (again.read, again.duplicates) == (5, 5)
    with pytest.raises(InputFileError, match="no file matches"):
        ingest_files(ws, [str(tmp_path / "nothing-*.jsonl")])


def test_streamed_json_array_with_a_broken_tail(ws, tmp_path):
    path = tmp_path / "array.json"
    items = [row(i) for i in range(5)]
    text = json.dumps(items)
    path.write_text(text[: text.rindex("{")] + '{"text": "cut off')  # last element broken
    result = ingest_files(ws, [str(path)])
    assert (result.read, result.stored, result.rejected) == (5, 4, 1)
    line, error = ws.con.execute("SELECT source_line, error FROM rejects").fetchone()
    assert line == 5 and "ends early or is broken" in error


def test_stdin(ws, monkeypatch):
    stream = io.TextIOWrapper(io.BufferedReader(io.BytesIO(lines(3, "stdin"))))
    monkeypatch.setattr(sys, "stdin", stream)
    result = ingest_files(ws, ["-"])
    assert (result.files[0].path, result.stored) == ("-", 3)
