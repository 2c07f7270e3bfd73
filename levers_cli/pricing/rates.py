"""Per-token rate cards of a model, read once per model from genai-prices.

Each rate is ``calc_price`` on 1,000 tokens of that kind divided by 1,000, so the base tier:
tier cliffs above ~128k–200k input tokens are not applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

_PROBE_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class RateCard:
    """USD per token of a model: input, cached input (read), cache write, output."""

    input: float
    cache_read: float
    cache_write: float
    output: float


@cache
def rate_card(provider: str | None, model: str | None) -> RateCard | None:
    """Per-token prices of ``model`` from genai-prices (``None`` when it does not know it).

    Each rate is ``calc_price`` of 1,000 tokens of that kind divided by 1,000: the base tier.
    """
    if not model:
        return None
    from genai_prices import Usage, calc_price

    def price(**tokens: int) -> float | None:
        for provider_id in [provider, None] if provider else [None]:
            try:
                result = calc_price(Usage(**tokens), model, provider_id=provider_id)
            except LookupError:
                continue
            return float(Decimal(result.total_price)) / _PROBE_TOKENS
        return None

    n = _PROBE_TOKENS
    base = price(input_tokens=n)
    if base is None:
        return None
    read = price(input_tokens=n, cache_read_tokens=n)
    write = price(input_tokens=n, cache_write_tokens=n)
    out = price(output_tokens=n)
    return RateCard(
        base, base if read is None else read, base if write is None else write, out or 0.0
    )
