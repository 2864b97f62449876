"""Running batches: results, claims, failures, overrides, interruption and --resume."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

import alignlab
from alignlab.core.errors import OverrideError, UnknownNameError
from alignlab.core.runner import RunInterrupted, run_batch
from alignlab.core.store import Store


def run(target: str, store: Path, **kw):
    kw.setdefault("executor", "inprocess")
    return run_batch(target, store=Store(store), **kw)


def verdicts(result) -> list[str]:
    return [c.verdict.label for c in result.claims]


def test_batch_runs_every_seed_and_judges_claims(store_dir: Path) -> None:
    result = run("toy.mean", store_dir, seeds=3)
    assert sorted(r.seed for r in result.runs) == [0, 1, 2]
    assert {r.status for r in result.runs} == {"done"}
    assert verdicts(result) == ["reproduced", "not reproduced"]
    claim = result.claims[0]
    assert claim.verdict.n == 3 and 0.4 < claim.verdict.mean < 0.6
    means = {r.seed: r.metrics["mean"] for r in result.runs}
    assert len(set(means.values())) == 3, "each seed draws differently"


def test_same_seed_same_metrics_across_batches_and_executors(store_dir: Path) -> None:
    a = run("toy.mean", store_dir, seeds=2)
    b = run("toy.mean", store_dir, seeds=2, executor="local", workers=2)
    key = lambda res: {r.seed: r.metrics for r in res.runs}  # noqa: E731
    assert key(a) == key(b)


def test_suite_uses_its_preset_and_overrides_apply(store_dir: Path) -> None:
    result = run("toysuite", store_dir, seeds=2)
    ns = {r.config["n"] for r in result.runs if r.experiment == "toy.mean"}
    assert ns == {300}
    result = run("toy.mean", store_dir, seeds=2, overrides=["cfg.n=50", "scale=2"])
    assert {(r.config["n"], r.config["scale"]) for r in result.runs} == {(50, 2.0)}


def test_bad_override_fails_before_anything_is_stored(store_dir: Path) -> None:
    with pytest.raises(OverrideError, match="Valid keys"):
        run("toy.mean", store_dir, overrides=["episodes=3"])
    assert Store(store_dir).batches() == []
    with pytest.raises(UnknownNameError):
        run("toy.nope", store_dir)


def test_nan_metric_makes_claims_inconclusive_with_reason(store_dir: Path) -> None:
    result = run("toy.mean", store_dir, seeds=2, overrides={"mode": "nan"})
    assert {r.status for r in result.runs} == {"done"}
    assert all(math.isnan(r.metrics["mean"]) for r in result.runs)
    assert verdicts(result) == ["inconclusive", "inconclusive"]
    assert "NaN" in result.claims[0].verdict.reason


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("raise", "RuntimeError: boom from the experiment"),
        ("bad_type", "'mean' = 'high', not a number"),
    ],
)
def test_failing_experiment_is_recorded_not_raised(store_dir: Path, mode: str, message: str) -> None:
    result = run("toy.mean", store_dir, seeds=2, overrides={"mode": mode})
    assert {r.status for r in result.runs} == {"failed"}
    assert all(message in (r.error or "") for r in result.runs)
    assert verdicts(result) == ["inconclusive", "inconclusive"]
    assert "did not finish" in result.claims[0].verdict.reason
    if mode == "raise":
        assert "Traceback" in (result.runs[0].run_dir / "traceback.txt").read_text()


def test_a_claimed_metric_the_run_leaves_out_is_not_measured_not_a_failed_run(store_dir: Path) -> None:
    result = run("toy.mean", store_dir, seeds=2, overrides={"mode": "missing"})
    assert {r.status for r in result.runs} == {"done"}, "the compute is kept"
    assert verdicts(result) == ["not measured", "not measured"]
    assert "not returned by any of the 2 runs" in result.claims[0].verdict.reason
    assert {r.run_id for r in Store(store_dir).runs()} == {r.run_id for r in result.runs}


def test_not_observed_is_stored_with_its_reason_and_judged_not_reproduced(store_dir: Path) -> None:
    result = run("toy.mean", store_dir, seeds=2, overrides={"mode": "unseen"})
    assert {r.status for r in result.runs} == {"done"}
    assert verdicts(result) == ["not reproduced", "not reproduced"]
    assert "not observed in 2 of 2 runs: no draw above 2 in 200 draws" in result.claims[0].verdict.reason
    for rec in Store(store_dir).runs():  # read back from the store, not the runner's memory
        assert math.isnan(rec.metrics["mean"]) and rec.not_observed == {
            "mean": "no draw above 2 in 200 draws"
        }
        manifest = rec.manifest()
        assert manifest is not None and manifest["not_observed"] == rec.not_observed
        assert json.loads((rec.run_dir / "not_observed.json").read_text()) == rec.not_observed
        assert "not_observed.json" in manifest["files"]
    stored = Store(store_dir).claims(batch_id=result.batch_id)
    assert [c.verdict.label for c in stored] == ["not reproduced", "not reproduced"]
    assert stored[0].verdict.reason == result.claims[0].verdict.reason


def test_controls_run_with_the_same_seeds_and_are_judged_apart(store_dir: Path) -> None:
    result = run("toycheck.signal", store_dir, seeds=2, controls=True, overrides={"n": 60})
    by_control = {(r.control, r.seed) for r in result.runs}
    assert by_control == {(None, 0), (None, 1), ("no_signal", 0), ("no_signal", 1)}
    control_runs = [r for r in result.runs if r.control]
    assert {r.config["effect"] for r in control_runs} == {0.0} and {r.config["n"] for r in control_runs} == {
        60
    }
    assert {r.config["effect"] for r in result.runs if not r.control} == {1.0}
    effect = next(c for c in result.claims if c.claim.describe() == "effect_size > 0.5")
    assert effect.word == "reproduced" and effect.control_word == "effect vanished"
    assert set(effect.run_ids) == {r.run_id for r in result.runs if not r.control}
    assert set(effect.control_run_ids) == {r.run_id for r in control_runs}
    assert effect.verdict.mean > 0.9 and abs(effect.control_verdict.mean) < 0.1
    kinds = {c.claim.describe(): (c.kind, c.word, c.control_word) for c in result.claims}
    assert kinds["spread < 1"] == ("exact", "holds", "no control")
    assert kinds["effect_size < 5"] == ("target", "met", "no control")
    stored = Store(store_dir).claims(batch_id=result.batch_id)
    assert [(c.claim.kind, c.control_word) for c in stored] == [
        (c.kind, c.control_word) for c in result.claims
    ]
    assert {r.control for r in Store(store_dir).runs()} == {None, "no_signal"}
    manifest = control_runs[0].manifest()
    assert manifest is not None and manifest["control"] == "no_signal"


def test_resume_reuses_control_runs_as_control_runs(store_dir: Path) -> None:
    first = run("toycheck.signal", store_dir, seeds=2, controls=True)
    again = run("toycheck.signal", store_dir, seeds=2, controls=True, resume=True)
    assert again.reused == 4
    assert {(r.run_id, r.control) for r in again.runs} == {(r.run_id, r.control) for r in first.runs}
    assert [c.control_word for c in again.claims] == [c.control_word for c in first.claims]


def test_without_controls_no_control_runs_and_no_control_verdicts(store_dir: Path) -> None:
    result = run("toycheck.signal", store_dir, seeds=2)
    assert {r.control for r in result.runs} == {None}
    assert all(c.control_verdict is None for c in result.claims)
    assert next(c for c in result.claims if c.claim.control).control_word == "not run"


def test_a_control_that_persists_is_reported(store_dir: Path) -> None:
    result = run("toycheck.leaky", store_dir, seeds=2, controls=True)
    [claim] = result.claims
    assert claim.word == "reproduced" and claim.control_word == "effect persists" and claim.control_failed


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["n=-5"], "n = -5 is out of range: it must lie in [2, 100000]"),
        (["noise=20"], "noise = 20.0 is out of range"),
        (["n=1e100"], "n = 1e+100 is out of range"),
        (["n=1" + "0" * 400], "is out of range"),
    ],
)
def test_out_of_range_values_fail_before_anything_runs(store_dir: Path, overrides, message) -> None:
    with pytest.raises(OverrideError, match=re.escape(message)):
        run("toycheck.signal", store_dir, overrides=overrides)
    assert not store_dir.exists() or Store(store_dir).runs() == []


def test_unknown_preset_is_an_error_listing_the_presets(store_dir: Path) -> None:
    with pytest.raises(OverrideError, match=r"unknown preset 'smoek'.*Did you mean: smoke\?.*Presets: smoke"):
        run("toycheck.signal", store_dir, preset="smoek")
    result = run("toy.mean", store_dir, seeds=2, preset="toysuite")  # a suite preset is a preset
    assert {r.config["n"] for r in result.runs} == {300}


def test_inputs_recorded_by_the_experiment_go_into_the_manifest(store_dir: Path) -> None:
    result = run("toy.artifacts", store_dir, seeds=1)
    manifest = result.runs[0].manifest()
    assert manifest is not None and manifest["inputs"] == {"toy/points": "ab" * 32}


def test_artifacts_and_series_are_stored(store_dir: Path) -> None:
    result = run("toy.artifacts", store_dir, seeds=1)
    rec = result.runs[0]
    names = {p.name for p in rec.artifacts()}
    assert names == {"curve.png", "summary.json", "arrays.safetensors"}
    assert [row["step"] for row in rec.timeseries()] == list(range(20))
    manifest = rec.manifest()
    assert manifest is not None
    assert set(manifest["files"]) >= {"artifacts/curve.png", "timeseries.jsonl", "metrics.json"}
    assert manifest["seed"] == 0 and manifest["code"]["source_hash"]
    assert manifest["env"]["python"] and manifest["env"]["numpy"]
    assert json.loads((rec.run_dir / "config.json").read_text()) == {"points": 20}
    assert (rec.run_dir / "artifacts" / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_ctrl_c_keeps_finished_runs_and_resume_finishes_the_rest(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIGNLAB_TOY_INTERRUPT_SEED", "1")
    with pytest.raises(RunInterrupted, match="--resume"):
        run("toy.mean", store_dir, seeds=3)
    status = {r.seed: r.status for r in Store(store_dir).runs()}
    assert status == {0: "done", 1: "interrupted", 2: "interrupted"}
    done_id = next(r.run_id for r in Store(store_dir).runs() if r.seed == 0)

    monkeypatch.delenv("ALIGNLAB_TOY_INTERRUPT_SEED")
    result = run("toy.mean", store_dir, seeds=3, resume=True)
    assert result.reused == 1
    assert {r.seed: r.status for r in result.runs} == {0: "done", 1: "done", 2: "done"}
    assert done_id in {r.run_id for r in result.runs}
    assert len(Store(store_dir).runs()) == 3, "interrupted runs are re-run in place"
    assert result.claims[0].verdict.n == 3


def test_resume_with_everything_done_runs_nothing(store_dir: Path) -> None:
    first = run("toy.mean", store_dir, seeds=2)
    again = run("toy.mean", store_dir, seeds=2, resume=True)
    assert again.reused == 2
    assert {r.run_id for r in again.runs} == {r.run_id for r in first.runs}


def test_load_runs_dataframe(store_dir: Path) -> None:
    run("toy.mean", store_dir, seeds=2)
    df = alignlab.load_runs(store_dir)
    assert len(df) == 2
    assert {"run_id", "experiment", "seed", "status", "config", "metric.mean"} <= set(df.columns)
    assert df["verdicts"].iloc[0] == {"mean > 0.25": "reproduced", "mean < 0.3": "not reproduced"}
    assert df["kinds"].iloc[0] == {"mean > 0.25": "replication", "mean < 0.3": "replication"}
    assert set(df["control"]) == {None}


def test_load_runs_and_load_claims_show_kinds_and_controls(store_dir: Path) -> None:
    run("toycheck.signal", store_dir, seeds=2, controls=True)
    df = alignlab.load_runs(store_dir)
    main = df[df["control"].isna()].iloc[0]
    control = df[df["control"] == "no_signal"].iloc[0]
    assert main["verdicts"]["spread < 1"] == "holds" and main["kinds"]["spread < 1"] == "exact"
    assert main["verdicts"]["effect_size < 5"] == "met"
    assert control["verdicts"] == {
        "effect_size > 0.5": "effect vanished",
        "crossing_step < 50": "effect vanished",
    }
    assert control["not_observed"] == {"crossing_step": "the running mean never passed 0.5 in 200 draws"}
    assert math.isnan(control["metric.crossing_step"])
    claims = alignlab.api.load_claims(store_dir)
    assert list(claims["kind"]) == ["replication", "replication", "exact", "target"]
    assert list(claims["word"]) == ["reproduced", "reproduced", "holds", "met"]
    assert list(claims["control_word"]) == ["effect vanished", "effect vanished", "no control", "no control"]


def test_cuda_request_without_gpu_is_a_clear_error(store_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(alignlab.core.AlignlabError, match="no CUDA"):
        run("toy.mean", store_dir, device="cuda")


def test_ray_executor_gives_the_same_results(store_dir: Path) -> None:
    ray = pytest.importorskip("ray")
    local = run("toy.mean", store_dir, seeds=2)
    try:
        remote = run("toy.mean", store_dir, seeds=2, executor="ray", workers=2)
    finally:
        ray.shutdown()
    key = lambda res: {r.seed: r.metrics for r in res.runs}  # noqa: E731
    assert key(local) == key(remote)
    assert verdicts(local) == verdicts(remote)


def test_ray_missing_is_a_clear_error(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(alignlab.core.AlignlabError, match=r"alignlab\[ray\]"):
        run("toy.mean", store_dir, executor="ray")


def test_artifact_names_may_hold_folders_but_never_escape(tmp_path: Path) -> None:
    from alignlab.core import RunContext

    ctx = RunContext(0, tmp_path / "run")
    nested = ctx.save_artifact("lens/config.json", b"{}")
    assert nested == ctx.artifact_dir / "lens" / "config.json" and nested.read_bytes() == b"{}"
    escaped = ctx.save_artifact("../../evil/../x.txt", b"no")
    assert escaped.resolve().is_relative_to(ctx.artifact_dir.resolve())
    assert "artifacts/lens/config.json" in ctx.artifacts


def test_reporter_feeds_fractions_to_the_runner_bar(tmp_path: Path) -> None:
    from alignlab.core import RunContext

    seen: list[tuple[float, str]] = []
    ctx = RunContext(0, tmp_path / "run", progress_callback=lambda f, d: seen.append((f, d)))
    report = ctx.reporter("training")
    for fraction in (0.25, 1.5, -1.0):
        report(fraction, "step message")
    assert seen == [(0.25, "training"), (1.0, "training"), (0.0, "training")]
    RunContext(0, tmp_path / "quiet").reporter("x")(0.5, "")  # no bar: a no-op
