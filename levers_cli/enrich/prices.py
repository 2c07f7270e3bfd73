"""Price every stored call: ``cost_usd`` from genai-prices' ``calc_price``, with
``[prices."MODEL"]`` overrides from ``levers.toml`` and batch discounts from ``[batch]``.

genai-prices' ``Usage.input_tokens`` includes cached tokens, as ``calls.input_tokens`` does,
so token columns pass through unchanged; its tiered prices are cliffs (past a threshold the
whole request is priced at the higher rate) and it applies the price in force on the day of
the call. A model it does not know keeps ``cost_usd = NULL`` (unknown, never $0) and is
listed by :func:`unknown_models`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, cast

from levers_cli.config import Config, PriceOverride
from levers_cli.enrich.rates import CallUsage, PriceBook, context_of
from levers_cli.price_rows import shipped_rows
from levers_cli.rules import batch_factor
from levers_cli.store import Workspace

_MTOK = Decimal(1_000_000)


@dataclass
class PricingResult:
    """What a pricing pass did: calls priced, models it could not price, price data used.

    Attributes:
        rows_used: levers' own price rows that priced some calls (keyed by row identity;
            each the row's fields and ``calls``).
        unpriced_context: a service tier or geo no table has a rate for → calls (priced at
            the standard rates).
        unpriced_tools: a server-side tool used without a known fee → calls.
        gateway_cache_hits: calls answered by a gateway's own cache ($0).
    """

    priced_calls: int = 0
    unknown: dict[str, int] = field(default_factory=dict)
    source: str = ""
    rows_used: dict[int, dict[str, Any]] = field(default_factory=dict)
    unpriced_context: dict[str, int] = field(default_factory=dict)
    unpriced_tools: dict[str, int] = field(default_factory=dict)
    gateway_cache_hits: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary's ``prices`` section."""
        return {
            "source": self.source,
            "priced_calls": self.priced_calls,
            "own_rows_used": sorted(
                self.rows_used.values(), key=lambda r: (-r["calls"], r["source"])
            ),
            "unpriced_context": dict(self.unpriced_context),
            "unpriced_tools": dict(self.unpriced_tools),
            "gateway_cache_hits": self.gateway_cache_hits,
        }


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
    zero, one_in, read, write, one_out = cast("list[Decimal]", values)  # none is None (above)
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


#: The columns a call's price depends on, as ``price_calls`` reads them from table ``{t}``
#: (NULLs of workspaces made before a column existed read as its default).
_PRICE_KEY_SQL = (
    ("provider", "{t}provider"),
    ("model", "{t}model"),
    ("input_tokens", "{t}input_tokens"),
    ("cache_read_tokens", "{t}cache_read_tokens"),
    ("cache_write_tokens", "{t}cache_write_tokens"),
    ("output_tokens", "{t}output_tokens"),
    ("day", "CAST({t}ts AS DATE)"),
    ("is_batch", "{t}is_batch"),
    ("cache_write_1h_tokens", "coalesce({t}cache_write_1h_tokens, 0)"),
    ("input_audio_tokens", "coalesce({t}input_audio_tokens, 0)"),
    ("output_audio_tokens", "coalesce({t}output_audio_tokens, 0)"),
    ("service_tier", "{t}service_tier"),
    ("inference_geo", "{t}inference_geo"),
    ("server_tool_uses", "{t}server_tool_uses::VARCHAR"),
    ("gateway_cache_hit", "coalesce({t}gateway_cache_hit, false)"),
)


def price_calls(ws: Workspace, config: Config) -> PricingResult:
    """Compute ``cost_usd`` for every call (re-pricing all, so config changes apply).

    Each distinct (provider, model, token counts and parts, day, batch flag, service tier,
    inference geo, server-tool uses, gateway hit) is priced once. A plain call (no part
    billed at a rate of its own, standard tier, no geo) is priced from genai-prices' rate
    card or the ``[prices."MODEL"]`` override; any other through
    :class:`~levers_cli.enrich.rates.PriceBook` (genai-prices completed by levers' own
    price rows). A gateway cache hit (answered by the gateway's own cache) costs $0. Batch
    calls get their provider's batch factor: ``[batch] price_factor`` when set, else the row
    of ``provider_rules.toml`` (50 % at OpenAI, Anthropic and Google); a flex call is already
    at Batch rates through its service tier.
    """
    overrides = config.price_overrides
    factors: dict[str, Any] = config.get("batch", "price_factor")
    book = PriceBook((*config.price_rows, *shipped_rows()), overrides)
    columns = ", ".join(f"{sql.format(t='')} AS {name}" for name, sql in _PRICE_KEY_SQL)
    names = [name for name, _ in _PRICE_KEY_SQL]
    rows = ws.con.execute(f"SELECT {columns}, count(*) AS calls FROM calls GROUP BY ALL").fetchall()
    prices = _ListPrices()
    plain_ok: dict[tuple[Any, Any], bool] = {}
    priced: list[tuple[Any, ...]] = []
    result = PricingResult(source=price_source())
    for row in rows:
        key, calls = dict(zip(names, row[:-1], strict=True)), int(row[-1])
        provider, model, day = key["provider"], key["model"], key["day"]
        usage = call_usage(key)
        cost: Decimal | None
        if key["gateway_cache_hit"]:
            cost = Decimal(0)
            result.gateway_cache_hits += calls
        elif not any(usage.genai_usage().values()):
            cost = Decimal(0)
        elif not model:
            cost = None
        else:
            plain = _is_plain(usage, key) and plain_ok.setdefault(
                (provider, model), not _base_rows(book, provider, model)
            )
            if plain and model in overrides:
                base_usage = (usage.input_tokens, usage.cache_read_tokens,
                              usage.cache_write_tokens, usage.output_tokens)  # fmt: skip
                cost = override_cost(overrides[model], base_usage)
            else:
                cost = None
                if plain:
                    base_usage = (usage.input_tokens, usage.cache_read_tokens,
                                  usage.cache_write_tokens, usage.output_tokens)  # fmt: skip
                    cost = prices.cost(provider, model, base_usage, day)
                if cost is None:
                    sheet = book.sheet(provider, model, day, key["service_tier"],
                                       key["inference_geo"])  # fmt: skip
                    cost = sheet.cost(usage)
                    _note_sheet(result, sheet, usage, calls)
        if cost is not None and key["is_batch"]:
            cost *= Decimal(str(batch_factor(provider, model, factors)[0]))
        priced.append((*row[:-1], cost))
    ws.load_temp("call_prices", {n: [r[i] for r in priced] for i, n in enumerate([*names, "cost"])})
    match = " AND ".join(
        f"{sql.format(t='calls.')} IS NOT DISTINCT FROM p.{name}" for name, sql in _PRICE_KEY_SQL
    )
    ws.con.execute(
        f"UPDATE calls SET cost_usd = p.cost::DECIMAL(18, 9) FROM call_prices p WHERE {match}"
    )
    ws.con.execute("DROP TABLE call_prices")
    result.priced_calls = ws.count("calls", "cost_usd IS NOT NULL")
    result.unknown = unknown_models(ws)
    return result


def call_usage(key: dict[str, Any]) -> CallUsage:
    """The :class:`~levers_cli.enrich.rates.CallUsage` of a row of ``price_calls``' key
    columns (``server_tool_uses`` as JSON text)."""
    tools: tuple[tuple[str, int], ...] = ()
    raw = key.get("server_tool_uses")
    if raw:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
        tools = tuple(sorted((str(k), int(v)) for k, v in parsed.items() if v))
    return CallUsage(
        input_tokens=int(key["input_tokens"]),
        cache_read_tokens=int(key["cache_read_tokens"]),
        cache_write_tokens=int(key["cache_write_tokens"]),
        output_tokens=int(key["output_tokens"]),
        cache_write_1h_tokens=int(key.get("cache_write_1h_tokens") or 0),
        input_audio_tokens=int(key.get("input_audio_tokens") or 0),
        output_audio_tokens=int(key.get("output_audio_tokens") or 0),
        tool_uses=tools,
    )


def _is_plain(usage: CallUsage, key: dict[str, Any]) -> bool:
    """No token part billed at a rate of its own, no tool fee, standard tier, no geo."""
    return (
        not (usage.cache_write_1h_tokens or usage.input_audio_tokens)
        and not (usage.output_audio_tokens or usage.tool_uses)
        and not context_of(key.get("service_tier"), key.get("inference_geo"))
    )


def _base_rows(book: PriceBook, provider: str | None, model: str) -> bool:
    """Whether an own row without conditions gives one of the four plain rates of the
    model (then even plain calls are priced through the price book)."""
    plain_keys = {"input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok"}
    return any(
        not r.when and r.kind == "rates" and plain_keys & {k for k, _ in r.prices}
        for r in book.rows
        if r.matches(provider, model)
    )


def _note_sheet(result: PricingResult, sheet: Any, usage: CallUsage, calls: int) -> None:
    """Count the own rows, unpriced contexts and unpriced tools a price sheet used."""
    if sheet.prices is None:
        return
    for row in sheet.rows_used(usage):
        entry = result.rows_used.setdefault(id(row), {**row.as_dict(), "calls": 0})
        entry["calls"] += calls
    for value in sheet.unpriced:
        result.unpriced_context[value] = result.unpriced_context.get(value, 0) + calls
    for tool in sheet.unpriced_tools(usage):
        result.unpriced_tools[tool] = result.unpriced_tools.get(tool, 0) + calls


def unknown_models(ws: Workspace) -> dict[str, int]:
    """Models whose calls have no price, with their call counts (most calls first)."""
    rows = ws.con.execute(
        """SELECT coalesce(model, '(no model)'), count(*) FROM calls WHERE cost_usd IS NULL
           GROUP BY 1 ORDER BY 2 DESC, 1"""
    ).fetchall()
    return {model: int(n) for model, n in rows}
