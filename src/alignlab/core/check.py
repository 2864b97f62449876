"""Check an experiment against the contract, as Gymnasium's ``check_env`` checks an environment.

:func:`problems` finds what is wrong on paper (no smoke preset, undeclared metrics, numeric
config fields without :func:`~alignlab.core.config.bounded`, replications without a negative
control, presets or controls out of range). :func:`check_experiment` then runs the smoke preset
through the real execution path (plan, execute in this process, store, judge) with every
control, and reports what it saw::

    >>> from alignlab.core.check import check_experiment
    >>> report = check_experiment("shaping.potential_based")   # doctest: +SKIP
    >>> report.ok, report.problems                              # doctest: +SKIP
    (True, [])
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alignlab.core import config as cfgmod
from alignlab.core.errors import AlignlabError
from alignlab.core.execute import RunSpec, execute, metrics_equal
from alignlab.core.records import ClaimResult, RunRecord
from alignlab.core.registry import Experiment, contract_problems, get_experiment
from alignlab.core.verdict import NOT_MEASURED, NOT_REPRODUCED, control_word

SMOKE = "smoke"
"""The preset every experiment needs: a few seconds per run on one core."""


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_experiment` found: the problems (empty when the experiment passes)."""

    experiment: str
    problems: list[str]
    claims: list[ClaimResult] = field(default_factory=list)
    """The claims as judged on the smoke runs, with their control verdicts."""
    runs: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the experiment meets the contract."""
        return not self.problems

    def __str__(self) -> str:
        head = f"{self.experiment}: {'ok' if self.ok else f'{len(self.problems)} problem(s)'}"
        head += f" ({self.runs} smoke runs, {self.seconds:.1f} s)"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


def problems(exp: Experiment) -> list[str]:
    """What is wrong with `exp` on paper (no running): one line per problem, [] when none."""
    out = contract_problems(exp.name, exp.config_cls, exp.claims)
    if SMOKE not in exp.presets:
        out.append(
            f"no {SMOKE!r} preset: add presets={{'{SMOKE}': {{...}}}} (a few seconds per run on 1 core)"
        )
    if not exp.metrics:
        out.append("declares no metrics: pass metrics=(...) to @experiment")
    else:
        undeclared = sorted({c.metric for c in exp.claims} - set(exp.metrics))
        if undeclared:
            out.append(f"claims name undeclared metric(s) {undeclared}")
    fields = {f for f in cfgmod.field_types(exp.config_cls)}
    for name, control in exp.controls().items():
        unknown = sorted(set(control.overrides) - fields)
        if unknown:
            out.append(f"control {name!r} sets unknown config keys {unknown}")
    for preset in [None, *exp.presets]:
        where = f"preset {preset!r}" if preset else "the defaults"
        try:
            cfg = exp.default_config(preset)
            cfgmod.check_ranges(cfg)
        except (AlignlabError, TypeError) as exc:
            out.append(f"{where}: {exc}")
            continue
        for name, control in exp.controls().items():
            try:
                ccfg = cfgmod.apply_overrides(cfg, control.overrides)
                cfgmod.check_ranges(ccfg)
            except AlignlabError as exc:
                out.append(f"control {name!r} on {where}: {exc}")
                continue
            if ccfg == cfg:
                out.append(f"control {name!r} changes nothing on {where} (its overrides equal the config)")
    return out


def check_experiment(
    name_or_exp: str | Experiment, seeds: int = 2, *, store: Path | str | None = None
) -> CheckReport:
    """Run `name_or_exp`'s smoke preset (and every control) over `seeds` seeds and check the contract.

    Checks: :func:`problems`; every run finishes; every declared metric comes back as a number
    or NotObserved (NaN/inf are errors); every claim can be judged; the same seed gives the same
    metrics (for deterministic experiments); and each claim judged on its control's runs is
    *not reproduced*. `store` keeps the smoke runs (default: a temporary folder, deleted after).
    """
    from alignlab.core.runner import run_batch
    from alignlab.core.store import Store

    exp = get_experiment(name_or_exp if isinstance(name_or_exp, str) else name_or_exp.name)
    if not isinstance(name_or_exp, str) and exp is not name_or_exp:
        raise AlignlabError(f"experiment {exp.name!r} passed to check_experiment is not the registered one")
    found = problems(exp)
    if SMOKE not in exp.presets:
        return CheckReport(exp.name, found)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alignlab-check-") as tmp:
        root = Path(store) if store is not None else Path(tmp) / "store"
        try:
            result = run_batch(
                exp.name, seeds=seeds, store=Store(root), executor="inprocess", preset=SMOKE, controls=True
            )
        except AlignlabError as exc:
            found.append(f"the smoke preset does not run: {exc}")
            return CheckReport(exp.name, found, seconds=time.perf_counter() - started)
        found += _run_problems(exp, result.runs)
        found += _claim_problems(result.claims)
        if exp.deterministic:
            found += _determinism_problems(exp, result.runs)
    return CheckReport(exp.name, found, result.claims, len(result.runs), time.perf_counter() - started)


def _label(run: RunRecord) -> str:
    return f"{'control ' + repr(run.control) if run.control else 'main'} run (seed {run.seed})"


def _run_problems(exp: Experiment, runs: Sequence[RunRecord]) -> list[str]:
    out = []
    for run in sorted(runs, key=lambda r: (r.control or "", r.seed)):
        if run.status != "done":
            out.append(f"{_label(run)} {run.status}: {run.error}")
            continue
        declared = exp.metrics or tuple(dict.fromkeys(c.metric for c in exp.claims))
        missing = [m for m in declared if m not in run.metrics]
        if missing:
            out.append(
                f"{_label(run)} returned no value for {missing}: return every declared metric "
                "(NotObserved(reason) where the config leaves it out)"
            )
        bad = [k for k, v in run.metrics.items() if not math.isfinite(v) and k not in run.not_observed]
        if bad:
            out.append(
                f"{_label(run)}: {bad} NaN/inf (a numerical error; return NotObserved(reason) when "
                "the phenomenon did not occur)"
            )
    return out


def _claim_problems(claims: Sequence[ClaimResult]) -> list[str]:
    out = []
    for c in claims:
        formula = c.claim.describe()
        if c.verdict.label == NOT_MEASURED:
            out.append(f"claim {formula} cannot be judged: {c.verdict.reason}")
        if c.claim.control is None:
            continue
        cv = c.control_verdict
        if cv is None:
            out.append(f"claim {formula}: control {c.claim.control.name!r} produced no verdict")
        elif cv.label != NOT_REPRODUCED:
            out.append(
                f"claim {formula} under control {c.claim.control.name!r}: {control_word(cv.label)} "
                f"({cv.reason}); a control must make the claim not reproduced"
            )
    return out


def _determinism_problems(exp: Experiment, runs: Sequence[RunRecord]) -> list[str]:
    first = next((r for r in runs if r.control is None and r.status == "done"), None)
    if first is None:
        return []
    spec = RunSpec(
        run_id=first.run_id, batch_id=first.batch_id, experiment=exp.name, module=exp.module,
        module_file=exp.module_file, config=first.config, config_hash=first.config_hash,
        seed=first.seed, preset=first.preset, device="cpu",
    )  # fmt: skip
    again = execute(spec)
    if again.status != "done":
        return [f"re-running seed {first.seed} failed: {again.error}"]
    diffs = [
        f"{k}: {first.metrics.get(k)!r} then {again.metrics.get(k)!r}"
        for k in sorted(set(first.metrics) | set(again.metrics))
        if k not in first.metrics
        or k not in again.metrics
        or not metrics_equal(first.metrics[k], again.metrics[k], 0.0)
    ]
    if first.not_observed != again.not_observed:
        diffs.append(f"not observed: {first.not_observed} then {again.not_observed}")
    if diffs:
        return [
            f"not deterministic: seed {first.seed} gave different results twice ({'; '.join(diffs)}); "
            "draw every random number from ctx.rng / ctx.torch_generator, or register deterministic=False"
        ]
    return []
