"""Record the verdicts of a run store into docs/results/recorded-claims.json for the claims index.

The docs' claims index shows each claim's verdict from the store the docs are built against
(CI: the quick suite it has just run). Claims that store never judged — the full-only ones,
such as ``safety.deep_baselines`` — fall back to the verdict recorded here, with the command
that measured it. Run after a batch whose results should be kept, e.g.::

    alignlab run safety.deep_baselines --preset full --seeds 2 --controls
    python scripts/record_claims.py --store alignlab-runs \
        --command "alignlab run safety.deep_baselines --preset full --seeds 2 --controls"

Only claims judged in the store are written; verdicts recorded earlier for other claims stay.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import alignlab

RECORDED = Path(__file__).resolve().parent.parent / "docs" / "results" / "recorded-claims.json"
KEEP = (
    "experiment", "kind", "claim", "verdict", "word", "measured", "reason",
    "control_verdict", "control_word", "control_measured",
)  # fmt: skip


def main() -> None:
    """Merge the store's judged claims into the recorded file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="run store folder")
    parser.add_argument("--command", required=True, help="the alignlab command that produced the verdicts")
    parser.add_argument("--only", default="", help="record only experiments whose name starts with this")
    parser.add_argument("--out", type=Path, default=RECORDED)
    args = parser.parse_args()
    rows = alignlab.claims_index(args.store)
    recorded = json.loads(args.out.read_text()) if args.out.exists() else {"claims": []}
    by_key = {(r["experiment"], r["claim"]): r for r in recorded["claims"]}
    stamp = dt.date.today().isoformat()
    added = 0
    for row in rows:
        if row["verdict"] is None or not row["experiment"].startswith(args.only):
            continue
        entry = {k: row[k] for k in KEEP}
        entry["recorded"] = {"command": args.command, "date": stamp, "batch": row["batch"]}
        by_key[(row["experiment"], row["claim"])] = entry
        added += 1
    out = {"claims": sorted(by_key.values(), key=lambda r: (r["experiment"], r["claim"]))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"recorded {added} verdicts into {args.out}")


if __name__ == "__main__":
    main()
