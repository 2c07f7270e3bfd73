"""levers' own price rows (``levers_cli/price_rows.toml`` and ``levers.toml
[[price_rows]]``): the rates genai-prices has no row or no rate for, each with its source page
and the day it was read. How they complete genai-prices' prices: :mod:`levers_cli.enrich.rates`.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from levers_cli.errors import ConfigError

#: genai-prices price keys of tokens (USD per million tokens) a row may give.
TOKEN_PRICE_KEYS = (
    "input_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "output_mtok",
    "input_audio_mtok",
    "output_audio_mtok",
)
#: genai-prices price keys of per-use fees (USD per 1,000 uses) a row may give.
FEE_PRICE_KEYS = ("web_searches_kcount", "storage_searches_kcount", "code_executions_kcount")
#: ``calls.server_tool_uses`` keys → the genai-prices usage unit they are billed by.
TOOL_UNITS = {
    "web_search": "web_searches",
    "file_search": "storage_searches",
    "code_execution": "code_executions",
}
#: Tools whose use costs nothing beyond its tokens, with the page that says so.
FREE_TOOLS = {
    "web_fetch": "https://platform.claude.com/docs/en/agents-and-tools/tool-use/web-fetch-tool"
}
#: Call columns a row's ``when`` may test.
CONTEXT_KEYS = ("service_tier", "inference_geo")
#: ``service_tier`` values that mean the provider's standard processing (``batch`` is priced
#: by ``is_batch`` and the batch factor).
STANDARD_TIERS = frozenset(
    {"", "default", "standard", "auto", "standard_only", "on_demand", "batch"}
)
#: ``inference_geo`` values that carry no uplift.
GLOBAL_GEOS = frozenset({"", "global", "not_available"})


@dataclass(frozen=True)
class PriceRow:
    """One row of levers' own prices (see ``levers_cli/price_rows.toml``).

    Attributes:
        kind: ``rates`` (``prices`` under genai-prices' keys) or ``factor`` (a multiplier on
            every token price).
        provider: provider id.
        models: globs on the lower-case model id.
        when: conditions on the call's context (``service_tier``, ``inference_geo``).
        prices: price key → USD per million tokens (``*_mtok``) or per 1,000 uses
            (``*_kcount``).
        factor: the multiplier of a ``factor`` row.
        source: the page the figure was read from; ``read``: the day it was read.
        origin: ``levers_cli/price_rows.toml`` or the levers.toml that added it.
    """

    kind: str
    provider: str
    models: tuple[str, ...]
    source: str
    read: str
    when: tuple[tuple[str, str], ...] = ()
    prices: tuple[tuple[str, float], ...] = ()
    factor: float = 1.0
    origin: str = "levers_cli/price_rows.toml"

    def matches(self, provider: str | None, model: str) -> bool:
        """True for a call of ``provider`` whose model id matches one of the globs."""
        name = model.lower()
        return self.provider == (provider or "") and any(
            fnmatch.fnmatchcase(name, glob) for glob in self.models
        )

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data (for reports: which own rows priced the calls)."""
        return {
            "kind": self.kind,
            "provider": self.provider,
            "models": list(self.models),
            "when": dict(self.when),
            "prices": dict(self.prices),
            "factor": self.factor,
            "source": self.source,
            "read": self.read,
            "origin": self.origin,
        }


def parse_rows(raw: Any, origin: str) -> tuple[PriceRow, ...]:
    """Rows from TOML data (a list of tables).

    Raises:
        ConfigError: a row of the wrong shape, naming ``origin`` and the row's position.
    """
    if not isinstance(raw, list):
        raise ConfigError(f"{origin}: price rows must be an array of tables ([[price_rows]])")
    return tuple(_parse_row(item, f"{origin}: price row {i}") for i, item in enumerate(raw, 1))


def _parse_row(item: Any, where: str) -> PriceRow:
    if not isinstance(item, dict):
        raise ConfigError(f"{where} is not a table")
    row = dict(item)
    kind = row.pop("kind", None)
    if kind not in ("rates", "factor"):
        raise ConfigError(f"{where}: kind must be 'rates' or 'factor', not {kind!r}")
    missing = [k for k in ("provider", "models", "source", "read") if k not in row]
    if missing:
        raise ConfigError(f"{where}: needs {', '.join(missing)}")
    provider, source, read = row.pop("provider"), row.pop("source"), row.pop("read")
    models = row.pop("models")
    models = [models] if isinstance(models, str) else models
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models) or not models:
        raise ConfigError(f"{where}: models must be a glob or a list of globs")
    when = row.pop("when", {})
    if not isinstance(when, dict) or not set(when) <= set(CONTEXT_KEYS):
        raise ConfigError(f"{where}: when may test only {', '.join(CONTEXT_KEYS)}")
    factor = row.pop("factor", 1.0)
    if kind == "factor" and (not isinstance(factor, int | float) or factor <= 0):
        raise ConfigError(f"{where}: a factor row needs factor = a positive number")
    allowed = (*TOKEN_PRICE_KEYS, *FEE_PRICE_KEYS)
    unknown = set(row) - set(allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; prices use {', '.join(allowed)}"
        )
    for key, value in row.items():
        if not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{where}: {key} = {value!r} is not a price")
    if kind == "rates" and not row:
        raise ConfigError(f"{where}: a rates row needs at least one price")
    return PriceRow(
        kind=kind,
        provider=str(provider),
        models=tuple(m.lower() for m in models),
        source=str(source),
        read=str(read),
        when=tuple(sorted((str(k), str(v)) for k, v in when.items())),
        prices=tuple((k, float(v)) for k, v in row.items()),
        factor=float(factor),
        origin=where.split(": price row")[0],
    )


@cache
def shipped_rows() -> tuple[PriceRow, ...]:
    """The rows of ``levers_cli/price_rows.toml``, in file order."""
    text = resources.files("levers_cli").joinpath("price_rows.toml").read_text("utf-8")
    return parse_rows(tomllib.loads(text)["row"], "levers_cli/price_rows.toml")
