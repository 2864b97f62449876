"""The tutorial's experiment (docs/examples/coin_bias.py) runs through the harness as the docs say."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import alignlab

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "coin_bias.py"


def import_example() -> ModuleType:
    """Import docs/examples/coin_bias.py by path, registering `tutorial.coin_bias`."""
    if "coin_bias" in sys.modules:
        return sys.modules["coin_bias"]
    spec = importlib.util.spec_from_file_location("coin_bias", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["coin_bias"] = module
    spec.loader.exec_module(module)
    return module


def test_tutorial_experiment_runs_and_every_claim_is_judged(tmp_path: Path) -> None:
    import_example()
    result = alignlab.run("tutorial.coin_bias", seeds=2, store=tmp_path, executor="inprocess", report=False)
    assert len(result.runs) == 2
    assert {r.status for r in result.runs} == {"done"}, [r.error for r in result.runs]
    assert all((r.run_dir / "artifacts" / "coverage.png").is_file() for r in result.runs)
    assert all(r.timeseries() for r in result.runs)
    judged = {c.claim.metric: c.verdict for c in result.claims}
    assert set(judged) == {"hoeffding_slack", "wald_slack"}
    assert all(v.n == 2 for v in judged.values())
    assert {v.label for v in judged.values()} == {"reproduced"}, judged


def test_tutorial_experiment_is_deterministic(tmp_path: Path) -> None:
    import_example()
    result = alignlab.run("tutorial.coin_bias", seeds=[0], store=tmp_path, executor="inprocess", report=False)
    checks = alignlab.verify([result.runs[0].run_id], store=tmp_path)
    assert [(v.files_ok, v.rerun) for v in checks] == [(True, "match")], checks
