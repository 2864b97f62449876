"""Plan runs (experiments x seeds x overrides), execute them, store results, judge claims."""

from __future__ import annotations

import math
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from alignlab.core import config as cfgmod
from alignlab.core.errors import AlignlabError, OverrideError, StoreError, did_you_mean
from alignlab.core.execute import RunOutcome, RunSpec, execute, find_experiment, metrics_equal
from alignlab.core.executors import Executor, make_executor
from alignlab.core.fsutil import atomic_write_bytes, atomic_write_json
from alignlab.core.manifest import MANIFEST_FORMAT, MANIFEST_VERSION, check_files, hash_files, source_hash
from alignlab.core.records import ClaimResult, RunRecord
from alignlab.core.registry import Experiment, resolve
from alignlab.core.store import RunRow, Store
from alignlab.core.verdict import judge

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


def plan(
    target: str,
    seeds: int | Sequence[int] = 3,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    preset: str | None = None,
    device: str = "cpu",
    batch_id: str | None = None,
) -> list[PlannedRun]:
    """The runs `target` stands for: each experiment's config (preset + overrides) x each seed."""
    exps, suite_preset = resolve(target)
    preset = preset or suite_preset
    if isinstance(overrides, Sequence) and not isinstance(overrides, str | bytes):
        overrides = cfgmod.overrides_from_strings(overrides)
    per_exp = _overrides_for(exps, overrides or {})
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise AlignlabError("--seeds must be at least 1")
    batch_id = batch_id or new_batch_id()
    out = []
    for exp in exps:
        cfg = cfgmod.apply_overrides(exp.default_config(preset), per_exp[exp.name])
        cfg_dict = cfgmod.to_dict(cfg)
        chash = cfgmod.config_hash(exp.name, cfg)
        for seed in seed_list:
            spec = RunSpec(
                run_id=f"{exp.name}-s{seed}-{secrets.token_hex(4)}",
                batch_id=batch_id,
                experiment=exp.name,
                module=exp.module,
                module_file=exp.module_file,
                config=cfg_dict,
                config_hash=chash,
                seed=seed,
                preset=preset,
                device=device,
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
        "status": outcome.status,
        "error": outcome.error,
        "metrics": clean,
        "code": outcome.code,
        "env": outcome.env,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(outcome.started)),
        "ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(outcome.ended)),
        "duration_s": round(outcome.ended - outcome.started, 4),
        "files": hash_files(run_dir),
    }
    atomic_write_json(run_dir / "manifest.json", manifest)
    store.finish_run(spec.run_id, outcome.status, outcome.metrics, outcome.error)


def judge_batch(store: Store, batch_id: str, exps: Sequence[Experiment]) -> list[ClaimResult]:
    """Judge every claim of `exps` over the batch's finished runs and store the verdicts."""
    runs = store.runs(batch_id=batch_id)
    results = []
    for exp in exps:
        mine = [r for r in runs if r.experiment == exp.name]
        done = [r for r in mine if r.status == "done"]
        not_done = len(mine) - len(done)
        for claim in exp.claims:
            verdict = judge(claim, [r.metrics.get(claim.metric, math.nan) for r in done])
            if not_done:
                verdict = replace(
                    verdict,
                    reason=f"{verdict.reason} ({not_done} of {len(mine)} runs did not finish)",
                )
            results.append(ClaimResult(batch_id, exp.name, claim, verdict, tuple(r.run_id for r in done)))
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
) -> BatchResult:
    """Plan, execute and store a batch of runs, then judge its claims."""
    device = resolve_device(device)
    st = store if isinstance(store, Store) else Store(store)
    batch_id = new_batch_id()
    planned = plan(target, seeds, overrides, preset, device, batch_id)
    ex = make_executor(executor, workers, ray_address) if isinstance(executor, str) else executor
    if resume:
        planned = [_resume(st, p) for p in planned]
    to_run = [p for p in planned if p.reused is None]
    reused = [p.reused.run_id for p in planned if p.reused is not None]
    st.new_batch(
        batch_id,
        target,
        {"seeds": seeds if isinstance(seeds, int) else list(seeds), "overrides": overrides,
         "preset": preset, "device": device, "resume": resume},
    )  # fmt: skip
    if reused:
        st.link_runs(batch_id, reused)
    st.begin_runs([_row(p.spec) for p in to_run])
    specs = {p.spec.run_id: p.spec for p in to_run}
    if hook:
        hook("plan", [p.spec for p in planned])
    unfinished = set(specs)
    progress = (lambda rid, frac, desc: hook("progress", (rid, frac, desc))) if hook else None
    try:
        for outcome in ex.map(list(specs.values()), progress):
            store_outcome(st, specs[outcome.run_id], outcome)
            unfinished.discard(outcome.run_id)
            if hook:
                hook("done", outcome)
    except KeyboardInterrupt:
        st.mark_interrupted(sorted(unfinished), "stopped by the user (Ctrl-C)")
        raise RunInterrupted(
            f"interrupted: {len(specs) - len(unfinished)} of {len(specs)} runs finished and are "
            f"stored; {len(unfinished)} marked interrupted. Continue with: alignlab run {target} "
            "--resume (same seeds and --set)"
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
        spec.config_hash, spec.preset, spec.device,
    )  # fmt: skip


def _resume(store: Store, p: PlannedRun) -> PlannedRun:
    s = p.spec
    done = store.find_run(s.experiment, s.config_hash, s.seed, "done")
    if done is not None:
        return PlannedRun(s, p.experiment, reused=done)
    for status in ("interrupted", "failed"):
        old = store.find_run(s.experiment, s.config_hash, s.seed, status)
        if old is not None:
            shutil.rmtree(old.run_dir, ignore_errors=True)
            return PlannedRun(replace(s, run_id=old.run_id), p.experiment)
    return p


@dataclass(frozen=True)
class VerifyResult:
    """The check of one stored run: file hashes and (optionally) a re-execution."""

    run_id: str
    experiment: str
    seed: int
    files_ok: bool
    problems: list[str]
    rerun: str
    """'match', 'mismatch', 'skipped' or 'error'."""
    differences: list[str]
    note: str = ""

    @property
    def ok(self) -> bool:
        """Whether the run passed every check that was made."""
        return self.files_ok and self.rerun in ("match", "skipped")


def verify_run(store: Store, record: RunRecord, rerun: bool = True) -> VerifyResult:
    """Check a run's files against its manifest and re-execute it to compare metrics."""
    try:
        manifest = record.manifest()
    except StoreError as exc:
        return VerifyResult(record.run_id, record.experiment, record.seed, False, [str(exc)], "skipped", [])
    if manifest is None:
        return VerifyResult(
            record.run_id, record.experiment, record.seed, False,
            [f"no manifest.json (run status: {record.status})"], "skipped", [],
        )  # fmt: skip
    problems = check_files(record.run_dir, manifest)
    if manifest.get("version", 0) > MANIFEST_VERSION:
        problems.append(f"manifest version {manifest.get('version')} is newer than this alignlab")
    if not rerun or manifest.get("status") != "done":
        return VerifyResult(
            record.run_id, record.experiment, record.seed, not problems, problems, "skipped", []
        )
    note = ""
    try:
        exp = find_experiment(manifest["experiment"], manifest.get("module", ""), manifest.get("module_file"))
        if manifest.get("code", {}).get("source_hash") != source_hash():
            note = "code changed since the run"
        device = manifest.get("device", "cpu")
        try:
            device = resolve_device(device)
        except AlignlabError:
            device, note = "cpu", (note + "; " if note else "") + "re-ran on cpu"
        spec = RunSpec(
            run_id=record.run_id, batch_id=record.batch_id, experiment=exp.name,
            module=exp.module, module_file=manifest.get("module_file"),
            config=manifest["config"], config_hash=manifest["config_hash"],
            seed=int(manifest["seed"]), preset=manifest.get("preset"), device=device,
        )  # fmt: skip
        outcome = execute(spec)
    except (AlignlabError, KeyError) as exc:
        return VerifyResult(
            record.run_id, record.experiment, record.seed, not problems, problems, "error",
            [f"cannot re-execute: {exc}"], note,
        )  # fmt: skip
    if outcome.status != "done":
        return VerifyResult(
            record.run_id, record.experiment, record.seed, not problems, problems, "error",
            [f"re-execution failed: {outcome.error}"], note,
        )  # fmt: skip
    stored = {k: (math.nan if v is None else float(v)) for k, v in manifest["metrics"].items()}
    rtol = 0.0 if exp.deterministic and device == "cpu" else max(exp.rtol, 1e-6)
    diffs = []
    for key in sorted(set(stored) | set(outcome.metrics)):
        a, b = stored.get(key), outcome.metrics.get(key)
        if a is None or b is None:
            diffs.append(f"{key}: {'missing in re-run' if b is None else 'new in re-run'}")
        elif not metrics_equal(a, b, rtol):
            diffs.append(f"{key}: stored {a!r}, re-run {b!r}")
    return VerifyResult(
        record.run_id, record.experiment, record.seed, not problems, problems,
        "mismatch" if diffs else "match", diffs, note,
    )  # fmt: skip
