"""A call's price sheet: genai-prices' price for its model, day and context (service tier,
inference geo), completed by levers' own rows where genai-prices has no rate.

genai-prices (its ``ModelInfo.get_prices`` and ``ModelPrice.calc_price``) knows list prices,
tiers (cliffs on the whole request's input tokens), 1-hour cache writes, audio tokens, per-use
tool fees and some service tiers (``price_variants``, each from the day its maintainers
verified it). What it lacks — a service tier before that day or for a model it has no variant
for, audio rates of some models, regional uplifts, some tool fees — comes from the rows of
``levers_cli/price_rows.toml`` and ``levers.toml [[price_rows]]`` (tried first), each with its
source page and the day it was read. genai-prices wins wherever it has the rate: a row without
conditions only fills price keys genai-prices lacks, and a row for a service tier or geo
applies only when genai-prices has no price variant for it on the call's day.

``levers.toml [prices."MODEL"]`` replaces genai-prices' prices of a model (negotiated,
self-hosted and fine-tuned models); the rows still apply on top of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from levers_cli.price_rows import (
    FREE_TOOLS,
    GLOBAL_GEOS,
    STANDARD_TIERS,
    TOOL_UNITS,
    PriceRow,
    shipped_rows,
)


@dataclass(frozen=True)
class CallUsage:
    """What one call used, in ``calls``' terms: input includes cached input and audio in,
    cache writes include 1-hour ones, output includes reasoning and audio out; ``tool_uses``
    are ``(tool, uses)`` pairs of ``calls.server_tool_uses``."""

    input_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cache_write_1h_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    tool_uses: tuple[tuple[str, int], ...] = ()

    def genai_usage(self) -> dict[str, int]:
        """genai-prices ``Usage`` keyword arguments (tools it cannot price left out)."""
        usage = {
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
        }
        for key in ("cache_write_1h_tokens", "input_audio_tokens", "output_audio_tokens"):
            if getattr(self, key):
                usage[key] = getattr(self, key)
        for tool, uses in self.tool_uses:
            unit = TOOL_UNITS.get(tool)
            if unit and uses:
                usage[unit] = usage.get(unit, 0) + uses
        return usage


@dataclass
class PriceSheet:
    """A model's prices for one day and context, and where each part came from.

    Attributes:
        prices: genai-prices ``ModelPrice`` (``None``: no price known for the model).
        base: where the model's prices came from (``genai-prices``, ``levers.toml [prices]``,
            ``price rows``, or ``""`` when none).
        applied: the own rows for the call's context (a service tier, a geo) that apply.
        filled: price key → the own row that gave it (genai-prices lacked it).
        unpriced: context values neither genai-prices nor a row has a rate for (priced at
            the standard rates), e.g. ``service_tier=scale``.
    """

    prices: Any
    base: str
    applied: list[PriceRow] = field(default_factory=list)
    filled: dict[str, PriceRow] = field(default_factory=dict)
    unpriced: list[str] = field(default_factory=list)

    def rows_used(self, usage: CallUsage) -> list[PriceRow]:
        """The own rows that priced some part of ``usage``."""
        used = list(self.applied)
        units = usage.genai_usage()
        for key, row in self.filled.items():
            unit = key.removesuffix("_mtok").removesuffix("_kcount")
            unit = unit + "_tokens" if key.endswith("_mtok") else unit
            if units.get(unit) and row not in used:
                used.append(row)
        return used

    def cost(self, usage: CallUsage) -> Decimal | None:
        """USD of ``usage`` (``None`` when no price is known).

        Tool uses with no fee in the sheet cost nothing here; :meth:`unpriced_tools` names
        them.
        """
        if self.prices is None:
            return None
        from genai_prices import Usage

        values = usage.genai_usage()
        try:
            result = self.prices.calc_price(Usage(**values))
        except ValueError:  # audio parts logged inside cached input: price them as text
            for key in ("input_audio_tokens", "output_audio_tokens"):
                values.pop(key, None)
            result = self.prices.calc_price(Usage(**values))
        return Decimal(result["total_price"])

    def unpriced_tools(self, usage: CallUsage) -> list[str]:
        """Tools of ``usage`` used but without a fee here (free tools excluded)."""
        missing = []
        for tool, uses in usage.tool_uses:
            unit = TOOL_UNITS.get(tool)
            key = f"{unit}_kcount" if unit else None
            if uses and tool not in FREE_TOOLS and (key is None or self._price(key) is None):
                missing.append(tool)
        return missing

    def _price(self, key: str) -> Any:
        return None if self.prices is None else getattr(self.prices, key, None)


def _scaled(value: Any, factor: Decimal) -> Any:
    from genai_prices.types import Tier, TieredPrices

    if isinstance(value, TieredPrices):
        tiers = [Tier(start=t.start, price=t.price * factor) for t in value.tiers]
        return TieredPrices(base=value.base * factor, tiers=tiers)
    return value * factor


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))


class PriceBook:
    """Price sheets per (provider, model, day, service tier, inference geo), each resolved
    once.

    Args:
        rows: own rows, in the order they are tried (levers.toml's first).
        overrides: ``[prices."MODEL"]`` tables by model id: ``input``, ``output`` and
            optionally ``cached_input``, ``cache_write``, ``cache_write_1h``, ``input_audio``,
            ``output_audio`` (USD per million tokens).
    """

    def __init__(
        self,
        rows: tuple[PriceRow, ...] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.rows = shipped_rows() if rows is None else rows
        self.overrides = dict(overrides or {})
        self._sheets: dict[tuple[Any, ...], PriceSheet] = {}

    def sheet(
        self,
        provider: str | None,
        model: str,
        day: date | None,
        service_tier: str | None = None,
        inference_geo: str | None = None,
    ) -> PriceSheet:
        """The price sheet of a call (see the module docstring)."""
        context = context_of(service_tier, inference_geo)
        key = (provider, model, day, context)
        found = self._sheets.get(key)
        if found is None:
            found = self._sheets[key] = self._resolve(provider, model, day, dict(context))
        return found

    def cost(
        self,
        provider: str | None,
        model: str,
        day: date | None,
        usage: CallUsage,
        service_tier: str | None = None,
        inference_geo: str | None = None,
    ) -> Decimal | None:
        """USD of one call, ``None`` when its model has no price."""
        return self.sheet(provider, model, day, service_tier, inference_geo).cost(usage)

    def _resolve(
        self, provider: str | None, model: str, day: date | None, context: dict[str, str]
    ) -> PriceSheet:
        from genai_prices.types import ModelPrice

        when = datetime.combine(day, time(12), tzinfo=UTC) if day else datetime.now(tz=UTC)
        prices: dict[str, Any] = {}
        base = ""
        rest = dict(context)  # context values genai-prices has no variant for
        override = self.overrides.get(model)
        if override is not None:
            prices, base = _override_prices(override), "levers.toml [prices]"
        else:
            found = _genai_model(provider, model)
            if found is not None:
                info, owned = found
                priced = _variant_keys(info, when, context) if owned else set()
                genai_context = {k: v for k, v in context.items() if k in priced}
                standard = info.get_prices(when, genai_context or None)
                prices = {k: v for k, v in vars(standard).items() if v is not None}
                base = "genai-prices"
                rest = {k: v for k, v in context.items() if k not in priced}
        sheet = PriceSheet(None, base)
        mine = [r for r in self.rows if r.matches(provider, model)]
        for row in mine:  # rows without conditions fill the keys the base lacks
            if row.when or row.kind != "rates":
                continue
            added = {k: v for k, v in row.prices if prices.get(k) is None}
            prices.update({k: _decimal(v) for k, v in added.items()})
            sheet.filled.update(dict.fromkeys(added, row))
        factor = Decimal(1)
        for name, value in rest.items():
            match = next(
                (r for r in mine if r.when and dict(r.when).get(name) == value
                 and all(context.get(k) == v for k, v in r.when)),
                None,
            )  # fmt: skip
            if match is None:
                sheet.unpriced.append(f"{name}={value}")
            elif match.kind == "factor":
                factor *= _decimal(match.factor)
                sheet.applied.append(match)
            else:
                prices.update({k: _decimal(v) for k, v in match.prices})
                sheet.applied.append(match)
        if factor != 1:
            prices = {
                k: _scaled(v, factor) if k.endswith("_mtok") else v for k, v in prices.items()
            }
        if prices.get("input_mtok") is not None or prices.get("output_mtok") is not None:
            sheet.prices = ModelPrice(**prices)
            sheet.base = sheet.base or "price rows"
        return sheet


def context_of(service_tier: str | None, inference_geo: str | None) -> tuple[tuple[str, str], ...]:
    """The pricing context of a call: its non-standard service tier and non-global inference
    geo, as sorted ``(key, value)`` pairs."""
    context = []
    tier = (service_tier or "").strip().lower()
    if tier not in STANDARD_TIERS:
        context.append(("service_tier", tier))
    geo = (inference_geo or "").strip().lower()
    if geo not in GLOBAL_GEOS:
        context.append(("inference_geo", geo))
    return tuple(sorted(context))


def _override_prices(table: Any) -> dict[str, Decimal]:
    """A ``[prices."MODEL"]`` override as genai-prices price keys (absent ones left out:
    cached input and cache writes are then priced as input, as genai-prices does)."""
    names = {
        "input": "input_mtok",
        "cached_input": "cache_read_mtok",
        "cache_write": "cache_write_mtok",
        "cache_write_1h": "cache_write_1h_mtok",
        "output": "output_mtok",
        "input_audio": "input_audio_mtok",
        "output_audio": "output_audio_mtok",
    }
    values = table if isinstance(table, Mapping) else {k: getattr(table, k, None) for k in names}
    return {names[k]: _decimal(v) for k, v in values.items() if k in names and v is not None}


def _genai_model(provider: str | None, model: str) -> tuple[Any, bool] | None:
    """genai-prices' ``(ModelInfo, owned by the provider found)`` for the model: under
    ``provider`` first, then any provider; ``None`` when it does not know it."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    for provider_id in [provider, None] if provider else [None]:
        try:
            found, info = snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
        return info, any(info is m for m in found.models)
    return None


def _variant_keys(info: Any, when: datetime, context: Mapping[str, str]) -> set[str]:
    """Context keys for which genai-prices has a price variant in force at ``when``."""
    keys: set[str] = set()
    for variant in info.price_variants or ():
        if variant.constraint is not None and not variant.constraint.active(when):
            continue
        if not variant.when or not all(context.get(k) == v for k, v in variant.when.items()):
            continue
        if any(v is not None for v in vars(variant.prices).values()):
            keys |= set(variant.when)
    return keys
