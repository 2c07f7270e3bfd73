"""What backs a routing decision per category: :func:`routing_evidence`, the one place that
says whether a category's saving rests on evidence or on an assumption.

Rule (../shared/DESIGN.md §5.1, §9; issue 16 point 2): evidence for a category comes only from
cheap-tier answers in the *same* feature and category, and only where they can be compared
with the strong model's answers there (both tiers answered queries of that group). Until that
comparison is measured (quality pairs, a later issue), the saving stays an assumption: a
comparable group is reported as such, with its counts, but its basis is ``assumed``. Human
tier labels (``levers labels``) are evidence of their own (basis ``labels``).
"""

from __future__ import annotations

import polars as pl

from levers_cli.schema import CATEGORY_ID

#: Columns :func:`routing_evidence` adds to its group keys.
EVIDENCE_COLUMNS = (
    "cheap_answers",
    "cheap_ok",
    "cheap_truncated",
    "cheap_errors",
    "strong_answers",
    "comparable",
    "measured_pairs",
    "cheap_as_good_share",
    "basis",
)


def routing_evidence(
    frame: pl.DataFrame,
    keys: list[str],
    label_categories: set[int],
    quality: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per group of ``keys`` (``["feature", "category_id"]`` where calls carry a feature, else
    ``["category_id"]``; categorized calls only): what supports sending its calls to the
    cheap tier.

    Args:
        frame: one row per call with ``keys``, ``cheap`` (served by the provider's
            ``[tiers] cheap`` model), ``eligible`` (routing may move it: costs more per call
            than the cheap tier would), ``status`` and ``finish_reason``.
        keys: the group columns (see :func:`levers_cli.levers.routing.features.group_keys`).
        label_categories: categories whose decision human tier labels make (basis
            ``labels``).
        quality: measured quality pairs per group, when someone has measured them
            (``levers quality``: shadow answers of the cheap tier judged against the logged
            answers): ``keys``, ``pairs`` (judged pairs), ``cheap_as_good`` (pairs where the
            cheap answer was judged acceptable) and ``meets`` (the Wilson lower bound of that
            share meets ``[quality] min_acceptable`` for every target model; taken as met when
            the column is absent). ``None`` when nothing was measured.

    Returns:
        ``keys`` + :data:`EVIDENCE_COLUMNS`: counts of cheap-tier answers in the group (all,
        ok and not truncated, truncated, errors), of answers by models routing may move
        (``strong_answers``), ``comparable`` (both > 0: a comparison can be built there),
        ``measured_pairs`` and ``cheap_as_good_share`` (from ``quality``; 0 and null
        without it) and ``basis``: ``labels``, ``evidence`` (judged pairs whose interval
        meets the bar), else ``assumed``. A cheap answer in another feature or category
        never counts.
    """
    ok = (pl.col("status").fill_null("ok") == "ok") & (
        pl.col("finish_reason").fill_null("") != "length"
    )
    table = (
        frame.filter(pl.col(CATEGORY_ID) >= 0)
        .group_by(keys)
        .agg(
            pl.col("cheap").sum().cast(pl.Int64).alias("cheap_answers"),
            (pl.col("cheap") & ok).sum().cast(pl.Int64).alias("cheap_ok"),
            (pl.col("cheap") & (pl.col("finish_reason") == "length"))
            .sum()
            .cast(pl.Int64)
            .alias("cheap_truncated"),
            (pl.col("cheap") & (pl.col("status") == "error"))
            .sum()
            .cast(pl.Int64)
            .alias("cheap_errors"),
            pl.col("eligible").sum().cast(pl.Int64).alias("strong_answers"),
        )
        .with_columns(
            ((pl.col("cheap_ok") > 0) & (pl.col("strong_answers") > 0)).alias("comparable")
        )
    )
    if quality is None or quality.is_empty():
        table = table.with_columns(
            pl.lit(0, pl.Int64).alias("measured_pairs"),
            pl.lit(None, pl.Float64).alias("cheap_as_good_share"),
            pl.lit(False).alias("meets"),
        )
    else:
        measured = quality.select(
            *keys,
            pl.col("pairs").cast(pl.Int64).alias("measured_pairs"),
            (pl.col("cheap_as_good") / pl.col("pairs")).alias("cheap_as_good_share"),
            (pl.col("meets") if "meets" in quality.columns else pl.lit(True)).alias("meets"),
        )
        table = table.join(measured, on=keys, how="left", nulls_equal=True).with_columns(
            pl.col("measured_pairs").fill_null(0), pl.col("meets").fill_null(False)
        )
    basis = (
        pl.when(pl.col(CATEGORY_ID).is_in(sorted(label_categories)))
        .then(pl.lit("labels"))
        .when((pl.col("measured_pairs") > 0) & pl.col("meets"))
        .then(pl.lit("evidence"))
        .otherwise(pl.lit("assumed"))
    )
    return table.with_columns(basis.alias("basis")).select(*keys, *EVIDENCE_COLUMNS)


__all__ = ["EVIDENCE_COLUMNS", "routing_evidence"]
