"""Plain records the store hands out: one finished (or not) run, one judged claim."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.core.errors import StoreError
from alignlab.core.registry import Claim
from alignlab.core.verdict import REPRODUCED, Verdict, control_word, summarize, word

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
    control: str | None = None
    """The negative control this run belongs to (None: a main run, judged for the claims)."""
    not_observed: dict[str, str] = field(default_factory=dict)
    """Metric -> why its phenomenon was not observed (its value in `metrics` is NaN)."""

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
    """A claim of one experiment judged over the runs of one batch (and over its control runs)."""

    batch_id: str
    experiment: str
    claim: Claim
    verdict: Verdict
    run_ids: tuple[str, ...] = field(default_factory=tuple)
    control_verdict: Verdict | None = None
    """The claim judged on its negative control's runs (None when controls were not run)."""
    control_run_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        """replication, exact or target."""
        return self.claim.kind

    @property
    def word(self) -> str:
        """The verdict in the words of the claim's kind: reproduced / holds / met, ..."""
        return word(self.claim.kind, self.verdict.label)

    @property
    def control_word(self) -> str:
        """'effect vanished', 'effect persists', 'inconclusive', 'not run' or 'no control'."""
        if self.claim.control is None:
            return "no control"
        if self.control_verdict is None:
            return "not run"
        return control_word(self.control_verdict.label)

    @property
    def control_failed(self) -> bool:
        """Whether the control also satisfied the claim: then the claim measures nothing."""
        return self.control_verdict is not None and self.control_verdict.label == REPRODUCED


def summary_line(results: Sequence[ClaimResult]) -> str:
    """One line counting verdicts per kind (only replications count as reproduced); see :func:`summarize`."""
    return summarize(
        (r.claim.kind, r.verdict.label, None if r.control_verdict is None else r.control_verdict.label)
        for r in results
    )
