"""The notebook-facing API: names stay callable, script experiments verify, claims index."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "core"))
import toy_experiments  # noqa: F401

import alignlab

SCRIPT = textwrap.dedent(
    """
    from dataclasses import dataclass
    import sys
    import alignlab
    from alignlab import Claim, RunContext, experiment

    @dataclass(frozen=True)
    class Cfg:
        n: int = 50
        \"\"\"Draws.\"\"\"

    @experiment(name="script.draws", claims=[Claim("mean", ">", 0.0, source="test")])
    def draws(cfg: Cfg, ctx: RunContext) -> dict[str, float]:
        return {"mean": float(ctx.rng.random(cfg.n).mean())}

    if __name__ == "__main__":
        alignlab.run("script.draws", seeds=2, store=sys.argv[1], executor="inprocess", report=False)
    """
)


def test_report_stays_a_function_after_the_report_modules_are_imported(tmp_path: Path) -> None:
    result = alignlab.run("toy.artifacts", seeds=2, store=tmp_path / "s", executor="inprocess")
    assert result.report_path is not None and result.report_path.exists()
    importlib.import_module("alignlab.reporting.html")
    assert callable(alignlab.report)
    out = alignlab.report(store=tmp_path / "s", output=tmp_path / "r.html")
    assert "toy.artifacts" in out.read_text()


def test_verify_re_executes_an_experiment_defined_in_a_script(tmp_path: Path) -> None:
    script = tmp_path / "my_study.py"
    script.write_text(SCRIPT)
    store = tmp_path / "s"
    subprocess.run([sys.executable, str(script), str(store)], check=True, capture_output=True)
    results = alignlab.verify(store=store, scripts=[script])
    assert [r.rerun for r in results] == ["match", "match"], results


def test_claims_index_prefers_batches_without_overrides(tmp_path: Path) -> None:
    store = tmp_path / "s"
    alignlab.run("toy.mean", seeds=3, store=store, executor="inprocess", report=False)
    alignlab.run(
        "toy.mean", seeds=3, store=store, executor="inprocess", report=False, overrides={"scale": 0.1}
    )
    rows = {r["claim"]: r for r in alignlab.claims_index(store) if r["experiment"] == "toy.mean"}
    assert rows["mean > 0.25"]["verdict"] == "reproduced"
    assert rows["mean < 0.3"]["verdict"] == "not reproduced"
