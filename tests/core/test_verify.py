"""`verify`: file hashes catch tampering, re-execution catches changed results."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

import alignlab
import alignlab.core.verify
from alignlab.core.fsutil import sha256_file
from alignlab.core.runner import run_batch
from alignlab.core.store import Store


@pytest.fixture
def artifacts_store(store_dir: Path) -> Store:
    st = Store(store_dir)
    run_batch("toy.artifacts", seeds=2, store=st, executor="inprocess")
    return st


def test_untouched_runs_verify(artifacts_store: Store) -> None:
    results = alignlab.verify(store=artifacts_store)
    assert len(results) == 2
    assert all(v.ok and v.rerun == "match" and v.files_ok for v in results)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("edit", "artifacts/summary.json: contents changed"),
        ("delete", "artifacts/summary.json: missing"),
        ("add", "artifacts/extra.txt: not in the manifest"),
    ],
)
def test_tampering_is_detected(artifacts_store: Store, action: str, message: str) -> None:
    rec = artifacts_store.runs()[0]
    target = rec.run_dir / "artifacts" / "summary.json"
    if action == "edit":
        target.write_text('{"points": 21}')
    elif action == "delete":
        target.unlink()
    else:
        (rec.run_dir / "artifacts" / "extra.txt").write_text("x")
    [result] = alignlab.verify([rec.run_id], store=artifacts_store, rerun=False)
    assert not result.ok
    assert any(p.startswith(message) for p in result.problems)


def test_corrupt_manifest_is_a_problem_not_a_crash(artifacts_store: Store) -> None:
    rec = artifacts_store.runs()[0]
    (rec.run_dir / "manifest.json").write_text("{truncated")
    results = {v.run_id: v for v in alignlab.verify(store=artifacts_store)}
    assert not results[rec.run_id].ok
    assert "manifest.json is corrupt" in results[rec.run_id].problems[0]
    assert sum(v.ok for v in results.values()) == 1


def test_changed_result_is_a_mismatch_naming_the_metric(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIGNLAB_TOY_DRIFT", "1.0")
    st = Store(store_dir)
    run_batch("toy.drift", seeds=1, store=st, executor="inprocess")
    assert alignlab.verify(store=st)[0].rerun == "match"
    monkeypatch.setenv("ALIGNLAB_TOY_DRIFT", "2.5")
    [result] = alignlab.verify(store=st)
    assert result.rerun == "mismatch" and not result.ok
    assert result.differences == ["value: stored 1.0, re-run 2.5"]


def test_nothing_to_verify_is_an_error(store_dir: Path) -> None:
    Store(store_dir)
    with pytest.raises(alignlab.core.AlignlabError, match="no finished runs"):
        alignlab.verify(store=store_dir)


# -- §2: verify recomputes every displayed number and never runs what the store names -------------


@pytest.fixture
def mean_store(store_dir: Path) -> Store:
    st = Store(store_dir)
    run_batch("toy.mean", seeds=3, store=st, executor="inprocess")
    return st


def _sql(st: Store, statement: str, *args: object) -> None:
    con = sqlite3.connect(st.index_path)
    con.execute(statement, args)
    con.commit()
    con.close()


def _all_messages(report: alignlab.core.verify.VerifyReport) -> list[str]:
    return [
        *report.problems,
        *(p for v in report for p in [*v.problems, *v.differences]),
        *(p for b in report.batches for p in b.problems),
    ]


def test_untouched_store_verifies_runs_and_verdicts(mean_store: Store) -> None:
    report = alignlab.verify(store=mean_store)
    assert report.ok and report.verified == 3
    assert [b.claims for b in report.batches] == [2] and report.batches[0].ok


def test_metric_edited_in_the_index_is_caught(mean_store: Store) -> None:
    rec = mean_store.runs()[0]
    _sql(mean_store, "UPDATE runs SET metrics = ? WHERE run_id = ?", json.dumps({"mean": 0.99, "std": 0.1}),
         rec.run_id)  # fmt: skip
    assert Store(mean_store.root).get_run(rec.run_id).metrics["mean"] == 0.99  # what `runs` would show
    report = alignlab.verify(store=mean_store, rerun=False)
    assert not report.ok
    assert any(m.startswith("index: metrics.mean = 0.99, manifest.json has") for m in _all_messages(report))


def test_metric_edited_in_run_json_is_caught(mean_store: Store) -> None:
    rec = mean_store.runs()[0]
    path = rec.run_dir / "run.json"
    data = json.loads(path.read_text())
    data["metrics"]["mean"] = 0.99
    path.write_text(json.dumps(data))
    report = alignlab.verify([rec.run_id], store=mean_store, rerun=False)
    assert not report.ok
    assert any(m.startswith("run.json: metrics.mean = 0.99") for m in report[0].problems)


def test_metric_edited_in_metrics_json_with_its_hash_is_caught(mean_store: Store) -> None:
    rec = mean_store.runs()[0]
    (rec.run_dir / "metrics.json").write_text('{"mean": 0.99, "std": 0.1}')
    manifest = json.loads((rec.run_dir / "manifest.json").read_text())
    manifest["files"]["metrics.json"] = sha256_file(rec.run_dir / "metrics.json")
    (rec.run_dir / "manifest.json").write_text(json.dumps(manifest))
    [result] = alignlab.verify([rec.run_id], store=mean_store, rerun=False)
    assert not result.ok
    assert any(p.startswith("metrics.json: metrics.mean = 0.99, manifest.json has") for p in result.problems)
    # forging the manifest's copy too leaves the files consistent: re-execution catches it
    manifest["metrics"] = {"mean": 0.99, "std": 0.1}
    (rec.run_dir / "manifest.json").write_text(json.dumps(manifest))
    _sql(
        mean_store,
        "UPDATE runs SET metrics = ? WHERE run_id = ?",
        json.dumps(manifest["metrics"]),
        rec.run_id,
    )
    data = json.loads((rec.run_dir / "run.json").read_text())
    data["metrics"] = manifest["metrics"]
    (rec.run_dir / "run.json").write_text(json.dumps(data))
    report = alignlab.verify([rec.run_id], store=mean_store)
    assert report[0].rerun == "mismatch" and report[0].differences[0].startswith("mean: stored 0.99, re-run")
    assert not report.ok


def test_flipped_verdict_in_the_index_or_batch_file_is_caught(mean_store: Store) -> None:
    [batch] = mean_store.batches()
    _sql(mean_store, "UPDATE claims SET verdict = 'reproduced' WHERE verdict = 'not reproduced'")
    report = alignlab.verify(store=mean_store, rerun=False)
    assert not report.ok and all(v.ok for v in report)
    [problem] = report.batches[0].problems
    assert problem.startswith("index: toy.mean claim 'mean < 0.3': verdict.label = \"reproduced\"")
    alignlab.api.reindex(mean_store)  # back to the batch file's verdicts
    assert alignlab.verify(store=mean_store, rerun=False).ok
    path = mean_store.batch_file(batch["batch_id"])
    data = json.loads(path.read_text())
    data["claims"][1]["mean"] = 0.1
    path.write_text(json.dumps(data))
    report = alignlab.verify(store=mean_store, rerun=False)
    where = f"batches/{batch['batch_id']}.json"
    assert any(
        p.startswith(f"{where}: toy.mean claim 'mean < 0.3': verdict.mean = 0.1")
        for p in report.batches[0].problems
    )


def test_deleted_claims_are_caught(mean_store: Store) -> None:
    _sql(mean_store, "DELETE FROM claims")
    report = alignlab.verify(store=mean_store, rerun=False)
    assert report.batches[0].problems == ["index: holds 0 judged claims, re-judging the batch gives 2"]


def test_failed_runs_are_reported_as_failed_not_verified(store_dir: Path) -> None:
    st = Store(store_dir)
    run_batch("toy.mean", seeds=2, store=st, executor="inprocess", overrides={"mode": "raise"})
    report = alignlab.verify(store=st)
    assert [v.status for v in report] == ["failed", "failed"]
    assert report.verified == 0 and not report.ok and len(report.failed_runs) == 2
    assert all(v.files_ok for v in report)  # their files are intact; they are simply not results


def test_verify_never_imports_a_module_file_named_by_the_store(
    artifacts_store: Store, tmp_path: Path
) -> None:
    marker = tmp_path / "imported"
    evil = artifacts_store.root / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    rec = artifacts_store.runs()[0]
    path = rec.run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(experiment="evil.experiment", module="evil", module_file=str(evil))
    path.write_text(json.dumps(manifest))
    [result] = alignlab.verify([rec.run_id], store=artifacts_store)
    assert not marker.exists()
    assert result.rerun == "error" and "--script" in result.differences[0]
    assert not result.ok


def test_unindexed_run_folder_is_a_store_problem(mean_store: Store) -> None:
    rec = mean_store.runs()[0]
    shutil.copytree(rec.run_dir, mean_store.runs_dir / "toy.mean-s9-copy")
    report = alignlab.verify(store=mean_store, rerun=False)  # the open Store has not seen the new folder
    assert any("toy.mean-s9-copy" in p for p in report.problems)


def test_control_verdicts_and_not_observed_reasons_are_verified(store_dir: Path) -> None:
    st = Store(store_dir)
    run_batch("toycheck.signal", seeds=2, store=st, executor="inprocess", controls=True)
    run_batch("toy.mean", seeds=2, store=st, executor="inprocess", overrides={"mode": "unseen"})
    assert alignlab.verify(store=st).ok
    claim = next(c for c in st.claims_all() if c.control_verdict is not None)
    flip = "UPDATE claims SET control = replace(control, 'not reproduced', 'reproduced') WHERE batch_id = ?"
    _sql(st, flip, claim.batch_id)
    report = alignlab.verify(store=st, rerun=False)
    assert any("control.label" in p for b in report.batches for p in b.problems)
    unseen = next(r for r in st.runs() if r.not_observed)
    _sql(st, "UPDATE runs SET not_observed = '{}' WHERE run_id = ?", unseen.run_id)
    report = alignlab.verify([unseen.run_id], store=st, rerun=False)
    assert any(p.startswith("index: not_observed.mean is missing") for p in report[0].problems)
