"""Reports people read: one JSON-able report dict (:func:`gather`) rendered as a
self-contained HTML page (:func:`render_html`), Markdown for pull requests and CI job
summaries (:func:`render_markdown`) or JSON; week-over-week comparison (:mod:`.compare`) and
the CI limits gate (:mod:`.check`).

Heavy pieces (the simulation, the 2-D projection, the Vega-Lite bundle) are imported inside
the functions that need them.
"""

from __future__ import annotations

from levers_cli.report.data import REPORT_SCHEMA_VERSION, gather
from levers_cli.report.html import render_html
from levers_cli.report.markdown import render_markdown

__all__ = ["REPORT_SCHEMA_VERSION", "gather", "render_html", "render_markdown"]
