"""The HTML report: structure, escaping, self-containment, edge cases and the atomic write."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alignlab
from alignlab.core import Claim
from alignlab.reporting import _experiment as experiment_module
from alignlab.reporting import render_report, write_report
from alignlab.reporting.plots import MAX_POINTS, Series, downsample, line_chart, mean_curve, tick_labels

from .conftest import EVIL, curve, judged, make_run, png_bytes

GEN = "2024-05-01 12:00 UTC"
VOID = {"meta", "br", "wbr", "img", "input", "hr", "link", "col", "source"}


class Doc(HTMLParser):
    """Start tags with their attributes, and a check that every element is closed in order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.rows: list[dict[str, str | None]] = []
        self.cells: list[list[str]] = []
        self._in_claims = False
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table" and a.get("id") == "claims":
            self._in_claims = True
        if self._in_claims and tag == "tr" and "tbody" in self.stack:
            self.rows.append(a)
            self.cells.append([])
        if self._in_claims and tag == "td":
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "table":
            self._in_claims = False
        if tag == "td" and self._cell is not None:
            self.cells[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def with_class(self, cls: str) -> list[tuple[str, dict[str, str | None]]]:
        return [(t, a) for t, a in self.tags if cls in (a.get("class") or "").split()]


def render(runs, claims, **kw) -> str:
    return render_report(runs, claims, generated=GEN, **kw)


def test_page_is_well_formed_and_titled(sample):
    runs, claims = sample
    page = render(runs, claims, title="My <title>")
    doc = Doc(page)
    assert doc.errors == [] and doc.stack == []
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>My &lt;title&gt;</title>" in page
    assert f"alignlab {alignlab.__version__}" in page
    assert GEN in page


def test_header_counts_runs_experiments_and_verdicts(sample):
    runs, claims = sample
    page = render(runs, claims)
    assert "6 runs · 2 experiments · 1 batch" in page
    assert re.search(r'class="badge verdict-reproduced">1 reproduced<', page)
    assert re.search(r'class="badge verdict-not-reproduced">1 not reproduced<', page)
    assert re.search(r'class="badge verdict-inconclusive">1 inconclusive<', page)
    assert re.search(r'class="badge status-failed">1 failed<', page)


def test_claims_table_has_one_row_per_claim(sample):
    runs, claims = sample
    doc = Doc(render(runs, claims))
    assert len(doc.find("table", id="claims")) == 1
    assert [r["data-verdict"] for r in doc.rows] == ["reproduced", "not-reproduced", "inconclusive"]
    badges = [a["class"] for t, a in doc.with_class("badge") if t == "span"]
    for cls in ("verdict-reproduced", "verdict-not-reproduced", "verdict-inconclusive"):
        assert f"badge {cls}" in badges


def test_claim_row_shows_formula_measurement_expectation_source_and_reason(sample):
    runs, claims = sample
    doc = Doc(render(runs, claims))
    experiment, kind, formula, verdict, measured, n, expected, control, source, reason = doc.cells[0]
    v = claims[0].verdict
    assert experiment == "shaping.potential"
    assert kind == "replication"
    assert control == "none declared"
    assert formula == "agreement >= 0.99"
    assert verdict == "reproduced"
    assert measured == f"{v.mean:.4g} [{v.lo:.4g}, {v.hi:.4g}]"
    assert n == "3"
    assert expected == "≥ 0.99"
    assert source == "Ng et al. 1999, Thm 1"
    assert reason == v.reason
    assert doc.cells[1][6] == "= 0.5 ± 0.1"


def test_claims_link_to_their_experiment_section(sample):
    runs, claims = sample
    doc = Doc(render(runs, claims))
    sections = {a["id"] for a in doc.find("section") if a.get("id", "").startswith("exp-")}
    assert sections == {"exp-shaping-potential", "exp-rewards-overopt"}
    links = {a["href"] for a in doc.find("a") if (a.get("href") or "").startswith("#")}
    assert {f"#{s}" for s in sections} <= links


def test_metrics_table_has_a_row_per_run_and_a_mean_row(sample):
    runs, claims = sample
    page = render(runs, claims)
    section = page.split('id="exp-shaping-potential"')[1]
    table = section.split('<table class="metrics">')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 3  # header + one per seed
    assert 'class="summary-row"' in table
    assert "0.999 ± 0.001" in table  # agreement over seeds 1.0, 0.999, 0.998
    assert 'class="num claimed"' in table


def test_png_figures_are_embedded_and_other_artifacts_listed(sample):
    runs, claims = sample
    doc = Doc(render(runs, claims))
    uris = [a["src"] for a in doc.find("img")]
    assert len(uris) == 3
    expected = (runs[0].run_dir / "artifacts" / "fig.png").read_bytes()
    assert uris[0] == "data:image/png;base64," + base64.b64encode(expected).decode()
    page = render(runs, claims)
    assert "q_table.safetensors" in page and "2.0 KiB" in page


def test_learning_curves_are_inline_svg(sample):
    runs, claims = sample
    page = render(runs, claims)
    section = page.split('id="exp-shaping-potential"')[1].split("</section>")[0]
    assert section.count('<svg class="chart"') == 2  # return and loss
    assert section.count('<polyline class="seed"') == 6 and section.count('<polyline class="mean"') == 2


def test_failed_run_shows_its_error(sample):
    runs, claims = sample
    page = render(runs, claims)
    assert '<div class="failure">' in page
    assert "ValueError: boom\nline 2" in page
    assert "No manifest.json: the run did not finish" in page


def test_provenance_shows_manifest_fields_and_file_hashes(sample):
    runs, claims = sample
    page = render(runs, claims)
    assert page.count('<details class="provenance">') == len(runs)
    for text in (
        "ab" * 32,
        "deadbeef+dirty",
        "3.11.9",
        "2.3.0",
        "Linux-x86_64",
        "c0ffee",
        "12" * 32,
        "1.25 s",
    ):
        assert text in page


def test_user_strings_are_escaped_everywhere(tmp_path):
    run = make_run(
        tmp_path, EVIL, 0,
        metrics={EVIL: 1.0}, config={EVIL: EVIL}, error=EVIL, status="failed",
        series=[{"step": i, EVIL: float(i)} for i in range(5)],
        figures={"fig.png": png_bytes()}, files={"a&b<c>.json": b"{}"},
    )  # fmt: skip
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    manifest["code"]["git_commit"] = EVIL
    manifest["env"][EVIL] = EVIL
    manifest["files"] = {EVIL: EVIL}
    (run.run_dir / "manifest.json").write_text(json.dumps(manifest))
    (run.run_dir / "traceback.txt").write_text(EVIL)
    claim = Claim(EVIL, ">=", 0.5, source=EVIL, note=EVIL)
    page = render([run], [judged(EVIL, claim, [run])], title=EVIL)
    assert EVIL not in page
    assert "<script>alert(1)" not in page
    assert page.count("<script") == 1
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;"
    assert page.count(escaped) >= 10
    assert "a&amp;b&lt;c&gt;.json" in page
    assert Doc(page).errors == []


def test_no_external_resources(sample):
    runs, claims = sample
    page = render(runs, claims)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    for banned in ("<link", "@import", "url(http", "url(//", "<iframe", "<object", "<embed"):
        assert banned not in page.lower()
    assert re.findall(r"<script[^>]*>", page) == ["<script>"]  # one inline script, no src


def test_content_security_policy_allows_exactly_the_inline_style_and_script(sample):
    page = render(*sample)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    assert f"style-src {digest(style)}" in csp
    assert f"script-src {digest(script)}" in csp
    assert "default-src 'none'" in csp and "img-src data:" in csp
    assert "style=" not in page  # inline style attributes would be blocked by the policy


def test_no_runs_and_no_claims():
    page = render([], [])
    assert "No runs in this report" in page
    assert "No claims were judged" in page
    assert Doc(page).errors == []


def test_claims_without_runs(sample):
    _, claims = sample
    page = render([], claims)
    assert len(Doc(page).rows) == 3
    assert "No runs of this experiment are in this report" in page


def test_nan_and_inf_metrics_render(tmp_path):
    runs = [
        make_run(tmp_path, "x.y", 0, metrics={"m": math.nan, "k": math.inf}),
        make_run(tmp_path, "x.y", 1, metrics={"m": 1.0, "k": -math.inf}),
        make_run(tmp_path, "x.y", 2, metrics={"m": None, "k": 2.0}),  # NaN as stored in the index
    ]
    claim = judged("x.y", Claim("m", ">=", 0.5, source="s"), runs)
    page = render(runs, [claim])
    table = page.split('<table class="metrics">')[1].split("</table>")[0]
    assert table.count(">NaN<") == 2 and ">inf<" in table and ">−inf<" in table
    assert "1 (n=1)" in table  # the mean row only counts finite values
    assert claim.verdict.label == "inconclusive"
    assert "metric m is NaN or infinite in 2 of 3 runs (numerical error)" in page


def test_missing_timeseries_and_manifest_and_corrupt_files(tmp_path):
    runs = [
        make_run(tmp_path, "a.b", 0, metrics={"m": 1.0}, manifest=False),
        make_run(tmp_path, "a.b", 1, metrics={"m": 1.0}, manifest="{not json"),
        make_run(tmp_path, "a.b", 2, metrics={"m": 1.0}, series=[{"step": 0, "m": 1.0}]),
    ]
    with (runs[2].run_dir / "timeseries.jsonl").open("a") as fh:
        fh.write('{"step": 1, "m": "text", "flag": true}\n[1, 2]\n{"step": 2, "m": 3')  # odd and torn rows
    page = render(runs, [])
    assert "manifest.json could not be read" in page
    assert "No manifest.json" in page
    assert page.count('<svg class="chart"') == 1


def test_run_folder_that_is_gone(tmp_path):
    run = make_run(tmp_path, "g.h", 0, metrics={"m": 1.0}, series=curve(5, 0), figures={"f.png": png_bytes()})
    shutil.rmtree(run.run_dir)
    page = render([run], [])
    assert "No time series were logged" in page and "No manifest.json" in page
    assert Doc(page).errors == []


def test_very_long_series_are_downsampled(tmp_path):
    runs = [make_run(tmp_path, "long.run", s, series=curve(100_000, s)) for s in range(2)]
    page = render(runs, [])
    for points in re.findall(r'<polyline class="[^"]*" points="([^"]+)"', page):
        assert len(points.split()) <= MAX_POINTS
    assert "100,000 points per seed drawn as 500" in page
    assert len(page) < 400_000


def test_different_configs_are_flagged(tmp_path):
    runs = [make_run(tmp_path, "c.d", s, config={"lr": 0.1 * (1 + (s == 2)), "n": 3}) for s in range(3)]
    page = render(runs, [])
    assert "used 2 different configs" in page
    assert '<tr class="differs"><th>lr</th>' in page


def test_images_that_are_too_big_or_not_images_are_listed(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment_module, "MAX_IMAGE_BYTES", 100)
    run = make_run(tmp_path, "i.j", 0, figures={"big.png": png_bytes(), "fake.png": b"not a png"})
    page = render([run], [])
    assert "data:image" not in page
    assert "too large to embed" in page and "not a valid image" in page


def test_rendering_is_deterministic(sample):
    assert render(*sample) == render(*sample)


def test_write_report_is_atomic(sample, tmp_path):
    out = tmp_path / "out" / "report.html"
    assert write_report(out, *sample, generated=GEN) == out
    assert out.read_text(encoding="utf-8") == render(*sample)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_write_report_failure_keeps_the_old_file(sample, tmp_path, monkeypatch):
    out = tmp_path / "report.html"
    out.write_text("old")

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("alignlab.reporting.html.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_report(out, *sample)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# --- plots ---------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=3, max_value=600))
def test_downsample_keeps_ends_order_and_budget(n, n_out):
    x = np.arange(n, dtype=float)
    y = np.sin(x / 7)
    dx, dy = downsample(x, y, n_out)
    assert len(dx) == min(n, n_out)
    assert np.all(np.diff(dx) > 0)
    if n:
        assert dx[0] == 0 and dx[-1] == n - 1
        assert np.array_equal(dy, np.sin(dx / 7))


def test_downsample_keeps_a_spike():
    y = np.zeros(10_000)
    y[4321] = 5.0
    _, dy = downsample(np.arange(10_000, dtype=float), y, 100)
    assert dy.max() == 5.0


def test_mean_curve_interpolates_misaligned_steps():
    a = (np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    b = (np.array([0.0, 5.0, 10.0]), np.array([2.0, 2.0, 2.0]))
    x, y = mean_curve([a, b])
    assert list(x) == [0.0, 5.0, 10.0] and list(y) == [1.0, 3.5, 6.0]
    assert mean_curve([a]) is None
    assert mean_curve([a, (np.array([20.0, 30.0]), np.array([1.0, 1.0]))]) is None


def test_tick_labels_are_short():
    assert tick_labels([0, 5000, 10000, 15000], 5000) == ["0", "5k", "10k", "15k"]
    assert tick_labels([0, 0.25, 0.5], 0.25) == ["0", "0.25", "0.50"]
    assert tick_labels([-1, 0, 1], 1) == ["−1", "0", "1"]
    assert tick_labels([2e6, 2.5e7], 5e5) == ["2.0M", "25.0M"]
    assert tick_labels([1e-5, 2e-5], 1e-5) == ["1e-05", "2e-05"]


def test_line_chart_handles_nan_constant_and_single_points():
    nan = Series("seed 0", np.arange(3.0), np.full(3, np.nan))
    chart = line_chart("k", [nan])
    assert chart.svg is None and "no finite values to plot" in chart.notes
    flat = line_chart("k", [Series("s", np.arange(4.0), np.ones(4))])
    assert flat.svg and "<polyline" in flat.svg
    dot = line_chart("k", [Series("s", np.array([3.0]), np.array([2.0]))])
    assert dot.svg and "<circle" in dot.svg
    huge = line_chart("k", [Series("s", np.arange(2.0), np.array([-1e308, 1e308]))])
    assert huge.svg is None


def _kinds_sample(tmp_path):
    """Main and control runs of one experiment: controlled replications, an exact and a target claim."""
    from dataclasses import replace

    from alignlab.core import Control
    from alignlab.core.runner import judge_runs

    off = Control("no_signal", {"effect": 0.0}, "no effect, nothing to measure")
    placebo = Control("placebo", {"knob": 1}, "a knob the metric ignores")
    claims = (
        Claim("effect", ">", 0.5, source="Paper 2020", control=off),
        Claim("onset", "<", 10, source="Paper 2020, Fig 2", control=off),
        Claim("effect", ">", 0.1, source="Paper 2021", control=placebo),
        Claim("spread", ">=", 0.0, source="a theorem", kind="exact"),
        Claim("effect", "<", 9.0, source="our bar", kind="target"),
    )
    runs = []
    for seed in range(2):
        main = make_run(tmp_path, "toy.kinds", seed, metrics={"effect": 1.0 + 0.01 * seed, "onset": 2.0,
                                                              "spread": 0.1 + 0.01 * seed})  # fmt: skip
        ctl = make_run(tmp_path, "toy.kinds", seed, metrics={"effect": 0.01 * seed, "onset": math.nan,
                                                             "spread": 0.1}, batch="b-ctl")  # fmt: skip
        ctl = replace(ctl, batch_id=main.batch_id, control="no_signal", run_id=ctl.run_id + "-ctl",
                      not_observed={"onset": "never crossed 0.5 in 40 draws"})  # fmt: skip
        leak = make_run(tmp_path, "toy.kinds", seed, metrics={"effect": 1.0, "onset": 2.0, "spread": 0.1},
                        batch="b-leak")  # fmt: skip
        leak = replace(leak, batch_id=main.batch_id, control="placebo", run_id=leak.run_id + "-leak")
        runs += [main, ctl, leak]

    class Exp:
        name = "toy.kinds"

    Exp.claims = claims
    return runs, judge_runs(runs[0].batch_id, runs, [Exp])


def test_kinds_controls_and_not_observed_are_shown(tmp_path):
    runs, claims = _kinds_sample(tmp_path)
    page = render(runs, claims)
    doc = Doc(page)
    by_claim = {(row[2], row[1]): row for row in doc.cells}
    assert by_claim[("effect > 0.5", "replication")][3] == "reproduced"
    assert by_claim[("effect > 0.5", "replication")][7].startswith("effect vanished")
    assert by_claim[("onset < 10", "replication")][7].startswith("effect vanished")
    assert by_claim[("effect > 0.1", "replication")][7].startswith("effect persists")
    assert by_claim[("spread >= 0", "exact")][3] == "holds" and by_claim[("spread >= 0", "exact")][7] == "—"
    assert by_claim[("effect < 9", "target")][3] == "met"
    assert [r["data-kind"] for r in doc.rows] == ["replication"] * 3 + ["exact", "target"]
    assert sum(r.get("class") == "control-failed" for r in doc.rows) == 1
    assert '<div class="alarm"><strong>1 claim also held under its negative control' in page
    assert "3 of 3 replications reproduced; exact: 1 holds, 0 fails; targets: 1 met, 0 not met; " in page
    assert "controls: 2 of 3 effects vanished, 1 EFFECT PERSISTS" in page
    assert 'data-kind="exact" aria-pressed="true">exact (1)</button>' in page
    assert "reproduced / holds / met (5)" in page, "verdict buttons name each kind's word"
    assert 'title="never crossed 0.5 in 40 draws">not observed</td>' in page
    assert "<h3>Negative controls</h3>" in page and "seed 0 · control no_signal" in page


def test_control_runs_are_kept_out_of_the_main_metrics_table(tmp_path):
    runs, claims = _kinds_sample(tmp_path)
    section = render(runs, claims).split('<section class="experiment"')[1]
    main_table = section.split("<h3>Metrics across seeds</h3>")[1].split("</table>")[0]
    assert "control" not in main_table and main_table.count('<td class="run">') == 2


def test_header_counts_only_replications_as_reproduced(tmp_path):
    runs = [make_run(tmp_path, "x.y", s, metrics={"m": 1.0 + s * 0.01}) for s in range(2)]
    claims = [judged("x.y", Claim("m", ">", 0.5, source="theorem", kind="exact"), runs)]
    page = render(runs, claims)
    assert re.search(r'class="badge verdict-reproduced">1 holds<', page)
    assert not re.search(r">\d+ reproduced<", page)
    assert "exact: 1 holds, 0 fails" in page
