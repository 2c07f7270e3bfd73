"""Number formats shared by the HTML and Markdown renderers (plain text; escaping is the
renderer's job)."""

from __future__ import annotations

import math
from typing import Any


def usd(value: Any) -> str:
    """``$1,234.56`` from a dollar up; below it at most three significant figures and at
    least two decimals (``$0.941``, ``$0.50``, ``$0.0053``, ``$0.00000466``), never scientific
    notation; ``$0`` for zero; ``unknown`` for None. Negative amounts start with a minus sign
    (``−$0.0432``)."""
    if value is None:
        return "unknown"
    value = float(value)
    if value < 0:
        return "−" + usd(-value)
    if value == 0:
        return "$0"
    if value >= 1:
        return f"${value:,.2f}"
    digits = 2 - math.floor(math.log10(value))  # three significant figures
    text = f"{value:.{digits}f}".rstrip("0")
    return "$" + text + "0" * max(0, 2 - len(text.split(".")[1]))  # at least two decimals


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
