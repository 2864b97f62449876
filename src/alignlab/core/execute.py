"""Executing one run in whatever process holds it: find the experiment, run it, collect results.

Runs execute in a private temporary folder and hand back their files as bytes, so the same
code serves the in-process path, the local process pool and Ray workers on other machines;
only the driver writes to the store.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.core import config as cfgmod
from alignlab.core.context import RunContext
from alignlab.core.errors import AlignlabError, RegistrationError
from alignlab.core.manifest import code_version, environment
from alignlab.core.registry import Experiment, NotObserved, all_experiments, get_experiment

ProgressFn = Callable[[str, float, str], None]


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to execute one run anywhere: experiment, config, seed, device."""

    run_id: str
    batch_id: str
    experiment: str
    module: str
    module_file: str | None
    config: dict[str, Any]
    config_hash: str
    seed: int
    preset: str | None = None
    device: str = "cpu"
    control: str | None = None
    """The name of the negative control this run belongs to (None: a main run)."""


@dataclass(frozen=True)
class RunOutcome:
    """What came back from executing a run: status, metrics, files, timing and provenance."""

    run_id: str
    status: str
    metrics: dict[str, float]
    error: str | None
    files: dict[str, bytes] = field(repr=False)
    started: float
    ended: float
    env: dict[str, Any]
    code: dict[str, Any]
    traceback: str | None = None
    not_observed: dict[str, str] = field(default_factory=dict)
    """Metric -> why it was not observed (its value in `metrics` is NaN)."""
    inputs: dict[str, str] = field(default_factory=dict)
    """What the run read (``ctx.record_input``): name -> SHA-256."""


def find_experiment(name: str, module: str, module_file: str | None) -> Experiment:
    """Look an experiment up, importing its defining module (or script file) if needed."""
    if name in all_experiments():
        return get_experiment(name)
    if module and module != "__main__":
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    if name not in all_experiments() and module_file and Path(module_file).is_file():
        mod_name = f"_alignlab_user_{abs(hash(module_file))}"
        spec = importlib.util.spec_from_file_location(mod_name, module_file)
        if spec and spec.loader:
            mod = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = mod
            spec.loader.exec_module(mod)
    return get_experiment(name)


def _set_torch_threads() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        threads = int(os.environ.get("ALIGNLAB_TORCH_THREADS", "1"))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def check_metrics(exp: Experiment, result: Any) -> tuple[dict[str, float], dict[str, str]]:
    """The experiment's return value as ``({name: float}, {name: not-observed reason})``.

    A :class:`NotObserved` value becomes NaN in the first dict and its reason in the second.
    A claimed metric the run did not return is left out (its claim is judged *not measured*);
    a value that is not a number, or an undeclared metric, is an error naming what is wrong.
    """
    if not isinstance(result, Mapping):
        raise RegistrationError(
            f"experiment {exp.name!r} returned {type(result).__name__}; it must return "
            "a dict of metric name -> number (or NotObserved)"
        )
    out: dict[str, float] = {}
    unseen: dict[str, str] = {}
    for key, value in result.items():
        if isinstance(value, NotObserved):
            out[str(key)], unseen[str(key)] = math.nan, value.reason
            continue
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            raise RegistrationError(
                f"experiment {exp.name!r} returned metric {key!r} = {value!r}, not a number "
                "(return NotObserved(reason) when the phenomenon did not occur)"
            ) from None
    if exp.metrics:
        extra = sorted(set(out) - set(exp.metrics))
        if extra:
            raise RegistrationError(
                f"experiment {exp.name!r} returned undeclared metric(s) {extra}; "
                f"declared: {list(exp.metrics)}"
            )
    return out, unseen


def execute(spec: RunSpec, progress: ProgressFn | None = None) -> RunOutcome:
    """Execute one run in this process; exceptions in the experiment become a failed outcome."""
    started = time.time()
    exp = find_experiment(spec.experiment, spec.module, spec.module_file)
    cfg = cfgmod.from_dict(exp.config_cls, spec.config)
    callback = None
    if progress is not None:
        run_id = spec.run_id

        def callback(frac: float, desc: str) -> None:
            progress(run_id, frac, desc)

    with tempfile.TemporaryDirectory(prefix="alignlab-run-") as tmp:
        ctx = RunContext(spec.seed, Path(tmp), device=spec.device, progress_callback=callback)
        _set_torch_threads()
        status, error, tb, metrics, unseen = "done", None, None, {}, {}
        try:
            metrics, unseen = check_metrics(exp, exp.fn(cfg, ctx))
        except AlignlabError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            tb = traceback.format_exc()
        ctx.flush()
        files = {
            p.relative_to(tmp).as_posix(): p.read_bytes()
            for p in sorted(Path(tmp).rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        }
    if tb:
        files["traceback.txt"] = tb.encode()
    return RunOutcome(
        run_id=spec.run_id,
        status=status,
        metrics=dict(metrics),
        error=error,
        files=files,
        started=started,
        ended=time.time(),
        env=environment(),
        code=code_version(exp.module_file),
        traceback=tb,
        not_observed=unseen,
        inputs=dict(ctx.inputs),
    )


def metrics_equal(a: float, b: float, rtol: float) -> bool:
    """Whether two metric values agree (NaN equals NaN; exact when rtol is 0)."""
    if math.isnan(a) and math.isnan(b):
        return True
    if rtol == 0:
        return a == b
    return math.isclose(a, b, rel_tol=rtol, abs_tol=rtol)
