"""The CLI's claim output: kinds shown apart, controls beside each claim, the summary, range errors."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "core"))
import toy_experiments  # noqa: F401

from alignlab.core import Claim, Control, RunContext, bounded, experiment
from test_cli import cli


@dataclass(frozen=True)
class MarkupConfig:
    k: int = bounded(1, 0, 3)
    """A [bold]knob[/bold] with [/x] markup in its help."""


@experiment(
    name="toycheck.markup",
    claims=[Claim("m", ">", 0, source="Paper [/x] §2", control=Control("c", {"k": 0}, "k=[0] removes it"))],
    metrics=("m",),
    presets={"smoke": {}},
)
def toy_markup(cfg: MarkupConfig, ctx: RunContext) -> dict[str, float]:
    """Text that looks like Rich markup: [/x] [red]."""
    return {"m": float(cfg.k)}


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import alignlab.cli

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(alignlab.cli.console, "width", 250)


def run_args(store: Path, *extra: str) -> list[str]:
    return ["--seeds", "2", "--store", str(store), "--executor", "inprocess", "--no-report", *extra]


def test_run_with_controls_shows_kinds_apart_and_each_control_verdict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = cli(capsys, "run", "toycheck.signal", *run_args(tmp_path / "s", "--controls"))
    assert code == 0
    assert "4 runs (4 done, 0 failed)" in out
    replications = out.split("Replications (published results")[1].split("Exact claims")[0]
    exact = out.split("Exact claims")[1].split("Targets")[0]
    targets = out.split("Targets")[1]
    assert "effect_size > 0.5" in replications and "effect vanished (no_signal)" in replications
    assert "spread < 1" in exact and "holds" in exact and "reproduced" not in exact
    assert "effect_size < 5" in targets and " met " in targets
    assert (
        "2 of 2 replications reproduced; exact: 1 holds, 0 fails; targets: 1 met, 0 not met; "
        "controls: 2 of 2 effects vanished"
    ) in out


def test_run_without_controls_says_they_were_not_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = cli(capsys, "run", "toycheck.signal", *run_args(tmp_path / "s"))
    assert code == 0 and "2 runs" in out and "not run (no_signal)" in out
    assert "controls:" not in out


def test_a_persisting_control_is_flagged_loudly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "run", "toycheck.leaky", *run_args(tmp_path / "s", "--controls"))
    assert code == 0
    assert "EFFECT PERSISTS (placebo)" in out
    assert "EFFECT PERSISTS under control placebo" in out and "this claim measures nothing" in out
    assert "controls: 0 of 1 effects vanished, 1 EFFECT PERSISTS" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "n=-5"], "error: n = -5 is out of range: it must lie in [2, 100000]"),
        (["--set", "noise=20"], "error: noise = 20.0 is out of range: it must lie in [0, 10]"),
        (["--set", "n=1e100"], "error: n = 1e+100 is out of range: it must lie in [2, 100000]"),
        (
            ["--preset", "smoek"],
            "error: unknown preset 'smoek' for toycheck.signal. Did you mean: smoke? Presets: smoke",
        ),
    ],
)
def test_bad_config_is_one_line_and_exit_2_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    store = tmp_path / "s"
    code, out, err = cli(capsys, "run", "toycheck.signal", *run_args(store, *args))
    assert code == 2
    assert err.strip() == message
    assert "Traceback" not in out + err
    assert not (store / "runs").exists() or not any((store / "runs").iterdir())


def test_claims_command_shows_kinds_controls_and_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s"
    cli(capsys, "run", "toycheck.signal", *run_args(store, "--controls"))
    cli(capsys, "run", "toycheck.signal", *run_args(store))  # a later batch without controls
    code, out, _ = cli(capsys, "claims", "--store", str(store))
    assert code == 0
    rows = [line for line in out.splitlines() if "toycheck.signal" in line]
    assert any("effect_size > 0.5" in r and "reproduced" in r and "effect vanished" in r for r in rows), (
        "the control verdict of an earlier batch stays visible"
    )
    assert "2 of 2 replications reproduced" in out.splitlines()[-1] or "2 of" in out
    code, out, _ = cli(capsys, "claims", "--store", str(store), "--json")
    data = {(r["experiment"], r["claim"]): r for r in json.loads(out)}
    row = data[("toycheck.signal", "crossing_step < 50")]
    assert row["kind"] == "replication" and row["word"] == "reproduced"
    assert row["control"]["name"] == "no_signal" and row["control_word"] == "effect vanished"
    assert data[("toycheck.signal", "spread < 1")]["word"] == "holds"
    code, out, _ = cli(capsys, "claims", "--store", str(store), "--markdown")
    assert "### Replications" in out and "### Exact claims" in out and "### Targets" in out
    assert (
        "| `toycheck.signal` | `effect_size > 0.5` | toy replication | reproduced | "
        in out.split("### Exact claims")[0]
    )
    assert "| `toycheck.signal` | `spread < 1` | the noise sd is 0.1, far below 1 | holds |" in out


def test_list_and_describe_show_kinds_controls_and_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list")
    assert (
        code == 0
        and "[exact] spread < 1" in out
        and "[replication] effect_size > 0.5 · control no_signal" in out
    )
    code, out, _ = cli(capsys, "list", "--json")
    signal = next(e for e in json.loads(out) if e["name"] == "toycheck.signal")
    assert [c["kind"] for c in signal["claims"]] == ["replication", "replication", "exact", "target"]
    assert signal["claims"][0]["control"] == "no_signal" and "smoke" in signal["presets"]
    code, out, _ = cli(capsys, "describe", "toycheck.signal")
    assert code == 0 and "[2, 100000]" in out
    assert "control no_signal: effect=0.0 — with no effect the draws centre on zero" in out
    assert "exact claim: spread < 1" in out


def test_text_that_looks_like_markup_is_printed_as_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for args in (["list"], ["describe", "toycheck.markup"], ["claims", "--store", str(tmp_path / "none")]):
        code, out, err = cli(capsys, *args)
        assert code == 0, err
        assert "Traceback" not in out + err
    code, out, err = cli(capsys, "run", "toycheck.markup", *run_args(tmp_path / "s", "--controls"))
    assert code == 0, err
    assert "Paper [/x] §2" in out and "effect vanished" in out
