"""The report's inline stylesheet and script (no external fonts, images or scripts)."""

from __future__ import annotations

CSS = """
:root {
  --fg: #1f2328; --muted: #59636e; --line: #d8dee4; --soft: #f6f8fa; --accent: #1d4f91;
  --ok: #1a7f37; --ok-bg: #dafbe1; --ok-line: #aceebb;
  --bad: #cf222e; --bad-bg: #ffebe9; --bad-line: #ffcecb;
  --warn: #9a6700; --warn-bg: #fff8c5; --warn-line: #eed888;
  --info: #0969da; --info-bg: #ddf4ff; --info-line: #b6e3ff;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--fg); background: #fff;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 56px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
h1 { font-size: 26px; line-height: 1.25; margin: 0 0 6px; }
h2 { font-size: 20px; margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 26px 0 8px; }
p { margin: 6px 0; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 12.5px; }
pre { margin: 6px 0; white-space: pre-wrap; word-break: break-word; }
.muted, .meta { color: var(--muted); }
.note { color: var(--muted); font-size: 13px; }
.empty { padding: 14px 16px; background: var(--soft); border: 1px dashed var(--line); border-radius: 6px;
  color: var(--muted); }

header.page { padding-bottom: 18px; border-bottom: 2px solid var(--fg); }
.summary { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin-top: 12px; }
.summary .label { color: var(--muted); margin-right: 2px; }
.summary .sep { width: 1px; height: 18px; background: var(--line); margin: 0 6px; }
svg.verdict-bar { display: block; width: 100%; max-width: 560px; height: 8px; margin-top: 12px;
  border-radius: 4px; overflow: hidden; }
.bar-reproduced { fill: var(--ok); } .bar-not-reproduced { fill: var(--bad); }
.bar-inconclusive { fill: #d4a72c; } .bar-not-measured { fill: #8250df; } .bar-other { fill: #8c959f; }

.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600;
  line-height: 18px; white-space: nowrap; border: 1px solid var(--line); background: var(--soft);
  color: var(--muted); }
.big .badge, .summary .badge { font-size: 13px; padding: 2px 11px; }
.verdict-reproduced, .status-done { background: var(--ok-bg); color: var(--ok);
  border-color: var(--ok-line); }
.verdict-not-reproduced, .status-failed { background: var(--bad-bg); color: var(--bad);
  border-color: var(--bad-line); }
.verdict-inconclusive, .status-interrupted { background: var(--warn-bg); color: var(--warn);
  border-color: var(--warn-line); }
.status-running { background: var(--info-bg); color: var(--info); border-color: var(--info-line); }
.verdict-not-measured { background: #f3e8ff; color: #6f42c1; border-color: #d8b9ff; }
.control-vanished { background: var(--ok-bg); color: var(--ok); border-color: var(--ok-line); }
.control-persists { background: var(--bad); color: #fff; border-color: var(--bad); }
.control-missing { background: var(--warn-bg); color: var(--warn); border-color: var(--warn-line); }
.kind-replication { background: var(--info-bg); color: var(--info); border-color: var(--info-line); }
.kind-exact, .kind-target { background: var(--soft); color: var(--muted); }
tr.control-failed td { background: var(--bad-bg); }
tr.control-failed td:first-child { box-shadow: inset 3px 0 0 var(--bad); }
td.control .note { font-size: 12px; min-width: 180px; }
.summary-line { margin-top: 8px; font-weight: 600; }
.alarm { margin-top: 12px; padding: 8px 12px; border-left: 4px solid var(--bad); background: var(--bad-bg);
  color: #5c0f14; border-radius: 0 6px 6px 0; }
ul.claim-list .control { font-size: 13px; }

nav.toc ul { list-style: none; padding: 0; margin: 0; display: grid; gap: 4px 24px;
  grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); }
nav.toc li { display: flex; gap: 8px; align-items: baseline; padding: 3px 0;
  border-bottom: 1px dotted var(--line); }
nav.toc li a { font-weight: 600; }
nav.toc .counts { margin-left: auto; display: flex; gap: 4px; }
nav.toc .badge { font-size: 11px; padding: 0 7px; line-height: 16px; }

.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; border-bottom: 1px solid #b9c2cc; white-space: nowrap; }
tbody tr:hover { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.claims thead th { white-space: normal; }
td.measured { white-space: nowrap; }
td.formula .note { font-size: 12px; min-width: 220px; }
td.run { white-space: nowrap; }
table.metrics thead th.num { white-space: normal; min-width: 70px; }
.measured { font-variant-numeric: tabular-nums; font-size: 13px; }
.badge.zero { opacity: .45; }
td.reason { color: var(--muted); min-width: 200px; }
td.source { min-width: 160px; }
table.metrics, table.artifacts { width: auto; min-width: 520px; }
tr.summary-row td { font-weight: 600; background: var(--soft); border-top: 1px solid #b9c2cc; }
th.claimed { color: var(--accent); }
th.claimed::after { content: " ◆"; font-size: 9px; vertical-align: 1px; }
table.claims td:first-child { font-weight: 600; min-width: 190px; }
table.kv { width: auto; min-width: 420px; max-width: 100%; }
table.kv th { background: none; font-weight: 600; color: var(--muted); border-bottom: 1px solid var(--line); }
.kv-columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 0 28px;
  align-items: start; }
.kv-columns table.kv { width: 100%; min-width: 0; }
table.kv td { word-break: break-word; }
tr.differs th, tr.differs td { background: var(--warn-bg); }
table.hashes td { font-size: 11.5px; word-break: break-all; }

.filters { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: 6px 0 10px; }
.filters button { font: inherit; font-size: 12px; font-weight: 600; border-radius: 999px; cursor: pointer;
  padding: 2px 10px; border: 1px solid var(--line); }
.filters button[aria-pressed="false"] { opacity: .4; text-decoration: line-through; }
.filters .shown { color: var(--muted); font-size: 12px; margin-left: 6px; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable::after { content: "\\00a0↕"; color: #a0a8b0; font-weight: 400; }
th.sortable[aria-sort="ascending"]::after { content: "\\00a0↑"; color: var(--fg); }
th.sortable[aria-sort="descending"]::after { content: "\\00a0↓"; color: var(--fg); }

section.experiment { margin-top: 44px; }
section.experiment > h2 { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; }
section.experiment > h2 .meta { font-size: 13px; font-weight: 400; }
ul.claim-list { list-style: none; padding: 0; margin: 4px 0; }
ul.claim-list li { padding: 4px 0; display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
ul.claim-list .src { color: var(--muted); font-size: 13px; }
.failure { border-left: 3px solid var(--bad); background: var(--bad-bg); border-radius: 0 6px 6px 0;
  padding: 8px 12px; margin: 8px 0; }
.failure.status-interrupted-box { border-left-color: #d4a72c; background: var(--warn-bg); }
.failure pre { color: #5c0f14; }

.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 14px; }
figure { margin: 0; }
figure.chart-box { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px 6px;
  break-inside: avoid; }
figure.chart-box figcaption { font-weight: 600; font-size: 13px; overflow-wrap: anywhere; }
figure.chart-box .note { font-weight: 400; font-size: 11.5px; }
svg.chart { display: block; width: 100%; height: auto; }
svg.chart text { font-size: 10px; fill: var(--muted); }
svg.chart .grid { stroke: #eaeef2; }
svg.chart .axis, svg.chart .tickmark { stroke: #8c959f; }
svg.chart .seed { fill: none; stroke: #93b7e3; stroke-width: 1.1; stroke-linejoin: round; }
svg.chart .seed.solo { stroke: var(--accent); stroke-width: 1.8; }
svg.chart circle.seed { fill: var(--accent); stroke: none; }
svg.chart polyline.seed:hover { stroke: #d9822b; stroke-width: 2.2; }
svg.chart .mean { fill: none; stroke: var(--accent); stroke-width: 2.4; stroke-linejoin: round; }

.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 14px; }
.gallery figure { border: 1px solid var(--line); border-radius: 6px; padding: 6px; break-inside: avoid; }
.gallery img { display: block; max-width: 100%; height: auto; margin: 0 auto; cursor: zoom-in; }
.gallery figure.zoom { grid-column: 1 / -1; }
.gallery figure.zoom img { cursor: zoom-out; }
.gallery figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; text-align: center; }
figure.view-box { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figure.view-box figcaption, .att-head figcaption { font-weight: 600; font-size: 13px; margin-bottom: 6px; }
.att-view label { font-size: 13px; }
.feature-table { max-height: 260px; overflow-y: auto; border: 1px solid var(--line); border-radius: 6px; }
.feature-table tr[data-feature] { cursor: pointer; }
.feature-table tr[data-feature]:hover { background: var(--soft); }
.feature-filter { margin: 6px 0; padding: 3px 6px; width: 260px; }
.feature-cols { display: grid; grid-template-columns: 260px 1fr; gap: 14px; }
.ctx { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap;
       border-bottom: 1px solid var(--line); padding: 3px 0; }
.act { border-radius: 2px; }
.act-6, .act-7, .act-8, .act-9 { color: #fff; }
.act-0 { background: rgba(29, 79, 145, 0.0); }
.act-1 { background: rgba(29, 79, 145, 0.1); }
.act-2 { background: rgba(29, 79, 145, 0.2); }
.act-3 { background: rgba(29, 79, 145, 0.3); }
.act-4 { background: rgba(29, 79, 145, 0.4); }
.act-5 { background: rgba(29, 79, 145, 0.5); }
.act-6 { background: rgba(29, 79, 145, 0.6); }
.act-7 { background: rgba(29, 79, 145, 0.7); }
.act-8 { background: rgba(29, 79, 145, 0.8); }
.act-9 { background: rgba(29, 79, 145, 0.9); }
.att-head { margin-top: 8px; }
h4.figure-name { font-size: 13px; margin: 14px 0 6px; font-family: ui-monospace, SFMono-Regular, Menlo,
  Consolas, monospace; }

details { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; background: #fff; }
details > summary { cursor: pointer; padding: 6px 10px; display: flex; gap: 10px; align-items: baseline;
  flex-wrap: wrap; }
details[open] > summary { border-bottom: 1px solid var(--line); background: var(--soft); }
details > .inner { padding: 8px 12px 10px; }
details details { margin: 8px 0 0; }

footer { margin-top: 56px; padding-top: 10px; border-top: 1px solid var(--line); color: var(--muted);
  font-size: 12px; }

@media print {
  main { max-width: none; padding: 0; }
  body { font-size: 11px; }
  .filters, th.sortable::after { display: none; }
  a { color: inherit; }
  section.experiment { break-before: page; }
  tr, figure, .failure, ul.claim-list li { break-inside: avoid; }
  .scroll { overflow: visible; }
}
"""

JS = """
(() => {
  "use strict";
  const table = document.getElementById("claims");
  if (table && table.tHead && table.tBodies.length) {
    const body = table.tBodies[0];
    const heads = Array.from(table.tHead.rows[0].cells);
    const key = (cell) => {
      const raw = cell.getAttribute("data-sort");
      if (raw === null) return cell.textContent.trim().toLowerCase();
      const n = Number(raw);
      return Number.isNaN(n) ? raw : n;
    };
    heads.forEach((th, i) => {
      th.classList.add("sortable");
      th.tabIndex = 0;
      const sort = () => {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = key(a.cells[i]), y = key(b.cells[i]);
          const both = typeof x === "number" && typeof y === "number";
          const c = both ? x - y : String(x).localeCompare(String(y));
          return asc ? c : -c;
        });
        rows.forEach((r) => body.appendChild(r));
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
    const buttons = Array.from(
      document.querySelectorAll(".filters button[data-verdict], .filters button[data-kind]"));
    const shown = document.querySelector(".filters .shown");
    const tag = (d) => (d.kind !== undefined ? "k:" + d.kind : "v:" + d.verdict);
    const apply = () => {
      const off = new Set(
        buttons.filter((b) => b.getAttribute("aria-pressed") !== "true").map((b) => tag(b.dataset)));
      let visible = 0;
      Array.from(body.rows).forEach((r) => {
        r.hidden = off.has("v:" + r.dataset.verdict) || off.has("k:" + r.dataset.kind);
        if (!r.hidden) visible += 1;
      });
      if (shown) shown.textContent = visible + " of " + body.rows.length + " claims shown";
    };
    buttons.forEach((b) => b.addEventListener("click", () => {
      b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "true" ? "false" : "true");
      apply();
    }));
  }
  document.querySelectorAll(".att-view").forEach((view) => {
    const select = view.querySelector(".att-select");
    if (!select) return;
    select.addEventListener("change", () => {
      view.querySelectorAll(".att-head").forEach((f) => { f.hidden = f.dataset.head !== select.value; });
    });
  });
  document.querySelectorAll(".feature-view").forEach((view) => {
    const rows = Array.from(view.querySelectorAll("tr[data-feature]"));
    const panels = Array.from(view.querySelectorAll(".feature-panel"));
    rows.forEach((row) => row.addEventListener("click", () => {
      panels.forEach((p) => { p.hidden = p.dataset.feature !== row.dataset.feature; });
    }));
    const filter = view.querySelector(".feature-filter");
    if (filter) filter.addEventListener("input", () => {
      const q = filter.value.trim().toLowerCase();
      rows.forEach((r) => { r.hidden = q !== "" && !r.textContent.toLowerCase().includes(q); });
    });
  });
  document.querySelectorAll(".gallery img").forEach((img) => {
    img.addEventListener("click", () => img.closest("figure").classList.toggle("zoom"));
  });
  const opened = [];
  window.addEventListener("beforeprint", () => {
    document.querySelectorAll("details:not([open])").forEach((d) => { d.open = true; opened.push(d); });
  });
  window.addEventListener("afterprint", () => { opened.splice(0).forEach((d) => { d.open = false; }); });
})();
"""
