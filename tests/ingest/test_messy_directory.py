"""A deliberately messy folder of many formats: every record read is stored, a duplicate,
skipped (no model call) or rejected, file by file and in total, and mixing formats changes
nothing."""

from __future__ import annotations

import gzip
import json
import shutil

from levers_cli.ingest.pipeline import ingest_files
from levers_cli.store import Workspace
from tests.helpers import CASES, FIXTURES, need_shared

COPIES = {
    "openai/c01.jsonl": CASES / "C01-openai-cached-subset.jsonl",
    "openai/copy-of-c01.jsonl": CASES / "C01-openai-cached-subset.jsonl",
    "anthropic/c02.jsonl": CASES / "C02-anthropic-additive-cache-buckets.jsonl",
    "batch/c08.jsonl": CASES / "C08-openai-batch-output-bad-lines.jsonl",
    "openai/c09-separators.jsonl": CASES / "C09-jsonl-unicode-line-separators.jsonl",
    "csv/c13.csv": CASES / "C13-duplicate-queries-clustering.csv",
    "openai/responses.jsonl": FIXTURES / "openai" / "responses_doc.jsonl",
    "langfuse/api.jsonl": FIXTURES / "langfuse" / "observations_api.jsonl",
    "helicone/export.csv": FIXTURES / "helicone" / "export.csv",
    "litellm/payloads.jsonl": FIXTURES / "litellm" / "payloads.jsonl",
    "chats/sharegpt.json": FIXTURES / "conversations" / "sharegpt.json",
    "anthropic/batch.jsonl": FIXTURES / "anthropic" / "batch_results.jsonl",
}


def _build(tmp_path):
    root = tmp_path / "dump"
    for name, source in COPIES.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(need_shared(source), target)
    good = json.dumps({"text": "hello", "model": "gpt-4o-mini"}).encode()
    (root / "odd").mkdir()
    (root / "odd" / "latin1.jsonl").write_bytes(good + b'\n{"text": "caf\xe9"}\n')
    payload = gzip.compress(b"".join(good[:-1] + f', "n": {i}}}\n'.encode() for i in range(500)))
    (root / "odd" / "cut.jsonl.gz").write_bytes(payload[: len(payload) * 2 // 3])
    (root / "odd" / "unknown.jsonl").write_text('{"foo": 1}\n{"bar": 2}\n')
    (root / "odd" / "empty.json").write_text("")
    (root / "odd" / "README.txt").write_text("not a log; not read")
    return root


def test_messy_directory_reconciles(tmp_path):
    root = _build(tmp_path)
    with Workspace(tmp_path / "all.duckdb") as ws:
        result = ingest_files(ws, [str(root)])
        stored_calls = ws.count("calls")
        stored_rejects = ws.count("rejects")
    by_name = {f.path.removeprefix(str(root) + "/"): f for f in result.files}
    assert "odd/README.txt" not in by_name and len(by_name) == len(COPIES) + 4
    for f in result.files:
        assert f.read == f.stored + f.duplicates + f.skipped + f.rejected, f.path
    assert result.read == result.stored + result.duplicates + result.skipped + result.rejected
    assert result.skipped_files == {".txt": 1}  # odd/README.txt, said so
    assert stored_calls == result.stored and stored_rejects == result.rejected
    # values known by hand (../shared/cases/README.md and the files themselves)
    counts = {
        n: (f.format, f.read, f.stored, f.duplicates, f.skipped, f.rejected)
        for n, f in by_name.items()
    }
    assert counts["openai/c01.jsonl"] == ("openai-chat", 2, 2, 0, 0, 0)
    assert counts["openai/copy-of-c01.jsonl"] == ("openai-chat", 2, 0, 2, 0, 0)
    assert counts["anthropic/c02.jsonl"] == ("anthropic", 2, 2, 0, 0, 0)
    assert counts["batch/c08.jsonl"] == ("openai-batch", 5, 3, 0, 0, 2)
    assert counts["openai/c09-separators.jsonl"] == ("openai-chat", 3, 3, 0, 0, 0)
    assert counts["csv/c13.csv"] == ("generic", 30, 30, 0, 0, 0)
    assert counts["langfuse/api.jsonl"] == ("langfuse", 9, 6, 1, 1, 1)  # its SPAN: skipped
    assert counts["odd/latin1.jsonl"] == ("generic", 2, 1, 0, 0, 1)
    assert counts["odd/unknown.jsonl"] == (None, 2, 0, 0, 0, 2)
    assert counts["odd/empty.json"] == (None, 0, 0, 0, 0, 0)
    cut = by_name["odd/cut.jsonl.gz"]
    assert cut.rejected == 1 and 0 < cut.stored < 500
    # each file alone gives the same counts as inside the mix (the copy aside: alone it is new)
    for name, f in by_name.items():
        if name == "openai/copy-of-c01.jsonl":
            continue
        with Workspace(tmp_path / "alone.duckdb") as alone:
            single = ingest_files(alone, [f.path]).files[0]
        (tmp_path / "alone.duckdb").unlink()
        assert (single.format, single.read, single.stored, single.skipped, single.rejected) == (
            f.format,
            f.read,
            f.stored,
            f.skipped,
            f.rejected,
        ), name
