"""The HTML report in headless Chromium with every network request blocked: no console error,
no request, the waterfall and the category map drawn, a point's hover text is a real query,
and the XSS payloads from the logs stay text. A screenshot goes to the test's temp folder
(``report-screenshot.png`` under pytest's basetemp, which keeps the last three runs).

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it when missing), driven by the
``playwright`` package with ``executable_path`` (no ``playwright install``). Source: Playwright
for Python docs, ``BrowserType.launch(executable_path=…)``, ``Page.route`` / ``Route.abort``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from levers_cli.config import load_config
from levers_cli.report import gather, render_html
from levers_cli.store import Workspace
from tests.report.test_report import SCRIPT, TOPICS, analyzed, write_log

pytestmark = pytest.mark.integration  # starts a browser: ~25 s on two busy cores

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)


@pytest.fixture(scope="module")
def page_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if CHROMIUM is None:
        pytest.skip(
            "SKIPPED LOUDLY: no Chromium at /usr/bin/chromium — the browser test of the HTML "
            "report did not run; install Debian's `chromium` package (.ci/run does)"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("browser")
    db = analyzed(tmp, write_log(tmp / "log.jsonl.gz"))
    with Workspace(db, create=False) as ws:
        data = gather(ws, load_config(None))
    page_path = tmp / "report.html"
    page_path.write_text(render_html(data), encoding="utf-8")
    requests: list[str] = []
    console: list[str] = []
    with sync_api.sync_playwright() as pw:
        # Chromium's profile, font and certificate caches go to a HOME of its own
        home = tmp / "chromium-home"
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
               "XDG_CACHE_HOME": str(home / ".cache")}  # fmt: skip
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], env=env)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def block(route) -> None:
            url = route.request.url
            if url.startswith(("file:", "data:")):
                route.continue_()
            else:
                requests.append(url)
                route.abort()

        page.route("**/*", block)
        page.on(
            "request",
            lambda r: None if r.url.startswith(("file:", "data:")) else requests.append(r.url),
        )
        page.on(
            "console",
            lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_path.as_uri())
        page.wait_for_selector("#chart-category-map[data-rendered]", timeout=60_000)
        page.wait_for_selector("#chart-waterfall[data-rendered]", timeout=60_000)
        boxes = {
            name: page.locator(f"#chart-{name} svg").first.bounding_box()
            for name in ("waterfall", "category-map")
        }
        bars = page.locator("#chart-waterfall .mark-rect path").count()
        # hover one point of the map: vega-tooltip fills #vg-tooltip-element
        point = page.locator("#chart-category-map .mark-symbol path").first
        point.hover(force=True)
        page.wait_for_selector("#vg-tooltip-element.visible", timeout=10_000)
        tooltip = page.locator("#vg-tooltip-element").inner_text()
        # hover the points until the one whose query carries the <script> payload shows
        xss_text = ""
        points = page.locator("#chart-category-map .mark-symbol path")
        for i in range(min(points.count(), 80)):
            points.nth(i).hover(force=True)
            text = page.locator("#vg-tooltip-element").inner_text()
            if "alert(1)" in text:
                xss_text = text
                break
        injected = page.evaluate("document.querySelectorAll('img[src=x], td script').length")
        page.screenshot(path=str(tmp / "report-screenshot.png"), full_page=True)
        browser.close()
    return {
        "requests": requests,
        "console": console,
        "dialogs": dialogs,
        "boxes": boxes,
        "bars": bars,
        "tooltip": tooltip,
        "xss_text": xss_text,
        "injected": injected,
    }


def test_no_network_and_no_console_errors(page_result: dict) -> None:
    assert page_result["requests"] == []
    assert page_result["console"] == []


def test_charts_rendered_with_size(page_result: dict) -> None:
    for name, box in page_result["boxes"].items():
        assert box is not None, name
        assert box["width"] > 300 and box["height"] > 200, (name, box)
    # cost now + 7 levers + cost after
    assert page_result["bars"] == 9


def test_hover_text_is_a_real_query(page_result: dict) -> None:
    tooltip = page_result["tooltip"]
    queries = [q for qs in TOPICS.values() for q in qs]
    assert "query" in tooltip and "category" in tooltip
    assert any(q in tooltip for q in queries) or "invoice" in tooltip, tooltip


def test_xss_payload_shows_as_text_and_never_runs(page_result: dict) -> None:
    assert page_result["dialogs"] == []  # alert(1) never ran
    assert page_result["injected"] == 0
    assert SCRIPT in page_result["xss_text"]
