"""Experiments, claims and the registry: the contract every study in alignlab follows.

An experiment is a plain function ``f(cfg, ctx) -> dict[str, float]`` with a frozen-dataclass
config, registered with :func:`experiment` together with the published *claims* it should
reproduce. Experiment modules outside this package register through the
``alignlab.experiments`` entry-point group (loaded lazily, as Gymnasium loads env specs).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

from alignlab.core.errors import RegistrationError, UnknownNameError, did_you_mean

Op = Literal[">=", "<=", ">", "<", "=="]
OPS: tuple[str, ...] = (">=", "<=", ">", "<", "==")
Kind = Literal["replication", "exact", "target"]
KINDS: tuple[str, ...] = ("replication", "exact", "target")
KIND_DOC = {
    "replication": "a published empirical result, re-measured here (reproduced / not reproduced)",
    "exact": "a theorem or an exact computation (holds / fails)",
    "target": "alignlab's own bar, not a published number (met / not met)",
}
SUITES_DOC = {"quick": "the whole suite in <= 10 min on 2 CPU cores", "full": "the real settings"}


@dataclass(frozen=True)
class NotObserved:
    """A metric whose phenomenon did not occur within the budget (judged *not reproduced*, not NaN).

    Return it from an experiment in place of a number, e.g.
    ``{"grokking_delay_ratio": NotObserved("test accuracy never reached 99% in 3000 steps")}``.
    NaN and inf stay reserved for genuine numerical errors.
    """

    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise RegistrationError("NotObserved needs a reason (what did not happen, within what budget)")


@dataclass(frozen=True)
class Control:
    """A negative control: config overrides under which the claimed effect must vanish.

    `name` identifies the control within its experiment (claims may share one), `overrides`
    are config values applied on top of the preset being run, and `why` says in one line why
    the effect should disappear under them.
    """

    name: str
    overrides: Mapping[str, Any]
    why: str

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise RegistrationError(f"control name {self.name!r} must be an identifier")
        if not self.overrides:
            raise RegistrationError(f"control {self.name!r} needs at least one config override")
        if not self.why.strip():
            raise RegistrationError(f"control {self.name!r} needs a one-line reason (why=...)")


@dataclass(frozen=True)
class Claim:
    """A claim an experiment checks: ``metric op value``, judged over seeds.

    `kind` says what a verdict means (see :data:`KIND_DOC`): only ``replication`` claims count
    as reproduced published results, and each of them must name a negative `control`.
    """

    metric: str
    op: Op
    value: float
    source: str
    tol: float = 0.0
    """For ``==``: the half-width of the accepted band around ``value``."""
    note: str = ""
    kind: Kind = "replication"
    control: Control | None = None
    """For replications: the config under which the effect must vanish (required)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RegistrationError(f"claim on {self.metric!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.op not in OPS:
            raise RegistrationError(f"claim on {self.metric!r}: op {self.op!r} is not one of {OPS}")
        if not self.source.strip():
            raise RegistrationError(f"claim on {self.metric!r} needs a source (paper and section)")
        if self.tol < 0:
            raise RegistrationError(f"claim on {self.metric!r}: tol must be >= 0, got {self.tol}")

    def describe(self) -> str:
        """The claim as a short formula, e.g. ``speedup > 1``."""
        band = f" ± {self.tol:g}" if self.op == "==" and self.tol else ""
        return f"{self.metric} {self.op} {self.value:g}{band}"

    def to_dict(self) -> dict[str, Any]:
        """The claim as JSON-ready data (what the store keeps beside each verdict)."""
        control = self.control
        return {
            "metric": self.metric, "op": self.op, "value": self.value, "source": self.source,
            "tol": self.tol, "note": self.note, "kind": self.kind,
            "control": None if control is None else {
                "name": control.name, "overrides": dict(control.overrides), "why": control.why,
            },
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Claim:
        """A claim from :meth:`to_dict` output (stores written before kinds existed read as replications)."""
        fields = {k: data[k] for k in ("metric", "op", "value", "source", "tol", "note") if k in data}
        control = data.get("control")
        return cls(
            **fields,
            kind=data.get("kind") or "replication",
            control=None if not control else Control(
                str(control["name"]), dict(control["overrides"]), str(control["why"])
            ),
        )  # fmt: skip


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its function, config type, suites, claims and presets."""

    name: str
    fn: Callable[..., Mapping[str, float]]
    config_cls: type
    suites: tuple[str, ...]
    claims: tuple[Claim, ...]
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    deterministic: bool = True
    rtol: float = 0.0
    description: str = ""

    @property
    def module(self) -> str:
        """The module that defines the experiment (workers import it to find the function)."""
        return self.fn.__module__

    @property
    def module_file(self) -> str | None:
        """The defining module's file, for experiments written in scripts or notebooks."""
        mod = sys.modules.get(self.fn.__module__)
        return getattr(mod, "__file__", None)

    def default_config(self, preset: str | None = None) -> Any:
        """The config for `preset`, or the dataclass defaults.

        A suite the experiment belongs to but has no preset for means the defaults; any other
        unknown preset is an error listing the experiment's presets.
        """
        base = self.config_cls()
        if not preset:
            return base
        if preset in self.presets:
            return dataclasses.replace(base, **dict(self.presets[preset]))
        if preset in self.suites:
            return base
        raise UnknownNameError(
            f"experiment {self.name!r} has no preset {preset!r}.{did_you_mean(preset, self.presets)} "
            f"Its presets: {', '.join(self.presets) or 'none'}"
        )

    def controls(self) -> dict[str, Control]:
        """The experiment's distinct negative controls by name, in claim order."""
        out: dict[str, Control] = {}
        for claim in self.claims:
            if claim.control is not None:
                out.setdefault(claim.control.name, claim.control)
        return out


STRICT_CONTRACT = False
"""When True, :func:`experiment` rejects what :func:`contract_problems` finds (numeric fields
without ``bounded``, replications without a control). Off until every built-in experiment
complies; ``tests/test_experiment_checker.py`` enforces the same rules meanwhile."""


def contract_problems(name: str, config_cls: type, claims: Sequence[Claim]) -> list[str]:
    """Registration rules every experiment must meet: bounded numeric fields, controlled replications."""
    from alignlab.core.config import unbounded_fields

    out = [
        f"config field {f!r} of {config_cls.__name__} is numeric but not bounded: declare it as "
        f"{f}: ... = bounded(default, lo, hi)"
        for f in unbounded_fields(config_cls)
    ]
    out += [
        f"replication claim {c.describe()} names no negative control (control=Control(name, overrides, why))"
        for c in claims
        if c.kind == "replication" and c.control is None
    ]
    return out


_REGISTRY: dict[str, Experiment] = {}
_ENTRY_POINTS_LOADED = False
_ENTRY_POINT_ERRORS: list[str] = []
ENTRY_POINT_GROUP = "alignlab.experiments"


def _config_class(fn: Callable[..., Any], name: str) -> type:
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 2:
        raise RegistrationError(f"experiment {name!r} must take (cfg, ctx); it takes {len(params)}")
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # a forward ref that cannot resolve
        raise RegistrationError(f"experiment {name!r}: cannot resolve type hints: {exc}") from exc
    cls = hints.get(params[0].name)
    if cls is None or not dataclasses.is_dataclass(cls):
        raise RegistrationError(
            f"experiment {name!r}: annotate its first parameter with a frozen dataclass config"
        )
    if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise RegistrationError(f"experiment {name!r}: config {cls.__name__} must be @dataclass(frozen=True)")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # type: ignore[misc]
    if missing:
        raise RegistrationError(
            f"experiment {name!r}: config {cls.__name__} needs defaults for {', '.join(missing)}"
        )
    return cls


def experiment(
    *,
    name: str,
    suite: Sequence[str] = (),
    claims: Sequence[Claim] = (),
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    metrics: Sequence[str] = (),
    deterministic: bool = True,
    rtol: float = 0.0,
) -> Callable[[Callable[..., Mapping[str, float]]], Callable[..., Mapping[str, float]]]:
    """Register ``f(cfg, ctx) -> dict[str, float]`` as experiment `name` with its claims.

    `presets` maps a suite name to config overrides used when that suite runs (e.g. ``full``
    with the paper's settings). `metrics` declares what the function returns; every claim must
    name one of them. `deterministic` experiments are re-checked exactly by ``alignlab verify``;
    others within relative tolerance `rtol`.
    """
    if isinstance(suite, str):
        suite = (suite,)

    def register(fn: Callable[..., Mapping[str, float]]) -> Callable[..., Mapping[str, float]]:
        if not name or any(not part.isidentifier() for part in name.split(".")):
            raise RegistrationError(f"experiment name {name!r} must be dotted identifiers")
        cfg_cls = _config_class(fn, name)
        declared = tuple(metrics)
        if declared:
            unknown = [c.metric for c in claims if c.metric not in declared]
            if unknown:
                raise RegistrationError(
                    f"experiment {name!r}: claim names metric(s) {unknown} that it does not "
                    f"declare; declared metrics: {list(declared)}"
                )
        field_names = {f.name for f in dataclasses.fields(cfg_cls)}
        seen: dict[str, Control] = {}
        for claim in claims:
            if claim.control is not None:
                other = seen.setdefault(claim.control.name, claim.control)
                if other != claim.control:
                    raise RegistrationError(
                        f"experiment {name!r}: two different controls are both named {claim.control.name!r}"
                    )
                bad = sorted(set(claim.control.overrides) - field_names)
                if bad:
                    raise RegistrationError(
                        f"experiment {name!r}: control {claim.control.name!r} sets unknown config keys {bad}"
                    )
        for preset_name, values in (presets or {}).items():
            bad = sorted(set(values) - field_names)
            if bad:
                raise RegistrationError(
                    f"experiment {name!r}: preset {preset_name!r} sets unknown config keys {bad}"
                )
        if STRICT_CONTRACT:
            broken = contract_problems(name, cfg_cls, claims)
            if broken:
                raise RegistrationError(f"experiment {name!r}: {broken[0]}")
        if name in _REGISTRY and _REGISTRY[name].fn.__qualname__ != fn.__qualname__:
            raise RegistrationError(f"experiment {name!r} is already registered")
        doc = inspect.getdoc(fn) or ""
        _REGISTRY[name] = Experiment(
            name=name,
            fn=fn,
            config_cls=cfg_cls,
            suites=tuple(suite),
            claims=tuple(claims),
            presets=dict(presets or {}),
            metrics=declared,
            deterministic=deterministic,
            rtol=rtol,
            description=doc.splitlines()[0] if doc else "",
        )
        return fn

    return register


def load_entry_points() -> None:
    """Import every module registered under the ``alignlab.experiments`` entry-point group."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.split(":")[0]
        try:
            importlib.import_module(module)
        except Exception as exc:  # one broken plugin must not hide every other experiment
            message = f"experiment module {module!r} (entry point {ep.name!r}) failed to import: {exc}"
            _ENTRY_POINT_ERRORS.append(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)


def all_experiments() -> dict[str, Experiment]:
    """All registered experiments by name (built-in ones and entry points included)."""
    load_entry_points()
    return dict(sorted(_REGISTRY.items()))


def suites() -> dict[str, list[str]]:
    """Suite name -> the experiments in it."""
    out: dict[str, list[str]] = {}
    for exp in all_experiments().values():
        for s in exp.suites:
            out.setdefault(s, []).append(exp.name)
    return out


def get_experiment(name: str) -> Experiment:
    """The experiment called `name`, or an error listing close matches."""
    reg = all_experiments()
    if name not in reg:
        raise UnknownNameError(
            f"unknown experiment {name!r}.{did_you_mean(name, reg)} "
            f"(`alignlab list` shows all {len(reg)}){_import_errors()}"
        )
    return reg[name]


def resolve(target: str) -> tuple[list[Experiment], str | None]:
    """Experiments named by `target` (a suite, an experiment, or a dotted prefix) and the preset.

    A suite name selects its experiments with that suite's preset; an experiment name or a
    prefix such as ``shaping`` selects experiments with their dataclass defaults.
    """
    reg = all_experiments()
    all_suites = suites()
    if target in all_suites:
        return [reg[n] for n in all_suites[target]], target
    if target in reg:
        return [reg[target]], None
    prefixed = [e for n, e in reg.items() if n.startswith(target + ".")]
    if prefixed:
        return prefixed, None
    raise UnknownNameError(
        f"unknown experiment or suite {target!r}.{did_you_mean(target, [*reg, *all_suites])} "
        f"Suites: {', '.join(sorted(all_suites)) or 'none'}; `alignlab list` shows experiments."
        f"{_import_errors()}"
    )


def _import_errors() -> str:
    return "".join(f" Note: {e}." for e in _ENTRY_POINT_ERRORS)
