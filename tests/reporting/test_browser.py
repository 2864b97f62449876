"""The report in a real browser: Debian's headless Chromium through Playwright.

CI installs Chromium with ``scripts/install-chromium.sh``; set ``ALIGNLAB_CHROMIUM`` to use
another binary, and ``ALIGNLAB_REPORT_SCREENSHOT`` to keep the full-page screenshot.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

from alignlab.core import Claim
from alignlab.reporting import write_report

from .conftest import EVIL, judged, make_run

pytestmark = pytest.mark.browser


def _decode_png(data: bytes) -> np.ndarray:
    try:
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except ImportError:
        import matplotlib.image as mpimg

        return mpimg.imread(io.BytesIO(data), format="png")


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def test_report_renders_without_errors_and_is_not_blank(browser, sample, tmp_path):
    runs, claims = sample
    evil = make_run(tmp_path, EVIL, 0, metrics={EVIL: 1.0}, config={EVIL: EVIL}, error=EVIL, status="failed")
    claims = [*claims, judged(EVIL, Claim(EVIL, ">=", 1, source=EVIL), [evil])]
    path = write_report(tmp_path / "report.html", [*runs, evil], claims)
    page, problems = _open(browser, path)

    assert page.locator("table#claims tbody tr").count() == len(claims)
    assert page.locator("section.experiment").count() == 3
    assert page.locator("svg.chart").count() >= 4
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    shot = page.screenshot(full_page=True)
    if target := os.environ.get("ALIGNLAB_REPORT_SCREENSHOT"):
        Path(target).write_bytes(shot)
    pixels = _decode_png(shot)
    assert pixels.shape[0] > 900 and pixels.shape[1] == 1280
    assert pixels.reshape(-1, pixels.shape[-1]).std(axis=0).max() > 0
    assert problems == []
    page.close()


def test_claims_table_sorts_and_filters(browser, sample, tmp_path):
    path = write_report(tmp_path / "report.html", *sample)
    page, problems = _open(browser, path)
    rows = page.locator("table#claims tbody tr")
    n_col = page.locator("table#claims thead th:nth-child(6)")
    assert n_col.inner_text().strip().startswith("n")
    n_col.click()
    assert page.locator("table#claims tbody tr td:nth-child(6)").all_inner_texts() == ["2", "3", "3"]
    page.click(".filters button[data-verdict='reproduced']")
    assert rows.evaluate_all("rs => rs.filter(r => !r.hidden).length") == 2
    assert page.inner_text(".filters .shown") == "2 of 3 claims shown"
    page.click(".filters button[data-verdict='reproduced']")
    assert rows.evaluate_all("rs => rs.filter(r => !r.hidden).length") == 3
    assert problems == []
    page.close()


def test_empty_report_renders(browser, tmp_path):
    path = write_report(tmp_path / "empty.html", [], [])
    page, problems = _open(browser, path)
    assert "No runs in this report" in page.inner_text("main")
    assert problems == []
    page.close()
