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
from alignlab.core.runner import BatchResult, ProgressHook, run_batch
from alignlab.core.store import ReindexReport, Store
from alignlab.core.verify import VerifyReport, verify_store


def open_store(store: Store | Path | str | None = None, *, create: bool = False) -> Store:
    """The store at `store` (default ``$ALIGNLAB_HOME`` or ``./alignlab-runs``, ``~`` expanded)."""
    return store if isinstance(store, Store) else Store(store, create=create)


def reindex(store: Store | Path | str | None = None) -> ReindexReport:
    """Rebuild a store's index from its run folders and batch files, even when the index is damaged.

    Runs whose run.json is unreadable are rebuilt from their manifest; batches whose file is
    unreadable or missing get their claims judged again from the stored runs (registered
    experiments' claims; others are listed in the report's ``skipped``).
    """
    from alignlab.core.registry import all_experiments
    from alignlab.core.runner import judge_batch

    st = store if isinstance(store, Store) else Store(store, create=False, check_index=False)
    report = st.reindex()
    registry = all_experiments()
    for batch_id in report.unjudged:
        names = sorted({r.experiment for r in st.runs(batch_id=batch_id)})
        unknown = [n for n in names if n not in registry]
        if unknown:
            report.skipped.append(f"batch {batch_id}: claims of unregistered {unknown} not re-judged")
        judge_batch(st, batch_id, [registry[n] for n in names if n in registry])
    return report


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
    controls: bool = False,
) -> BatchResult:
    """Run an experiment, a suite or a name prefix over `seeds`; store, judge and report it.

    With `controls`, each experiment's negative controls run too (same seeds) and every claim
    is judged again on its control's runs, where it should come out *not reproduced*.

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
        controls=controls,
    )
    if report:
        path = result.store.root / "reports" / f"{result.batch_id}.html"
        write_report(path, result.runs, result.claims, title=f"alignlab run {name_or_suite}")
        result = replace(result, report_path=path)
    return result


def load_runs(store: Store | Path | str | None = None, **filters: Any) -> Any:
    """All runs in a store as a pandas DataFrame, one row per run, with metrics and verdicts.

    Columns: run_id, batch_id, experiment, seed, status, control (the negative control a run
    belongs to, or None), preset, device, started, ended, error, config (dict), config_hash,
    not_observed (metric -> reason), one ``metric.<name>`` column per metric (NaN where not
    observed), ``verdicts`` (claim -> verdict word of the run's batch: reproduced / holds / met
    ..., or for a control run the control's word: effect vanished / effect persists) and
    ``kinds`` (claim -> replication / exact / target).
    """
    import pandas as pd

    st = open_store(store)
    runs = st.runs(**filters)
    judged: dict[tuple[str, str], list[ClaimResult]] = {}
    for c in st.claims_all():
        judged.setdefault((c.batch_id, c.experiment), []).append(c)
    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run_id": r.run_id, "batch_id": r.batch_id, "experiment": r.experiment,
            "seed": r.seed, "status": r.status, "control": r.control, "preset": r.preset,
            "device": r.device, "started": r.started, "ended": r.ended, "error": r.error,
            "config": r.config, "config_hash": r.config_hash, "not_observed": dict(r.not_observed),
        }  # fmt: skip
        for k, v in r.metrics.items():
            row[f"metric.{k}"] = v
        mine = judged.get((r.batch_id, r.experiment), [])
        if r.control is None:
            row["verdicts"] = {c.claim.describe(): c.word for c in mine}
            row["kinds"] = {c.claim.describe(): c.kind for c in mine}
        else:
            ctl = [c for c in mine if c.claim.control is not None and c.claim.control.name == r.control]
            row["verdicts"] = {c.claim.describe(): c.control_word for c in ctl}
            row["kinds"] = {c.claim.describe(): c.kind for c in ctl}
        rows.append(row)
    columns = ["run_id", "batch_id", "experiment", "seed", "status", "control", "preset", "device",
               "started", "ended", "error", "config", "config_hash", "not_observed"]  # fmt: skip
    return pd.DataFrame(rows, columns=None if rows else [*columns, "verdicts", "kinds"])


def claim_rows(results: Sequence[ClaimResult]) -> list[dict[str, Any]]:
    """Judged claims as plain dicts: kind, verdict label and word, interval, control verdict."""
    rows = []
    for c in results:
        v, cv, ctl = c.verdict, c.control_verdict, c.claim.control
        rows.append({
            "batch_id": c.batch_id, "experiment": c.experiment, "kind": c.kind,
            "claim": c.claim.describe(), "metric": c.claim.metric, "source": c.claim.source,
            "verdict": v.label, "word": c.word, "mean": v.mean, "lo": v.lo, "hi": v.hi, "n": v.n,
            "reason": v.reason, "control": ctl.name if ctl else None,
            "control_verdict": cv.label if cv else None, "control_word": c.control_word,
            "control_mean": cv.mean if cv else None, "control_reason": cv.reason if cv else None,
        })  # fmt: skip
    return rows


def load_claims(store: Store | Path | str | None = None, *, batch: str | None = None) -> Any:
    """Judged claims as a pandas DataFrame, one row per claim and batch (all batches by default).

    Columns: batch_id, experiment, kind, claim, metric, source, verdict (label), word (reproduced /
    holds / met ...), mean, lo, hi, n, reason, control, control_verdict, control_word, control_mean,
    control_reason.
    """
    import pandas as pd

    st = open_store(store)
    results = st.claims(batch_id=batch) if batch else st.claims_all()
    rows = claim_rows(results)
    return pd.DataFrame(rows, columns=None if rows else _CLAIM_COLUMNS)


_CLAIM_COLUMNS = [
    "batch_id", "experiment", "kind", "claim", "metric", "source", "verdict", "word", "mean", "lo",
    "hi", "n", "reason", "control", "control_verdict", "control_word", "control_mean", "control_reason",
]  # fmt: skip


def verify(
    run_ids: Sequence[str] | None = None,
    *,
    store: Store | Path | str | None = None,
    rerun: bool = True,
    scripts: Sequence[Path | str] = (),
) -> VerifyReport:
    """Check stored runs (all finished ones when `run_ids` is None) and their batches' verdicts.

    Every displayed number is recomputed from the manifest-covered files: file hashes, metrics.json
    against the manifest, run.json and the index row against both, each batch's claims judged
    again from the runs' metrics and compared with the stored verdicts, and (with `rerun`) each
    finished run re-executed. Experiments are looked up in the registry only; one defined in a
    script is re-executed only when the script is passed in `scripts`. The result iterates over
    the per-run results; ``.ok`` is the verdict on everything checked.
    """
    return verify_store(open_store(store), run_ids, rerun=rerun, scripts=scripts)


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
    if batch:
        known = [b["batch_id"] for b in st.batches()]
        if batch not in known:
            listed = ", ".join(known[:5]) + (f" (and {len(known) - 5} more)" if len(known) > 5 else "")
            raise AlignlabError(
                f"no batch {batch!r} in store {st.root}; "
                + (f"known batches, newest first: {listed}" if known else "the store has no batches")
            )
        return st.runs(batch_id=batch), st.claims(batch_id=batch)
    batches = st.batches(target=suite) if suite else st.batches()
    if not batches:
        what = f"suite {suite!r}" if suite else "anything"
        raise AlignlabError(f"no batch of {what} in store {st.root}; run it first")
    batch = batches[0]["batch_id"]
    return st.runs(batch_id=batch), st.claims(batch_id=batch)


def check_output_path(path: Path | str) -> Path:
    """`path` if a report may be written there: a regular file or a new name in an existing folder
    tree; refuses folders, FIFOs, devices and paths under a file, with a one-line error."""
    import stat

    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        mode = None  # a parent is a file: named below
    except OSError as exc:
        raise AlignlabError(f"cannot write {path}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise AlignlabError(f"{path} is a folder; pass a file name, e.g. -o {path / 'report.html'}")
    if mode is not None and not stat.S_ISREG(mode):
        raise AlignlabError(f"{path} is not a regular file (a device, FIFO or socket); pass a file name")
    for parent in reversed(path.parents):  # the outermost file on the way down is the culprit
        if (parent.exists() or parent.is_symlink()) and not parent.is_dir():
            raise AlignlabError(f"cannot write {path}: {parent} is a file, not a folder")
    return path


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
    output = check_output_path(output)
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
    """Every registered claim with its kind, source, control, and last stored verdicts (if a store exists).

    The verdict comes from the newest batch without ``--set`` overrides that judged the claim (a
    batch with overrides only as a fallback); the control verdict from the newest such batch that
    ran controls.
    """
    from alignlab.core.registry import all_experiments
    from alignlab.core.verdict import control_word, word

    last: dict[tuple[str, str], ClaimResult] = {}
    last_control: dict[tuple[str, str], ClaimResult] = {}
    try:
        st = open_store(store)
        plain = {b["batch_id"] for b in st.batches() if not _has_overrides(b.get("spec"))}
        # oldest first, so the newest batch wins; batches with --set overrides only as a fallback
        ordered = sorted(st.claims_all(), key=lambda c: (c.batch_id in plain, c.batch_id))
        for c in ordered:
            last[(c.experiment, c.claim.describe())] = c
            if c.control_verdict is not None:
                last_control[(c.experiment, c.claim.describe())] = c
    except AlignlabError:
        pass
    rows = []
    for exp in all_experiments().values():
        for claim in exp.claims:
            c = last.get((exp.name, claim.describe()))
            cc = last_control.get((exp.name, claim.describe()))
            cv = cc.control_verdict if cc else None
            ctl = claim.control
            rows.append({
                "experiment": exp.name, "suites": list(exp.suites), "kind": claim.kind,
                "claim": claim.describe(), "source": claim.source,
                "verdict": c.verdict.label if c else None,
                "word": word(claim.kind, c.verdict.label) if c else None,
                "measured": _measured(c.verdict) if c else None,
                "reason": c.verdict.reason if c else None,
                "batch": c.batch_id if c else None,
                "control": None if ctl is None else {
                    "name": ctl.name, "overrides": dict(ctl.overrides), "why": ctl.why},
                "control_verdict": cv.label if cv else None,
                "control_word": control_word(cv.label) if cv else ("not run" if ctl else "no control"),
                "control_measured": _measured(cv) if cv else None,
                "control_batch": cc.batch_id if cc else None,
            })  # fmt: skip
    return rows


def _measured(v: Any) -> dict[str, Any]:
    return {"mean": v.mean, "lo": v.lo, "hi": v.hi, "n": v.n}


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
