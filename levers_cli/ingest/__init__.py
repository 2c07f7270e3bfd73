"""Ingest: read log files of any registered format into the ``calls`` table.

The registry :data:`ADAPTERS` is the one place formats are listed; to add a format, write a
module in :mod:`levers_cli.ingest.formats` with a class that follows
:class:`~levers_cli.ingest.formats.base.LogAdapter` and add it here.
Detection tries the adapters in registry order; ``generic`` is last because it accepts any
record with a query column.
"""

from __future__ import annotations

from levers_cli.errors import UnknownFormatError
from levers_cli.ingest.formats.anthropic import AnthropicAdapter
from levers_cli.ingest.formats.anthropic_batch import AnthropicBatchAdapter
from levers_cli.ingest.formats.base import AdapterClass, LogAdapter
from levers_cli.ingest.formats.bedrock import BedrockAdapter
from levers_cli.ingest.formats.chat_datasets import (
    ChatMessagesAdapter,
    ShareGPTAdapter,
    TranscriptAdapter,
)
from levers_cli.ingest.formats.gemini import GeminiAdapter
from levers_cli.ingest.formats.generic import GenericAdapter
from levers_cli.ingest.formats.helicone import HeliconeAdapter
from levers_cli.ingest.formats.langfuse import LangfuseAdapter
from levers_cli.ingest.formats.litellm import LiteLLMPayloadAdapter, LiteLLMSpendLogsAdapter
from levers_cli.ingest.formats.llm_logs import LlmLogsAdapter
from levers_cli.ingest.formats.mtbench import MTBenchAdapter
from levers_cli.ingest.formats.openai_batch import OpenAIBatchAdapter
from levers_cli.ingest.formats.openai_chat import OpenAIChatAdapter
from levers_cli.ingest.formats.openai_responses import OpenAIResponsesAdapter
from levers_cli.ingest.formats.otel import OTelAdapter
from levers_cli.ingest.formats.request_only import RequestOnlyAdapter
from levers_cli.ingest.jsonpath import FieldPath

ADAPTERS: dict[str, AdapterClass] = {
    OpenAIChatAdapter.name: OpenAIChatAdapter,
    AnthropicAdapter.name: AnthropicAdapter,
    OpenAIResponsesAdapter.name: OpenAIResponsesAdapter,
    OpenAIBatchAdapter.name: OpenAIBatchAdapter,
    LangfuseAdapter.name: LangfuseAdapter,
    LlmLogsAdapter.name: LlmLogsAdapter,
    AnthropicBatchAdapter.name: AnthropicBatchAdapter,
    LiteLLMPayloadAdapter.name: LiteLLMPayloadAdapter,
    LiteLLMSpendLogsAdapter.name: LiteLLMSpendLogsAdapter,
    HeliconeAdapter.name: HeliconeAdapter,
    GeminiAdapter.name: GeminiAdapter,
    BedrockAdapter.name: BedrockAdapter,
    OTelAdapter.name: OTelAdapter,
    # before chat-messages: a multi-turn request ending with the user's turn is a request
    RequestOnlyAdapter.name: RequestOnlyAdapter,
    ChatMessagesAdapter.name: ChatMessagesAdapter,
    ShareGPTAdapter.name: ShareGPTAdapter,
    TranscriptAdapter.name: TranscriptAdapter,
    MTBenchAdapter.name: MTBenchAdapter,
    # more formats: add them above this line (detection order); generic stays last
    GenericAdapter.name: GenericAdapter,
}


def get_adapter(
    name: str, mapping: dict[str, FieldPath] | None = None, **options: object
) -> LogAdapter:
    """A new adapter registered as ``name``, built with the ``--map`` fields and options.

    Raises:
        UnknownFormatError: no adapter has that name.
    """
    try:
        factory = ADAPTERS[name]
    except KeyError:
        choices = ", ".join(ADAPTERS)
        raise UnknownFormatError(
            f"unknown log format {name!r}; choose one of: {choices}, or omit --format"
        ) from None
    return factory(mapping, **options)


__all__ = ["ADAPTERS", "LogAdapter", "get_adapter"]
