"""Every registered experiment meets the contract (core.check), like Gymnasium's check_env for envs.

Parametrised over the registry itself — every experiment an installed package registers through
the ``alignlab.experiments`` entry points — so a new experiment is checked the moment it exists.
Experiments defined by tests (toys) are checked in tests/core/test_check.py instead.
"""

from __future__ import annotations

from importlib import metadata

import pytest

from alignlab.core.check import check_experiment, problems
from alignlab.core.registry import ENTRY_POINT_GROUP, Experiment, all_experiments


def registered() -> list[Experiment]:
    """The experiments of installed packages (modules named by an alignlab.experiments entry point)."""
    modules = {ep.value.split(":")[0] for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return [e for e in all_experiments().values() if e.module in modules]


EXPERIMENTS = registered()


def test_the_registry_is_not_empty() -> None:
    assert len(EXPERIMENTS) >= 10, [e.name for e in EXPERIMENTS]


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=lambda e: e.name)
def test_registration_rules(exp: Experiment) -> None:
    """Bounded numeric config fields, a control for every replication, a smoke preset, declared metrics."""
    found = problems(exp)
    assert not found, f"{exp.name}:\n" + "\n".join(f"  - {p}" for p in found)


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=lambda e: e.name)
def test_smoke_run_with_controls(exp: Experiment) -> None:
    """The smoke preset runs for 2 seeds through plan+execute; claims computable; deterministic;
    every control's verdict is not reproduced."""
    report = check_experiment(exp, seeds=2)
    assert report.ok, str(report)
