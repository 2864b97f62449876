"""Plain records the store hands out: one finished (or not) run, one judged claim."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.core.errors import StoreError
from alignlab.core.registry import Claim
from alignlab.core.verdict import Verdict

RUN_STATUSES = ("running", "done", "failed", "interrupted")


@dataclass(frozen=True)
class RunRecord:
    """One run (experiment x seed x config) as indexed in the store."""

    run_id: str
    batch_id: str
    experiment: str
    seed: int
    status: str
    config: dict[str, Any]
    config_hash: str
    metrics: dict[str, float]
    started: str
    ended: str | None
    run_dir: Path
    preset: str | None = None
    error: str | None = None
    device: str = "cpu"

    def timeseries(self) -> list[dict[str, Any]]:
        """The run's logged time series (``ctx.log`` rows), skipping any torn last line."""
        path = self.run_dir / "timeseries.jsonl"
        rows: list[dict[str, Any]] = []
        if not path.exists():
            return rows
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def artifacts(self) -> list[Path]:
        """Files the run saved under ``artifacts/``."""
        adir = self.run_dir / "artifacts"
        return sorted(p for p in adir.rglob("*") if p.is_file()) if adir.exists() else []

    def manifest(self) -> dict[str, Any] | None:
        """The run's provenance manifest, or None if the run never finished."""
        path = self.run_dir / "manifest.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{path} is corrupt ({exc})") from None
        if not isinstance(data, dict):
            raise StoreError(f"{path} is corrupt (not a JSON object)")
        return data


@dataclass(frozen=True)
class ClaimResult:
    """A claim of one experiment judged over the runs of one batch."""

    batch_id: str
    experiment: str
    claim: Claim
    verdict: Verdict
    run_ids: tuple[str, ...] = field(default_factory=tuple)
