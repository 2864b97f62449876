"""The run store: format checks, corruption, re-indexing, concurrency and killed runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import alignlab
from alignlab.core.errors import StoreError, UnknownNameError
from alignlab.core.runner import run_batch
from alignlab.core.store import STORE_VERSION, Store, default_root

HERE = Path(__file__).parent


def populate(store_dir: Path, seeds: int = 2) -> Store:
    st = Store(store_dir)
    run_batch("toy.mean", seeds=seeds, store=st, executor="inprocess")
    return st


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)


def python_running(code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
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
    assert alignlab.api.reindex(store_dir).runs == 3  # opening a damaged store for reindex works
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


# -- §3: run ids become paths only when valid; damaged indexes recover; concurrency --------------


def _forge_interrupted(st: Store, folder: str, run_id: str) -> None:
    """A run folder whose run.json claims to be an interrupted toy.mean seed-0 run named `run_id`."""
    real = json.loads(next(st.runs_dir.glob("*/run.json")).read_text())
    d = st.runs_dir / folder
    d.mkdir()
    (d / "run.json").write_text(json.dumps({**real, "run_id": run_id, "status": "interrupted", "seed": 0}))


def test_reindex_rejects_a_run_id_that_is_a_path_and_resume_stays_inside(tmp_path: Path) -> None:
    store_dir = tmp_path / "deep" / "store"
    st = populate(store_dir, seeds=1)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    for r in st.runs():  # make the forged record the only candidate --resume could re-run
        (r.run_dir / "manifest.json").unlink()
    _forge_interrupted(st, "evil", "../../../victim")
    report = alignlab.api.reindex(store_dir)
    assert any("evil" in s and "not its folder" in s for s in report.skipped)
    assert all(r.run_id != "../../../victim" for r in Store(store_dir).runs())
    run_batch("toy.mean", seeds=1, store=Store(store_dir), executor="inprocess", resume=True)
    assert (victim / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]


def test_an_index_row_with_a_path_id_is_refused_not_followed(store_dir: Path) -> None:
    st = populate(store_dir, seeds=1)
    con = sqlite3.connect(st.index_path)
    con.execute("UPDATE runs SET run_id = '../../x'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="invalid run id"):
        st.runs()
    with pytest.raises(StoreError, match="invalid run id"):
        st.run_dir("../../x")


def test_emptied_index_is_rebuilt_not_shown_as_an_empty_store(store_dir: Path) -> None:
    st = populate(store_dir, seeds=2)
    ids = {r.run_id for r in st.runs()}
    con = sqlite3.connect(st.index_path)
    con.execute("DELETE FROM runs")
    con.commit()
    con.close()
    assert {r.run_id for r in Store(store_dir).runs()} == ids
    for suffix in ("-wal", "-shm"):
        Path(f"{st.index_path}{suffix}").unlink(missing_ok=True)
    st.index_path.write_bytes(b"")  # truncated to nothing: a valid, empty database
    assert {r.run_id for r in Store(store_dir).runs()} == ids
    assert len(Store(store_dir).claims_all()) == 2


def test_unindexed_run_folder_is_added_on_open(store_dir: Path) -> None:
    st = populate(store_dir, seeds=2)
    gone = st.runs()[0].run_id
    con = sqlite3.connect(st.index_path)
    con.execute("DELETE FROM runs WHERE run_id = ?", (gone,))
    con.commit()
    con.close()
    assert gone in {r.run_id for r in Store(store_dir).runs()}


def test_reindex_keeps_a_run_whose_run_json_is_unreadable(store_dir: Path) -> None:
    st = populate(store_dir, seeds=2)
    rec = st.runs()[0]
    (rec.run_dir / "run.json").write_text("{torn")
    report = alignlab.api.reindex(store_dir)
    assert report.runs == 2 and report.from_manifest == [rec.run_id]
    again = Store(store_dir).get_run(rec.run_id)
    assert again.metrics == rec.metrics and again.status == "done"
    assert json.loads((rec.run_dir / "run.json").read_text())["run_id"] == rec.run_id
    assert alignlab.verify([rec.run_id], store=store_dir, rerun=False).ok


def test_reindex_rejudges_claims_whose_batch_file_is_unreadable(store_dir: Path) -> None:
    st = populate(store_dir, seeds=3)
    before = [(c.claim.describe(), c.verdict.label, c.verdict.mean) for c in st.claims_all()]
    [batch] = st.batches()
    st.batch_file(batch["batch_id"]).write_text("not json")
    report = alignlab.api.reindex(store_dir)
    assert report.unjudged == [batch["batch_id"]]
    after = [(c.claim.describe(), c.verdict.label, c.verdict.mean) for c in Store(store_dir).claims_all()]
    assert after == before
    assert alignlab.verify(store=store_dir, rerun=False).ok


def test_reindex_cli_recovers_a_damaged_index(store_dir: Path) -> None:
    populate(store_dir, seeds=2)
    for suffix in ("-wal", "-shm"):
        Path(f"{store_dir / 'index.db'}{suffix}").unlink(missing_ok=True)
    (store_dir / "index.db").write_bytes(b"garbage" * 500)
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "COLUMNS": "200"}
    cmd = [sys.executable, str(HERE / "cli_driver.py")]
    out = subprocess.run([*cmd, "runs", "--store", str(store_dir)], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "alignlab reindex" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(
        [*cmd, "reindex", "--store", str(store_dir)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "re-indexed 2 runs" in out.stdout
    assert len(Store(store_dir).runs()) == 2


def test_parallel_first_opens_never_see_zero_runs(store_dir: Path) -> None:
    populate(store_dir, seeds=24)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_dir / 'index.db'}{suffix}").unlink(missing_ok=True)
    code = (
        "import time; from alignlab.core.store import Store; "
        f"time.sleep(max(0.0, {time.time() + 3.0} - time.time())); "  # all open at the same moment
        f"print(len(Store({str(store_dir)!r}).runs()))"
    )
    procs = [python_running(code) for _ in range(8)]
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        counts.append(int(out) if p.returncode == 0 else err.strip().splitlines()[-1])
    assert counts == [24] * 8


def test_resume_reruns_a_done_run_whose_folder_was_deleted(store_dir: Path) -> None:
    st = populate(store_dir, seeds=2)
    lost = st.runs()[0]
    shutil.rmtree(lost.run_dir)
    result = run_batch("toy.mean", seeds=2, store=st, executor="inprocess", resume=True)
    assert result.reused == 1
    assert (lost.run_dir / "manifest.json").exists()
    assert alignlab.verify(store=st).ok


def test_two_concurrent_resumes_never_execute_the_same_run(store_dir: Path, tmp_path: Path) -> None:
    st = Store(store_dir)
    os.environ["ALIGNLAB_TOY_INTERRUPT_SEED"] = "0"
    try:
        with pytest.raises(Exception, match="interrupted"):
            run_batch("toy.mean", seeds=3, store=st, executor="inprocess", overrides={"sleep": 0.3})
    finally:
        del os.environ["ALIGNLAB_TOY_INTERRUPT_SEED"]
    assert {r.status for r in st.runs()} == {"interrupted"}
    log = tmp_path / "executions.log"
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "ALIGNLAB_TOY_LOG": str(log), "COLUMNS": "200"}
    cmd = [sys.executable, str(HERE / "cli_driver.py"), "run", "toy.mean", "--seeds", "3", "--resume",
           "--set", "sleep=0.3", "--workers", "1", "--no-report", "--store", str(store_dir)]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    seeds = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(seeds) == ["0", "1", "2"], (seeds, results)  # each run executed exactly once
    for code, err in results:
        assert code == 0 or (code == 2 and "being executed right now" in err), err
        assert "Traceback" not in err
    assert sorted(r.status for r in Store(store_dir).runs()) == ["done"] * 3


def test_store_path_that_is_a_file_or_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        Store(tmp_path / "f")
    with pytest.raises(StoreError, match="cannot create a store"):
        Store(tmp_path / "f" / "store")


def test_alignlab_home_expands_the_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ALIGNLAB_HOME", "~/runs-here")
    assert default_root() == tmp_path / "runs-here"
    assert Store().root == tmp_path / "runs-here"
    assert not Path("~").exists()


def test_show_prefix_is_not_a_wildcard(store_dir: Path) -> None:
    st = populate(store_dir, seeds=1)
    for pattern in ("%", "_", "toy_mean", "toy.mean%"):
        with pytest.raises(UnknownNameError):
            st.get_run(pattern)
    assert st.get_run("toy.mean-s0").seed == 0
    assert st.runs(experiment="toy_mean") == []


def test_read_only_store_can_be_read(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = populate(store_dir, seeds=2)
    assert st.index_path.exists()
    for p in [store_dir, *store_dir.rglob("*")]:
        os.chmod(p, 0o555 if p.is_dir() else 0o444)
    if os.geteuid() == 0:  # root ignores permission bits: make the store look read-only as it would to a user
        monkeypatch.setattr("alignlab.core.store._writable", lambda path: False)
    try:
        ro = alignlab.open_store(store_dir)
        assert ro.readonly
        assert len(ro.runs()) == 2 and len(ro.claims_all()) == 2
        assert alignlab.verify(store=ro, rerun=False).ok
        with pytest.raises(StoreError, match="read-only"):
            ro.reindex()
    finally:
        for p in [store_dir, *store_dir.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
