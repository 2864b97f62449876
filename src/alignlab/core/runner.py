"""Plan runs (experiments x seeds x overrides), execute them, store results, judge claims."""

from __future__ import annotations

import contextlib
import math
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from alignlab.core import config as cfgmod
from alignlab.core.errors import AlignlabError, OverrideError, StoreError, did_you_mean
from alignlab.core.execute import RunOutcome, RunSpec
from alignlab.core.executors import Executor, make_executor
from alignlab.core.fsutil import atomic_write_bytes, atomic_write_json
from alignlab.core.manifest import MANIFEST_FORMAT, MANIFEST_VERSION, check_files, hash_files
from alignlab.core.records import ClaimResult, RunRecord
from alignlab.core.registry import Claim, Experiment, NotObserved, resolve
from alignlab.core.store import RunRow, Store
from alignlab.core.verdict import Verdict, judge

ProgressHook = Callable[[str, Any], None]
"""Receives ('plan', specs), ('progress', (run_id, frac, desc)) and ('done', outcome) events."""


class RunInterrupted(AlignlabError):
    """The user stopped a batch (Ctrl-C); finished runs are kept, the rest marked interrupted."""


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: what to execute, or a finished run reused by --resume."""

    spec: RunSpec
    experiment: Experiment
    reused: RunRecord | None = None


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one `alignlab run`: its batch id, runs and judged claims."""

    batch_id: str
    target: str
    store: Store
    runs: list[RunRecord]
    claims: list[ClaimResult]
    reused: int = 0
    report_path: Path | None = field(default=None)


def new_batch_id() -> str:
    """A sortable, unique batch id."""
    return time.strftime("b%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def _overrides_for(exps: Sequence[Experiment], overrides: Mapping[str, Any]) -> dict[str, dict]:
    per_exp: dict[str, dict[str, Any]] = {e.name: {} for e in exps}
    for key, value in overrides.items():
        owners = [e for e in exps if key in cfgmod.field_types(e.config_cls)]
        if not owners:
            valid = list(dict.fromkeys(k for e in exps for k in cfgmod.field_types(e.config_cls)))
            raise OverrideError(
                f"unknown config key {key!r}.{did_you_mean(key, valid)} Valid keys: {', '.join(valid)}"
            )
        for e in owners:
            per_exp[e.name][key] = value
    return per_exp


def _check_preset(exps: Sequence[Experiment], preset: str | None, explicit: bool) -> None:
    """An explicit --preset every selected experiment must know (a suite it belongs to counts)."""
    if not explicit or not preset:
        return
    for exp in exps:
        if preset not in exp.presets and preset not in exp.suites:
            known = sorted({p for e in exps for p in e.presets})
            raise OverrideError(
                f"unknown preset {preset!r} for {exp.name}.{did_you_mean(preset, known)} "
                f"Presets: {', '.join(sorted(exp.presets)) or 'none'}"
            )


def plan(
    target: str,
    seeds: int | Sequence[int] = 3,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    preset: str | None = None,
    device: str = "cpu",
    batch_id: str | None = None,
    controls: bool = False,
) -> list[PlannedRun]:
    """The runs `target` stands for: each experiment's config (preset + overrides) x each seed.

    With `controls`, each experiment's distinct negative controls are planned too: the same
    config with the control's overrides on top, over the same seeds. Every config is
    range-checked here, before anything runs.
    """
    exps, suite_preset = resolve(target)
    _check_preset(exps, preset, explicit=preset is not None)
    preset = preset or suite_preset
    if isinstance(overrides, Sequence) and not isinstance(overrides, str | bytes):
        overrides = cfgmod.overrides_from_strings(overrides)
    per_exp = _overrides_for(exps, overrides or {})
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise AlignlabError("--seeds must be at least 1")
    batch_id = batch_id or new_batch_id()
    configs: list[tuple[Experiment, str | None, Any]] = []
    for exp in exps:
        cfg = cfgmod.apply_overrides(exp.default_config(preset), per_exp[exp.name])
        cfgmod.check_ranges(cfg)
        configs.append((exp, None, cfg))
        for name, control in (exp.controls() if controls else {}).items():
            try:
                ccfg = cfgmod.apply_overrides(cfg, control.overrides)
                cfgmod.check_ranges(ccfg)
            except OverrideError as exc:
                raise OverrideError(f"{exp.name}: control {name!r}: {exc}") from None
            configs.append((exp, name, ccfg))
    out = []
    for exp, control, cfg in configs:
        cfg_dict = cfgmod.to_dict(cfg)
        chash = cfgmod.config_hash(exp.name, cfg)
        tag = f"{exp.name}-{control}" if control else exp.name
        for seed in seed_list:
            spec = RunSpec(
                run_id=f"{tag}-s{seed}-{secrets.token_hex(4)}",
                batch_id=batch_id,
                experiment=exp.name,
                module=exp.module,
                module_file=exp.module_file,
                config=cfg_dict,
                config_hash=chash,
                seed=seed,
                preset=preset,
                device=device,
                control=control,
            )
            out.append(PlannedRun(spec, exp))
    return out


def resolve_device(device: str) -> str:
    """'cpu', 'cuda' (error if torch sees no GPU) or 'auto' (cuda where present)."""
    if device not in ("cpu", "cuda", "auto") and not device.startswith("cuda:"):
        raise AlignlabError(f"unknown device {device!r}; use cpu, cuda or auto")
    if device == "cpu":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda" if device == "auto" else device
    if device == "auto":
        return "cpu"
    raise AlignlabError(f"--device {device}: torch finds no CUDA GPU on this machine; use --device cpu")


def store_outcome(store: Store, spec: RunSpec, outcome: RunOutcome) -> None:
    """Write a finished run's files, manifest and index entry into the store."""
    run_dir = store.run_dir(spec.run_id)
    for rel, data in outcome.files.items():
        atomic_write_bytes(run_dir / rel, data)
    atomic_write_json(run_dir / "config.json", spec.config)
    clean = {k: (v if math.isfinite(v) else None) for k, v in outcome.metrics.items()}
    atomic_write_json(run_dir / "metrics.json", clean)
    if outcome.not_observed:
        atomic_write_json(run_dir / "not_observed.json", outcome.not_observed)
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "run_id": spec.run_id,
        "batch_id": spec.batch_id,
        "experiment": spec.experiment,
        "module": spec.module,
        "module_file": spec.module_file,
        "seed": spec.seed,
        "config": spec.config,
        "config_hash": spec.config_hash,
        "preset": spec.preset,
        "device": spec.device,
        "control": spec.control,
        "status": outcome.status,
        "error": outcome.error,
        "metrics": clean,
        "not_observed": outcome.not_observed,
        "inputs": outcome.inputs,
        "code": outcome.code,
        "env": outcome.env,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(outcome.started)),
        "ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(outcome.ended)),
        "duration_s": round(outcome.ended - outcome.started, 4),
        "files": hash_files(run_dir),
    }
    atomic_write_json(run_dir / "manifest.json", manifest)
    store.finish_run(
        spec.run_id, outcome.status, outcome.metrics, outcome.error,
        not_observed=outcome.not_observed, inputs=outcome.inputs,
    )  # fmt: skip


def judge_runs(batch_id: str, runs: Sequence[RunRecord], exps: Sequence[Experiment]) -> list[ClaimResult]:
    """Judge every claim of `exps` over `runs` (pure: reads nothing, writes nothing).

    Main runs (``control is None``) give each claim's verdict; the runs of the claim's control
    (``control == claim.control.name``) give its control verdict, when there are any.
    """
    results = []
    for exp in exps:
        mine = [r for r in runs if r.experiment == exp.name]
        groups: dict[str | None, list[RunRecord]] = {}
        for r in mine:
            groups.setdefault(r.control, []).append(r)
        for claim in exp.claims:
            verdict, done = _judge_group(claim, groups.get(None, []))
            control_verdict, control_done = None, []
            if claim.control is not None and claim.control.name in groups:
                control_verdict, control_done = _judge_group(claim, groups[claim.control.name])
            results.append(
                ClaimResult(
                    batch_id, exp.name, claim, verdict, tuple(r.run_id for r in done),
                    control_verdict, tuple(r.run_id for r in control_done),
                )
            )  # fmt: skip
    return results


def _judge_group(claim: Claim, runs: Sequence[RunRecord]) -> tuple[Verdict, list[RunRecord]]:
    done = [r for r in runs if r.status == "done"]
    verdict = judge(claim, [_value(r, claim.metric) for r in done])
    not_done = len(runs) - len(done)
    if not_done:
        verdict = replace(verdict, reason=f"{verdict.reason} ({not_done} of {len(runs)} runs did not finish)")
    return verdict, done


def _value(run: RunRecord, metric: str) -> float | NotObserved | None:
    if metric in run.not_observed:
        return NotObserved(run.not_observed[metric])
    if metric not in run.metrics:
        return None
    value = run.metrics[metric]
    return math.nan if value is None else value


def judge_batch(store: Store, batch_id: str, exps: Sequence[Experiment]) -> list[ClaimResult]:
    """Judge every claim of `exps` over the batch's runs and store the verdicts."""
    results = judge_runs(batch_id, store.runs(batch_id=batch_id), exps)
    store.save_claims(batch_id, results)
    return results


def run_batch(
    target: str,
    *,
    seeds: int | Sequence[int] = 3,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    store: Store | Path | str | None = None,
    executor: str | Executor = "local",
    workers: int | None = None,
    resume: bool = False,
    device: str = "cpu",
    preset: str | None = None,
    ray_address: str | None = None,
    hook: ProgressHook | None = None,
    controls: bool = False,
) -> BatchResult:
    """Plan, execute and store a batch of runs, then judge its claims (and, with `controls`,
    each claim again on its negative control's runs)."""
    device = resolve_device(device)
    batch_id = new_batch_id()
    planned = plan(target, seeds, overrides, preset, device, batch_id, controls=controls)
    st = store if isinstance(store, Store) else Store(store)
    ex = make_executor(executor, workers, ray_address) if isinstance(executor, str) else executor
    # --resume: choosing which runs to re-execute and registering them as running is one step
    # under the store's exclusive lock, so two concurrent resumes never execute the same run.
    with st.lock(exclusive=True) if resume else contextlib.nullcontext():
        if resume:
            planned = [_resume(st, p) for p in planned]
        to_run = [p for p in planned if p.reused is None]
        reused = [p.reused.run_id for p in planned if p.reused is not None]
        st.new_batch(
            batch_id,
            target,
            {"seeds": seeds if isinstance(seeds, int) else list(seeds), "overrides": overrides,
             "preset": preset, "device": device, "resume": resume, "controls": controls},
        )  # fmt: skip
        if reused:
            st.link_runs(batch_id, reused)
        st.begin_runs([_row(p.spec) for p in to_run])
    specs = {p.spec.run_id: p.spec for p in to_run}
    _call_hook(hook, "plan", [p.spec for p in planned])
    unfinished = set(specs)
    progress = (lambda rid, frac, desc: _call_hook(hook, "progress", (rid, frac, desc))) if hook else None
    try:
        for outcome in ex.map(list(specs.values()), progress):
            try:
                store_outcome(st, specs[outcome.run_id], outcome)
            except (OSError, StoreError) as exc:  # one run that cannot be stored must not stop the rest
                st.finish_run(outcome.run_id, "failed", error=f"its results could not be stored: {exc}")
            unfinished.discard(outcome.run_id)
            _call_hook(hook, "done", outcome)
    except KeyboardInterrupt:
        st.mark_interrupted(sorted(unfinished), "stopped by the user (Ctrl-C)")
        raise RunInterrupted(
            f"interrupted: {len(specs) - len(unfinished)} of {len(specs)} runs finished and are "
            f"stored; {len(unfinished)} marked interrupted. Continue with: alignlab run {target} "
            f"--resume{' --controls' if controls else ''} (same seeds and --set)"
        ) from None
    except BaseException:
        st.mark_interrupted(sorted(unfinished), "the runner stopped with an error")
        raise
    exps = list({p.experiment.name: p.experiment for p in planned}.values())
    claims = judge_batch(st, batch_id, exps)
    return BatchResult(batch_id, target, st, st.runs(batch_id=batch_id), claims, len(reused))


def _row(spec: RunSpec) -> RunRow:
    return RunRow(
        spec.run_id, spec.batch_id, spec.experiment, spec.seed, spec.config,
        spec.config_hash, spec.preset, spec.device, control=spec.control,
    )  # fmt: skip


def _call_hook(hook: ProgressHook | None, event: str, payload: Any) -> None:
    """Call the progress hook; a failing display never stops a batch."""
    if hook is None:
        return
    try:
        hook(event, payload)
    except Exception as exc:  # the hook only displays; the runs and the store are what matter
        print(f"alignlab: progress display failed ({type(exc).__name__}: {exc})", file=sys.stderr)


def _resume(store: Store, p: PlannedRun) -> PlannedRun:
    """Reuse an intact finished run of this spec, or re-run an interrupted/failed/lost one in its place."""
    s = p.spec
    done = _same_runs(store, s, "done")
    for rec in done:
        if _intact(rec):
            return PlannedRun(s, p.experiment, reused=rec)
    lost = next((r for r in done if not r.run_dir.exists() and not r.run_dir.is_symlink()), None)
    if lost is not None:  # a finished run whose folder was deleted: run it again in its place
        return PlannedRun(replace(s, run_id=lost.run_id), p.experiment)
    if done:  # finished but damaged: run it again under a new id, keep the damaged one for inspection
        return p
    running = next(iter(_same_runs(store, s, "running")), None)
    if running is not None:
        raise AlignlabError(
            f"run {running.run_id} ({s.experiment} seed {s.seed}) is being executed right now by another "
            "alignlab process; wait for it to finish, then --resume again"
        )
    for status in ("interrupted", "failed"):
        old = next(iter(_same_runs(store, s, status)), None)
        if old is not None:
            _remove_run_dir(store, old.run_dir)
            return PlannedRun(replace(s, run_id=old.run_id), p.experiment)
    return p


def _same_runs(store: Store, s: RunSpec, status: str) -> list[RunRecord]:
    """Stored runs of the same experiment, config, seed and control as `s` with `status`, newest first."""
    return [r for r in store.find_runs(s.experiment, s.config_hash, s.seed, status) if r.control == s.control]


def _intact(rec: RunRecord) -> bool:
    """Whether a finished run's folder is there and matches its manifest (so --resume may reuse it)."""
    if rec.run_dir.is_symlink() or not rec.run_dir.is_dir():
        return False
    try:
        manifest = rec.manifest()
    except (StoreError, OSError):
        return False
    return (
        manifest is not None
        and manifest.get("run_id") == rec.run_id
        and manifest.get("status") == "done"
        and not check_files(rec.run_dir, manifest)
    )


def _remove_run_dir(store: Store, run_dir: Path) -> None:
    """Delete a run folder that --resume replaces; only ever inside the store's runs folder."""
    if run_dir.is_symlink():
        run_dir.unlink()  # the link, never what it points to
        return
    if not run_dir.exists():
        return
    if run_dir.resolve().parent != store.runs_dir.resolve():
        raise StoreError(f"refusing to delete {run_dir}: it is not a run folder of store {store.root}")
    shutil.rmtree(run_dir)
