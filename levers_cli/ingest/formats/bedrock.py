"""AWS Bedrock model invocation logs: the JSON records Bedrock writes to CloudWatch Logs and S3.

Source: Amazon Bedrock User Guide, "Monitor model invocation using CloudWatch Logs and
Amazon S3" (docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html) and
the example records of "Option 2: Use invocation logs for data preparation"
(…/userguide/distillation-data-prep-option-2.html). A record (``schemaType:
ModelInvocationLog``) holds ``timestamp``, ``requestId``, ``region``, ``operation``
(``Converse``, ``ConverseStream``, ``InvokeModel``, ``InvokeModelWithResponseStream``),
``modelId`` (a model id, a cross-region profile id such as ``us.anthropic.…``, or an ARN),
``input {inputBodyJson, inputTokenCount, cacheReadInputTokenCount,
cacheWriteInputTokenCount}``, ``output {outputBodyJson, outputTokenCount}``, optional
``requestMetadata`` and, for a failed call, ``errorCode``. Bodies too large to inline are
stored in S3 (``inputBodyS3Path``/``outputBodyS3Path``): then only the counts are read.

Tokens: Bedrock counts input like Anthropic: ``inputTokenCount`` excludes the cache read and
cache write counts (Converse ``usage.totalTokens`` = input + output + cache read + cache
write), so input = the three added.

Bodies, by the model's API (Bedrock User Guide, "Inference request parameters and response
fields for foundation models"; Converse API reference):

* Converse / ConverseStream: ``messages [{role, content: [{text} | {toolUse} | …]}]``,
  ``system [{text}]``, ``inferenceConfig.maxTokens``; the response ``output.message``,
  ``stopReason``, ``usage``, ``metrics.latencyMs`` (a stream is logged as that aggregate or
  as its list of events).
* Anthropic Messages (``anthropic_version``, ``messages``, ``system``, ``max_tokens``;
  response ``content``, ``stop_reason``; a stream is its list of Messages events) and the
  legacy text completion (``prompt``, ``max_tokens_to_sample``; ``completion``).
* Meta Llama (``prompt``, ``max_gen_len``; ``generation``, ``stop_reason``).
* Mistral (``prompt``, ``max_tokens``; ``outputs [{text, stop_reason}]``).
* Amazon Titan (``inputText``, ``textGenerationConfig.maxTokenCount``; ``results
  [{outputText, completionReason}]``, a stream's chunks ``{outputText, completionReason}``)
  and Nova (``messages``/``system`` like Converse, ``inferenceConfig.max_new_tokens``;
  ``output.message``, ``stopReason``).

Provider ``bedrock``: genai-prices prices Bedrock models under its ``aws`` provider, which it
also matches by the name ``bedrock``; the cross-region prefixes (``us.``, ``eu.``, ``apac.``,
``global.``) are part of the model ids it knows.
"""

from __future__ import annotations

import json
import re
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import optional_float, parse_ts, token_count
from levers_cli.ingest.formats.anthropic import STOP_REASONS, is_event_stream, reassemble_stream
from levers_cli.ingest.formats.anthropic import reply_text as anthropic_reply
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.pairs import last_user_text
from levers_cli.schema import STATUS_ERROR, STATUS_OK
from levers_cli.text.content import content_text

SCHEMA_TYPE = "ModelInvocationLog"
PROVIDER = "bedrock"
#: Bedrock and model stop reasons → the OpenAI-style ``finish_reason`` levers stores.
_FINISH = {
    **STOP_REASONS,
    "stop": "stop",
    "length": "length",
    "FINISH": "stop",
    "LENGTH": "length",
    "CONTENT_FILTERED": "content_filter",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "COMPLETE": "stop",
    "MAX_TOKENS": "length",
}
#: Request keys that are content, not settings.
_CONTENT = {"messages", "system", "prompt", "inputText", "message", "chat_history"}
#: Llama 3 chat template: one turn per header, ended by ``<|eot_id|>``.
_LLAMA3_TURN = re.compile(
    r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\s*(.*?)(?=<\|eot_id\|>|<\|start_header_id\|>|$)",
    re.S,
)
#: Llama 2 / Mistral instruction template.
_INST = re.compile(r"\[INST\](.*?)\[/INST\]", re.S)
_SYS = re.compile(r"<<SYS>>(.*?)<</SYS>>", re.S)


class BedrockAdapter(MappedAdapter):
    """Bedrock ``ModelInvocationLog`` records (CloudWatch Logs or S3 delivery)."""

    name = "bedrock"
    description = "AWS Bedrock model invocation logs (Converse and InvokeModel; CloudWatch/S3)"
    example = (
        '{"schemaType": "ModelInvocationLog", "operation": "Converse", "modelId": '
        '"us.anthropic.claude-3-5-sonnet-20240620-v1:0", "input": {"inputBodyJson": {...}, '
        '"inputTokenCount": 12}, "output": {"outputBodyJson": {...}, "outputTokenCount": 5}}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a ``ModelInvocationLog`` record (or one with ``modelId``, ``operation``
        and an ``input``/``output`` object, when a log shipper dropped ``schemaType``)."""
        if record.get("schemaType") == SCHEMA_TYPE:
            return True
        return (
            isinstance(record.get("modelId"), str)
            and isinstance(record.get("operation"), str)
            and (isinstance(record.get("input"), dict) or isinstance(record.get("output"), dict))
        )

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one invocation log record.

        Raises:
            RecordError: no ``modelId``, a body that is not JSON, or a count that is not one.
        """
        model_id = record.get("modelId")
        if not isinstance(model_id, str) or not model_id.strip():
            raise RecordError("missing", field="modelId")
        given = record["input"] if isinstance(record.get("input"), dict) else {}
        produced = record["output"] if isinstance(record.get("output"), dict) else {}
        request = _body(given.get("inputBodyJson"), "input.inputBodyJson")
        response = _body(produced.get("outputBodyJson"), "output.outputBodyJson")
        request = request if isinstance(request, dict) else {}
        messages = request_messages(request)
        partial: PartialCall = {
            "provider": PROVIDER,
            "model": model_from_id(model_id),
            "call_id": record.get("requestId"),
            "ts": parse_ts(record.get("timestamp"), field="timestamp"),
            "messages": messages,
            "system_prompt": next((m["content"] for m in messages if m["role"] == "system"), None),
            "query": last_user_text(messages),
            "max_tokens": _max_tokens(request),
            "metadata": _metadata(record, request, given, produced),
        }
        if record.get("errorCode"):
            partial["status"] = STATUS_ERROR
            partial["error"] = str(record.get("errorMessage") or record["errorCode"])
        else:
            partial["status"] = STATUS_OK
        reply, finish, usage, latency = response_fields(response)
        partial["response"] = reply
        partial["finish_reason"] = _FINISH.get(finish, finish) if finish else None
        partial["latency_ms"] = latency
        partial.update(_tokens(given, produced, usage))
        return partial


def model_from_id(model_id: str) -> str:
    """The model id of a ``modelId``: an ARN's last path part
    (``arn:aws:bedrock:us-east-1:…:inference-profile/us.anthropic.claude-…`` →
    ``us.anthropic.claude-…``), else the id as logged."""
    model_id = model_id.strip()
    return model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id


def _body(value: Any, field: str) -> Any:
    """A logged body: as given, or decoded when a shipper logged it as a JSON string."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise RecordError("not JSON", field=field) from None
    return value


def _tokens(
    given: dict[str, Any], produced: dict[str, Any], usage: dict[str, int | None]
) -> PartialCall:
    """Token columns from the log's counts, else from the body's usage.

    Raises:
        RecordError: a count is negative or not a number.
    """
    uncached = token_count(given.get("inputTokenCount"), field="input.inputTokenCount")
    read = token_count(
        given.get("cacheReadInputTokenCount"), field="input.cacheReadInputTokenCount"
    )
    write = token_count(
        given.get("cacheWriteInputTokenCount"), field="input.cacheWriteInputTokenCount"
    )
    output = token_count(produced.get("outputTokenCount"), field="output.outputTokenCount")
    if uncached is None:
        uncached, read, write = usage.get("input"), usage.get("read"), usage.get("write")
    if output is None:
        output = usage.get("output")
    read, write = read or 0, write or 0
    return {
        "input_tokens": None if uncached is None else uncached + read + write,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "output_tokens": output,
        "reasoning_tokens": 0,
    }


def _max_tokens(request: dict[str, Any]) -> int | None:
    config = request.get("inferenceConfig") or request.get("textGenerationConfig") or {}
    for value in (
        config.get("maxTokens"),
        config.get("max_new_tokens"),
        config.get("maxTokenCount"),
        request.get("max_tokens"),
        request.get("max_gen_len"),
        request.get("max_tokens_to_sample"),
    ):
        if value is not None:
            return token_count(value, field="input.inputBodyJson.max_tokens")
    return None


def _metadata(
    record: Record, request: dict[str, Any], given: dict[str, Any], produced: dict[str, Any]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "operation": record.get("operation"),
        "region": record.get("region"),
        "inference_region": record.get("inferenceRegion"),
        "model_id": record.get("modelId"),
        "identity_arn": (record.get("identity") or {}).get("arn")
        if isinstance(record.get("identity"), dict)
        else None,
        "input_s3_path": given.get("inputBodyS3Path"),
        "output_s3_path": produced.get("outputBodyS3Path"),
    }
    if isinstance(record.get("requestMetadata"), dict):
        metadata.update(record["requestMetadata"])
    params = {k: v for k, v in request.items() if k not in _CONTENT}
    if params:
        metadata["params"] = params
    return {k: v for k, v in metadata.items() if v is not None}


def request_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages of an invocation's request body, whatever the model's API:
    Converse/Nova/Anthropic ``system`` + ``messages``, a Llama or Mistral ``prompt`` (its
    chat template split into turns when recognised), a Titan ``inputText`` or a Cohere
    ``message``."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = _blocks_text(system)
        if text:
            messages.append({"role": "system", "content": text})
    if isinstance(body.get("messages"), list):
        for message in body["messages"]:
            if isinstance(message, dict):
                role = str(message.get("role") or "user")
                messages.append({"role": role, "content": _blocks_text(message.get("content"))})
        return messages
    for key in ("prompt", "inputText", "message"):
        if isinstance(body.get(key), str):
            return messages + prompt_turns(body[key])
    return messages


def prompt_turns(prompt: str) -> list[dict[str, Any]]:
    """A raw prompt as chat turns: Llama 3 headers, Llama 2/Mistral ``[INST]`` blocks and
    Anthropic ``Human:``/``Assistant:`` transcripts are split; any other text is one user
    turn."""
    turns = [
        {"role": role, "content": text.strip()}
        for role, text in _LLAMA3_TURN.findall(prompt)
        if text.strip()
    ]
    if turns:
        return turns
    if "[INST]" in prompt:
        result: list[dict[str, Any]] = []
        for block in _INST.findall(prompt):
            system = _SYS.search(block)
            if system:
                result.append({"role": "system", "content": system.group(1).strip()})
                block = _SYS.sub("", block)
            result.append({"role": "user", "content": block.strip()})
        return result
    if "Human:" in prompt and "Assistant:" in prompt:
        result = []
        for piece in re.split(r"\n\n(?=Human:|Assistant:)", "\n\n" + prompt.strip()):
            speaker, _, text = piece.partition(":")
            role = {"Human": "user", "Assistant": "assistant"}.get(speaker.strip())
            if role and text.strip():
                result.append({"role": role, "content": text.strip()})
        if result:
            return result
    return [{"role": "user", "content": prompt}]


def _blocks_text(content: Any) -> str:
    """Text of Converse or Anthropic content blocks: text, tool use and tool results as JSON,
    ``[image]`` / ``[document: name]`` for media, thinking and ``cachePoint`` markers left
    out."""
    if not isinstance(content, list):
        return content_text(content)
    texts: list[str] = []
    for block in content:
        if not isinstance(block, dict) or "type" in block:  # Anthropic blocks
            texts.append(content_text([block]))
        elif isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif "toolUse" in block or "toolResult" in block:
            texts.append(json.dumps(block, ensure_ascii=False, sort_keys=True))
        elif isinstance(block.get("document"), dict):
            texts.append(f"[document: {block['document'].get('name') or 'unnamed'}]")
        elif block.keys() & {"image", "video"}:
            texts.append(f"[{next(iter(block.keys() & {'image', 'video'}))}]")
    return "\n".join(t for t in texts if t)


def response_fields(
    body: Any,
) -> tuple[str, str | None, dict[str, int | None], float | None]:
    """``(reply text, stop reason, usage, latency in ms)`` of a response body: a Converse or
    Nova response, an Anthropic message or its event stream, a Llama, Mistral, Titan or
    Cohere response, or a list of stream chunks of any of them. ``usage`` holds ``input``
    (uncached), ``read``, ``write`` and ``output`` when the body has them.

    Raises:
        RecordError: an Anthropic stream event is not JSON.
    """
    usage: dict[str, int | None] = {}
    if body is None:
        return "", None, usage, None
    if is_event_stream(body):
        body, _ = reassemble_stream(body)
    chunks = body if isinstance(body, list) else [body]
    texts: list[str] = []
    finish: str | None = None
    latency: float | None = None
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        text, reason = _chunk_text(chunk)
        texts.append(text)
        finish = reason or finish
        _chunk_usage(chunk, usage)
        metrics = chunk.get("metrics") or {}
        invocation = chunk.get("amazon-bedrock-invocationMetrics") or {}
        measured = metrics.get("latencyMs", invocation.get("invocationLatency"))
        if measured is not None:
            latency = optional_float(measured, field="output.outputBodyJson.metrics.latencyMs")
    return "".join(texts), finish, usage, latency


def _chunk_text(chunk: dict[str, Any]) -> tuple[str, str | None]:
    """Reply text and stop reason of one response body or stream chunk."""
    output = chunk.get("output")
    if isinstance(output, dict) and isinstance(output.get("message"), dict):  # Converse, Nova
        return _blocks_text(output["message"].get("content")), chunk.get("stopReason")
    if chunk.get("type") == "message" or isinstance(chunk.get("content"), list):  # Anthropic
        return anthropic_reply(chunk.get("content") or []), chunk.get("stop_reason")
    delta = (chunk.get("contentBlockDelta") or {}).get("delta") or {}  # ConverseStream events
    if isinstance(delta.get("text"), str):
        return delta["text"], None
    if isinstance(chunk.get("messageStop"), dict):
        return "", chunk["messageStop"].get("stopReason")
    if isinstance(chunk.get("outputs"), list):  # Mistral
        first = chunk["outputs"][0] if chunk["outputs"] else {}
        return str(first.get("text") or ""), first.get("stop_reason")
    if isinstance(chunk.get("results"), list):  # Titan
        first = chunk["results"][0] if chunk["results"] else {}
        return str(first.get("outputText") or ""), first.get("completionReason")
    if isinstance(chunk.get("generations"), list):  # Cohere Command
        first = chunk["generations"][0] if chunk["generations"] else {}
        return str(first.get("text") or ""), first.get("finish_reason")
    for key, reason in (
        ("generation", "stop_reason"),  # Llama
        ("outputText", "completionReason"),  # Titan stream chunk
        ("completion", "stop_reason"),  # Anthropic text completion
        ("text", "finish_reason"),  # Cohere Command R
    ):
        if isinstance(chunk.get(key), str):
            return chunk[key], chunk.get(reason)
    return "", None


def _chunk_usage(chunk: dict[str, Any], usage: dict[str, int | None]) -> None:
    """Fill ``usage`` (uncached input, cache read, cache write, output) from what a body or
    chunk reports; later chunks refine earlier ones."""
    field = "output.outputBodyJson.usage"
    converse = chunk.get("usage") or (chunk.get("metadata") or {}).get("usage")
    if isinstance(converse, dict) and "inputTokens" in converse:
        usage["input"] = token_count(converse.get("inputTokens"), field=field)
        usage["output"] = token_count(converse.get("outputTokens"), field=field)
        usage["read"] = token_count(
            converse.get("cacheReadInputTokens", converse.get("cacheReadInputTokenCount")),
            field=field,
        )
        usage["write"] = token_count(
            converse.get("cacheWriteInputTokens", converse.get("cacheWriteInputTokenCount")),
            field=field,
        )
    elif isinstance(converse, dict) and "input_tokens" in converse:  # Anthropic
        usage["input"] = token_count(converse.get("input_tokens"), field=field)
        usage["output"] = token_count(converse.get("output_tokens"), field=field)
        usage["read"] = token_count(converse.get("cache_read_input_tokens"), field=field)
        usage["write"] = token_count(converse.get("cache_creation_input_tokens"), field=field)
    metrics = chunk.get("amazon-bedrock-invocationMetrics")
    if isinstance(metrics, dict):
        usage["input"] = token_count(metrics.get("inputTokenCount"), field=field)
        usage["output"] = token_count(metrics.get("outputTokenCount"), field=field)
        usage["read"] = token_count(metrics.get("cacheReadInputTokenCount"), field=field)
        usage["write"] = token_count(metrics.get("cacheWriteInputTokenCount"), field=field)
    results = chunk.get("results")
    if isinstance(results, list) and results and isinstance(results[0], dict):  # Titan
        usage["output"] = token_count(results[0].get("tokenCount"), field=field)
    for given, taken in (
        ("prompt_token_count", "generation_token_count"),  # Llama
        ("inputTextTokenCount", "totalOutputTextTokenCount"),  # Titan
    ):
        if given in chunk and usage.get("input") is None:
            usage["input"] = token_count(chunk.get(given), field=field)
        if taken in chunk:
            usage["output"] = token_count(chunk.get(taken), field=field)
