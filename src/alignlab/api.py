"""The Python API that notebooks call and the CLI wraps: run, load_runs, verify, report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from alignlab.core.errors import AlignlabError
from alignlab.core.executors import Executor
from alignlab.core.records import ClaimResult, RunRecord
from alignlab.core.runner import BatchResult, ProgressHook, VerifyResult, run_batch, verify_run
from alignlab.core.store import Store


def open_store(store: Store | Path | str | None = None, *, create: bool = False) -> Store:
    """The store at `store` (default ``$ALIGNLAB_HOME`` or ``./alignlab-runs``)."""
    return store if isinstance(store, Store) else Store(store, create=create)


def run(
    name_or_suite: str,
    *,
    seeds: int | Sequence[int] = 3,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    executor: str | Executor = "local",
    workers: int | None = None,
    store: Store | Path | str | None = None,
    resume: bool = False,
    device: str = "cpu",
    preset: str | None = None,
    ray_address: str | None = None,
    report: bool = True,
    hook: ProgressHook | None = None,
) -> BatchResult:
    """Run an experiment, a suite or a name prefix over `seeds`; store, judge and report it.

    >>> result = alignlab.run("shaping.naive_cycle", seeds=2)   # doctest: +SKIP
    >>> result.claims[0].verdict.label                           # doctest: +SKIP
    'reproduced'
    """
    result = run_batch(
        name_or_suite,
        seeds=seeds,
        overrides=overrides,
        store=store if isinstance(store, Store) else Store(store, create=True),
        executor=executor,
        workers=workers,
        resume=resume,
        device=device,
        preset=preset,
        ray_address=ray_address,
        hook=hook,
    )
    if report:
        path = result.store.root / "reports" / f"{result.batch_id}.html"
        write_report(path, result.runs, result.claims, title=f"alignlab run {name_or_suite}")
        result = replace(result, report_path=path)
    return result


def load_runs(store: Store | Path | str | None = None, **filters: Any) -> Any:
    """All runs in a store as a pandas DataFrame, one row per run, with metrics and verdicts.

    Columns: run_id, batch_id, experiment, seed, status, preset, device, started, ended,
    error, config (dict), config_hash, one ``metric.<name>`` column per metric, and
    ``verdicts`` (claim -> verdict label of the run's batch).
    """
    import pandas as pd

    st = open_store(store)
    runs = st.runs(**filters)
    verdicts: dict[tuple[str, str], dict[str, str]] = {}
    for c in st.claims_all():
        verdicts.setdefault((c.batch_id, c.experiment), {})[c.claim.describe()] = c.verdict.label
    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run_id": r.run_id, "batch_id": r.batch_id, "experiment": r.experiment,
            "seed": r.seed, "status": r.status, "preset": r.preset, "device": r.device,
            "started": r.started, "ended": r.ended, "error": r.error, "config": r.config,
            "config_hash": r.config_hash,
        }  # fmt: skip
        for k, v in r.metrics.items():
            row[f"metric.{k}"] = v
        row["verdicts"] = verdicts.get((r.batch_id, r.experiment), {})
        rows.append(row)
    columns = ["run_id", "batch_id", "experiment", "seed", "status", "preset", "device",
               "started", "ended", "error", "config", "config_hash"]  # fmt: skip
    df = pd.DataFrame(rows, columns=None if rows else [*columns, "verdicts"])
    return df


def verify(
    run_ids: Sequence[str] | None = None,
    *,
    store: Store | Path | str | None = None,
    rerun: bool = True,
) -> list[VerifyResult]:
    """Check stored runs (all finished ones when `run_ids` is None): hashes and re-execution."""
    st = open_store(store)
    if run_ids:
        records = [st.get_run(r) for r in run_ids]
    else:
        records = [r for r in st.runs() if r.status in ("done", "failed")]
        if not records:
            raise AlignlabError(f"no finished runs to verify in {st.root}")
    return [verify_run(st, rec, rerun=rerun) for rec in records]


def select_for_report(
    st: Store,
    run_ids: Sequence[str] | None = None,
    *,
    suite: str | None = None,
    experiment: str | None = None,
    batch: str | None = None,
) -> tuple[list[RunRecord], list[ClaimResult]]:
    """Runs and claims for a report: given runs, the latest batch of a suite, an experiment,
    a batch, or (with no selector) the latest batch in the store."""
    if run_ids:
        runs = [st.get_run(r) for r in run_ids]
        batches = {r.batch_id for r in runs}
        claims = [c for b in sorted(batches) for c in st.claims(batch_id=b)]
        names = {r.experiment for r in runs}
        return runs, [c for c in claims if c.experiment in names]
    if experiment:
        runs = st.runs(experiment=experiment)
        claims = [c for c in st.claims() if c.experiment == experiment
                  or c.experiment.startswith(experiment + ".")]  # fmt: skip
        latest = {c.batch_id for c in claims}
        return [r for r in runs if r.batch_id in latest] or runs, claims
    if suite or not batch:
        batches = st.batches(target=suite) if suite else st.batches()
        if not batches:
            what = f"suite {suite!r}" if suite else "anything"
            raise AlignlabError(f"no batch of {what} in store {st.root}; run it first")
        batch = batches[0]["batch_id"]
    return st.runs(batch_id=batch), st.claims(batch_id=batch)


def report(
    run_ids: Sequence[str] | None = None,
    *,
    output: Path | str = "report.html",
    store: Store | Path | str | None = None,
    suite: str | None = None,
    experiment: str | None = None,
    batch: str | None = None,
    title: str | None = None,
) -> Path:
    """Write one self-contained HTML report (claims table, metrics, curves, figures, provenance)."""
    st = open_store(store)
    runs, claims = select_for_report(st, run_ids, suite=suite, experiment=experiment, batch=batch)
    label = title or "alignlab report" + (
        f": {suite or experiment or batch}" if (suite or experiment or batch) else ""
    )
    return write_report(Path(output), runs, claims, title=label)


def write_report(path: Path, runs: Sequence[RunRecord], claims: Sequence[ClaimResult], title: str) -> Path:
    """Render and atomically write the HTML report."""
    from alignlab.reporting import write_report as _write

    return _write(Path(path), runs, claims, title=title)


def claims_index(store: Store | Path | str | None = None) -> list[dict[str, Any]]:
    """Every registered claim with its source and its last stored verdict (if a store exists)."""
    from alignlab.core.registry import all_experiments

    last: dict[tuple[str, str], ClaimResult] = {}
    try:
        st = open_store(store)
        plain = {b["batch_id"] for b in st.batches() if not _has_overrides(b.get("spec"))}
        # oldest first, so the newest batch wins; batches with --set overrides only as a fallback
        ordered = sorted(st.claims_all(), key=lambda c: (c.batch_id in plain, c.batch_id))
        for c in ordered:
            last[(c.experiment, c.claim.describe())] = c
    except AlignlabError:
        pass
    rows = []
    for exp in all_experiments().values():
        for claim in exp.claims:
            c = last.get((exp.name, claim.describe()))
            rows.append({
                "experiment": exp.name, "suites": list(exp.suites), "claim": claim.describe(),
                "source": claim.source,
                "verdict": c.verdict.label if c else None,
                "measured": None if c is None else {"mean": c.verdict.mean, "lo": c.verdict.lo,
                                                    "hi": c.verdict.hi, "n": c.verdict.n},
                "batch": c.batch_id if c else None,
            })  # fmt: skip
    return rows


def _has_overrides(spec: str | None) -> bool:
    try:
        return bool(json.loads(spec or "{}").get("overrides"))
    except (json.JSONDecodeError, AttributeError):
        return False


def _json_default(obj: Any) -> Any:
    return str(obj)


def dumps(obj: Any) -> str:
    """JSON for CLI `--json` output."""
    return json.dumps(obj, indent=2, default=_json_default)
