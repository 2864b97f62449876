"""Builders for report tests: run folders written by hand, claims judged with the real verdict code."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from alignlab.core import Claim, ClaimResult, RunRecord
from alignlab.core.runner import judge_runs

EVIL = "<script>alert(1)</script>\"'&"


def png_bytes(seed: int = 0) -> bytes:
    """A small real PNG figure."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(np.random.default_rng(seed).normal(size=20).cumsum())
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    plt.close(fig)
    return buf.getvalue()


def make_run(
    root: Path,
    experiment: str,
    seed: int,
    *,
    metrics: Mapping[str, float] | None = None,
    config: Mapping[str, Any] | None = None,
    status: str = "done",
    error: str | None = None,
    series: Sequence[Mapping[str, Any]] | None = None,
    figures: Mapping[str, bytes] | None = None,
    files: Mapping[str, bytes] | None = None,
    manifest: bool | str = True,
    batch: str = "b-20240501-0001",
) -> RunRecord:
    """A run folder under `root` with a time series, artifacts and a manifest, and its record.

    `manifest` may be False (none written) or a string written verbatim (e.g. corrupt JSON).
    """
    run_id = f"{experiment.replace('<', '').replace('>', '')[:12]}-{seed}-{status}".replace("/", "_")
    run_dir = root / f"run{abs(hash((experiment, seed, status, batch))) % 10**8}"
    run_dir.mkdir(parents=True)
    if series is not None:
        lines = [json.dumps(row) for row in series]
        (run_dir / "timeseries.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    adir = run_dir / "artifacts"
    for name, data in {**(figures or {}), **(files or {})}.items():
        adir.mkdir(exist_ok=True)
        (adir / name).write_bytes(data)
    cfg = dict(config or {"lr": 0.1, "episodes": 100})
    if manifest is True:
        body = {
            "format": "alignlab-manifest",
            "version": 1,
            "run_id": run_id,
            "config_hash": "c0ffee",
            "duration_s": 1.25,
            "code": {"alignlab_version": "0.1.0", "source_hash": "ab" * 32, "git_commit": "deadbeef+dirty"},
            "env": {"python": "3.11.9", "numpy": "2.0.0", "torch": "2.3.0", "platform": "Linux-x86_64"},
            "files": {"timeseries.jsonl": "12" * 32, "artifacts/fig.png": "34" * 32},
        }
        (run_dir / "manifest.json").write_text(json.dumps(body), encoding="utf-8")
    elif isinstance(manifest, str):
        (run_dir / "manifest.json").write_text(manifest, encoding="utf-8")
    return RunRecord(
        run_id=run_id,
        batch_id=batch,
        experiment=experiment,
        seed=seed,
        status=status,
        config=cfg,
        config_hash="c0ffee",
        metrics=dict(metrics or {}),
        started="2024-05-01T12:00:00Z",
        ended=None if status == "running" else "2024-05-01T12:00:02Z",
        run_dir=run_dir,
        error=error,
    )


def judged(
    experiment: str, claim: Claim, runs: Sequence[RunRecord], batch: str = "b-20240501-0001"
) -> ClaimResult:
    """`claim` judged over the done runs of `experiment`, as the runner would."""
    return judge_runs(batch, runs, [_Claims(experiment, claim)])[0]


class _Claims:
    """The part of an Experiment that judge_runs reads: a name and claims."""

    def __init__(self, name: str, claim: Claim) -> None:
        self.name, self.claims = name, (claim,)


def curve(n: int, seed: int, key: str = "return") -> list[dict[str, Any]]:
    """`n` logged steps of a noisy rising curve."""
    rng = np.random.default_rng(seed)
    y = 1 - np.exp(-np.arange(n) / (n / 5 + 1)) + rng.normal(0, 0.05, n)
    return [{"step": i, key: float(v), "loss": float(1 - v)} for i, v in enumerate(y)]


@pytest.fixture
def sample(tmp_path: Path) -> tuple[list[RunRecord], list[ClaimResult]]:
    """Two experiments: one reproduced and one not (with a failed seed), plus an inconclusive claim."""
    runs = []
    for seed in range(3):
        runs.append(
            make_run(
                tmp_path, "shaping.potential", seed,
                metrics={"agreement": 1.0 - 0.001 * seed, "return": 0.9 + 0.01 * seed},
                series=curve(60, seed), figures={"fig.png": png_bytes(seed)},
                files={"q_table.safetensors": b"\0" * 2048},
            )
        )  # fmt: skip
    for seed in range(2):
        runs.append(
            make_run(
                tmp_path, "rewards.overopt", seed, metrics={"gap": 0.05 + 0.01 * seed}, series=curve(30, seed)
            )
        )
    runs.append(
        make_run(
            tmp_path, "rewards.overopt", 2, status="failed", error="ValueError: boom\nline 2", manifest=False
        )
    )
    claims = [
        judged("shaping.potential", Claim("agreement", ">=", 0.99, source="Ng et al. 1999, Thm 1"), runs),
        judged("shaping.potential", Claim("return", "==", 0.5, source="made up", tol=0.1), runs),
        judged("rewards.overopt", Claim("gap", ">", 0.055, source="Gao et al. 2023, Fig 1"), runs),
    ]
    return runs, claims


CHROMIUM = Path(os.environ.get("ALIGNLAB_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium, or a skip saying how to get one."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/install-chromium.sh or set ALIGNLAB_CHROMIUM")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()
