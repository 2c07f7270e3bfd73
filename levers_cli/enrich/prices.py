"""Price every stored call: ``cost_usd`` from genai-prices' ``calc_price``, with
``[prices."MODEL"]`` overrides from ``levers.toml`` and batch discounts from ``[batch]``.

genai-prices' ``Usage.input_tokens`` includes cached tokens, as ``calls.input_tokens`` does,
so token columns pass through unchanged; its tiered prices are cliffs (past a threshold the
whole request is priced at the higher rate) and it applies the price in force on the day of
the call. A model it does not know keeps ``cost_usd = NULL`` (unknown, never $0) and is
listed by :func:`unknown_models`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from levers_cli.config import Config, PriceOverride
from levers_cli.rules import batch_factor
from levers_cli.store import Workspace

_MTOK = Decimal(1_000_000)


@dataclass
class PricingResult:
    """What a pricing pass did: calls priced, models it could not price, price data used."""

    priced_calls: int = 0
    unknown: dict[str, int] = field(default_factory=dict)
    source: str = ""


def price_source() -> str:
    """The price data's name and version, stated in every report."""
    import genai_prices

    return f"genai-prices {genai_prices.__version__} (bundled price snapshot)"


def override_cost(price: PriceOverride, usage: tuple[int, int, int, int]) -> Decimal:
    """Cost in USD of ``usage = (input incl. cached, cache read, cache write, output)`` at
    an override's USD-per-million-token prices; cached input and cache writes fall back to
    the input price when the override does not give them."""
    total_in, read, write, out = usage
    cached = price.input if price.cached_input is None else price.cached_input
    writing = price.input if price.cache_write is None else price.cache_write
    uncached = total_in - read - write
    amount = (
        Decimal(str(price.input)) * uncached
        + Decimal(str(cached)) * read
        + Decimal(str(writing)) * write
        + Decimal(str(price.output)) * out
    )
    return amount / _MTOK


def list_price(
    provider: str | None, model: str, usage: tuple[int, int, int, int], day: date | None
) -> Decimal | None:
    """List-price cost in USD from genai-prices, or ``None`` when it does not know the model.

    Args:
        provider: provider id as logged (``openai``); tried first, then any provider.
        model: model id as logged.
        usage: (input tokens incl. cached, cache read, cache write, output tokens).
        day: the call's date, so the price in force that day applies (today when unknown).
    """
    from genai_prices import Usage, calc_price

    total_in, read, write, out = usage
    tokens = Usage(
        input_tokens=total_in, cache_read_tokens=read, cache_write_tokens=write, output_tokens=out
    )
    when = datetime.combine(day, time(12), tzinfo=UTC) if day else None
    for provider_id in [provider, None] if provider else [None]:
        try:
            result = calc_price(
                tokens, model, provider_id=provider_id, genai_request_timestamp=when
            )
        except LookupError:
            continue
        return Decimal(result.total_price)
    return None


def price_calls(ws: Workspace, config: Config) -> PricingResult:
    """Compute ``cost_usd`` for every call (re-pricing all, so config changes apply).

    Each distinct (provider, model, token counts, day, is_batch) is priced once. Batch calls
    get their provider's batch factor: ``[batch] price_factor`` when set, else the row of
    ``provider_rules.toml`` (50 % at OpenAI, Anthropic and Google).
    """
    overrides = config.price_overrides
    factors: dict[str, Any] = config.get("batch", "price_factor")
    rows = ws.con.execute(
        """SELECT DISTINCT provider, model, input_tokens, cache_read_tokens, cache_write_tokens,
                  output_tokens, CAST(ts AS DATE) AS day, is_batch
           FROM calls"""
    ).fetchall()
    priced: list[tuple[Any, ...]] = []
    unknown: set[str] = set()
    for provider, model, total_in, read, write, out, day, is_batch in rows:
        usage = (int(total_in), int(read), int(write), int(out))
        cost: Decimal | None
        if not any(usage):
            cost = Decimal(0)
        elif model in overrides:
            cost = override_cost(overrides[model], usage)
        elif model:
            cost = list_price(provider, model, usage, day)
        else:
            cost = None
        if cost is None:
            unknown.add(model or "(no model)")
        elif is_batch:
            cost *= Decimal(str(batch_factor(provider, model, factors)[0]))
        priced.append((provider, model, *usage, day, is_batch, cost))
    names = (
        "provider",
        "model",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "output_tokens",
        "day",
        "is_batch",
        "cost",
    )
    ws.load_temp("call_prices", {n: [row[i] for row in priced] for i, n in enumerate(names)})
    ws.con.execute(
        """UPDATE calls SET cost_usd = p.cost::DECIMAL(18, 9) FROM call_prices p
           WHERE calls.provider IS NOT DISTINCT FROM p.provider
             AND calls.model IS NOT DISTINCT FROM p.model
             AND calls.input_tokens = p.input_tokens
             AND calls.cache_read_tokens = p.cache_read_tokens
             AND calls.cache_write_tokens = p.cache_write_tokens
             AND calls.output_tokens = p.output_tokens
             AND CAST(calls.ts AS DATE) IS NOT DISTINCT FROM p.day
             AND calls.is_batch = p.is_batch"""
    )
    ws.con.execute("DROP TABLE call_prices")
    result = PricingResult(source=price_source())
    result.priced_calls = ws.count("calls", "cost_usd IS NOT NULL")
    result.unknown = unknown_models(ws)
    return result


def unknown_models(ws: Workspace) -> dict[str, int]:
    """Models whose calls have no price, with their call counts (most calls first)."""
    rows = ws.con.execute(
        """SELECT coalesce(model, '(no model)'), count(*) FROM calls WHERE cost_usd IS NULL
           GROUP BY 1 ORDER BY 2 DESC, 1"""
    ).fetchall()
    return {model: int(n) for model, n in rows}
