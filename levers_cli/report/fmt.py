"""Number and word formats shared by the terminal, HTML and Markdown renderers (plain text;
escaping is the renderer's job)."""

from __future__ import annotations

import math
from typing import Any

#: The smallest amount shown in digits (a hundredth of a cent); smaller ones read ``<$0.0001``.
SMALLEST_USD = 0.0001
#: Amounts this close to zero are float noise of sums and differences: ``$0``.
NOISE_USD = 1e-9


def usd(value: Any) -> str:
    """``$1,234.56`` from a dollar up; below it at most three significant figures and at
    least two decimals (``$0.941``, ``$0.50``, ``$0.0053``, ``$0.000123``), never scientific
    notation; ``$0`` for zero (and float noise under a billionth of a dollar); ``<$0.0001``
    for any other amount under a hundredth of a cent, without a sign (a negligible saving
    and a negligible cost read alike); ``unknown`` for None. Negative amounts start with a
    minus sign (``−$0.0432``)."""
    if value is None:
        return "unknown"
    value = float(value)
    if abs(value) < NOISE_USD:
        return "$0"
    if abs(value) < SMALLEST_USD:
        return f"<${SMALLEST_USD:g}"
    if value < 0:
        return "−" + usd(-value)
    if value >= 1:
        return f"${value:,.2f}"
    digits = 2 - math.floor(math.log10(value))  # three significant figures
    text = f"{value:.{digits}f}".rstrip("0")
    return "$" + text + "0" * max(0, 2 - len(text.split(".")[1]))  # at least two decimals


def basis_label(lever: dict[str, Any], level: str = "expected") -> str:
    """``evidence``, ``assumption`` or ``mixed N %`` (N = the share of the lever's saving at
    ``level`` measured on evidence), from a lever of ``levers simulate --json``."""
    split = lever.get("saving_by_basis", {}).get(level, {})
    total = abs(split.get("evidence", 0.0)) + abs(split.get("assumption", 0.0))
    if lever["basis"] != "mixed" or total <= 1e-12:
        return str(lever["basis"])
    return f"mixed {abs(split['evidence']) / total * 100:.0f} %"


def pct(value: Any) -> str:
    """A share (0–1) as ``12.3 %``."""
    return "" if value is None else f"{float(value) * 100:.1f} %"


def num(value: Any) -> str:
    """An integer with thousands separators, a float with four significant figures; a dict
    of levels as ``conservative / expected / aggressive``."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return " / ".join(num(v) for v in value.values())
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:,.4g}"
    if isinstance(value, list):
        return ", ".join(num(v) for v in value)
    return str(value)


def claim_value(metric: str, value: Any, changed: Any = None) -> str:
    """A measured figure set beside a claim: ``3.75×`` for the ``cost_ratio`` metric, else a
    share as ``12.3 %``; ``no call changed`` when ``changed`` (the share of calls the lever
    changed) is 0, ``free`` for a ratio with nothing left to pay, ``n/a`` for another
    ``None``."""
    if not changed and metric != "cost_share":
        return "no call changed"
    if value is None:
        return "free" if metric == "cost_ratio" else "n/a"
    return f"{float(value):.2f}×" if metric == "cost_ratio" else pct(value)
