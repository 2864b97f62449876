"""The experiment checker (core.check) on toy experiments that meet or break the contract."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from alignlab.core import Claim, Control, RunContext, bounded, experiment
from alignlab.core import registry as regmod
from alignlab.core.check import check_experiment, problems
from alignlab.core.errors import RegistrationError
from alignlab.core.registry import get_experiment


def test_a_contract_abiding_experiment_passes_with_its_controls_vanishing() -> None:
    report = check_experiment("toycheck.signal")
    assert report.ok, str(report)
    assert report.runs == 4, "2 main seeds + 2 seeds of its one control"
    words = {(c.claim.describe(), c.kind): (c.word, c.control_word) for c in report.claims}
    assert words[("effect_size > 0.5", "replication")] == ("reproduced", "effect vanished")
    assert words[("crossing_step < 50", "replication")] == ("reproduced", "effect vanished")
    assert words[("spread < 1", "exact")] == ("holds", "no control")
    assert words[("effect_size < 5", "target")] == ("met", "no control")
    control = next(c for c in report.claims if c.claim.metric == "crossing_step").control_verdict
    assert control is not None and "not observed in 2 of 2 runs" in control.reason


def test_a_control_under_which_the_effect_persists_is_caught() -> None:
    report = check_experiment("toycheck.leaky")
    assert not report.ok
    assert any("control 'placebo'" in p and "effect persists" in p for p in report.problems), report.problems
    assert report.claims[0].control_failed


def test_nondeterminism_is_caught() -> None:
    report = check_experiment("toycheck.wobbly")
    assert any(p.startswith("not deterministic") for p in report.problems), report.problems
    assert not any("control" in p for p in report.problems), "its controls do work"


def test_nan_and_missing_metrics_and_an_inconclusive_control_are_caught() -> None:
    report = check_experiment("toycheck.broken")
    text = "\n".join(report.problems)
    assert "returned no value for ['extra']" in text
    assert "['score'] NaN/inf" in text
    assert "under control 'off': inconclusive" in text


def test_problems_on_paper() -> None:
    found = "\n".join(problems(get_experiment("toycheck.sloppy")))
    assert "'steps' of SloppyConfig is numeric but not bounded" in found
    assert "'rate'" not in found.split("preset")[0], "a bounded field is fine"
    assert "no 'smoke' preset" in found
    assert "declares no metrics" in found
    assert "replication claim score > 0 names no negative control" in found
    assert "preset 'quick': rate = 2.0 is out of range" in found
    assert problems(get_experiment("toycheck.signal")) == []


def test_without_a_smoke_preset_nothing_runs() -> None:
    report = check_experiment("toycheck.sloppy")
    assert report.runs == 0 and not report.ok


@dataclass(frozen=True)
class KnobConfig:
    k: int = bounded(1, 0, 5)
    """A knob."""


@dataclass(frozen=True)
class LooseConfig:
    k: int = 1
    """Unbounded."""


def test_a_control_that_changes_nothing_is_a_problem() -> None:
    @experiment(
        name="toycheck.same",
        claims=[Claim("m", ">", 0, source="x", control=Control("same", {"k": 1}, "sets the default"))],
        metrics=("m",),
        presets={"smoke": {}},
    )
    def same(cfg: KnobConfig, ctx: RunContext) -> dict[str, float]:
        return {"m": 1.0}

    assert "control 'same' changes nothing on the defaults" in "\n".join(
        problems(get_experiment("toycheck.same"))
    )


def test_strict_contract_turns_the_rules_into_registration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regmod, "STRICT_CONTRACT", True)
    with pytest.raises(RegistrationError, match="not bounded"):

        @experiment(name="toycheck.strict", metrics=("m",))
        def strict(cfg: LooseConfig, ctx: RunContext) -> dict[str, float]:
            return {"m": 1.0}

    assert "toycheck.strict" not in regmod.all_experiments()
