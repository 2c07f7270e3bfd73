"""``levers export batch``: custom ids (field case C15), request lines validated by the
official SDKs' typed params, chunking by request-count and size limits, bad input."""

from __future__ import annotations

import csv
import functools
import gzip
import json
import re

import pytest
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.export import ExportError, run_export
from levers_cli.export.batch import custom_ids
from levers_cli.ingest.mapping import parse_mapping
from levers_cli.store import Workspace
from tests.helpers import CASES, FakeEmbedder, analyzed_sample_copy, need_shared

pydantic = pytest.importorskip("pydantic")
openai_params = pytest.importorskip("openai.types.chat.completion_create_params")
anthropic_batch = pytest.importorskip("anthropic.types.messages.batch_create_params")

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
runner = CliRunner()


@functools.cache
def _adapter(typed_dict: type):
    """One pydantic TypeAdapter per SDK type: building one takes seconds, validating ms."""
    return pydantic.TypeAdapter(typed_dict)


def _strict(typed_dict: type, value: dict) -> None:
    """Validate ``value`` against an SDK TypedDict: pydantic checks types (consuming the
    lazily validated ``Iterable`` fields), and no key may be one the type does not declare."""
    checked = _adapter(typed_dict).validate_python(value)
    for item in checked.values():
        if hasattr(item, "__next__"):
            list(item)
    unknown = set(value) - set(typed_dict.__annotations__) - _inherited(typed_dict)
    assert not unknown, unknown


def _inherited(typed_dict: type) -> set[str]:
    keys: set[str] = set()
    for base in getattr(typed_dict, "__orig_bases__", ()):
        keys |= set(getattr(base, "__annotations__", {}))
    return (
        keys
        | set(getattr(typed_dict, "__required_keys__", set()))
        | set(getattr(typed_dict, "__optional_keys__", set()))
    )


def test_custom_ids_fit_and_differ():
    ids = [
        "plain_id_42",  # already valid: kept
        "a/b",  # cleaned + hash
        "a_b",  # valid, and must not collide with the cleaned "a/b"
        "x" * 70 + "1",  # too long: cut to 51 + "-" + 12 hex
        "x" * 70 + "2",  # same first 64 characters as the previous one
    ]
    out = custom_ids(ids)
    assert out[0] == "plain_id_42"
    assert out[2] == "a_b"
    assert out[1].startswith("a_b-") and len(out[1]) == 3 + 1 + 12
    assert len(out[3]) == 64 and out[3].startswith("x" * 51 + "-")
    assert len(set(out)) == 5
    assert all(CUSTOM_ID.match(i) for i in out)


def test_c15_four_requests_four_ids_and_the_map(tmp_path):
    """../shared/cases/README.md C15: 4 requests, 4 distinct valid ids, plus a map back."""
    from levers_cli.analysis import analyze

    case = need_shared(CASES / "C15-batch-manifest-custom-id.jsonl")
    mapping = parse_mapping(
        [
            "call_id=log_id",
            "query=request.messages[0].content",
            "model=request.model",
            "max_tokens=request.max_tokens",
            "messages=request.messages",
        ]
    )
    with Workspace(tmp_path / "w.duckdb") as ws:
        analyze(ws, [str(case)], format="generic", mapping=mapping, embedder=FakeEmbedder())
        result = run_export("batch", ws, load_config(None), str(tmp_path / "out"), selection="all")
    assert result.counts["anthropic_requests"] == 4
    body = json.loads((tmp_path / "out" / "batch" / "anthropic-001.json").read_text())
    ids = [r["custom_id"] for r in body["requests"]]
    assert len(set(ids)) == 4 and all(CUSTOM_ID.match(i) for i in ids)
    for request in body["requests"]:
        _strict(anthropic_batch.Request, request)
        assert request["params"]["max_tokens"] == 256
    with open(tmp_path / "out" / "batch" / "custom_ids.csv", newline="") as handle:
        back = {row["custom_id"]: row["call_id"] for row in csv.DictReader(handle)}
    originals = [json.loads(line)["log_id"] for line in case.read_text().splitlines()]
    assert sorted(back) == sorted(ids)
    assert sorted(back.values()) == sorted(originals)
    # the two session ids share their first 64 characters once cleaned: naive cutting collides
    cleaned = [re.sub(r"[^a-zA-Z0-9_-]", "_", o)[:64] for o in originals[:2]]
    assert cleaned[0] == cleaned[1]


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory):
    path = analyzed_sample_copy(tmp_path_factory)
    out = tmp_path_factory.mktemp("batch-out")
    with Workspace(path, create=False) as ws:
        cfg = load_config(None)
        result = run_export("batch", ws, cfg, str(out))
        from levers_cli.levers.batch import BatchLever

        finding = BatchLever().analyze(ws, cfg)
    return path, out, result, finding


def test_sample_lines_pass_the_openai_sdk_types(sample_export):
    _, out, result, finding = sample_export
    # the lever's own count of calls moved at the expected level
    assert result.counts["openai_requests"] == finding.details["moved_calls"]["expected"] > 0
    seen: set[str] = set()
    for path in sorted((out / "batch").glob("openai-*.jsonl")):
        models = set()
        for line in path.read_text().splitlines():
            row = json.loads(line)
            assert set(row) == {"custom_id", "method", "url", "body"}
            assert row["method"] == "POST" and row["url"] == "/v1/chat/completions"
            assert CUSTOM_ID.match(row["custom_id"]) and row["custom_id"] not in seen
            seen.add(row["custom_id"])
            _strict(openai_params.CompletionCreateParamsNonStreaming, row["body"])
            models.add(row["body"]["model"])
        assert len(models) == 1, path  # one model per file (Batch API rule)
    assert len(seen) == result.counts["openai_requests"]


def test_sample_triage_caps_are_kept(sample_export):
    """The nightly triage prompts were sent with max_tokens 10, later 6 (truths.json)."""
    _, out, _, _ = sample_export
    caps = set()
    for path in (out / "batch").glob("openai-gpt-4o-mini*.jsonl"):
        for line in path.read_text().splitlines():
            body = json.loads(line)["body"]
            if body["messages"][-1]["content"].startswith("Classify the following support"):
                caps.add(body["max_tokens"])
    assert caps == {10, 6}


def test_chunks_respect_request_and_byte_limits(sample_export, tmp_path):
    path, _, result, _ = sample_export
    with Workspace(path, create=False) as ws:
        small = run_export("batch", ws, load_config(None), str(tmp_path), openai_limits=(50, 10**9))
        by_size = run_export(
            "batch", ws, load_config(None), str(tmp_path), force=True,
            openai_limits=(10**6, 20_000),
        )  # fmt: skip
    rows = [f["rows"] for f in small.files if f.get("provider") == "openai"]
    assert max(rows) == 50 and sum(rows) == result.counts["openai_requests"]
    sizes = [f["bytes"] for f in by_size.files if f.get("provider") == "openai"]
    assert max(sizes) <= 20_000 and len(sizes) > len(rows) / 50


def test_secrets_are_redacted_unless_told(tmp_path, registered_fake):
    from tests.helpers import openai_pair

    key = "sk-proj-" + "Ab1" * 10
    records = [
        openai_pair(
            f"c{i}", "gpt-4o-mini", [{"role": "user", "content": f"ticket {i}: my key {key}"}],
            "ok", 1_790_000_000 + i, 10, 1, metadata={"job": "nightly"},
        )
        for i in range(3)
    ]  # fmt: skip
    log = tmp_path / "log.jsonl.gz"
    with gzip.open(log, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    ws_path = tmp_path / "w.duckdb"
    assert (
        runner.invoke(
            app, ["analyze", str(log), "-w", str(ws_path), "--embedder", "fake"]
        ).exit_code
        == 0
    )
    res = runner.invoke(
        app, ["export", "batch", "-w", str(ws_path), "-o", str(tmp_path / "r"), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["redactions"] == {"API_KEY": 3}
    text = "".join(p.read_text() for p in (tmp_path / "r" / "batch").iterdir())
    assert key not in text and "[API_KEY]" in text
    res = runner.invoke(
        app,
        [
            "export",
            "batch",
            "-w",
            str(ws_path),
            "-o",
            str(tmp_path / "r"),
            "--no-redact",
            "--force",
        ],
    )
    assert res.exit_code == 0
    assert key in (tmp_path / "r" / "batch" / "openai-gpt-4o-mini-001.jsonl").read_text()


def test_bad_input_one_line_exit_1(tmp_path, ws):
    ws.close()
    empty = tmp_path / "ws.duckdb"
    res = runner.invoke(app, ["export", "batch", "-w", str(empty), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "run `levers analyze" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        from levers_cli.export.common import prepare_out_dir

        prepare_out_dir(blocker, ["batch"], force=False)
