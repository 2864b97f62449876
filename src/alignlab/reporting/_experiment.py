"""One experiment's section: claims, failures, metrics across seeds, curves, figures, config, provenance."""

from __future__ import annotations

import base64
import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignlab.core.records import ClaimResult, RunRecord
from alignlab.reporting._format import (
    as_float,
    badge,
    breakable,
    esc,
    fmt_bytes,
    fmt_num,
    fmt_value,
    status_class,
    verdict_class,
)
from alignlab.reporting._provenance import provenance_html
from alignlab.reporting._views import ViewError, is_view, render_view
from alignlab.reporting.plots import line_chart, series_by_key

MAX_IMAGE_BYTES = 8 * 2**20
MAX_TOTAL_IMAGE_BYTES = 48 * 2**20
MAX_ERROR_CHARS = 20_000
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif"}


@dataclass
class ImageBudget:
    """How many more image bytes one report may embed (keeps a huge store from making a huge page)."""

    left: int = MAX_TOTAL_IMAGE_BYTES

    def take(self, n: int) -> bool:
        """Reserve `n` bytes if they fit."""
        if n > self.left:
            return False
        self.left -= n
        return True


def run_labels(runs: Sequence[RunRecord]) -> dict[str, str]:
    """A short label per run id: 'seed 3' (or 'seed 3 · control NAME'), with the run id added where
    labels repeat (several batches)."""
    base = {r.run_id: f"seed {r.seed}" + (f" · control {r.control}" if r.control else "") for r in runs}
    counts = Counter(base.values())
    return {rid: label + (f" · {rid}" if counts[label] > 1 else "") for rid, label in base.items()}


def status_badges(runs: Sequence[RunRecord]) -> str:
    """One badge per run status with its count, e.g. '3 done', '1 failed'."""
    counts = Counter(r.status for r in runs)
    return " ".join(badge(f"{n} {status}", status_class(status)) for status, n in counts.items())


def _tail(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _claims_list(claims: Sequence[ClaimResult]) -> str:
    items = []
    for c in claims:
        v = c.verdict
        interval = f"{fmt_num(v.mean)} [{fmt_num(v.lo)}, {fmt_num(v.hi)}]"
        if not v.n:
            measured = "no finished runs"
        elif math.isfinite(v.mean):
            measured = f"measured {interval} over {v.n} seed{'s' * (v.n != 1)}"
        else:
            measured = v.reason
        control = ""
        if c.claim.control is not None:
            cls = {"effect vanished": "control-vanished", "effect persists": "control-persists"}.get(
                c.control_word, "control-not-run"
            )
            tip = c.control_verdict.reason if c.control_verdict else "not run (use --controls)"
            control = (
                f'<span class="control">control <code>{esc(c.claim.control.name)}</code>: '
                f"{badge(c.control_word, cls, title=tip)}</span>"
            )
        items.append(
            f"<li>{badge(c.word, verdict_class(v.label))} {badge(c.kind, f'kind-{c.kind}')} "
            f"<code>{esc(c.claim.describe())}</code>"
            f'<span class="measured">{esc(measured)}</span>{control}'
            f'<span class="src">{esc(c.claim.source)}</span></li>'
        )
    return f'<ul class="claim-list">{"".join(items)}</ul>'


def _failures(runs: Sequence[RunRecord], labels: dict[str, str]) -> str:
    boxes = []
    for r in runs:
        if r.status not in ("failed", "interrupted") and not r.error:
            continue
        text = r.error or "no error message was recorded"
        tb = ""
        tb_path = r.run_dir / "traceback.txt"
        try:
            if tb_path.is_file():
                text_tb = tb_path.read_text(encoding="utf-8", errors="replace")
                tb = (
                    '<details><summary>Traceback</summary><div class="inner">'
                    f"<pre>{esc(_tail(text_tb))}</pre></div></details>"
                )
        except OSError:
            tb = ""
        extra = " status-interrupted-box" if r.status == "interrupted" else ""
        boxes.append(
            f'<div class="failure{extra}"><strong>{esc(labels[r.run_id])}</strong> '
            f"{badge(r.status, status_class(r.status))} <code>{esc(r.run_id)}</code>"
            f"<pre>{esc(_tail(text))}</pre>{tb}</div>"
        )
    if not boxes:
        return ""
    return f"<h3>Failed and interrupted runs</h3>{''.join(boxes)}"


def _metric_keys(runs: Sequence[RunRecord], claimed: Sequence[str]) -> list[str]:
    keys: dict[str, None] = {}
    for r in runs:
        keys.update((str(k), None) for k in (r.metrics or {}))
    first = [k for k in dict.fromkeys(claimed) if k in keys]
    return first + [k for k in keys if k not in first]


def _mean_sd(values: list[Any], n_done: int) -> tuple[str, str]:
    finite = [x for x in (as_float(v) for v in values) if x is not None and math.isfinite(x)]
    if not finite:
        return "—", "no finite values"
    partial = len(finite) < n_done
    note = f"{len(finite)} of {n_done} done runs finite" if partial else f"n={len(finite)}"
    suffix = f" (n={len(finite)})" if partial else ""
    if len(finite) == 1:
        return fmt_num(finite[0]) + suffix, note
    return f"{fmt_num(statistics.fmean(finite))} ± {fmt_num(statistics.stdev(finite), 2)}{suffix}", note


def _metrics_table(runs: Sequence[RunRecord], labels: dict[str, str], claims: Sequence[ClaimResult]) -> str:
    claimed = [c.claim.metric for c in claims]
    keys = _metric_keys(runs, claimed)
    if not keys:
        return '<h3>Metrics across seeds</h3><p class="note">No metrics were recorded.</p>'
    multi_batch = len({r.batch_id for r in runs}) > 1
    head = ["<th>run</th>", "<th>status</th>"] + (["<th>batch</th>"] if multi_batch else [])
    for k in keys:
        if k in claimed:
            head.append(
                f'<th class="num claimed" title="a claim is judged on this metric">{breakable(k)}</th>'
            )
        else:
            head.append(f'<th class="num">{breakable(k)}</th>')
    body = []
    for r in runs:
        cells = [
            f'<td class="run">{esc(labels[r.run_id])}</td>',
            f"<td>{badge(r.status, status_class(r.status))}</td>",
        ]
        if multi_batch:
            cells.append(f'<td class="mono">{esc(r.batch_id)}</td>')
        cells += [_metric_cell(r, k) for k in keys]
        body.append(f"<tr>{''.join(cells)}</tr>")
    done = [r for r in runs if r.status == "done"]
    span = 3 if multi_batch else 2
    summary = [f'<td colspan="{span}" title="over the runs that finished (status done)">mean ± sd</td>']
    for k in keys:
        text, note = _mean_sd([(r.metrics or {}).get(k) for r in done], len(done))
        summary.append(f'<td class="num" title="{esc(note)}">{esc(text)}</td>')
    body.append(f'<tr class="summary-row">{"".join(summary)}</tr>')
    return (
        '<h3>Metrics across seeds</h3><div class="scroll"><table class="metrics">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _metric_cell(run: RunRecord, key: str) -> str:
    if key in run.not_observed:
        reason = run.not_observed[key]
        return f'<td class="num not-observed" title="{esc(reason)}">not observed</td>'
    if key not in (run.metrics or {}):
        return '<td class="num">—</td>'
    return f'<td class="num">{esc(fmt_num(run.metrics[key]))}</td>'


def _config_table(runs: Sequence[RunRecord], labels: dict[str, str]) -> str:
    configs = [(r, r.config if isinstance(r.config, dict) else {}) for r in runs]
    keys = list(dict.fromkeys(str(k) for _, c in configs for k in c))
    distinct = {json.dumps(c, sort_keys=True, default=str) for _, c in configs}
    same, differ = [], []
    presets = sorted({r.preset for r in runs if r.preset})
    if presets:
        same.append(f"<tr><th>preset</th><td>{esc(', '.join(presets))}</td></tr>")
    for k in keys:
        groups: dict[str, list[str]] = {}
        for r, c in configs:
            groups.setdefault(fmt_value(c[k]) if k in c else "(unset)", []).append(labels[r.run_id])
        if len(groups) == 1:
            same.append(f'<tr><th>{breakable(k)}</th><td class="mono">{esc(next(iter(groups)))}</td></tr>')
        else:
            parts = "<br>".join(
                f'{esc(v)} <span class="muted">({esc(", ".join(who))})</span>' for v, who in groups.items()
            )
            differ.append(f'<tr class="differs"><th>{breakable(k)}</th><td class="mono">{parts}</td></tr>')
    rows = differ + same
    if not rows:
        return '<h3>Config</h3><p class="note">No config was recorded.</p>'
    note = (
        f'<p class="note">⚠ These runs used {len(distinct)} different configs; the rows that differ are '
        "highlighted.</p>"
        if len(distinct) > 1
        else f'<p class="note">All {len(runs)} run{"s" if len(runs) != 1 else ""} used this config.</p>'
    )
    return f"<h3>Config</h3>{note}{_kv_columns(rows)}"


def _kv_columns(rows: list[str]) -> str:
    """Key/value rows as one table, or as two or three side by side when there are many."""
    cols = 1 if len(rows) <= 6 else 2 if len(rows) <= 14 else 3
    size = math.ceil(len(rows) / cols)
    tables = [
        f'<table class="kv config"><tbody>{"".join(rows[i : i + size])}</tbody></table>'
        for i in range(0, len(rows), size)
    ]
    return tables[0] if cols == 1 else f'<div class="kv-columns">{"".join(tables)}</div>'


def _curves(runs: Sequence[RunRecord], labels: dict[str, str]) -> str:
    loaded, unreadable = [], []
    for r in runs:
        try:
            loaded.append((labels[r.run_id], r.timeseries()))
        except (OSError, UnicodeDecodeError):
            unreadable.append(labels[r.run_id])
    by_key = series_by_key(loaded)
    note = (
        f'<p class="note">Time series unreadable for {esc(", ".join(unreadable))}.</p>' if unreadable else ""
    )
    if not by_key:
        return f'<h3>Learning curves</h3>{note}<p class="note">No time series were logged.</p>'
    boxes = []
    for key, series in by_key.items():
        chart = line_chart(key, series)
        notes = f'<div class="note">{esc("; ".join(chart.notes))}</div>' if chart.notes else ""
        boxes.append(
            f'<figure class="chart-box"><figcaption>{esc(key)}</figcaption>{chart.svg or ""}{notes}</figure>'
        )
    return f'<h3>Learning curves</h3>{note}<div class="charts">{"".join(boxes)}</div>'


def _sniff_image(data: bytes) -> str | None:
    return next((mime for magic, mime in _IMAGE_MAGIC if data.startswith(magic)), None)


def _artifacts(runs: Sequence[RunRecord], labels: dict[str, str], budget: ImageBudget) -> str:
    images: dict[str, list[tuple[str, str]]] = {}
    views: dict[str, list[tuple[str, str]]] = {}
    others: list[tuple[str, str, str, str]] = []
    for r in runs:
        adir = r.run_dir / "artifacts"
        try:
            paths = r.artifacts()
        except OSError:
            continue
        for path in paths:
            rel = path.relative_to(adir).as_posix() if path.is_relative_to(adir) else path.name
            if is_view(path):
                try:
                    views.setdefault(rel, []).append((labels[r.run_id], render_view(path)))
                    continue
                except ViewError as exc:
                    size = _size(path)
                    others.append((rel, labels[r.run_id], fmt_bytes(size) if size is not None else "?",
                                   f"view not drawn: {exc}"))  # fmt: skip
                    continue
            embedded, why = _try_embed(path, budget)
            if embedded:
                images.setdefault(rel, []).append((labels[r.run_id], embedded))
            else:
                size = _size(path)
                others.append((rel, labels[r.run_id], fmt_bytes(size) if size is not None else "?", why))
    out = []
    for name, shown in views.items():
        out.append(f'<h4 class="figure-name">{esc(name)}</h4>')
        out += [
            f"<details{' open' if i == 0 else ''}><summary>{esc(label)}</summary>{html}</details>"
            for i, (label, html) in enumerate(shown)
        ]
    if images:
        out.append("<h3>Figures</h3>")
        for name, shots in images.items():
            figs = "".join(
                f'<figure><img src="{uri}" alt="{esc(name)}, {esc(label)}">'
                f"<figcaption>{esc(label)}</figcaption></figure>"
                for label, uri in shots
            )
            out.append(f'<h4 class="figure-name">{esc(name)}</h4><div class="gallery">{figs}</div>')
    if others:
        rows = "".join(
            f'<tr><td class="mono">{esc(n)}</td><td>{esc(who)}</td><td class="num">{esc(size)}</td>'
            f'<td class="muted">{esc(why)}</td></tr>'
            for n, who, size, why in others
        )
        out.append(
            '<h3>Other artifacts</h3><table class="artifacts"><thead><tr><th>file</th><th>run</th>'
            f'<th class="num">size</th><th></th></tr></thead><tbody>{rows}</tbody></table>'
        )
    return "".join(out)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _try_embed(path: Path, budget: ImageBudget) -> tuple[str | None, str]:
    """A data: URI for an image artifact, or None and why it is only listed."""
    if path.suffix.lower() not in _IMAGE_SUFFIXES:
        return None, ""
    size = _size(path)
    if size is None:
        return None, "unreadable"
    if size > MAX_IMAGE_BYTES:
        return None, f"too large to embed (> {fmt_bytes(MAX_IMAGE_BYTES)})"
    try:
        data = path.read_bytes()
    except OSError:
        return None, "unreadable"
    mime = _sniff_image(data)
    if mime is None:
        return None, "not a valid image"
    if not budget.take(len(data)):
        return None, "not embedded: the report's image budget is used up"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", ""


def _control_section(
    control: str, runs: Sequence[RunRecord], labels: dict[str, str], claims: Sequence[ClaimResult]
) -> str:
    """A control's runs: what it overrides, its metrics and curves (folded)."""
    spec = next(
        (c.claim.control for c in claims if c.claim.control and c.claim.control.name == control), None
    )
    what = f"{', '.join(f'{k}={v!r}' for k, v in spec.overrides.items())} — {spec.why}" if spec else ""
    mine = [c for c in claims if c.claim.control is not None and c.claim.control.name == control]
    return (
        f"<details><summary><strong>control <code>{esc(control)}</code></strong> "
        f'<span class="muted">{esc(what)}</span> {status_badges(runs)}</summary><div class="inner">'
        f"{_metrics_table(runs, labels, mine)}{_curves(runs, labels)}</div></details>"
    )


def experiment_section(
    name: str,
    anchor: str,
    runs: Sequence[RunRecord],
    claims: Sequence[ClaimResult],
    budget: ImageBudget,
) -> str:
    """The whole `<section>` of one experiment (control runs in their own folded parts)."""
    labels = run_labels(runs)
    main = [r for r in runs if r.control is None]
    controls: dict[str, list[RunRecord]] = {}
    for r in runs:
        if r.control is not None:
            controls.setdefault(r.control, []).append(r)
    seeds = ", ".join(str(s) for s in sorted({r.seed for r in runs}))
    meta = f"{len(runs)} run{'s' if len(runs) != 1 else ''}" + (f" · seeds {seeds}" if runs else "")
    if controls:
        meta += f" · {len(controls)} control{'s' if len(controls) != 1 else ''}"
    parts = [
        f'<section class="experiment" id="{esc(anchor)}">',
        f'<h2>{esc(name)} <span class="meta">{esc(meta)}</span> {status_badges(runs)}</h2>',
    ]
    if claims:
        parts.append(_claims_list(claims))
    if not runs:
        parts.append('<p class="empty">No runs of this experiment are in this report.</p></section>')
        return "".join(parts)
    parts += [
        _failures(runs, labels),
        _metrics_table(main, labels, claims) if main else "",
        _curves(main, labels) if main else "",
    ]
    if controls:
        parts.append(
            '<h3>Negative controls</h3><p class="note">The same config with each control\'s overrides on '
            "top, over the same seeds; the claims must not hold here.</p>"
        )
        parts += [_control_section(name, group, labels, claims) for name, group in controls.items()]
    parts += [
        _artifacts(runs, labels, budget),
        _config_table(main or runs, labels),
        "<h3>Provenance</h3>",
        *(provenance_html(r, labels[r.run_id]) for r in runs),
        "</section>",
    ]
    return "".join(parts)
