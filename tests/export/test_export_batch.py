"""``levers export batch``: custom ids (field case C15), request lines validated by the
official SDKs' typed params, files split by (endpoint, model) with each API's own body shape
(the 26 real Chat Completions and Responses requests of simonw/llm's cassettes round-trip),
the manifest's endpoint per file, chunking by request-count and size limits, bad input."""

from __future__ import annotations

import csv
import functools
import gzip
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.export import ExportError, run_export
from levers_cli.export.batch import custom_ids
from levers_cli.ingest.mapping import parse_mapping
from levers_cli.store import Workspace
from tests.helpers import CASES, DATA, FIXTURES, FakeEmbedder, analyzed_sample_copy, need_shared

pydantic = pytest.importorskip("pydantic")
openai_params = pytest.importorskip("openai.types.chat.completion_create_params")
anthropic_batch = pytest.importorskip("anthropic.types.messages.batch_create_params")
responses_params = pytest.importorskip("openai.types.responses.response_create_params")
embedding_params = pytest.importorskip("openai.types.embedding_create_params")
batch_params = pytest.importorskip("openai.types.batch_create_params")

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
    # the file is the body of "Create a Message Batch": the manifest says where it goes
    manifest = json.loads((tmp_path / "out" / "batch" / "manifest.json").read_text())
    assert manifest["files"] == [
        {"file": "anthropic-001.json", "provider": "anthropic",
         "endpoint": "/v1/messages/batches", "model": None, "requests": 4,
         "bytes": (tmp_path / "out" / "batch" / "anthropic-001.json").stat().st_size},
    ]  # fmt: skip
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
    paths = sorted((out / "batch").glob("openai-*.jsonl"))
    # the sample logged Chat Completions only: every file is created with that endpoint
    assert paths and all(p.name.startswith("openai-chat-completions-") for p in paths)
    for path in paths:
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
    for path in (out / "batch").glob("openai-chat-completions-gpt-4o-mini*.jsonl"):
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
    written = tmp_path / "r" / "batch" / "openai-chat-completions-gpt-4o-mini-001.jsonl"
    assert key in written.read_text()


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


def _response_id(response) -> str:
    """The Response / chat completion id of a recorded response (JSON, or an SSE stream)."""
    if isinstance(response, dict):
        return response["id"]
    for line in response.splitlines():
        if line.startswith("data:") and line[5:].strip().startswith("{"):
            event = json.loads(line[5:])
            if isinstance(event.get("response"), dict):
                return event["response"]["id"]
            if event.get("id"):
                return event["id"]
    raise AssertionError("no id in the stream")


def _sdk_strict(endpoint: str, body: dict) -> None:
    """Validate a batch line's body with the SDK type of its endpoint."""
    if endpoint == "/v1/responses":
        # openai-python types FunctionToolParam.strict as Required[Optional[bool]], but the
        # recorded requests (answered 200) leave it out: check the rest with it set to None
        tools = [dict({"strict": None}, **t) if t.get("type") == "function" else t
                 for t in body.get("tools", [])]  # fmt: skip
        _strict(responses_params.ResponseCreateParamsNonStreaming, dict(body, tools=tools))
    elif endpoint == "/v1/embeddings":
        _strict(embedding_params.EmbeddingCreateParams, body)
    else:
        _strict(openai_params.CompletionCreateParamsNonStreaming, body)


@pytest.fixture(scope="module")
def api_export(tmp_path_factory):
    """Real requests of three OpenAI APIs analyzed and exported with --select all: the 26
    Chat Completions and Responses exchanges of simonw/llm's cassettes, the documented
    Responses examples of tests/fixtures (instructions, input parts, max_output_tokens,
    reasoning) and a LiteLLM SpendLogs row (the real fixture's row made an embeddings call:
    ``call_type`` aembedding, ``proxy_server_request.input`` two texts)."""
    from levers_cli.analysis import analyze
    from tests.ingest.test_ingest_openai import cassette_records

    folder = tmp_path_factory.mktemp("apis")
    records = list(cassette_records().values())
    documented = (FIXTURES / "openai" / "responses_doc.jsonl").read_text().splitlines()[1:]
    records += [json.loads(line) for line in documented]
    row = json.loads(need_shared(DATA / "litellm-fixtures" / "spend_logs_payload.json").read_text())
    row.update(
        request_id="emb-1", call_type="aembedding", model="text-embedding-3-small",
        messages="[]", response="{}",
        proxy_server_request=json.dumps({
            "model": "text-embedding-3-small", "encoding_format": "float",
            "input": ["reset my password", "where is my invoice"],
        }),
    )  # fmt: skip
    log = folder / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [*records, row]), encoding="utf-8")
    with Workspace(folder / "w.duckdb") as ws:
        analyze(ws, [str(log)], embedder=FakeEmbedder())
        result = run_export("batch", ws, load_config(None), str(folder / "out"), selection="all")
    with open(folder / "out" / "batch" / "custom_ids.csv", newline="") as handle:
        back = {r["custom_id"]: r for r in csv.DictReader(handle)}
    lines = {}
    for path in sorted((folder / "out" / "batch").glob("openai-*.jsonl")):
        for line in path.read_text().splitlines():
            item = json.loads(line)
            lines[back[item["custom_id"]]["call_id"]] = (path.name, item)
    return folder / "out" / "batch", result, records, lines


def test_each_api_keeps_its_endpoint_and_body_shape(api_export):
    """Every real request comes back under its own endpoint with its own body: the logged
    request less what a batch cannot carry (``stream``, ``stream_options``; ``store`` and
    ``include``, which levers does not store) and the
    encrypted reasoning items levers does not store; the model is the snapshot that served
    (the response's ``model``)."""
    _, result, records, lines = api_export
    checked = {"/v1/responses": 0, "/v1/chat/completions": 0}
    for record in records[:-2]:  # the cassettes
        request, response = record["request"], record["response"]
        call_id = _response_id(response)
        if call_id not in lines:  # OpenRouter's recordings of OpenAI models: skipped
            assert call_id.startswith("gen-") and request["model"] == "gpt-4.1-mini"
            continue
        name, line = lines[call_id]
        endpoint = "/v1/responses" if "input" in request else "/v1/chat/completions"
        assert line["url"] == endpoint and name.startswith(
            "openai-responses-" if "input" in request else "openai-chat-completions-"
        )
        dropped = ("stream", "stream_options", "store", "include")
        expected = {k: v for k, v in request.items() if k not in dropped}
        if "input" in expected:
            expected["input"] = [i for i in expected["input"] if i.get("type") != "reasoning"]
        served = response["model"] if isinstance(response, dict) else line["body"]["model"]
        assert line["body"] == dict(expected, model=served), call_id
        assert line["body"]["model"].startswith(request["model"])
        _sdk_strict(endpoint, line["body"])
        checked[endpoint] += 1
    assert checked == {"/v1/responses": 13, "/v1/chat/completions": 7}
    # the documented Responses requests: instructions and input parts, the output cap and
    # reasoning stay Responses fields (not messages / max_tokens)
    assert lines["resp_doc_2"][1]["body"] == {
        "model": "o4-mini-2025-04-16",
        "input": [{"role": "user", "content": "Prove that there are infinitely many primes."}],
        "max_output_tokens": 256,
        "reasoning": {"effort": "high"},
    }
    assert lines["resp_doc_3"][1]["body"] == {
        "model": "gpt-4o-2024-08-06",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Summarize this."}]}],
    }
    for call_id in ("resp_doc_2", "resp_doc_3"):
        assert lines[call_id][1]["url"] == "/v1/responses"
        _sdk_strict("/v1/responses", lines[call_id][1]["body"])
    name, line = lines["emb-1"]
    assert name == "openai-embeddings-text-embedding-3-small-001.jsonl"
    assert line["url"] == "/v1/embeddings"
    assert line["body"] == {
        "model": "text-embedding-3-small",
        "input": ["reset my password", "where is my invoice"],
        "encoding_format": "float",
    }
    _sdk_strict("/v1/embeddings", line["body"])
    assert result.counts["openai_responses_requests"] == 15
    assert result.counts["openai_chat_completions_requests"] == 7
    assert result.counts["openai_embeddings_requests"] == 1


def test_manifest_names_each_files_endpoint(api_export):
    """One endpoint and one model per file (the Batch API takes one ``endpoint`` per batch);
    the manifest's row is the ``POST /v1/batches`` body the file is created with."""
    folder, result, _, _ = api_export
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {row["file"]: row for row in manifest["files"]}
    assert set(files) == {p.name for p in folder.glob("openai-*.jsonl")}
    assert {row["endpoint"] for row in files.values()} == {
        "/v1/responses", "/v1/chat/completions", "/v1/embeddings",
    }  # fmt: skip
    for name, row in files.items():
        rows = [json.loads(x) for x in (folder / name).read_text().splitlines()]
        assert {r["url"] for r in rows} == {row["endpoint"]}
        assert {r["body"]["model"] for r in rows} == {row["model"]}
        assert row["requests"] == len(rows) and row["bytes"] == (folder / name).stat().st_size
        create = dict(row["create_batch"], input_file_id="file-abc123")
        _strict(batch_params.BatchCreateParams, create)
        assert create["endpoint"] == row["endpoint"]
    by_file = {Path(f["path"]).name: f.get("endpoint") for f in result.files}
    assert all(by_file[name] == row["endpoint"] for name, row in files.items())


def test_cli_prints_the_endpoint_of_each_file(api_export, tmp_path):
    folder, _, _, _ = api_export
    workspace = folder.parents[1] / "w.duckdb"
    res = runner.invoke(
        app, ["export", "batch", "-w", str(workspace), "-o", str(tmp_path), "--select", "all"],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    table = [line for line in res.stdout.splitlines() if "openai-" in line]
    assert table and all(
        ("/v1/responses" in line) == ("openai-responses-" in line)
        and ("/v1/embeddings" in line) == ("openai-embeddings-" in line)
        for line in table
    )
    assert "endpoint" in res.stdout and "POST /v1/batches" in res.stderr


def test_endpoint_of_calls_from_other_loggers():
    """A Responses call logged by something other than the Responses adapter is still one:
    a batch input line's url, LiteLLM's call_type, a Responses-only setting or content part."""
    from levers_cli.export.request_bodies import openai_endpoint

    def call(fmt="request-only", metadata=None, params=None, content="hi"):
        return {"format": fmt, "metadata": metadata or {}, "params": params or {},
                "messages": [{"role": "user", "content": content}]}  # fmt: skip

    assert openai_endpoint(call("openai-batch", {"url": "/v1/responses"})) == "/v1/responses"
    assert openai_endpoint(call("litellm-payload", {"call_type": "aresponses"})) == "/v1/responses"
    assert openai_endpoint(call("litellm-spendlogs", {"call_type": "aembedding"})) == (
        "/v1/embeddings"
    )
    assert openai_endpoint(call(params={"max_output_tokens": 50})) == "/v1/responses"
    assert openai_endpoint(call(params={"text": {"format": {"type": "text"}}})) == "/v1/responses"
    parts = [{"type": "input_text", "text": "hi"}]
    assert openai_endpoint(call(content=parts)) == "/v1/responses"
    # Chat settings and parts, and a legacy string prompt, stay Chat Completions
    assert openai_endpoint(call(params={"reasoning_effort": "low", "max_tokens": 9})) == (
        "/v1/chat/completions"
    )
    assert openai_endpoint(call(content=[{"type": "text", "text": "hi"}])) == (
        "/v1/chat/completions"
    )
    assert openai_endpoint(call(params={"prompt": "Say hi"})) == "/v1/chat/completions"
