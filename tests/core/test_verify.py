"""`verify`: file hashes catch tampering, re-execution catches changed results."""

from __future__ import annotations

from pathlib import Path

import pytest

import alignlab
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
