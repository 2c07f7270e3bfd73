"""Per-token rate cards of a model, read once per (provider, model, served tier, geo) from
genai-prices completed by levers' own price rows (:class:`levers_cli.enrich.rates.PriceBook`).

Each rate is the price of 1,000 tokens of that kind divided by 1,000, so the base tier: tier
cliffs above ~128k–200k input tokens are not applied in the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from levers_cli.enrich.rates import CallUsage, PriceBook
from levers_cli.price_rows import TOOL_UNITS

_PROBE_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class RateCard:
    """USD per token of a model: input, cached input (read), cache write, output; the parts
    billed at rates of their own (1-hour cache writes, audio in and out: ``None`` when the
    model has no such rate, then the part is priced as its whole); ``fees``: USD per use of
    each server-side tool the model charges for (``(tool, usd)`` pairs)."""

    input: float
    cache_read: float
    cache_write: float
    output: float
    cache_write_1h: float | None = None
    input_audio: float | None = None
    output_audio: float | None = None
    fees: tuple[tuple[str, float], ...] = ()


@cache
def rate_card(
    provider: str | None,
    model: str | None,
    service_tier: str | None = None,
    inference_geo: str | None = None,
) -> RateCard | None:
    """Per-token prices of ``model`` today (``None`` when no price is known for it), for a
    call served in ``service_tier`` from ``inference_geo``: genai-prices completed by
    levers' own price rows (:class:`levers_cli.enrich.rates.PriceBook`).

    Each rate is the price of 1,000 tokens of that kind divided by 1,000: the base tier.
    """
    if not model:
        return None
    sheet = _book().sheet(provider, model, None, service_tier, inference_geo)
    if sheet.prices is None:
        return None
    n = _PROBE_TOKENS

    def per_token(**tokens: int) -> float:
        # token counts only (never tool_uses, the one field that is no int)
        usage = CallUsage(**{"input_tokens": 0, **tokens})  # type: ignore[arg-type]
        return float(sheet.cost(usage) or 0) / n

    base = per_token(input_tokens=n)
    out = per_token(output_tokens=n)
    write = per_token(input_tokens=n, cache_write_tokens=n)

    def own(key: str, **tokens: int) -> float | None:
        return per_token(**tokens) if getattr(sheet.prices, key, None) is not None else None

    fees = tuple(
        (tool, float(getattr(sheet.prices, f"{unit}_kcount")) / 1000)
        for tool, unit in TOOL_UNITS.items()
        if getattr(sheet.prices, f"{unit}_kcount", None) is not None
    )
    return RateCard(
        base,
        per_token(input_tokens=n, cache_read_tokens=n),
        write,
        out,
        own("cache_write_1h_mtok", input_tokens=n, cache_write_tokens=n, cache_write_1h_tokens=n),
        own("input_audio_mtok", input_tokens=n, input_audio_tokens=n),
        own("output_audio_mtok", output_tokens=n, output_audio_tokens=n),
        fees,
    )


@cache
def _book() -> PriceBook:
    """The shipped price rows over genai-prices (the simulation ignores levers.toml's, as
    its rate cards always have)."""
    return PriceBook()
