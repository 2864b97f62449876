"""The CLI: commands print what they should; user errors are one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "core"))
import toy_experiments  # noqa: F401

from alignlab.cli import main
from alignlab.core.store import Store

DRIVER = Path(__file__).parent / "core" / "cli_driver.py"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `alignlab ARGS` in-process; returns exit code, stdout, stderr."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")


def test_list_and_describe(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list")
    assert code == 0 and "toy.mean" in out and "mean > 0.25" in out
    code, out, _ = cli(capsys, "describe", "toy.mean")
    assert code == 0 and "Number of uniform draws." in out and "law of large numbers" in out


def test_run_prints_claims_then_runs_show_and_verify(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = str(tmp_path / "s")
    code, out, _ = cli(capsys, "run", "toy.mean", "--seeds", "2", "--store", store, "--workers", "1",
                       "--no-report")  # fmt: skip
    assert code == 0
    assert "reproduced" in out and "not reproduced" in out and "law of large numbers" in out
    code, out, _ = cli(capsys, "runs", "--store", store)
    assert code == 0 and out.count("toy.mean-s") == 2
    code, out, _ = cli(capsys, "runs", "--store", store, "--json")
    rows = json.loads(out)
    assert {r["seed"] for r in rows} == {0, 1}
    run_id = rows[0]["run_id"]
    code, out, _ = cli(capsys, "show", run_id[:-3], "--store", store)
    assert code == 0 and run_id in out and "cfg.n" in out
    code, out, _ = cli(capsys, "verify", "--all", "--store", store)
    assert code == 0 and "all 2 runs verified" in out
    code, out, _ = cli(capsys, "claims", "--store", store, "--markdown")
    assert code == 0 and "| `toy.mean` | `mean > 0.25` | law of large numbers | reproduced |" in out


def test_verify_exits_non_zero_on_tampering(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    cli(capsys, "run", "toy.mean", "--seeds", "2", "--store", store, "--workers", "1", "--no-report")
    rec = Store(store).runs()[0]
    (rec.run_dir / "metrics.json").write_text('{"mean": 0.99, "std": 0.1}')
    code, out, err = cli(capsys, "verify", "--all", "--store", store, "--no-rerun")
    assert code == 1 and "metrics.json: contents changed" in out and "failed verification" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "toy.maen"], "Did you mean: toy.mean"),
        (["run", "toy.mean", "--set", "n=ten"], "n must be an integer"),
        (["run", "toy.mean", "--set", "nn=3"], "Valid keys: n, scale, sleep, mode"),
        (["run", "toy.mean", "--set", "oops"], "must look like key=value"),
        (["run", "toy.mean", "--executor", "slurm"], "unknown executor"),
        (["runs", "--status", "finished"], "unknown status"),
        (["show", "nope"], "no run 'nope'"),
        (["verify"], "pass --all"),
        (["describe", "toy"], "unknown experiment"),
    ],
)
def test_user_errors_are_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    store = tmp_path / "s"
    Store(store)
    with_store = args + (["--store", str(store)] if args[0] in {"run", "runs", "show", "verify"} else [])
    code, out, err = cli(capsys, *with_store)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out
    assert err.strip().startswith("error:")


def test_missing_and_newer_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "runs", "--store", str(tmp_path / "absent"))
    assert code == 2 and "no alignlab store" in err
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "store.json").write_text('{"format": "alignlab-store", "version": 7}')
    code, _, err = cli(capsys, "runs", "--store", str(newer))
    assert code == 2 and "newer than this alignlab" in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exception, match="unknown experiment"):
        main(["describe", "toy.nope", "--debug"])


def test_ctrl_c_stops_cleanly_and_marks_runs(tmp_path: Path) -> None:
    store = tmp_path / "s"
    Store(store)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), "run", "toy.mean", "--seeds", "3", "--workers", "1",
         "--set", "sleep=0.3", "--store", str(store)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    st = Store(store)
    deadline = time.time() + 60
    while time.time() < deadline and not any(r.status == "done" for r in st.runs()):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    statuses = sorted(r.status for r in st.runs())
    assert statuses[0] == "done" and set(statuses[1:]) == {"interrupted"}


def test_envs_lists_every_environment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "envs", "--json")
    assert code == 0
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    assert {"SafeInterruptibility", "SideEffectsSokoban", "CoinAtEnd"} <= names
    assert all(r["id"] == f"alignlab/{r['name']}-v0" for r in rows)
    assert all("unavailable" not in r["description"] for r in rows)


# -- §3: usage errors, markup, file-system errors, report targets -------------------------------


@pytest.mark.parametrize(
    "args",
    [["run", "toy.mean", "--seeds", "0"], ["--bogus"], ["run"], [], ["runs", "--limit", "x"]],
    ids=["seeds-0", "unknown-option", "missing-argument", "bare", "bad-int"],
)
def test_usage_errors_print_usage_and_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = cli(capsys, *args)
    assert code == 2
    assert "Usage" in out + err
    assert "internal error" not in out + err and "Traceback" not in out + err


def test_rich_markup_in_a_set_value_is_printed_not_parsed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(capsys, "run", "toy.mean", "--set", "n=[/x]", "--store", str(tmp_path / "s"))
    assert code == 2 and "[/x]" in err and "Traceback" not in err and "internal error" not in err


def test_a_failing_run_with_markup_in_its_error_never_stops_the_batch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIGNLAB_TOY_FAIL_SEED", "1")
    store = str(tmp_path / "s")
    code, out, err = cli(capsys, "run", "toy.mean", "--seeds", "3", "--workers", "1", "--store", store,
                         "--no-report")  # fmt: skip
    assert code == 1, err
    assert "closing tag [/x]" in out and "internal error" not in out + err and "Traceback" not in out + err
    st = Store(store)
    assert sorted(r.status for r in st.runs()) == ["done", "done", "failed"]
    assert len(st.claims_all()) == 2 and all(c.verdict.n == 2 for c in st.claims_all())


@pytest.fixture
def small_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    store = str(tmp_path / "s")
    code, _, err = cli(capsys, "run", "toy.mean", "--seeds", "2", "--store", store, "--workers", "1",
                       "--no-report")  # fmt: skip
    assert code == 0, err
    return store


def test_report_refuses_fifos_devices_folders_and_paths_under_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, small_store: str
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "null").symlink_to("/dev/null")
    targets = {fifo: "not a regular file", tmp_path / "null": "not a regular file", tmp_path: "is a folder",
               tmp_path / "afile" / "r.html": "is a file, not a folder"}  # fmt: skip
    for target, message in targets.items():
        code, _, err = cli(capsys, "report", "--store", small_store, "-o", str(target))
        assert code == 2 and message in err, (target, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    assert stat.S_ISFIFO(fifo.stat().st_mode) and Path("/dev/null").is_char_device()
    code, _, _ = cli(capsys, "report", "--store", small_store, "-o", str(tmp_path / "ok.html"))
    assert code == 0 and (tmp_path / "ok.html").is_file()


def test_report_unknown_batch_names_the_known_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, small_store: str
) -> None:
    [batch] = Store(small_store).batches()
    never = tmp_path / "never.html"
    code, _, err = cli(capsys, "report", "--store", small_store, "--batch", "nope", "-o", str(never))
    assert code == 2 and "no batch 'nope'" in err and batch["batch_id"] in err
    assert not never.exists()


def test_show_percent_is_not_a_wildcard(capsys: pytest.CaptureFixture[str], small_store: str) -> None:
    code, _, err = cli(capsys, "show", "%", "--store", small_store)
    assert code == 2 and "no run '%'" in err


def test_store_path_that_is_a_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    for args in (
        ["runs", "--store", str(tmp_path / "f")],
        ["run", "toy.mean", "--store", str(tmp_path / "f" / "s")],
    ):
        code, _, err = cli(capsys, *args)
        assert code == 2 and err.startswith("error:") and err.count("\n") == 1, err
        assert "internal error" not in err


def test_verify_cli_names_the_edited_place_and_reports_failed_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, small_store: str
) -> None:
    st = Store(small_store)
    rec = st.runs()[0]
    con = sqlite3.connect(st.index_path)
    con.execute('UPDATE runs SET metrics = \'{"mean": 0.99, "std": 0.1}\' WHERE run_id = ?', (rec.run_id,))
    con.commit()
    con.close()
    code, out, err = cli(capsys, "verify", "--all", "--no-rerun", "--store", small_store)
    assert code == 1 and "index: metrics.mean = 0.99" in out and "all 2 runs verified" not in out
    failed = str(tmp_path / "failed")
    cli(capsys, "run", "toy.mean", "--seeds", "2", "--store", failed, "--set", "mode=raise", "--no-report")
    code, out, err = cli(capsys, "verify", "--all", "--store", failed)
    assert code == 1 and "failed" in out and "0 of 2 runs verified" in err
