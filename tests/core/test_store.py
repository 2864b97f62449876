"""The run store: format checks, corruption, re-indexing, concurrency and killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alignlab.core.errors import StoreError
from alignlab.core.runner import run_batch
from alignlab.core.store import STORE_VERSION, Store

HERE = Path(__file__).parent


def populate(store_dir: Path, seeds: int = 2) -> Store:
    st = Store(store_dir)
    run_batch("toy.mean", seeds=seeds, store=st, executor="inprocess")
    return st


def python_running(code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_new_store_layout(store_dir: Path) -> None:
    Store(store_dir)
    marker = json.loads((store_dir / "store.json").read_text())
    assert marker == {"format": "alignlab-store", "version": STORE_VERSION}
    assert (store_dir / "index.db").exists() and (store_dir / "runs").is_dir()


def test_missing_store_is_an_error_when_reading(store_dir: Path) -> None:
    with pytest.raises(StoreError, match="no alignlab store"):
        Store(store_dir, create=False)


def test_store_from_a_newer_alignlab_is_refused(store_dir: Path) -> None:
    populate(store_dir)
    (store_dir / "store.json").write_text(json.dumps({"format": "alignlab-store", "version": 99}))
    with pytest.raises(StoreError, match="newer than this alignlab"):
        Store(store_dir)


@pytest.mark.parametrize("content", ["{not json", '{"format": "something-else", "version": 1}'])
def test_corrupt_or_foreign_marker(store_dir: Path, content: str) -> None:
    populate(store_dir)
    (store_dir / "store.json").write_text(content)
    with pytest.raises(StoreError):
        Store(store_dir)


def test_corrupt_index_is_reported_and_reindex_recovers_every_run(store_dir: Path) -> None:
    st = populate(store_dir, seeds=3)
    before = {r.run_id: r.metrics for r in st.runs()}
    claims_before = [(c.claim, c.verdict.label) for c in st.claims_all()]
    for suffix in ("", "-wal", "-shm"):
        Path(str(st.index_path) + suffix).unlink(missing_ok=True)
    st.index_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="alignlab reindex"):
        Store(store_dir).runs()
    st = Store.__new__(Store)
    st.root, st.runs_dir, st.index_path = store_dir, store_dir / "runs", store_dir / "index.db"
    assert st.reindex() == 3
    after = {r.run_id: r.metrics for r in Store(store_dir).runs()}
    assert after == before
    assert [(c.claim, c.verdict.label) for c in Store(store_dir).claims_all()] == claims_before
    assert list(store_dir.glob("index.db.broken-*")), "the broken index is kept, not deleted"


def test_deleted_index_is_rebuilt_on_open(store_dir: Path) -> None:
    st = populate(store_dir)
    ids = {r.run_id for r in st.runs()}
    for suffix in ("", "-wal", "-shm"):
        Path(str(st.index_path) + suffix).unlink(missing_ok=True)
    assert {r.run_id for r in Store(store_dir).runs()} == ids


def test_two_processes_write_one_store_at_once(store_dir: Path) -> None:
    Store(store_dir)
    code = (
        "import toy_experiments, alignlab; "
        f"alignlab.run('toy.mean', seeds=4, store={str(store_dir)!r}, executor='inprocess', "
        "report=False)"
    )
    procs = [python_running(code) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    st = Store(store_dir)
    runs = st.runs()
    assert len(runs) == 8 and {r.status for r in runs} == {"done"}
    assert len(st.batches()) == 2
    assert len(st.claims_all()) == 4


def test_killed_run_shows_interrupted_and_resume_reruns_only_it(store_dir: Path) -> None:
    Store(store_dir)
    populate(store_dir, seeds=1)  # seed 0 done beforehand with the default config
    code = (
        "import toy_experiments, alignlab; "
        f"alignlab.run('toy.mean', seeds=3, store={str(store_dir)!r}, executor='inprocess', "
        "overrides={'sleep': 0.4}, report=False)"
    )
    proc = python_running(code)
    st = Store(store_dir)
    deadline = time.time() + 60
    while time.time() < deadline:
        if any(r.status == "done" and r.config["sleep"] == 0.4 for r in st.runs()):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the child never finished its first run")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    slow = [r for r in st.runs() if r.config["sleep"] == 0.4]
    assert sorted(r.status for r in slow) == ["done", "interrupted", "interrupted"]
    for r in slow:
        assert r.run_dir.is_dir()
    result = run_batch(
        "toy.mean", seeds=3, store=st, executor="inprocess", overrides={"sleep": 0.4}, resume=True
    )
    assert result.reused == 1
    assert sorted(r.status for r in result.runs) == ["done", "done", "done"]
    assert len(st.runs()) == 4
