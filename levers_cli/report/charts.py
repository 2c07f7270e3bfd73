"""Vega-Lite specifications of the report's charts, built from the report dict.

Why Vega-Lite (rendered by vega-embed, bundled inline by ``vl-convert-python``): one
declarative spec gives both the interactive HTML chart (tooltips, zoom) and, through
``vl_convert.vegalite_to_svg``, the static SVG linked from the Markdown report; the inline
bundle of Vega, Vega-Lite and vega-embed is about 0.9 MB against plotly.js's 4.8 MB, needs no
network, and vega-tooltip escapes tooltip text as HTML by default. Sources: Vega-Lite docs
(vega.github.io/vega-lite/docs: ``bar`` with ``y2`` for floating bars, ``boxplot``,
``point``, ``params`` ``bind: "scales"`` for zoom/pan), vl-convert-python's README
(``javascript_bundle``, ``vegalite_to_svg``), and altair's ``utils/html.py`` inline template
(how the bundle exposes ``vegaEmbed``).
"""

from __future__ import annotations

from typing import Any

from levers_cli.schema import CATEGORY_ID

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier, never fetched
_MAP_COLOURED = 10  # categories with their own colour on the map; the rest share grey


def _base(
    title: str, data: list[dict[str, Any]], width: Any = "container", height: int = 300
) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": width,
        "height": height,
        "data": {"values": data},
        "config": {"view": {"stroke": None}, "axis": {"labelLimit": 260}},
    }


def waterfall(report: dict[str, Any], level: str = "expected") -> dict[str, Any]:
    """Floating bars: monthly cost now, each lever's marginal saving (USD/month) given those
    before it at ``level``, and the cost after."""
    before = report["headline"]["monthly_cost_before"]
    rows = [{"step": "cost now", "order": 0, "start": 0.0, "end": before, "kind": "cost"}]
    current = before
    for i, step in enumerate(report["waterfall"].get(level, []), 1):
        after = step["after_usd_month"]
        rows.append(
            {
                "step": f"{step['id']}. {step['name']}",
                "order": i,
                "start": after,
                "end": current,
                "kind": "saving" if after <= current else "extra cost",
                "saving": current - after,
            }
        )
        current = after
    rows.append({"step": "cost after", "order": len(rows), "start": 0.0, "end": current})
    rows[-1]["kind"] = "cost"
    spec = _base(f"Monthly cost, USD: the seven levers at the {level} level", rows)
    spec["mark"] = {"type": "bar", "tooltip": True}
    spec["encoding"] = {
        "x": {"field": "step", "type": "nominal", "sort": {"field": "order"}, "title": None,
              "axis": {"labelAngle": -30}},
        "y": {"field": "start", "type": "quantitative", "title": "USD per month"},
        "y2": {"field": "end"},
        "color": {"field": "kind", "type": "nominal", "title": None,
                  "scale": {"domain": ["cost", "saving", "extra cost"],
                            "range": ["#4c78a8", "#54a24b", "#e45756"]}},
        "tooltip": [
            {"field": "step", "title": "step"},
            {"field": "saving", "type": "quantitative", "format": "$,.2f", "title": "saving"},
            {"field": "end", "type": "quantitative", "format": "$,.2f", "title": "from"},
            {"field": "start", "type": "quantitative", "format": "$,.2f", "title": "to"},
        ],
    }  # fmt: skip
    return spec


def spend_bars(rows: list[dict[str, Any]], field: str, title: str) -> dict[str, Any]:
    """Horizontal bars of ``spend_usd`` by ``field`` (category label or model)."""
    data = [
        {"name": str(r.get(field) or "(none)"), "spend_usd": r.get("spend_usd") or 0.0,
         "calls": r.get("calls", 0)}
        for r in rows
    ]  # fmt: skip
    spec = _base(title, data, height=max(60, 22 * len(data)))
    spec["mark"] = {"type": "bar", "tooltip": True, "color": "#4c78a8"}
    spec["encoding"] = {
        "y": {"field": "name", "type": "nominal", "sort": "-x", "title": None},
        "x": {"field": "spend_usd", "type": "quantitative", "title": "spend over the log, USD"},
        "tooltip": [
            {"field": "name", "title": field},
            {"field": "spend_usd", "type": "quantitative", "format": "$,.4f", "title": "spend"},
            {"field": "calls", "type": "quantitative", "format": ",", "title": "calls"},
        ],
    }
    return spec


def category_map(report: dict[str, Any]) -> dict[str, Any]:
    """Scatter of the projected queries, coloured by category (the ten largest by spend; the
    rest grey), with the query text on hover; drag to pan, scroll to zoom."""
    top = [c["label"] for c in report["categories"] if c[CATEGORY_ID] != -1][:_MAP_COLOURED]
    data = [
        {**p, "colour": p["label"] if p["label"] in top else "other / uncategorized"}
        for p in report["map"]["points"]
    ]
    spec = _base(
        f"Category map: {len(data):,} queries ({report['map']['projection'].upper()} of the "
        "embeddings); hover a point to read it",
        data,
        height=460,
    )
    spec["params"] = [{"name": "zoom", "select": "interval", "bind": "scales"}]
    spec["mark"] = {"type": "point", "filled": True, "size": 30, "opacity": 0.7}
    spec["encoding"] = {
        "x": {"field": "x", "type": "quantitative", "axis": None},
        "y": {"field": "y", "type": "quantitative", "axis": None},
        "color": {
            "field": "colour",
            "type": "nominal",
            "title": "category",
            "scale": {"domain": [*top, "other / uncategorized"],
                      "range": [*_tableau(len(top)), "#bab0ac"]},
        },
        "tooltip": [
            {"field": "text", "title": "query"},
            {"field": "label", "title": "category"},
            {"field": "calls", "type": "quantitative", "title": "calls"},
        ],
    }  # fmt: skip
    return spec


def _tableau(n: int) -> list[str]:
    colours = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b",
               "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#17becf"]  # fmt: skip
    return colours[:n]


def output_tokens(report: dict[str, Any]) -> dict[str, Any]:
    """Box plot of output tokens per category with the recommended cap (expected level) as a
    red tick."""
    values = [
        {"label": c["label"], "output_tokens": v}
        for c in report["output_tokens"]
        for v in c["values"]
    ]
    caps = [{"label": c["label"], "cap": c["cap"]} for c in report["output_tokens"] if c["cap"]]
    height = max(80, 26 * len(report["output_tokens"]))
    spec = _base(
        "Output tokens per category; red tick: the recommended cap (p95)", [], height=height
    )
    y = {"field": "label", "type": "nominal", "title": None}
    spec["layer"] = [
        {
            "data": {"values": values},
            "mark": {"type": "boxplot", "extent": "min-max", "size": 14},
            "encoding": {
                "y": y,
                "x": {"field": "output_tokens", "type": "quantitative", "title": "output tokens"},
            },
        },
        {
            "data": {"values": caps},
            "mark": {"type": "tick", "color": "#d62728", "thickness": 3, "size": 22,
                     "tooltip": True},
            "encoding": {"y": y, "x": {"field": "cap", "type": "quantitative"},
                         "tooltip": [{"field": "label", "title": "category"},
                                     {"field": "cap", "title": "cap (tokens)"}]},
        },
    ]  # fmt: skip
    del spec["data"]
    return spec


def all_charts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chart id → Vega-Lite spec, in the order the HTML page shows them."""
    cats = [c for c in report["categories"]][:15]
    return {
        "waterfall": waterfall(report),
        "spend-category": spend_bars(cats, "label", "Spend by category (top 15)"),
        "spend-model": spend_bars(report["spend_by_model"], "model", "Spend by model"),
        "category-map": category_map(report),
        "output-tokens": output_tokens(report),
    }


def write_chart_files(report: dict[str, Any], folder: str) -> dict[str, str]:
    """Write the waterfall, spend and output-token charts as SVG files into ``folder``
    (created) with ``vl_convert.vegalite_to_svg``; the map stays in the HTML report (5,000
    points with hover text make no useful static image).

    Returns:
        chart title → file path.
    """
    import os

    import vl_convert

    os.makedirs(folder, exist_ok=True)
    written = {}
    for chart_id, spec in all_charts(report).items():
        if chart_id == "category-map":
            continue
        static = {**spec, "width": 720}
        path = os.path.join(folder, f"{chart_id}.svg")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(vl_convert.vegalite_to_svg(static))
        written[spec["title"]] = path
    return written
