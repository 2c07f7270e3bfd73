"""Calls, prices, candidate categories and figures for lever 6 (LoRA); see
:mod:`levers_cli.levers.lora` for the method."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.errors import ConfigError
from levers_cli.levers.base import LEVELS, Figure, Level
from levers_cli.levers.lora.acceptance import acceptance
from levers_cli.pricing.rates import RateCard, rate_card
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

MTOK = 1_000_000


def lora_rates(config: Config) -> tuple[str, RateCard, RateCard]:
    """How the LoRA share is priced: ``(base_model, its rate card, extra)``. The plan prices a
    taken-over call as ``[lora] base_model`` (known to genai-prices under every provider) plus
    ``extra`` per token (``plan_extra_usd``): the LoRA model's rates (``[lora] price`` when set,
    else genai-prices' for ``[lora] model`` under ``[lora] provider``) minus the base's.
    All rates in USD per token.

    Raises:
        ConfigError: a model has no price in genai-prices, or ``[lora] price`` lacks input or
            output.
    """
    cfg = lambda key: config.get("lora", key)  # noqa: E731
    base = str(cfg("base_model"))
    card = rate_card(None, base)
    price: dict[str, float] = dict(cfg("price"))
    if price:
        if "input" not in price or "output" not in price:
            raise ConfigError("[lora] price needs input and output (USD per million tokens)")
        read = price.get("cached_input", price["input"])
        write = price.get("cache_write", price["input"])
        lora: RateCard | None = RateCard(price["input"], read, write, price["output"])
        # the four leading fields (vars_of), which mypy cannot count in a generator
        lora = RateCard(*(v / MTOK for v in vars_of(lora)))  # type: ignore[arg-type]
    else:
        lora = rate_card(str(cfg("provider")), str(cfg("model")))
    for name, found in (("base_model", card), ("model", lora)):
        if found is None:
            raise ConfigError(
                f"[lora] {name} {cfg(name)!r} has no price in genai-prices; set [lora] price ="
                " { input = …, output = … } (USD per million tokens) and a known base_model"
            )
    assert card is not None and lora is not None
    # the four leading fields (vars_of), which mypy cannot count in a generator
    extra = RateCard(*(a - b for a, b in zip(vars_of(lora), vars_of(card), strict=True)))  # type: ignore[arg-type]
    return base, card, extra


TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
PLAN_TOKENS = ("plan_input", "plan_cache_read", "plan_cache_write", "plan_output")


def cost_of(rates: RateCard | str, columns: tuple[str, str, str, str] = TOKENS) -> pl.Expr:
    """USD of each row's tokens (``columns``: input incl. cached, cache read, cache write,
    output) at ``rates``: a rate card, or the prefix of per-row rate columns (``{prefix}in``,
    ``read``, ``write``, ``out``)."""
    if isinstance(rates, RateCard):
        r_in, r_read, r_write, r_out = (pl.lit(v) for v in vars_of(rates))
    else:
        r_in, r_read, r_write, r_out = (
            pl.col(f"{rates}{k}") for k in ("in", "read", "write", "out")
        )
    total, read, write, out = (pl.col(c) for c in columns)
    return (total - read - write) * r_in + read * r_read + write * r_write + out * r_out


def vars_of(card: RateCard) -> tuple[float, float, float, float]:
    """A rate card as ``(input, cache_read, cache_write, output)`` USD per token."""
    return card.input, card.cache_read, card.cache_write, card.output


def draw(call_id: str) -> float:
    """A deterministic number in [0, 1) from ``call_id`` (BLAKE2b, first 8 bytes)."""
    return int.from_bytes(hashlib.blake2b(call_id.encode(), digest_size=8).digest()) / 2**64


def load_calls(ws: Workspace, config: Config) -> pl.DataFrame:
    """Categorized, priced calls with ``expensive`` (pricier at list prices than the LoRA
    model), ``lora_cost_usd`` (the call's tokens at the LoRA model's list price), acceptance
    columns and ``example_tokens`` (input + output − reasoning)."""
    frame = pl.from_arrow(
        ws.con.sql(
            """SELECT c.call_id, c.category_id, k.label, c.provider, c.model,
                      coalesce(c.input_tokens, 0) AS input_tokens,
                      coalesce(c.cache_read_tokens, 0) AS cache_read_tokens,
                      coalesce(c.cache_write_tokens, 0) AS cache_write_tokens,
                      coalesce(c.output_tokens, 0) AS output_tokens,
                      coalesce(c.reasoning_tokens, 0) AS reasoning_tokens,
                      c.cost_usd::DOUBLE AS cost_usd
               FROM calls c LEFT JOIN categories k USING (category_id)
               WHERE c.category_id >= 0 AND c.cost_usd IS NOT NULL ORDER BY c.call_id"""
        ).to_arrow_table()
    )
    assert isinstance(frame, pl.DataFrame)
    _, card, extra = lora_rates(config)
    pairs = frame.select("provider", "model").unique().rows()
    cards = {pair: rate_card(*pair) for pair in pairs}
    own = pl.DataFrame(
        {
            "provider": [p for p, _ in pairs],
            "model": [m for _, m in pairs],
            **{
                f"own_{k}": [vars_of(c)[i] if c else None for c in cards.values()]
                for i, k in enumerate(("in", "read", "write", "out"))
            },
        },
        schema_overrides={"provider": frame.schema["provider"], "model": frame.schema["model"]},
    )
    lora_cost = cost_of(card) + cost_of(extra)
    return (
        frame.join(own, on=["provider", "model"], how="left", nulls_equal=True)
        .with_columns(
            (cost_of("own_") > lora_cost).fill_null(False).alias("expensive"),
            lora_cost.alias("lora_cost_usd"),
            (pl.col("input_tokens") + pl.col("output_tokens") - pl.col("reasoning_tokens"))
            .clip(lower_bound=0)
            .alias("example_tokens"),
        )
        .drop("own_in", "own_read", "own_write", "own_out")
        .join(acceptance(ws, config), on="call_id", how="left")
    )


def category_table(frame: pl.DataFrame, config: Config) -> list[dict[str, Any]]:
    """One row per category with expensive calls: calls, expensive calls, training examples
    (accepted expensive answers), feedback-accepted and retried ones, spend on expensive calls
    (USD), training tokens and cost (USD), the levels it is a candidate at; most examples first."""
    cfg = lambda key: config.get("lora", key)  # noqa: E731
    cap, epochs = int(cfg("max_training_examples")), float(cfg("epochs"))
    price = float(cfg("training_usd_per_mtok")) / MTOK
    rows: list[dict[str, Any]] = []
    for (cid,), group in frame.group_by(CATEGORY_ID, maintain_order=True):
        costly = group.filter(pl.col("expensive"))
        if costly.is_empty():
            continue
        examples = costly.filter(pl.col("accepted"))
        count = examples.height
        mean = examples["example_tokens"].mean() or 0.0
        tokens = float(mean) * min(count, cap)  # type: ignore[arg-type]  # a count column's mean
        rows.append(
            {
                CATEGORY_ID: int(cid),
                "label": group["label"][0],
                "calls": group.height,
                "expensive_calls": costly.height,
                "examples": count,
                "feedback_examples": int(examples["feedback"].fill_null(False).sum()),
                "retried": int(costly["retried"].sum()),
                "models": sorted(set(costly["model"].drop_nulls().to_list())),
                "expensive_spend_usd": round(float(costly["cost_usd"].sum()), 9),
                "training_tokens": round(tokens),
                "training_usd": round(tokens * epochs * price, 9),
                "levels": [lv for lv in LEVELS if count >= int(cfg("min_examples")[lv])],
            }
        )
    rows.sort(key=lambda r: (-r["examples"], r[CATEGORY_ID]))
    return rows


def monthly_net(
    frame: pl.DataFrame,
    per_call: pl.DataFrame,
    table: list[dict[str, Any]],
    config: Config,
    months_per_log: float,
) -> dict[str, dict[int, float]]:
    """Per level and candidate category, what the LoRA share saves a month on its own (list
    prices; the calls ``apply`` would take over without earlier levers) minus the amortized
    training, USD/month. ``months_per_log``: the log's span in months."""
    out: dict[str, dict[int, float]] = {}
    months = float(config.get("lora", "amortize_months"))
    training = {r[CATEGORY_ID]: r["training_usd"] for r in table}
    gain = frame.select("call_id", (pl.col("cost_usd") - pl.col("lora_cost_usd")).alias("gain"))
    for lv in LEVELS:
        share = float(config.get("lora", "share")[lv])
        taken = per_call.filter(pl.col(f"lora_{lv}") & (pl.col("draw") < share))
        sums = taken.join(gain, on="call_id").group_by(CATEGORY_ID).agg(pl.col("gain").sum())
        gross = dict(sums.iter_rows())
        out[lv] = {
            int(c): round(gross.get(c, 0.0) / months_per_log - training[c] / months, 9)
            for c in per_call.filter(pl.col(f"lora_{lv}"))[CATEGORY_ID].unique().to_list()
        }
    return out


def figures(
    config: Config,
    chosen: dict[Level, set[int]],
    examples: dict[Level, int],
    feedback: int,
    share: dict[Level, float],
    card: RateCard,
    extra: RateCard,
    training: dict[Level, dict[str, float]],
    monthly: dict[Level, float],
) -> list[Figure]:
    price = {
        "input": round((card.input + extra.input) * MTOK, 6),
        "output": round((card.output + extra.output) * MTOK, 6),
    }
    return [
        Figure(
            "candidate_categories",
            {lv: len(chosen[lv]) for lv in LEVELS},
            "categories",
            "evidence",
            _CANDIDATES,
        ),
        Figure("training_examples", examples, "calls", "evidence", _CANDIDATES),
        Figure(
            "feedback_examples",
            feedback,
            "calls",
            "evidence",
            "examples accepted by metadata feedback ([lora] feedback_keys); the others: no "
            "rephrased retry",
        ),
        Figure(
            "min_examples",
            {lv: int(config.get("lora", "min_examples")[lv]) for lv in LEVELS},
            "calls",
            "assumption",
            "[lora] min_examples (OpenAI fine-tuning guide: gains from 50–100 examples)",
        ),
        Figure(
            "takeover_share",
            share,
            "share",
            "assumption",
            "[lora] share (assumption after LoRA Land, arXiv:2405.00732)",
        ),
        Figure(
            "lora_price_usd_per_mtok",
            price,
            "USD",
            "assumption",
            "[lora] model / price (genai-prices; OpenAI fine-tuning prices)",
        ),
        Figure(
            "training_usd",
            {lv: round(sum(v.values()), 6) for lv, v in training.items()},
            "USD",
            "assumption",
            "example tokens in the logs × [lora] epochs × training_usd_per_mtok (OpenAI "
            "pricing page)",
        ),
        Figure(
            "amortized_usd_month",
            monthly,
            "USD",
            "assumption",
            "training_usd / [lora] amortize_months (assumption)",
        ),
    ]


_CANDIDATES = (
    "categories whose calls on models pricier than the LoRA model hold ≥ [lora] min_examples "
    "accepted answers"
)


__all__ = [
    "MTOK",
    "PLAN_TOKENS",
    "TOKENS",
    "category_table",
    "cost_of",
    "draw",
    "figures",
    "load_calls",
    "lora_rates",
    "monthly_net",
    "vars_of",
]
