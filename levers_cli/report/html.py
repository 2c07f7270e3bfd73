"""The self-contained HTML report: Jinja2 (autoescape on) with the charts' library inlined.

The page makes no network request: styles are inline, Vega, Vega-Lite and vega-embed come
inlined from ``vl_convert.javascript_bundle()`` (vl-convert-python), the chart specs and their
data are embedded with Jinja2's ``tojson`` filter (which escapes ``<``, ``>``, ``&`` and ``'``
so that log text cannot close the script element), and every text from the logs reaches the
page through autoescaping. Sources: Jinja2 docs "HTML Escaping" and the ``tojson`` filter
(``htmlsafe_json_dumps``); vl-convert-python README (``javascript_bundle``).
"""

from __future__ import annotations

import functools
from typing import Any

from levers_cli.report import fmt
from levers_cli.report.charts import all_charts
from levers_cli.text.content import plural


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one inline script (about 0.9 MB), with ``</script``
    written as ``<\\/script`` so the bundle cannot end its own element early."""
    import vl_convert

    # its stub marks ``snippet`` required; its docs and the library default it
    bundle: str = vl_convert.javascript_bundle()  # type: ignore[call-arg]
    return bundle.replace("</script", "<\\/script")


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("levers_cli.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=fmt.usd, pct=fmt.pct, num=fmt.num, basis=fmt.basis_label, plural=plural)
    env.globals["claim_value"] = fmt.claim_value
    return env


def render_html(report: dict[str, Any]) -> str:
    """The report (from :func:`levers_cli.report.gather`) as one HTML page (UTF-8 text) that
    opens offline."""
    from markupsafe import Markup

    template = _environment().get_template("report.html.j2")
    return template.render(
        r=report,
        charts=all_charts(report),
        bundle=Markup(vega_bundle()),  # trusted library code, not log text
    )
