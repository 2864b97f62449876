"""`verify`: check that every number the store displays is what was computed.

For each run, the manifest-covered files are the reference: their SHA-256 hashes must match the
manifest, ``metrics.json`` (and ``not_observed.json``, ``config.json``) must agree with the
manifest, and both ``run.json`` and the SQLite index row must agree with them. A finished run is
then re-executed from its stored config and seed and its metrics compared. For each batch, every
claim is judged again from the runs' ``metrics.json`` with the harness's own judge and compared
with the verdicts in the index and in the batch file. Every difference names the place it is in.

The store is data, never code: verify looks experiments up in the registry only. An experiment
defined in a script is re-executed only when the user passes that script (``--script``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from alignlab.core import config as cfgmod
from alignlab.core.errors import AlignlabError, StoreError
from alignlab.core.execute import RunSpec, execute, metrics_equal
from alignlab.core.manifest import MANIFEST_VERSION, check_files, source_hash
from alignlab.core.records import ClaimResult, RunRecord
from alignlab.core.registry import Claim, all_experiments
from alignlab.core.runner import judge_runs, resolve_device
from alignlab.core.store import Store, claim_to_json, is_valid_id, verdict_to_json

_RECORD_KEYS = (
    "batch_id", "experiment", "seed", "config", "config_hash", "preset", "device", "control",
    "status", "error", "metrics", "not_observed",
)  # fmt: skip


@dataclass(frozen=True)
class VerifyResult:
    """The check of one stored run: its files and records, and (optionally) a re-execution."""

    run_id: str
    experiment: str
    seed: int
    files_ok: bool
    """No problem with the run's files or records (hashes, metrics.json, run.json, index row)."""
    problems: list[str]
    rerun: str
    """'match', 'mismatch', 'skipped' or 'error'."""
    differences: list[str]
    note: str = ""
    status: str = "done"
    """The run's stored status: only ``done`` runs can be verified; ``failed`` ones are reported as such."""

    @property
    def ok(self) -> bool:
        """Whether this is a finished run that passed every check that was made."""
        return self.status == "done" and self.files_ok and self.rerun in ("match", "skipped")


@dataclass(frozen=True)
class BatchCheck:
    """The claims of one batch judged again from the runs' files and compared with what is stored."""

    batch_id: str
    claims: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        """Whether every stored verdict of the batch matches the re-judged one."""
        return not self.problems


@dataclass(frozen=True)
class VerifyReport:
    """Everything `verify` checked; iterates (and indexes) over the per-run results."""

    runs: list[VerifyResult]
    batches: list[BatchCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Store-wide problems: run folders missing from the index and the like."""

    def __iter__(self) -> Iterator[VerifyResult]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, i: int) -> VerifyResult:
        return self.runs[i]

    @property
    def verified(self) -> int:
        """How many runs passed every check."""
        return sum(v.ok for v in self.runs)

    @property
    def failed_runs(self) -> list[VerifyResult]:
        """Runs whose stored status is ``failed`` (there is nothing to verify in them)."""
        return [v for v in self.runs if v.status != "done"]

    @property
    def ok(self) -> bool:
        """Whether every run verified, every batch's verdicts matched, and the store had no problem."""
        return all(v.ok for v in self.runs) and all(b.ok for b in self.batches) and not self.problems


def load_scripts(paths: Sequence[Path | str]) -> None:
    """Import user scripts that define experiments (only ever files the user names explicitly)."""
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise AlignlabError(f"--script {path}: no such file")
        name = "_alignlab_script_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise AlignlabError(f"--script {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise AlignlabError(f"--script {path} failed to import: {type(exc).__name__}: {exc}") from None


def verify_store(
    store: Store,
    run_ids: Sequence[str] | None = None,
    *,
    rerun: bool = True,
    scripts: Sequence[Path | str] = (),
) -> VerifyReport:
    """Verify the named runs (all finished ones when None), the claims of their batches, and the index."""
    load_scripts(scripts)
    problems: list[str] = []
    if run_ids:
        records = [store.get_run(r) for r in run_ids]
    else:
        records = [r for r in store.runs() if r.status in ("done", "failed")]
        indexed = {r.run_id for r in store.runs()}
        try:
            folders = sorted(p.name for p in store.runs_dir.iterdir() if p.is_dir())
        except OSError:
            folders = []
        for name in folders:
            if name not in indexed:
                problems.append(
                    f"runs/{name}: a run folder the index does not list (`alignlab reindex` adds it)"
                )
        if not records and not problems:
            raise AlignlabError(f"no finished runs to verify in {store.root}")
    results, from_files = [], {}
    for rec in records:
        result, trusted = _check_run(rec, rerun)
        results.append(result)
        from_files[rec.run_id] = trusted
    if run_ids:
        batch_ids = sorted({b["batch_id"] for b in store.batches()} & _batches_of(store, records))
    else:
        batch_ids = sorted(b["batch_id"] for b in store.batches())
    batches = [_check_batch(store, b, from_files) for b in batch_ids]
    return VerifyReport(results, batches, problems)


def _batches_of(store: Store, records: Sequence[RunRecord]) -> set[str]:
    ids = {r.run_id for r in records}
    return {b["batch_id"] for b in store.batches() if ids & set(store.batch_run_ids(b["batch_id"]))}


def verify_run(store: Store, record: RunRecord, rerun: bool = True) -> VerifyResult:
    """Check one run's files and records against its manifest, and re-execute it to compare metrics."""
    return _check_run(record, rerun)[0]


# -- one run --------------------------------------------------------------------------------
def _check_run(rec: RunRecord, rerun: bool) -> tuple[VerifyResult, RunRecord]:
    """The run's check, and the run as its manifest-covered files describe it (for re-judging)."""

    def result(problems: list[str], status: str, outcome: str = "skipped", diffs: Sequence[str] = (),
               note: str = "") -> VerifyResult:  # fmt: skip
        return VerifyResult(rec.run_id, rec.experiment, rec.seed, not problems, problems, outcome,
                            list(diffs), note, status)  # fmt: skip

    if not rec.run_dir.is_dir():
        return result([f"runs/{rec.run_id}: run folder missing (status {rec.status} in the index)"],
                      rec.status), rec  # fmt: skip
    try:
        manifest = rec.manifest()
    except (StoreError, OSError) as exc:
        return result([str(exc)], rec.status), rec
    if manifest is None:
        return result([f"no manifest.json (run status: {rec.status})"], rec.status), rec
    problems = [
        f"manifest.json: {p}" if not p.startswith("manifest") else p for p in _manifest_shape(manifest)
    ]
    if problems:
        return result(problems, rec.status), rec
    if manifest.get("run_id") != rec.run_id:
        problems.append(f"manifest.json: names run {manifest.get('run_id')!r}, not {rec.run_id!r}")
    if int(manifest.get("version", 0)) > MANIFEST_VERSION:
        problems.append(f"manifest version {manifest.get('version')} is newer than this alignlab")
    problems += check_files(rec.run_dir, manifest)
    problems += _check_files_agree(rec.run_dir, manifest)
    problems += _compare_record("run.json", _read_json(rec.run_dir / "run.json"), manifest)
    problems += _compare_record("index", _index_record(rec), manifest)
    status = str(manifest.get("status"))
    trusted = _record_from_manifest(rec, manifest)
    if status != "done" or not rerun:
        return result(problems, status), trusted
    outcome, diffs, note = _rerun(rec, manifest)
    if outcome == "error":
        return result(problems, status, "error", diffs, note), trusted
    return result(problems, status, "mismatch" if diffs else "match", diffs, note), trusted


def _manifest_shape(m: Mapping[str, Any]) -> list[str]:
    out = []
    for key, tp in (("metrics", dict), ("config", dict), ("files", dict)):
        if not isinstance(m.get(key), tp):
            out.append(f"{key} is missing or not an object")
    if not isinstance(m.get("not_observed") or {}, dict):
        out.append("not_observed is not an object")
    if isinstance(m.get("seed"), bool) or not isinstance(m.get("seed"), int):
        out.append("seed is not an integer")
    if not isinstance(m.get("version", 0), int):
        out.append("version is not an integer")
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _Missing(f"{path.name} is missing")
    except (OSError, ValueError) as exc:
        return _Missing(f"{path.name} is unreadable ({exc})")


@dataclass(frozen=True)
class _Missing:
    why: str


def _check_files_agree(run_dir: Path, manifest: Mapping[str, Any]) -> list[str]:
    """metrics.json, not_observed.json and config.json (hash-covered) against the manifest's copies."""
    out = []
    files = manifest.get("files", {})
    pairs = (
        ("metrics.json", "metrics", {}),
        ("not_observed.json", "not_observed", {}),
        ("config.json", "config", None),
    )
    for name, key, default in pairs:
        if name not in files and default is not None:
            if manifest.get(key):
                out.append(f"{name}: missing, but manifest.json has {key}")
            continue
        data = _read_json(run_dir / name)
        if isinstance(data, _Missing):
            if name in files:
                continue  # check_files already names it
            out.append(data.why)
            continue
        out += [f"{name}: {d}" for d in _diff(key, data, manifest.get(key), "manifest.json")]
    return out


def _index_record(rec: RunRecord) -> dict[str, Any]:
    return {
        "run_id": rec.run_id, "batch_id": rec.batch_id, "experiment": rec.experiment, "seed": rec.seed,
        "config": rec.config, "config_hash": rec.config_hash, "preset": rec.preset, "device": rec.device,
        "control": getattr(rec, "control", None), "status": rec.status, "error": rec.error,
        "metrics": rec.metrics, "not_observed": getattr(rec, "not_observed", {}),
    }  # fmt: skip


def _compare_record(place: str, record: Any, manifest: Mapping[str, Any]) -> list[str]:
    if isinstance(record, _Missing):
        return [record.why]
    if not isinstance(record, dict):
        return [f"{place}: not a JSON object"]
    out = []
    if record.get("run_id") != manifest.get("run_id"):
        out.append(f"{place}: run_id {record.get('run_id')!r}, manifest.json has {manifest.get('run_id')!r}")
    for key in _RECORD_KEYS:
        if key in ("control", "not_observed") and key not in manifest and key not in record:
            continue
        if key == "device" and place == "index" and manifest.get(key) is None:
            continue
        out += [f"{place}: {d}" for d in _diff(key, record.get(key), manifest.get(key), "manifest.json")]
    return out


def _diff(key: str, got: Any, want: Any, ref: str) -> list[str]:
    """Differences between `got` and `want` (NaN, inf and null count as equal), named by key path."""
    if isinstance(want, dict) or isinstance(got, dict):
        g = got if isinstance(got, dict) else {}
        w = want if isinstance(want, dict) else {}
        if (got is not None and not isinstance(got, dict)) or (
            want is not None and not isinstance(want, dict)
        ):
            return [f"{key} = {_show(got)}, {ref} has {_show(want)}"]
        out = []
        for k in sorted(set(g) | set(w), key=str):
            if k not in g:
                out.append(f"{key}.{k} is missing, {ref} has {_show(w[k])}")
            elif k not in w:
                out.append(f"{key}.{k} = {_show(g[k])} is not in {ref}")
            else:
                out += _diff(f"{key}.{k}", g[k], w[k], ref)
        return out
    if _same(got, want):
        return []
    return [f"{key} = {_show(got)}, {ref} has {_show(want)}"]


def _same(a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    if (a is None and nb is not None) or (b is None and na is not None):  # null stands for NaN/inf
        return not math.isfinite(nb if a is None else na)  # type: ignore[arg-type]
    if na is not None or nb is not None:
        if na is None or nb is None:
            return False
        return (not math.isfinite(na) and not math.isfinite(nb)) or na == nb
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _num(x: Any) -> float | None:
    """A number, NaN for null-as-metric; None for anything that is not a number."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return float(x)
    return None


def _show(x: Any) -> str:
    text = json.dumps(x, default=str) if not isinstance(x, float) else repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _record_from_manifest(rec: RunRecord, m: Mapping[str, Any]) -> RunRecord:
    """The run as its manifest and metrics.json say (what verdicts are re-judged from)."""
    data = _read_json(rec.run_dir / "metrics.json")
    metrics = data if isinstance(data, dict) else m.get("metrics", {})
    unseen = m.get("not_observed") or {}
    kwargs: dict[str, Any] = {
        "status": m.get("status", rec.status),
        "metrics": {str(k): (math.nan if _num(v) is None else float(v)) for k, v in metrics.items()},
    }
    if hasattr(rec, "not_observed"):
        kwargs["not_observed"] = {str(k): str(v) for k, v in unseen.items()}
    if hasattr(rec, "control"):
        kwargs["control"] = m.get("control")
    return replace(rec, **kwargs)


def _rerun(rec: RunRecord, manifest: Mapping[str, Any]) -> tuple[str, list[str], str]:
    """Re-execute a finished run (registered experiments only): ('match'|'error', differences, note)."""
    name = manifest.get("experiment")
    registry = all_experiments()
    if name not in registry:
        return (
            "error",
            [
                f"cannot re-execute: experiment {name!r} is not registered; if a script defines it, pass it "
                "explicitly: alignlab verify RUN --script FILE (verify never imports code the store names)"
            ],
            "",
        )
    exp = registry[name]
    notes = []
    try:
        cfg = cfgmod.from_dict(exp.config_cls, manifest["config"])
        if cfgmod.config_hash(exp.name, cfg) != manifest.get("config_hash"):
            return "error", ["manifest.json: config_hash does not match its config"], ""
    except (AlignlabError, TypeError, ValueError, KeyError) as exc:
        return "error", [f"cannot re-execute: stored config does not fit {name}: {exc}"], ""
    if manifest.get("code", {}).get("source_hash") != source_hash():
        notes.append("code changed since the run")
    device = str(manifest.get("device") or "cpu")
    try:
        device = resolve_device(device)
    except AlignlabError:
        device = "cpu"
        notes.append("re-ran on cpu")
    spec_fields = dict(
        run_id=rec.run_id, batch_id=rec.batch_id, experiment=exp.name, module="", module_file=None,
        config=manifest["config"], config_hash=manifest["config_hash"], seed=int(manifest["seed"]),
        preset=manifest.get("preset"), device=device,
    )  # fmt: skip
    if "control" in RunSpec.__dataclass_fields__:
        spec_fields["control"] = manifest.get("control")
    try:
        outcome = execute(RunSpec(**spec_fields))
    except AlignlabError as exc:
        return "error", [f"cannot re-execute: {exc}"], "; ".join(notes)
    if outcome.status != "done":
        return "error", [f"re-execution failed: {outcome.error}"], "; ".join(notes)
    stored = {k: (math.nan if _num(v) is None else float(v)) for k, v in manifest["metrics"].items()}
    rtol = 0.0 if exp.deterministic and device == "cpu" else max(exp.rtol, 1e-6)
    diffs = []
    for key in sorted(set(stored) | set(outcome.metrics)):
        a, b = stored.get(key), outcome.metrics.get(key)
        if a is None or b is None:
            diffs.append(f"{key}: {'missing in re-run' if b is None else 'new in re-run'}")
        elif not metrics_equal(a, b, rtol):
            diffs.append(f"{key}: stored {a!r}, re-run {b!r}")
    unseen = getattr(outcome, "not_observed", None)
    if unseen is not None and dict(unseen) != dict(manifest.get("not_observed") or {}):
        diffs.append(f"not observed: stored {manifest.get('not_observed') or {}}, re-run {dict(unseen)}")
    return "match", diffs, "; ".join(notes)


# -- one batch ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _StoredExperiment:
    """An experiment as a batch stored it: its name and the claims that were judged."""

    name: str
    claims: tuple[Claim, ...]


def _check_batch(store: Store, batch_id: str, from_files: Mapping[str, RunRecord]) -> BatchCheck:
    """Judge the batch's stored claims again from its runs' files and compare every stored verdict."""
    problems: list[str] = []
    if not is_valid_id(batch_id):
        return BatchCheck(batch_id, 0, [f"batch id {batch_id!r} is not a valid id"])
    file_record = _read_json(store.batch_file(batch_id))
    where = f"batches/{batch_id}.json"
    if isinstance(file_record, _Missing) or not isinstance(file_record, dict):
        why = file_record.why if isinstance(file_record, _Missing) else "not a JSON object"
        file_claims = None
        problems.append(f"{where}: {why}")
    else:
        file_claims = file_record.get("claims") or []
    indexed_claims = store.claims(batch_id=batch_id)
    run_ids = store.batch_run_ids(batch_id)
    if isinstance(file_record, dict) and "run_ids" in file_record:
        listed = set(file_record.get("run_ids") or [])
        if listed != set(run_ids):
            extra, unlisted = sorted(listed - set(run_ids)), sorted(set(run_ids) - listed)
            if extra:
                problems.append(f"{where}: lists runs {extra} the index does not count in the batch")
            if unlisted:
                problems.append(f"index: counts runs {unlisted} in the batch that {where} does not list")
    runs = []
    for rid in run_ids:
        rec = from_files.get(rid)
        if rec is None:
            try:
                rec = _check_run(store.get_run(rid), rerun=False)[1]
            except AlignlabError as exc:
                problems.append(f"index: batch run {rid}: {exc}")
                continue
        runs.append(rec)
    # the claims to judge: the batch file's (the index's when the file is unreadable)
    if file_claims is not None:
        try:
            stored = [_file_claim(batch_id, c) for c in file_claims]
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{where}: a claim is unreadable ({exc})")
            stored = indexed_claims
    else:
        stored = indexed_claims
    exps: dict[str, list[Claim]] = {}
    for c in stored:
        exps.setdefault(c.experiment, []).append(c.claim)
    judged = judge_runs(batch_id, runs, [_StoredExperiment(n, tuple(cs)) for n, cs in exps.items()])
    problems += _compare_claims("index", indexed_claims, judged)
    if file_claims is not None and stored is not indexed_claims:
        problems += _compare_claims(where, stored, judged)
    return BatchCheck(batch_id, len(judged), problems)


def _file_claim(batch_id: str, c: Mapping[str, Any]) -> ClaimResult:
    from alignlab.core.store import claim_result_from_row

    return claim_result_from_row({
        "batch_id": batch_id, "experiment": c["experiment"], "claim": json.dumps(c["claim"]),
        "verdict": c["verdict"], "mean": c.get("mean"), "lo": c.get("lo"), "hi": c.get("hi"),
        "n": c.get("n"), "reason": c.get("reason"),
        "control": None if c.get("control") is None else json.dumps(c["control"]),
    })  # fmt: skip


def _compare_claims(place: str, stored: Sequence[ClaimResult], judged: Sequence[ClaimResult]) -> list[str]:
    """Differences between stored and re-judged verdicts, naming the claim and the field."""
    if len(stored) != len(judged):
        return [f"{place}: holds {len(stored)} judged claims, re-judging the batch gives {len(judged)}"]
    out = []
    order = {name: i for i, name in enumerate(dict.fromkeys(c.experiment for c in judged))}
    stored = sorted(stored, key=lambda c: order.get(c.experiment, len(order)))  # stable within an experiment
    for s, j in zip(stored, judged, strict=True):
        label = f"{place}: {s.experiment} claim {s.claim.describe()!r}"
        if s.experiment != j.experiment or claim_to_json(s.claim) != claim_to_json(j.claim):
            out.append(f"{label}: is not the claim re-judged there ({j.experiment}: {j.claim.describe()})")
            continue
        out += [
            f"{label}: {d}"
            for d in _diff("verdict", _verdict_view(s.verdict), _verdict_view(j.verdict), "re-judged")
        ]
        sc, jc = getattr(s, "control_verdict", None), getattr(j, "control_verdict", None)
        if (sc is None) != (jc is None):
            out.append(f"{label}: control verdict {'stored' if sc else 'missing'}, re-judging gives "
                       f"{'one' if jc else 'none'}")  # fmt: skip
        elif sc is not None and jc is not None:
            out += [
                f"{label}: {d}" for d in _diff("control", _verdict_view(sc), _verdict_view(jc), "re-judged")
            ]
    return out


def _verdict_view(v: Any) -> dict[str, Any]:
    return verdict_to_json(v)
