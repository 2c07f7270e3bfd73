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


#: Usage probes that read a linear rate card off genai-prices: nothing, one input token, one
#: cache read, one cache write, one output token (input includes the cached ones).
_PROBES = ((0, 0, 0, 0), (1, 0, 0, 0), (1, 1, 0, 0), (1, 0, 1, 0), (0, 0, 0, 1))
_NOT_YET = object()


class _ListPrices:
    """genai-prices list prices, read once per (provider, model, day) as a rate card.

    ``calc_price`` resolves the model and walks its unit registry for every call (~0.1 ms);
    a price is linear in the four token counts below the model's first tier (genai-prices'
    tiers are cliffs on total input tokens), so the card — the price of nothing plus one
    price per token kind — probed with ``calc_price`` itself gives the same ``Decimal`` for
    every call whose input is at most the first tier's start. Calls above it, and models
    whose card does not reproduce ``calc_price`` on the first calls it prices, are priced
    one by one.
    """

    def __init__(self) -> None:
        self._cards: dict[tuple[Any, ...], Any] = {}

    def cost(
        self, provider: str | None, model: str, usage: tuple[int, int, int, int], day: date | None
    ) -> Decimal | None:
        """As :func:`list_price`."""
        key = (provider, model, day)
        card = self._cards.get(key, _NOT_YET)
        if card is _NOT_YET:
            card = self._cards[key] = _rate_card(provider, model, day)
        if card is None or usage[0] > card[1]:
            return list_price(provider, model, usage, day)
        if card[0] is None:  # genai-prices does not know the model
            return None
        zero, per_input, per_read, per_write, per_output = card[0]
        total_in, read, write, out = usage
        cost = zero + per_input * total_in + per_read * read + per_write * write
        cost += per_output * out
        checks = card[2]
        if checks:  # the first calls priced with a card are checked against calc_price
            card[2] = checks - 1
            exact = list_price(provider, model, usage, day)
            if exact != cost:
                self._cards[key] = None
                return exact
        return cost


def _rate_card(provider: str | None, model: str, day: date | None) -> list[Any] | None:
    """``[prices or None (unknown model), highest input priced by the card, checks left]``,
    or ``None`` when the model's price cannot be read as a card."""
    try:
        values = [list_price(provider, model, probe, day) for probe in _PROBES]
    except (ValueError, ArithmeticError):
        return None
    if any(v is None for v in values):
        return [None, float("inf"), 0] if all(v is None for v in values) else None
    zero, one_in, read, write, one_out = values
    prices = (zero, one_in - zero, read - one_in, write - one_in, one_out - zero)
    ceiling = _first_tier_start(provider, model, day)
    if ceiling is None or ceiling < 1:
        return None
    return [prices, ceiling, 2]


def _first_tier_start(provider: str | None, model: str, day: date | None) -> float | None:
    """The input tokens above which the model's first price tier applies (infinity when
    it has none); ``None`` when genai-prices' price objects are not as expected."""
    try:
        from genai_prices import data_snapshot, types

        snapshot = data_snapshot.get_snapshot()
        when = datetime.combine(day, time(12), tzinfo=UTC) if day else datetime.now(tz=UTC)
        for provider_id in [provider, None] if provider else [None]:
            try:
                found, info = snapshot.find_provider_model(model, None, provider_id, None)
            except LookupError:
                continue
            if found.id == "groq":  # calc_price rewrites some groq usage before pricing
                return None
            starts = [
                tier.start
                for value in vars(info.get_prices(when)).values()
                if isinstance(value, types.TieredPrices)
                for tier in value.tiers
            ]
            return float(min(starts)) if starts else float("inf")
    except Exception:  # any surprise from a newer genai-prices: price every call one by one
        return None
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
    prices = _ListPrices()
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
            cost = prices.cost(provider, model, usage, day)
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
