"""Detection rules of the batch lever (:mod:`levers_cli.levers.batch`): which calls need no
real-time answer. Each rule marks calls from what the log shows:

``tagged``
    metadata says so: a key of ``[batch] tag_keys`` with a truthy value, or a string value
    holding one of ``tag_words`` as a word (``{"job": "nightly"}``,
    ``{"feature": "batch-export"}``).
``source``
    a non-interactive caller: a value under ``source_keys`` (``user``, ``app`` …) holding one of
    ``source_words`` as a word (``svc-ops-reports``, ``airflow``).
``burst``
    a run of at least ``burst_min_calls`` single-turn calls sharing a key — one template, one
    category with one system prompt, or one model with one system prompt — each within
    ``burst_gap_seconds`` of the previous and lasting at most ``burst_max_minutes``, that
    stands out from the other traffic of its template (a template burst) or of its model and
    system prompt (a category or model burst): within ``burst_isolation_minutes`` before and
    after it, that traffic has at most ``burst_isolation_share`` × its size other calls (a
    job's burst sits in quiet time; busy interactive traffic forms runs too, but they last for
    hours or crowd each other).
``scheduled``
    a template whose single-turn calls fall, at a share of at least ``schedule_min_share``,
    in one hour of the day on ``schedule_min_occurrences`` distinct days, or in one weekday's
    hour in that many distinct weeks (hours rounded to the nearest).

A *template* is the system prompt (an 8-character hash of it, when there is one) and the first
``template_words`` words of the query, lower case, digits masked: the calls one job generates
share it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

RULES = ("tagged", "source", "burst", "scheduled")
#: Rules that read an explicit statement (metadata) rather than a traffic pattern.
DECLARED = ("tagged", "source")


def load_calls(ws: Workspace, template_words: int) -> pl.DataFrame:
    """Priced calls with their template key, single-turn flag and metadata text."""
    frame = pl.from_arrow(
        ws.con.sql(
            r"""SELECT call_id, ts, provider, model, coalesce(is_batch, false) AS is_batch,
                  lower(coalesce(service_tier, '')) = 'flex' AS is_flex,
                  metadata::VARCHAR AS metadata, cost_usd::DOUBLE AS cost_usd,
                  coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens,
                  category_id,
                  (conversation_id IS NULL OR count(*) OVER (PARTITION BY conversation_id) = 1)
                    AND coalesce(turn, 1) <= 1 AS single,
                  CASE WHEN trim(coalesce(system_prompt, '')) = '' THEN ''
                       ELSE md5(regexp_replace(lower(system_prompt), '[0-9]+', '#', 'g'))
                  END AS system_key,
                  array_to_string(list_slice(string_split_regex(trim(regexp_replace(
                    lower(coalesce(query, '')), '[0-9]+', '#', 'g')), '\s+'), 1, ?), ' ')
                    AS head
               FROM calls WHERE cost_usd IS NOT NULL""",
            params=[template_words],
        ).to_arrow_table()
    )
    assert isinstance(frame, pl.DataFrame)
    # readable job keys: the query's first words, after a short system-prompt hash if any
    return frame.with_columns(
        pl.when(pl.col("system_key") == "")
        .then(pl.col("head"))
        .otherwise("system " + pl.col("system_key").str.slice(0, 8) + ": " + pl.col("head"))
        .alias("template")
    )


def _walk(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """(key, leaf value) pairs of a JSON value, at any depth."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _walk(v, str(k).lower())]
    if isinstance(value, list):
        return [pair for v in value for pair in _walk(v, key)]
    return [(key, value)]


def _words(words: list[str]) -> re.Pattern[str]:
    """Any of ``words`` as a whole word (letters around it end it), any case."""
    alternatives = "|".join(re.escape(w) for w in words) or "(?!)"
    return re.compile(rf"(?i)(^|[^a-z])({alternatives})([^a-z]|$)")


def metadata_rules(frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """``tagged`` and ``source`` flags per call (see the module docstring)."""
    tag_keys = {k.lower() for k in config.get("batch", "tag_keys")}
    tag = _words(config.get("batch", "tag_words"))
    source_keys = {k.lower() for k in config.get("batch", "source_keys")}
    source = _words(config.get("batch", "source_words"))

    @lru_cache(maxsize=4096)
    def flags(text: str | None) -> tuple[bool, bool]:
        try:
            pairs = _walk(json.loads(text)) if text else []
        except json.JSONDecodeError:
            pairs = []
        tagged = any(
            (k in tag_keys and v not in (None, False, 0, ""))
            or (isinstance(v, str) and tag.search(v))
            for k, v in pairs
        )
        sourced = any(
            k in source_keys and isinstance(v, str) and source.search(v) for k, v in pairs
        )
        return bool(tagged), bool(sourced)

    found = [flags(text) for text in frame["metadata"].to_list()]
    return frame.with_columns(
        pl.Series("tagged", [f[0] for f in found], dtype=pl.Boolean),
        pl.Series("source", [f[1] for f in found], dtype=pl.Boolean),
    )


def _job_label(key: str, run: pl.DataFrame) -> str:
    """A burst's job: its template, else the category or model it shares and its start."""
    if key == "template":
        return str(run["template"][0])
    start = cast(datetime, run["ts"].min())  # polars types a min as any Python value
    what = f"category {run[CATEGORY_ID][0]}" if key == "category_key" else run["model"][0]
    return f"{what} burst at {start:%Y-%m-%d %H:%M} UTC"


def _isolated_runs(
    runs: pl.DataFrame, key: str, around: dict[str, np.ndarray], window_us: int, share: float
) -> dict[str, str]:
    """Call id → job label of the ``burst`` runs with at most ``share`` × their size other
    calls within ``window_us`` microseconds before and after them, counted in ``around``
    (sorted epoch microseconds of the calls by the run's ``context`` value)."""
    hits: dict[str, str] = {}
    for (_, _), run in runs.filter(pl.col("burst")).group_by(key, "run"):
        stamps = around[run["context"][0]]
        span = run["ts"].dt.epoch("us")
        # polars types a min/max as any Python value; an epoch column's is an int
        first, last = cast(int, span.min()), cast(int, span.max())
        lo = np.searchsorted(stamps, first - window_us, side="left")
        hi = np.searchsorted(stamps, last + window_us, side="right")
        if hi - lo - run.height <= share * run.height:
            hits.update(dict.fromkeys(run["call_id"].to_list(), _job_label(key, run)))
    return hits


def burst_rule(frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """``burst`` flag per call: in an isolated run of single-turn calls that share a template,
    a category and system prompt, or a model and system prompt (see the module docstring);
    ``burst_job`` labels the run (its template, else its category or model and start)."""
    gap = pl.duration(seconds=int(config.get("batch", "burst_gap_seconds")))
    least = int(config.get("batch", "burst_min_calls"))
    longest = pl.duration(minutes=float(config.get("batch", "burst_max_minutes")))
    window = int(float(config.get("batch", "burst_isolation_minutes")) * 60e6)
    share = float(config.get("batch", "burst_isolation_share"))
    pool = frame.filter(pl.col("single") & pl.col("ts").is_not_null()).with_columns(
        pl.when(pl.col(CATEGORY_ID) >= 0)
        .then(pl.col("system_key") + "#" + pl.col(CATEGORY_ID).cast(pl.String))
        .alias("category_key"),
        (pl.col("system_key") + "@" + pl.col("model").fill_null("")).alias("app_key"),
    )
    hits: dict[str, str] = {}
    # a template burst must stand out from its template's traffic; a category or model burst
    # (many templates) from all the traffic of its model and system prompt
    for key, context in (
        ("template", "template"),
        ("category_key", "app_key"),
        ("app_key", "app_key"),
    ):
        around = {
            value: np.sort(group["ts"].dt.epoch("us").to_numpy())
            for (value,), group in pool.group_by(context)
        }
        runs = (
            pool.filter(pl.col(key).is_not_null())
            .with_columns(pl.col(context).alias("context"))
            .sort(key, "ts", "call_id")
            .with_columns(
                ((pl.col("ts") - pl.col("ts").shift(1)).over(key).fill_null(gap + gap) > gap)
                .cum_sum()
                .over(key)
                .alias("run")
            )
            .with_columns(
                (
                    (pl.len().over(key, "run") >= least)
                    & ((pl.col("ts").max() - pl.col("ts").min()).over(key, "run") <= longest)
                ).alias("burst")
            )
        )
        hits = _isolated_runs(runs, key, around, window, share) | hits  # first key's label wins
    jobs = pl.DataFrame(
        {"call_id": list(hits), "burst_job": list(hits.values())},
        schema={"call_id": pl.String, "burst_job": pl.String},
    )
    return frame.join(jobs, on="call_id", how="left").with_columns(
        pl.col("burst_job").is_not_null().alias("burst")
    )


def scheduled_rule(frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """``scheduled`` flag per call: its template recurs in one daily or weekly hour slot
    (see the module docstring); only the calls in that slot are flagged."""
    least = int(config.get("batch", "schedule_min_occurrences"))
    share = float(config.get("batch", "schedule_min_share"))
    rounded = pl.col("ts") + pl.duration(minutes=30)
    pool = frame.filter(pl.col("single") & pl.col("ts").is_not_null()).with_columns(
        rounded.dt.hour().alias("hour"),
        rounded.dt.weekday().alias("weekday"),
        rounded.dt.date().alias("day"),
        rounded.dt.truncate("1w").alias("week"),
        pl.len().over("template").alias("n"),
    )
    hits: set[str] = set()
    for slot, unit in ((["hour"], "day"), (["weekday", "hour"], "week")):
        slots = (
            pool.group_by("template", *slot)
            .agg(pl.len().alias("calls"), pl.col(unit).n_unique().alias("times"), pl.first("n"))
            .filter((pl.col("calls") >= share * pl.col("n")) & (pl.col("times") >= least))
        )
        chosen = pool.join(slots.select("template", *slot), on=["template", *slot])
        hits.update(chosen["call_id"].to_list())
    return frame.with_columns(pl.col("call_id").is_in(list(hits)).alias("scheduled"))


def detect(ws: Workspace, config: Config) -> pl.DataFrame:
    """Every priced call with its template, rule flags (:data:`RULES`), ``candidate`` (any
    rule, not already sent through a batch API nor served in the flex tier, which is billed
    at Batch rates already), ``declared`` (a :data:`DECLARED` rule) and ``job`` (its burst's
    label, else its template)."""
    frame = load_calls(ws, int(config.get("batch", "template_words")))
    frame = scheduled_rule(burst_rule(metadata_rules(frame, config), config), config)
    return frame.with_columns(
        (pl.any_horizontal(*RULES) & ~pl.col("is_batch") & ~pl.col("is_flex")).alias("candidate"),
        pl.any_horizontal(*DECLARED).alias("declared"),
        pl.coalesce("burst_job", "template").alias("job"),
    )
