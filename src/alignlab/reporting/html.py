"""The self-contained HTML report: a claims table, then per experiment metrics, curves, figures and
provenance.

The page loads nothing from outside (no CDN, font, image or script URL), so it opens offline and
can be mailed or archived as one file. A Content-Security-Policy allows only the page's own inline
stylesheet and script (by hash) and data: images, so even a string that escaped escaping could
not run. Every user-derived string goes through :func:`alignlab.reporting._format.esc`.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alignlab import __version__
from alignlab.core.records import ClaimResult, RunRecord, summary_line
from alignlab.core.registry import KINDS
from alignlab.core.verdict import word
from alignlab.reporting._assets import CSS, JS
from alignlab.reporting._experiment import ImageBudget, experiment_section, status_badges
from alignlab.reporting._format import (
    OP_SYMBOLS,
    badge,
    breakable,
    esc,
    fmt_num,
    slug,
    verdict_class,
)

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not measured")
KIND_HEADS = {"replication": "replications", "exact": "exact", "target": "targets"}


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


_CSP = (
    f"default-src 'none'; img-src data:; style-src {_csp_hash(CSS)}; script-src {_csp_hash(JS)}; "
    "base-uri 'none'; form-action 'none'"
)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _anchors(names: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = f"exp-{slug(name)}"
        anchor, k = base, 2
        while anchor in used:
            anchor, k = f"{base}-{k}", k + 1
        used.add(anchor)
        out[name] = anchor
    return out


def _verdict_counts(claims: Sequence[ClaimResult]) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS[:3], 0)
    for c in claims:
        counts[c.verdict.label] = counts.get(c.verdict.label, 0) + 1
    return counts


def _verdict_bar(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return ""
    x, rects = 0.0, []
    for label, n in counts.items():
        if n:
            cls = f"bar-{slug(label)}" if label in VERDICTS else "bar-other"
            rects.append(f'<rect class="{cls}" x="{x:.3f}" y="0" width="{100 * n / total:.3f}" height="1"/>')
            x += 100 * n / total
    return (
        '<svg class="verdict-bar" viewBox="0 0 100 1" preserveAspectRatio="none" role="img" '
        f'aria-label="share of replications by verdict">{"".join(rects)}</svg>'
    )


def _kind_badges(claims: Sequence[ClaimResult]) -> str:
    """Per kind: a label and one badge per verdict in that kind's words; then the controls."""
    groups = []
    for kind in KINDS:
        mine = [c for c in claims if c.kind == kind]
        if not mine:
            continue
        counts = _verdict_counts(mine)
        marks = " ".join(
            badge(f"{n} {word(kind, label)}", verdict_class(label) + ("" if n else " zero"))
            for label, n in counts.items()
        )
        groups.append(f'<span class="label">{esc(KIND_HEADS[kind])}:</span> {marks}')
    controlled = [c for c in claims if c.control_verdict is not None]
    if controlled:
        vanished = sum(c.control_word == "effect vanished" for c in controlled)
        persists = sum(c.control_failed for c in controlled)
        marks = badge(f"{vanished} effect vanished", "control-vanished" + ("" if vanished else " zero"))
        if persists:
            marks += " " + badge(f"{persists} effect persists", "control-persists")
        rest = len(controlled) - vanished - persists
        if rest:
            marks += " " + badge(f"{rest} inconclusive", "verdict-inconclusive")
        groups.append(f'<span class="label">controls:</span> {marks}')
    return '<span class="sep"></span>'.join(groups)


def _header(
    title: str, generated: str, runs: Sequence[RunRecord], claims: Sequence[ClaimResult], names: Sequence[str]
) -> str:
    batches = {r.batch_id for r in runs} | {c.batch_id for c in claims}
    facts = [
        f"Generated {generated}",
        f"alignlab {__version__}",
        _plural(len(runs), "run"),
        _plural(len(names), "experiment"),
        _plural(len(batches), "batch", "batches"),
    ]
    kinds = _kind_badges(claims) if claims else f'<span class="label">{esc(_plural(0, "claim"))}</span>'
    summary = (
        f'<div class="summary">{kinds}'
        + (f'<span class="sep"></span><span class="label">runs:</span> {status_badges(runs)}' if runs else "")
        + "</div>"
    )
    line = f'<p class="summary-line">{esc(summary_line(claims))}</p>' if claims else ""
    failed = [c for c in claims if c.control_failed]
    alarm = (
        f'<div class="alarm"><strong>{esc(_plural(len(failed), "claim"))} also held under '
        f"{'its' if len(failed) == 1 else 'their'} negative control</strong>: the effect persists where it "
        "must vanish, so these claims measure nothing: "
        + ", ".join(f"<code>{esc(c.experiment)}: {esc(c.claim.describe())}</code>" for c in failed)
        + "</div>"
        if failed
        else ""
    )
    replications = _verdict_counts([c for c in claims if c.kind == "replication"])
    return (
        f'<header class="page"><h1>{esc(title)}</h1><p class="meta">{esc(" · ".join(facts))}</p>'
        f"{summary}{line}{_verdict_bar(replications)}{alarm}</header>"
    )


def _toc(
    names: Sequence[str],
    anchors: dict[str, str],
    runs_by: dict[str, list[RunRecord]],
    claims_by: dict[str, list[ClaimResult]],
) -> str:
    if not names:
        return ""
    items = []
    for name in names:
        mine = claims_by.get(name, [])
        marks = " ".join(
            badge(str(n), verdict_class(label), title=f"{n} {', '.join(_words(mine, label))}")
            for label, n in _verdict_counts(mine).items()
            if n
        )
        persists = sum(c.control_failed for c in mine)
        if persists:
            marks += " " + badge(f"{persists} control failed", "control-persists")
        failed = sum(1 for r in runs_by.get(name, []) if r.status != "done")
        if failed:
            marks += " " + badge(f"{failed} not done", "status-failed")
        n_runs = len(runs_by.get(name, []))
        items.append(
            f'<li><a href="#{esc(anchors[name])}">{esc(name)}</a> <span class="muted">'
            f'{esc(_plural(n_runs, "run"))}</span><span class="counts">{marks}</span></li>'
        )
    return f'<nav class="toc"><h2>Experiments</h2><ul>{"".join(items)}</ul></nav>'


def _words(claims: Sequence[ClaimResult], label: str) -> list[str]:
    return list(dict.fromkeys(c.word for c in claims if c.verdict.label == label))


def _expected(claim: Any) -> str:
    symbol = OP_SYMBOLS.get(claim.op, claim.op)
    band = f" ± {claim.tol:g}" if claim.op == "==" and claim.tol else ""
    return f"{symbol} {claim.value:g}{band}"


def _sort_key(x: float) -> str:
    if math.isfinite(x):
        return repr(float(x))
    return "1e308" if x == math.inf else "-1e308"  # NaN sorts with -inf, below every number


def _control_cell(c: ClaimResult) -> str:
    """A claim's control verdict: a badge (effect vanished / persists / not run) and what the control is."""
    control = c.claim.control
    if control is None:
        text = "none declared" if c.kind == "replication" else "—"
        cls = "control-missing" if c.kind == "replication" else ""
        return f'<td data-sort="9">{badge(text, cls) if cls else esc(text)}</td>'
    cv = c.control_verdict
    cls = {"effect vanished": "control-vanished", "effect persists": "control-persists"}.get(
        c.control_word, "verdict-inconclusive" if cv is not None else "control-not-run"
    )
    tip = cv.reason if cv is not None else "run with --controls to judge the claim on its control"
    measured = f" · measured {fmt_num(cv.mean)}" if cv is not None and math.isfinite(cv.mean) else ""
    order = {"control-persists": 0, "verdict-inconclusive": 1, "control-vanished": 2}.get(cls, 3)
    return (
        f'<td class="control" data-sort="{order}">{badge(c.control_word, cls, title=tip)}'
        f'<div class="note"><code>{esc(control.name)}</code>: {esc(control.why)}{esc(measured)}</div></td>'
    )


def _verdict_buttons(claims: Sequence[ClaimResult]) -> str:
    counts = _verdict_counts(claims)
    kinds = [k for k in KINDS if any(c.kind == k for c in claims)]
    buttons = []
    for label, n in counts.items():
        if label in VERDICTS and n:
            words = " / ".join(dict.fromkeys(word(k, label) for k in kinds))
            buttons.append(
                f'<button type="button" class="badge {verdict_class(label)}" '
                f'data-verdict="{esc(slug(label))}" aria-pressed="true">{esc(words)} ({n})</button>'
            )
    if len(kinds) > 1:
        buttons += [
            f'<button type="button" class="badge kind-{kind}" data-kind="{kind}" aria-pressed="true">'
            f"{esc(KIND_HEADS[kind])} ({sum(c.kind == kind for c in claims)})</button>"
            for kind in kinds
        ]
    return " ".join(buttons)


def _claims_table(claims: Sequence[ClaimResult], anchors: dict[str, str]) -> str:
    if not claims:
        return '<section id="claims-section"><h2>Claims</h2><p class="empty">No claims were judged in this report.</p></section>'  # noqa: E501
    multi_batch = len({c.batch_id for c in claims}) > 1
    ordered = sorted(claims, key=lambda c: KINDS.index(c.kind) if c.kind in KINDS else len(KINDS))
    cols = ["experiment", "kind", "claim", "verdict", "measured mean [95% CI]", "n", "expected", "control",
            "source", "reason"]  # fmt: skip
    if multi_batch:
        cols.insert(1, "batch")
    head = "".join(f'<th class="num">{c}</th>' if c == "n" else f"<th>{esc(c)}</th>" for c in cols)
    rows = []
    for c in ordered:
        v, claim = c.verdict, c.claim
        link = (
            f'<a href="#{esc(anchors[c.experiment])}">{breakable(c.experiment)}</a>'
            if c.experiment in anchors
            else breakable(c.experiment)
        )
        note = f'<div class="note">{esc(claim.note)}</div>' if claim.note else ""
        measured = (
            "—"
            if v.n == 0 or not math.isfinite(v.mean)
            else f"{fmt_num(v.mean)} [{fmt_num(v.lo)}, {fmt_num(v.hi)}]"
        )
        cells = [f"<td>{link}</td>"]
        if multi_batch:
            cells.append(f'<td class="mono">{esc(c.batch_id)}</td>')
        cells += [
            f'<td class="kind">{badge(c.kind, f"kind-{slug(c.kind)}")}</td>',
            f'<td class="formula"><code>{breakable(claim.describe())}</code>{note}</td>',
            f'<td data-sort="{VERDICTS.index(v.label) if v.label in VERDICTS else 9}">'
            f"{badge(c.word, verdict_class(v.label))}</td>",
            f'<td class="num measured" data-sort="{esc(_sort_key(v.mean))}">{esc(measured)}</td>',
            f'<td class="num" data-sort="{v.n}">{v.n}</td>',
            f'<td class="num">{esc(_expected(claim))}</td>',
            _control_cell(c),
            f'<td class="source">{esc(claim.source)}</td>',
            f'<td class="reason">{esc(v.reason)}</td>',
        ]
        alarm = ' class="control-failed"' if c.control_failed else ""
        rows.append(
            f'<tr data-verdict="{esc(slug(v.label))}" data-kind="{esc(slug(c.kind))}"{alarm}>'
            f"{''.join(cells)}</tr>"
        )
    filters = (
        f'<div class="filters"><span class="muted">Show:</span> {_verdict_buttons(ordered)}'
        f'<span class="shown" aria-live="polite"></span></div>'
    )
    return (
        f'<section id="claims-section"><h2>Claims</h2>{filters}<div class="scroll">'
        f'<table id="claims" class="claims"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        '<p class="note">Each claim is judged on the 95% t-interval of its metric\'s mean over the finished '
        "seeds: satisfied when the whole interval satisfies it, not satisfied when none of it does, "
        "inconclusive otherwise (fewer than two seeds, or NaN/inf values, which are numerical errors). "
        "A seed in which the phenomenon was not observed makes the claim not satisfied. The words follow "
        "the claim's kind: a <em>replication</em> (published result) is reproduced or not, an "
        "<em>exact</em> claim (theorem or exact computation) holds or fails, a <em>target</em> "
        "(alignlab's own bar) is met or not. Only replications count as reproduced. The control "
        "column judges the same claim on runs of its negative control, where the effect must vanish; "
        "if it persists, the claim measures nothing.</p></section>"
    )


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="alignlab {esc(__version__)}">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main>{body}</main><script>{JS}</script></body></html>\n"
    )


def render_report(
    runs: Sequence[RunRecord],
    claims: Sequence[ClaimResult],
    *,
    title: str = "alignlab report",
    generated: str | None = None,
) -> str:
    """One self-contained HTML page (no external scripts, fonts, images or CDNs; opens offline)."""
    generated = generated or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    ordered = sorted(runs, key=lambda r: (r.experiment, r.batch_id, r.seed, r.run_id))
    runs_by: dict[str, list[RunRecord]] = {}
    for r in ordered:
        runs_by.setdefault(r.experiment, []).append(r)
    claims_by: dict[str, list[ClaimResult]] = {}
    for c in claims:
        claims_by.setdefault(c.experiment, []).append(c)
    names = sorted(set(runs_by) | set(claims_by))
    anchors = _anchors(names)
    budget = ImageBudget()
    parts = [
        _header(title, generated, ordered, claims, names),
        _claims_table(claims, anchors),
        _toc(names, anchors, runs_by, claims_by),
    ]
    if not names:
        parts.append(
            '<p class="empty">No runs in this report. Run an experiment first: '
            "<code>alignlab run NAME --seeds 3</code>.</p>"
        )
    parts += [
        experiment_section(n, anchors[n], runs_by.get(n, []), claims_by.get(n, []), budget) for n in names
    ]
    parts.append(
        f"<footer>alignlab {esc(__version__)} · generated {esc(generated)} · a self-contained page: "
        "it loads nothing from the network and works offline.</footer>"
    )
    return _page(title, "".join(parts))


def write_report(path: Path, runs: Sequence[RunRecord], claims: Sequence[ClaimResult], **kw: Any) -> Path:
    """Render the report and write it atomically (temp file + rename), so no reader sees half a page."""
    path = Path(path)
    text = render_report(runs, claims, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
