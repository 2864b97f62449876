"""The `alignlab` command line: a thin Typer layer that parses, calls the Python API, prints."""

from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import alignlab
from alignlab.core.errors import AlignlabError

app = typer.Typer(
    help="alignlab: run alignment experiments with claims, store, verify and report them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, files) gets 120 columns rather than Rich's 80, so tables stay readable.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

VERDICT_STYLE = {
    "reproduced": "green", "not reproduced": "red", "inconclusive": "yellow", "not measured": "magenta",
}  # fmt: skip
CONTROL_STYLE = {
    "effect vanished": "green", "effect persists": "bold red", "inconclusive": "yellow",
    "not measured": "magenta", "not run": "dim", "no control": "dim",
}  # fmt: skip
KIND_TITLES = {
    "replication": "Replications (published results: reproduced / not reproduced)",
    "exact": "Exact claims (theorems, exact computations: holds / fails)",
    "target": "Targets (alignlab's own bars, not published: met / not met)",
}
STATUS_STYLE = {"done": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Run store folder (default: $ALIGNLAB_HOME or ./alignlab-runs)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NaN"
    return f"{x:.4g}"


def _verdict(label: str, kind: str = "replication") -> str:
    from alignlab.core.verdict import word

    return f"[{VERDICT_STYLE.get(label, 'white')}]{escape(word(kind, label))}[/]"


def _control_cell(claim: Any, text: str) -> str:
    if claim.control is None:
        return "[yellow]none declared[/]" if claim.kind == "replication" else "—"
    style = CONTROL_STYLE.get(text, "white")
    shown = text.upper() if text == "effect persists" else text
    return f"[{style}]{escape(shown)}[/] [dim]({escape(claim.control.name)})[/]"


def _measured(v: Any) -> str:
    if v is None or v.n == 0 or not math.isfinite(v.mean):
        return "—"
    return f"{_fmt(v.mean)} [{_fmt(v.lo)}, {_fmt(v.hi)}]"


def claims_tables(claims: list[Any]) -> list[Table]:
    """Rich tables of judged claims, one per claim kind, with each claim's control verdict."""
    from alignlab.core.registry import KINDS

    tables = []
    for kind in KINDS:
        mine = [c for c in claims if c.claim.kind == kind]
        if not mine:
            continue
        with_control = kind == "replication" or any(c.claim.control for c in mine)
        table = Table(title=KIND_TITLES[kind], show_lines=False, title_justify="left")
        table.add_column("experiment", no_wrap=True)
        table.add_column("claim", overflow="fold")
        table.add_column("verdict", no_wrap=True)
        for col in ("measured (95% CI)", "n"):
            table.add_column(col, overflow="fold")
        if with_control:
            table.add_column("control (expect: effect vanished)", overflow="fold")
        table.add_column("source", overflow="fold")
        for c in mine:
            cells = [escape(c.experiment), escape(c.claim.describe()), _verdict(c.verdict.label, kind),
                     _measured(c.verdict), str(c.verdict.n)]  # fmt: skip
            if with_control:
                cells.append(_control_cell(c.claim, c.control_word))
            table.add_row(*cells, escape(c.claim.source))
        tables.append(table)
    return tables


def claims_table(claims: list[Any], title: str = "Claims") -> Table:
    """One Rich table of judged claims with a kind column (see :func:`claims_tables` for one per kind)."""
    table = Table(title=title, show_lines=False)
    for col in ("experiment", "kind", "claim", "verdict", "measured (95% CI)", "n", "control", "source"):
        table.add_column(col, overflow="fold", no_wrap=col == "experiment")
    for c in claims:
        table.add_row(
            escape(c.experiment), c.claim.kind, escape(c.claim.describe()),
            _verdict(c.verdict.label, c.claim.kind), _measured(c.verdict), str(c.verdict.n),
            _control_cell(c.claim, c.control_word), escape(c.claim.source),
        )  # fmt: skip
    return table


def _claim_line(c: Any) -> str:
    control = f" · control {c.control.name}" if c.control else ""
    return f"[{c.kind}] {c.describe()}{control}"


@app.command("list")
def list_cmd(
    suite: Annotated[str | None, typer.Option(help="Only experiments in this suite.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List registered experiments, their suites and claims."""
    from alignlab.core.registry import all_experiments, suites

    reg = all_experiments()
    if suite is not None and suite not in suites():
        raise AlignlabError(f"unknown suite {suite!r}; suites: {', '.join(sorted(suites()))}")
    exps = [e for e in reg.values() if suite is None or suite in e.suites]
    if as_json:
        print(alignlab.api.dumps([
            {"name": e.name, "suites": e.suites, "description": e.description,
             "presets": list(e.presets),
             "claims": [{"claim": c.describe(), "kind": c.kind, "source": c.source,
                         "control": None if c.control is None else c.control.name} for c in e.claims]}
            for e in exps
        ]))  # fmt: skip
        return
    table = Table(title=f"{len(exps)} experiments")
    for col in ("experiment", "suites", "claims (kind, control)", "description"):
        table.add_column(col, overflow="fold")
    for e in exps:
        claims = "\n".join(escape(_claim_line(c)) for c in e.claims)
        table.add_row(escape(e.name), escape(", ".join(e.suites)), claims, escape(e.description))
    console.print(table)


@app.command()
def describe(name: Annotated[str, typer.Argument(help="Experiment name.")]) -> None:
    """Show an experiment's config fields (type, default, help), presets and claims."""
    import dataclasses

    from alignlab.core.config import field_docs, field_range, field_types, range_text
    from alignlab.core.registry import get_experiment

    exp = get_experiment(name)
    console.print(f"[bold]{escape(exp.name)}[/] — {escape(exp.description)}")
    console.print(f"suites: {escape(', '.join(exp.suites)) or '—'}   module: {escape(exp.module)}")
    console.print(f"presets: {escape(', '.join(exp.presets)) or '—'}")
    table = Table(title=escape(f"config {exp.config_cls.__name__} (set with --set key=value)"))
    for col in ("key", "type", "range", "default", *exp.presets, "help"):
        table.add_column(col, overflow="fold")
    docs, types_ = field_docs(exp.config_cls), field_types(exp.config_cls)
    default = exp.config_cls()
    for f in dataclasses.fields(exp.config_cls):
        presets = [repr(exp.presets[p].get(f.name, "")) if f.name in exp.presets[p] else ""
                   for p in exp.presets]  # fmt: skip
        tp = getattr(types_[f.name], "__name__", str(types_[f.name]))
        bounds = field_range(exp.config_cls, f.name)
        span = "" if bounds is None else range_text(bounds)
        table.add_row(
            escape(f.name), escape(tp), span, escape(repr(getattr(default, f.name))), *map(escape, presets),
            escape(docs.get(f.name, "")),
        )  # fmt: skip
    console.print(table)
    for c in exp.claims:
        console.print(f"  {c.kind} claim: {escape(c.describe())}   [dim]({escape(c.source)})[/]")
        if c.note:
            console.print(f"    [dim]{escape(c.note)}[/]")
        if c.control is not None:
            sets = ", ".join(f"{k}={v!r}" for k, v in c.control.overrides.items())
            console.print(f"    control {escape(c.control.name)}: {escape(sets)} — {escape(c.control.why)}")
        elif c.kind == "replication":
            console.print("    [yellow]no negative control declared[/]")


def _progress_hook(progress: Progress) -> Any:
    state: dict[str, Any] = {"tasks": {}}

    def hook(event: str, payload: Any) -> None:
        if event == "plan":
            state["overall"] = progress.add_task("runs", total=len(payload))
            state["reused"] = 0
        elif event == "progress":
            run_id, frac, desc = payload
            tasks = state["tasks"]
            if run_id not in tasks:
                tasks[run_id] = progress.add_task(f"  {escape(run_id)}", total=1.0)
            text = escape(f"  {run_id} {desc}".rstrip())
            progress.update(tasks[run_id], completed=frac, description=text)
        elif event == "done":
            progress.advance(state["overall"])
            task = state["tasks"].pop(payload.run_id, None)
            if task is not None:
                progress.remove_task(task)
            if payload.status != "done":
                progress.console.print(
                    f"[red]run {escape(payload.run_id)} failed:[/] {escape(str(payload.error))}"
                )

    return hook


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="Experiment, suite (quick, full) or name prefix.")],
    seeds: Annotated[int, typer.Option(help="Number of seeds (0..N-1).", min=1)] = 3,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Config override key=value (repeatable).")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="local (process pool), ray, or inprocess (sequential, this process).")
    ] = "local",
    workers: Annotated[int | None, typer.Option(help="Parallel workers (default: one per core).")] = None,
    store: StoreOpt = None,
    resume: Annotated[bool, typer.Option(help="Re-use finished runs; re-run missing/interrupted.")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    preset: Annotated[str | None, typer.Option(help="Config preset (default: the suite's).")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: $RAY_ADDRESS, else local).")
    ] = None,
    report: Annotated[bool, typer.Option(help="Write the HTML report.")] = True,
    controls: Annotated[
        bool,
        typer.Option(
            help="Also run each claim's negative control (same seeds); its verdict should be "
            "'not reproduced' (effect vanished)."
        ),
    ] = False,
) -> None:
    """Run experiments over seeds, store them, judge their claims and write the report."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        result = alignlab.run(
            target, seeds=seeds, overrides=set_ or [], executor=executor, workers=workers,
            store=store, resume=resume, device=device, preset=preset, ray_address=ray_address,
            report=report, hook=_progress_hook(progress), controls=controls,
        )  # fmt: skip
    counts = {s: sum(r.status == s for r in result.runs) for s in STATUS_STYLE}
    reused = f", {result.reused} reused" if result.reused else ""
    console.print(
        f"batch {result.batch_id}: {len(result.runs)} runs ({counts['done']} done, "
        f"{counts['failed']} failed{reused}) in {escape(str(result.store.root))}"
    )
    print_claims(result.claims)
    if result.report_path:
        console.print(f"report: {escape(str(result.report_path))}")
    if counts["failed"]:
        raise typer.Exit(1)


def print_claims(results: list[Any]) -> None:
    """Claims tables per kind, the reason for each claim that did not pass, control alarms, the summary."""
    from alignlab.core.records import summary_line

    for table in claims_tables(results):
        console.print(table)
    for c in results:
        if c.verdict.label != "reproduced":
            console.print(
                f"  {_verdict(c.verdict.label, c.kind)} {escape(c.experiment)}: "
                f"{escape(c.claim.describe())} — {escape(c.verdict.reason)}"
            )
    for c in results:
        if c.control_failed:
            console.print(
                f"[bold red]  EFFECT PERSISTS under control {escape(c.claim.control.name)}[/] "
                f"({escape(c.claim.control.why)}): {escape(c.experiment)}: {escape(c.claim.describe())} "
                f"is still satisfied ({escape(c.control_verdict.reason)}) — this claim measures nothing."
            )
    console.print(summary_line(results), markup=False, highlight=False)


@app.command()
def runs(
    experiment: Annotated[str | None, typer.Option(help="Only this experiment (or prefix).")] = None,
    status: Annotated[str | None, typer.Option(help="done, failed, interrupted or running.")] = None,
    batch: Annotated[str | None, typer.Option(help="Only runs of this batch.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many (0: all).")] = 50,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored runs, newest first."""
    from alignlab.core.records import RUN_STATUSES

    if status and status not in RUN_STATUSES:
        raise AlignlabError(f"unknown status {status!r}; use one of {', '.join(RUN_STATUSES)}")
    st = alignlab.open_store(store)
    records = st.runs(experiment=experiment, status=status, batch_id=batch, limit=limit or None)
    if as_json:
        print(alignlab.api.dumps([
            {"run_id": r.run_id, "batch_id": r.batch_id, "experiment": r.experiment, "seed": r.seed,
             "status": r.status, "metrics": r.metrics, "started": r.started} for r in records
        ]))  # fmt: skip
        return
    table = Table(title=escape(f"runs in {st.root}") + (f" (newest {limit})" if limit else ""))
    table.add_column("run id", no_wrap=True)
    for col in ("seed", "status", "started (UTC)"):
        table.add_column(col, no_wrap=True)
    table.add_column("metrics (claimed first)", overflow="fold")
    claimed = _claimed_metrics()
    for r in records:
        keys = sorted(r.metrics, key=lambda k: (k not in claimed.get(r.experiment, ()), k))
        metrics = ", ".join(f"{k}={_fmt(r.metrics[k])}" for k in keys[:3])
        style = STATUS_STYLE.get(r.status, "white")
        started = r.started.replace("T", " ").rstrip("Z")[5:16]
        table.add_row(
            escape(r.run_id), str(r.seed), f"[{style}]{r.status}[/]", escape(started), escape(metrics)
        )
    console.print(table)


def _claimed_metrics() -> dict[str, tuple[str, ...]]:
    from alignlab.core.registry import all_experiments

    return {e.name: tuple(c.metric for c in e.claims) for e in all_experiments().values()}


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one run: config, metrics, status, files and provenance."""
    st = alignlab.open_store(store)
    r = st.get_run(run_id)
    try:
        manifest, manifest_problem = r.manifest() or {}, ""
    except (AlignlabError, OSError) as exc:
        manifest, manifest_problem = {}, str(exc)
    if as_json:
        print(alignlab.api.dumps({**r.__dict__, "run_dir": str(r.run_dir), "manifest": manifest}))
        return
    style = STATUS_STYLE.get(r.status, "white")
    control = f"  control {escape(str(r.control))}" if getattr(r, "control", None) else ""
    console.print(
        f"[bold]{escape(r.run_id)}[/]  [{style}]{escape(r.status)}[/]  batch {escape(r.batch_id)}{control}"
    )
    console.print(escape(f"experiment {r.experiment}  seed {r.seed}  preset {r.preset}  device {r.device}"))
    console.print(escape(f"started {r.started}  ended {r.ended}  folder {r.run_dir}"))
    if r.error:
        console.print(f"[red]error:[/] {escape(r.error)}")
    if manifest_problem:
        console.print(f"[red]manifest:[/] {escape(manifest_problem)}")
    table = Table(title="config / metrics", show_header=False)
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for k, v in r.config.items():
        table.add_row(escape(f"cfg.{k}"), escape(repr(v)))
    unseen = getattr(r, "not_observed", {}) or {}
    for k, v in r.metrics.items():
        value = f"not observed: {unseen[k]}" if k in unseen else _fmt(v)
        table.add_row(escape(k), escape(value))
    console.print(table)
    if manifest:
        code = manifest.get("code") if isinstance(manifest.get("code"), dict) else {}
        env = manifest.get("env") if isinstance(manifest.get("env"), dict) else {}
        files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
        console.print(escape(
            f"code: alignlab {code.get('alignlab_version')} source {str(code.get('source_hash'))[:12]} "
            f"git {code.get('git_commit')}  env: {env.get('python')} / torch {env.get('torch')}"
        ))  # fmt: skip
        console.print(escape(f"files: {', '.join(map(str, files))}"))


@app.command()
def verify(
    run_ids: Annotated[list[str] | None, typer.Argument(help="Run ids (or use --all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Verify every finished run and every batch.")] = False,
    rerun: Annotated[bool, typer.Option(help="Re-execute runs and compare metrics.")] = True,
    script: Annotated[
        list[Path] | None,
        typer.Option(
            "--script",
            help="A Python file defining experiments to re-execute (repeatable). verify never "
            "imports code the store names; scripts must be passed explicitly.",
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Check stored runs and verdicts: every displayed number recomputed from the manifest-covered files.

    Per run: file hashes against the manifest, metrics.json/config.json against it, run.json and
    the index row against both, then (unless --no-rerun) a re-execution compared metric by metric.
    Per batch: every claim judged again from the runs' metrics and compared with the stored verdicts.
    """
    if not run_ids and not all_:
        raise AlignlabError("name run ids to verify, or pass --all")
    with console.status("verifying..."):
        result = alignlab.verify(None if all_ else run_ids, store=store, rerun=rerun, scripts=script or ())
    table = Table(title=f"checked {len(result)} runs")
    for col in ("run id", "status", "files & records", "re-run", "details"):
        table.add_column(col, overflow="fold")
    for v in result:
        files = "[green]ok[/]" if v.files_ok else "[red]BAD[/]"
        color = {"match": "green", "mismatch": "red", "error": "red"}.get(v.rerun, "dim")
        status = f"[{STATUS_STYLE.get(v.status, 'white')}]{escape(v.status)}[/]"
        details = "; ".join([*v.problems, *v.differences, *([v.note] if v.note else [])])
        table.add_row(escape(v.run_id), status, files, f"[{color}]{escape(v.rerun)}[/]", escape(details))
    console.print(table)
    for b in result.batches:
        if b.ok:
            console.print(f"batch {escape(b.batch_id)}: {b.claims} stored verdicts match re-judging")
        for p in b.problems:
            console.print(f"[red]batch {escape(b.batch_id)}:[/] {escape(p)}")
    for p in result.problems:
        console.print(f"[red]store:[/] {escape(p)}")
    failed = len(result.failed_runs)
    bad = sum(not v.ok for v in result) - failed
    bad_batches = sum(not b.ok for b in result.batches)
    if failed:
        console.print(
            f"[yellow]{failed} run(s) failed when executed[/]: their error is stored, they have no "
            "results to verify and are not counted as verified"
        )
    if not result.ok:
        parts = [f"{bad} of {len(result)} runs failed verification"] if bad else []
        parts += [f"{bad_batches} batch(es) with verdicts that differ"] if bad_batches else []
        parts += [f"{len(result.problems)} store problem(s)"] if result.problems else []
        parts += [f"{failed} failed run(s)"] if failed else []
        err_console.print(f"[red]{'; '.join(parts)}; {result.verified} of {len(result)} runs verified[/]")
        raise typer.Exit(1)
    n = len(result.batches)
    console.print(f"[green]all {len(result)} runs verified[/], {n} batch{'es' if n != 1 else ''} re-judged")


@app.command()
def report(
    run_ids: Annotated[list[str] | None, typer.Argument(help="Run ids to include.")] = None,
    suite: Annotated[str | None, typer.Option(help="The latest batch of this suite.")] = None,
    experiment: Annotated[str | None, typer.Option(help="Runs of this experiment.")] = None,
    batch: Annotated[str | None, typer.Option(help="Runs of this batch.")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.")] = Path("report.html"),
    store: StoreOpt = None,
) -> None:
    """Write a self-contained HTML report (default: the latest batch in the store)."""
    path = alignlab.report(
        run_ids, output=output, store=store, suite=suite, experiment=experiment, batch=batch
    )
    console.print(f"report: {escape(str(path))}")


@app.command()
def claims(
    store: StoreOpt = None,
    markdown: Annotated[bool, typer.Option(help="Print a Markdown table (for docs).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every registered claim, its source, and its last verdict in the store."""
    rows = alignlab.claims_index(store)
    if as_json:
        print(alignlab.api.dumps(rows))
        return
    if markdown:
        print(claims_markdown(rows))
        return
    from alignlab.core.registry import KINDS

    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        table = Table(title=KIND_TITLES[kind], title_justify="left")
        for col in ("experiment", "claim", "last verdict", "measured (95% CI)", "control", "source"):
            table.add_column(col, overflow="fold")
        for r in mine:
            verdict = _verdict(r["verdict"], kind) if r["verdict"] else "[dim]not run[/]"
            control = (
                "—"
                if r["control"] is None
                else (
                    f"[{CONTROL_STYLE.get(r['control_word'], 'white')}]{escape(r['control_word'])}[/] "
                    f"[dim]({escape(r['control']['name'])})[/]"
                )
            )
            if r["control"] is None and kind == "replication":
                control = "[yellow]none declared[/]"
            table.add_row(escape(r["experiment"]), escape(r["claim"]), verdict,
                          _measured_row(r["measured"]), control, escape(r["source"]))  # fmt: skip
        console.print(table)
    console.print(claims_summary(rows), markup=False, highlight=False)


def _measured_row(m: dict[str, Any] | None) -> str:
    if not m or m["n"] == 0 or m["mean"] is None or not math.isfinite(m["mean"]):
        return "—"
    return f"{_fmt(m['mean'])} [{_fmt(m['lo'])}, {_fmt(m['hi'])}] (n={m['n']})"


def claims_summary(rows: list[dict[str, Any]]) -> str:
    """The summary line of a claims index: replications reproduced, exact holds/fails, targets met."""
    from alignlab.core.verdict import summarize

    line = summarize((r["kind"], r["verdict"], r["control_verdict"]) for r in rows if r["verdict"])
    not_run = sum(r["verdict"] is None for r in rows)
    return line + (f"; {not_run} of {len(rows)} claims not run yet" if not_run else "")


def claims_markdown(rows: list[dict[str, Any]]) -> str:
    """The claims index as Markdown: a summary line, then one table per claim kind."""
    from alignlab.core.registry import KIND_DOC, KINDS

    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    out = [claims_summary(rows) + "."]
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        title = KIND_TITLES[kind].split(" (")[0]
        out += ["", f"### {title}", "", f"*{KIND_DOC[kind]}.*", ""]
        with_control = kind == "replication" or any(r["control"] for r in mine)
        head = "| experiment | claim | source | last verdict | measured |"
        out += [head + (" control |" if with_control else ""), "|---" * (6 if with_control else 5) + "|"]
        for r in mine:
            verdict = r["word"] or "not run"
            line = (
                f"| `{cell(r['experiment'])}` | `{cell(r['claim'])}` | {cell(r['source'])} | "
                f"{cell(verdict)} | {cell(_measured_row(r['measured']))} |"
            )
            if with_control:
                ctl = r["control"]
                text = (
                    "none declared"
                    if ctl is None
                    else (f"{r['control_word']} (`{cell(ctl['name'])}`: {cell(ctl['why'])})")
                )
                line += f" {cell(text)} |"
            out.append(line)
    return "\n".join(out)


@app.command("envs")
def envs_cmd(as_json: JsonOpt = False) -> None:
    """List the safety gridworlds: name, Gymnasium id, what each one probes."""
    import inspect

    from alignlab.envs.registry import WORLDS, env_id, world_class

    rows = []
    for name in sorted(WORLDS):
        try:
            module = inspect.getmodule(world_class(name))
            doc = " ".join((inspect.getdoc(module) or "").split("\n\n")[0].split())
        except (ImportError, AttributeError) as exc:
            doc = f"(unavailable: {exc})"
        rows.append({"name": name, "id": env_id(name), "description": doc})
    if as_json:
        print(alignlab.api.dumps(rows))
        return
    table = Table(title=f"{len(rows)} environments (gymnasium.make(id) after `import alignlab.envs`)")
    table.add_column("name", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("description", overflow="fold")
    for r in rows:
        table.add_row(escape(r["name"]), escape(r["id"]), escape(r["description"]))
    console.print(table)


organisms_app = typer.Typer(
    help="Built-in model organisms: small transformers trained here, cached, with checkpoints.",
    no_args_is_help=True,
)
app.add_typer(organisms_app, name="organisms")
OrganismArg = Annotated[str, typer.Argument(help="Organism name (see `alignlab organisms list`).")]
SeedOpt = Annotated[int, typer.Option(help="Training seed.", min=0)]
OrganismSetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Config override key=value (repeatable).")
]


def _organism_config(name: str, set_: list[str] | None) -> Any:
    from alignlab.core.config import apply_overrides, overrides_from_strings
    from alignlab.models.organisms import resolve_config

    cfg = resolve_config(name)
    return apply_overrides(cfg, overrides_from_strings(set_)) if set_ else cfg


class _ModelErrors:
    """Turns alignlab.models' user errors into AlignlabError, which `main` prints on one line."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, tp: Any, exc: BaseException | None, tb: Any) -> None:
        from alignlab.models.errors import ModelError

        if isinstance(exc, ModelError):
            raise AlignlabError(str(exc)) from None


@organisms_app.command("list")
def organisms_list(as_json: JsonOpt = False) -> None:
    """List the organisms: name, description, whether trained in the cache, and where."""
    from alignlab.models.organisms import list_organisms

    rows = [{"name": e.name, "description": e.description, "cached": e.cached, "path": str(e.path)}
            for e in list_organisms()]  # fmt: skip
    if as_json:
        print(alignlab.api.dumps(rows))
        return
    table = Table(title=f"{len(rows)} model organisms (alignlab.models.load('organism:NAME'))")
    for col in ("name", "description", "cached", "path"):
        table.add_column(col, overflow="fold", no_wrap=col in ("name", "cached"))
    for r in rows:
        cached = "[green]yes[/]" if r["cached"] else "no"
        table.add_row(escape(r["name"]), escape(r["description"]), cached, escape(r["path"]))
    console.print(table)


@organisms_app.command("train")
def organisms_train(
    name: OrganismArg,
    seed: SeedOpt = 0,
    force: Annotated[bool, typer.Option(help="Train again even if cached.")] = False,
    set_: OrganismSetOpt = None,
) -> None:
    """Train an organism into the cache (resuming an interrupted training), showing progress."""
    from alignlab.models.organisms import is_trained, organism_path, train_organism

    with _ModelErrors():
        cfg = _organism_config(name, set_)
        path = organism_path(name, config=cfg, seed=seed)
        if is_trained(path) and not force:
            console.print(escape(f"{name}: already trained at {path} (--force trains again)"), soft_wrap=True)
            return
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(), console=console, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task(name, total=1.0)
            path = train_organism(
                name, config=cfg, seed=seed, force=force,
                progress=lambda frac, msg: bar.update(task, completed=frac, description=f"{name}: {msg}"),
            )  # fmt: skip
    console.print(escape(f"{name}: trained at {path}"), soft_wrap=True)


@organisms_app.command("path")
def organisms_path_cmd(name: OrganismArg, seed: SeedOpt = 0, set_: OrganismSetOpt = None) -> None:
    """Print the cache folder of an organism (trained or not) for this seed and config."""
    from alignlab.models.organisms import organism_path

    with _ModelErrors():
        print(organism_path(name, config=_organism_config(name, set_), seed=seed))


@app.command()
def reindex(store: StoreOpt = None) -> None:
    """Rebuild the store's index from its run folders and batch files (also when the index is damaged).

    Runs whose run.json is unreadable are rebuilt from their manifest; batches whose file is
    unreadable get their claims judged again. The previous index is kept as index.db.*-<time>.
    """
    rep = alignlab.api.reindex(store)
    root = alignlab.api.open_store(store).root
    console.print(f"re-indexed {rep.runs} runs in {escape(str(root))}")
    for run_id in rep.from_manifest:
        console.print(f"  {escape(run_id)}: run.json was unreadable; rebuilt from its manifest")
    for batch_id in rep.unjudged:
        console.print(f"  batch {escape(batch_id)}: batch file unreadable or missing; claims judged again")
    for line in rep.skipped:
        console.print(f"  [yellow]skipped[/] {escape(line)}")
    if rep.backup is not None:
        console.print(f"  previous index kept as {escape(str(rep.backup))}")


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(ClickException classes, NoArgsIsHelpError classes) of every click Typer may parse with:
    recent Typer bundles its own copy as ``typer._click``, older ones use ``click``."""
    found, no_args = [], []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        found.append(mod.ClickException)
        if hasattr(mod, "NoArgsIsHelpError"):
            no_args.append(mod.NoArgsIsHelpError)
    return tuple(found), tuple(no_args)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; user errors print one line and exit non-zero (usage errors: 2)."""
    click_errors, no_args_errors = _click_exceptions()
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("ALIGNLAB_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        code = app(args, prog_name="alignlab", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except AlignlabError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {escape(_one_line(str(exc)))}", highlight=False, soft_wrap=True)
        sys.exit(130 if type(exc).__name__ == "RunInterrupted" else 2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("[yellow]aborted[/]")
        sys.exit(130)
    except click_errors as exc:  # usage errors: unknown option, missing argument, bad value, bare `alignlab`
        if not isinstance(exc, no_args_errors):  # Typer has already printed the help for those
            exc.show()  # type: ignore[attr-defined]
        code = getattr(exc, "exit_code", 2)
        sys.exit(code if isinstance(code, int) and code else 2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except OSError as exc:
        if debug:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        err_console.print(
            f"[red]error:[/] {escape(_one_line(exc.strerror or str(exc)))}{escape(str(where))}",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        sys.exit(1)
    except Exception as exc:
        if debug:
            raise
        err_console.print(
            f"[red]internal error:[/] {escape(_one_line(f'{type(exc).__name__}: {exc}'))} "
            "(re-run with --debug for the traceback)",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        sys.exit(1)
