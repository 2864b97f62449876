"""Registering experiments: the decorator's checks and name resolution."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from alignlab.core import Claim, Control, RunContext, experiment
from alignlab.core.errors import RegistrationError, UnknownNameError
from alignlab.core.registry import all_experiments, get_experiment, resolve, suites


@dataclass(frozen=True)
class Frozen:
    a: int = 1
    """A knob."""


@dataclass
class Mutable:
    a: int = 1


def test_toy_experiments_are_registered() -> None:
    exp = get_experiment("toy.mean")
    assert exp.config_cls.__name__ == "ToyConfig"
    assert [c.metric for c in exp.claims] == ["mean", "mean"]
    assert "toy.mean" in suites()["toysuite"]
    assert exp.default_config("toysuite").n == 300
    assert exp.default_config(None).n == 200


def test_unknown_experiment_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match=r"Did you mean: toy\.mean"):
        get_experiment("toy.maen")


def test_resolve_suite_experiment_and_prefix() -> None:
    exps, preset = resolve("toysuite")
    assert {e.name for e in exps} >= {"toy.mean", "toy.artifacts"} and preset == "toysuite"
    exps, preset = resolve("toy.mean")
    assert [e.name for e in exps] == ["toy.mean"] and preset is None
    exps, _ = resolve("toy")
    assert {"toy.mean", "toy.drift"} <= {e.name for e in exps}
    with pytest.raises(UnknownNameError, match="Suites:"):
        resolve("toysuit")


def test_mutable_config_is_rejected() -> None:
    with pytest.raises(RegistrationError, match="frozen"):

        @experiment(name="bad.mutable")
        def f(cfg: Mutable, ctx: RunContext) -> dict[str, float]:
            return {}


def test_missing_config_annotation_is_rejected() -> None:
    with pytest.raises(RegistrationError, match="frozen dataclass"):

        @experiment(name="bad.unannotated")
        def f(cfg, ctx) -> dict[str, float]:  # type: ignore[no-untyped-def]
            return {}


def test_claim_on_undeclared_metric_is_rejected_at_registration() -> None:
    with pytest.raises(RegistrationError, match="does not declare"):

        @experiment(
            name="bad.claim",
            claims=[Claim("accuracy", ">=", 0.9, source="x")],
            metrics=("loss",),
        )
        def f(cfg: Frozen, ctx: RunContext) -> dict[str, float]:
            return {"loss": 0.0}

    assert "bad.claim" not in all_experiments()


def test_preset_with_unknown_key_is_rejected() -> None:
    with pytest.raises(RegistrationError, match="unknown config keys"):

        @experiment(name="bad.preset", presets={"quick": {"b": 2}})
        def f(cfg: Frozen, ctx: RunContext) -> dict[str, float]:
            return {}


@pytest.mark.parametrize("name", ["", "has space", "1abc", "a..b"])
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(RegistrationError):

        @experiment(name=name)
        def f(cfg: Frozen, ctx: RunContext) -> dict[str, float]:
            return {}


def test_claim_validation() -> None:
    with pytest.raises(RegistrationError, match="op"):
        Claim("m", "=>", 1.0, source="x")  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match="source"):
        Claim("m", ">=", 1.0, source=" ")
    assert Claim("m", "==", 1.0, source="x", tol=0.5).describe() == "m == 1 ± 0.5"


def test_claim_kinds_and_controls_round_trip_through_json() -> None:
    control = Control("off", {"a": 0}, "no knob, no effect")
    claim = Claim("m", ">=", 0.5, source="paper", kind="replication", control=control, note="n")
    assert Claim.from_dict(claim.to_dict()) == claim
    exact = Claim("m", "==", 1.0, source="theorem", tol=0.1, kind="exact")
    assert Claim.from_dict(exact.to_dict()) == exact
    old = {"metric": "m", "op": ">", "value": 1.0, "source": "s", "tol": 0.0, "note": ""}
    assert Claim.from_dict(old).kind == "replication" and Claim.from_dict(old).control is None
    with pytest.raises(RegistrationError, match="kind"):
        Claim("m", ">", 0, source="s", kind="theorem")  # type: ignore[arg-type]


def test_controls_are_deduplicated_by_name_and_must_not_clash() -> None:
    exp = get_experiment("toycheck.signal")
    assert list(exp.controls()) == ["no_signal"]
    with pytest.raises(RegistrationError, match="two different controls are both named 'c'"):

        @experiment(
            name="bad.clash",
            claims=[
                Claim("m", ">", 0, source="x", control=Control("c", {"a": 0}, "one")),
                Claim("m", "<", 9, source="x", control=Control("c", {"a": 2}, "two")),
            ],
        )
        def f(cfg: Frozen, ctx: RunContext) -> dict[str, float]:
            return {}

    with pytest.raises(RegistrationError, match="unknown config keys"):

        @experiment(
            name="bad.ctlkey", claims=[Claim("m", ">", 0, source="x", control=Control("c", {"b": 0}, "w"))]
        )
        def g(cfg: Frozen, ctx: RunContext) -> dict[str, float]:
            return {}


def test_default_config_rejects_unknown_presets_but_accepts_its_suites() -> None:
    exp = get_experiment("toy.mean")
    assert exp.default_config("toysuite").n == 300
    with pytest.raises(UnknownNameError, match=r"no preset 'full'.*Its presets: toysuite"):
        exp.default_config("full")
    assert get_experiment("toy.artifacts").default_config("toysuite").points == 20, "suite without a preset"
