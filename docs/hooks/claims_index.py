"""MkDocs hook: fill ``<!-- claims-index -->`` on claims.md with the registry's claims and verdicts.

The table is ``alignlab claims --markdown`` (the same ``claims_markdown`` function), built from
``alignlab.claims_index`` over the store at ``$ALIGNLAB_HOME`` or ``./alignlab-runs``. A claim that
store has not judged (the full-only ones, in CI) shows the verdict recorded in
``docs/results/recorded-claims.json`` by ``scripts/record_claims.py``, with the command that
measured it; a claim judged nowhere reads "not run".
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

MARKER = "<!-- claims-index -->"
RECORDED = Path(__file__).resolve().parent.parent / "results" / "recorded-claims.json"
RECORDED_KEYS = (
    "verdict", "word", "measured", "reason", "control_verdict", "control_word", "control_measured",
)  # fmt: skip
log = logging.getLogger("mkdocs.hooks.claims_index")


def store_root(config: Any) -> Path:
    """The store whose verdicts the page shows: ``$ALIGNLAB_HOME``, else ./alignlab-runs."""
    home = os.environ.get("ALIGNLAB_HOME")
    if home:
        return Path(home)
    return Path(config.config_file_path).resolve().parent / "alignlab-runs"


def claims_section(root: Path) -> str:
    """The claims table in Markdown, with a line saying where the verdicts come from."""
    import alignlab
    from alignlab.cli import claims_markdown

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = alignlab.claims_index(root)
    for w in caught:  # an experiment module that fails to import would silently drop its claims
        log.warning("claims index: %s", w.message)
    from_record = with_recorded(rows)
    has_store = (root / "store.json").is_file()
    judged = sum(r["verdict"] is not None for r in rows)
    experiments = len({r["experiment"] for r in rows})
    if has_store:
        where = (
            f"Verdicts: the last judgement of each claim in the run store "
            f"(`{root.name}`); {judged} of {len(rows)} claims have been run."
        )
    else:
        where = "No run store was found when this page was built, so every verdict reads *not run*."
    if from_record:
        where += (
            f" {from_record} verdicts of claims that store has not judged are the ones recorded in "
            "`docs/results/recorded-claims.json`, marked *recorded* with the command that measured them."
        )
    header = f"{len(rows)} claims in {experiments} experiments. {where}\n\n"
    return header + claims_markdown(rows) + "\n"


def with_recorded(rows: list[dict[str, Any]]) -> int:
    """Fill claims without a stored verdict from the recorded file; return how many were filled."""
    if not RECORDED.is_file():
        return 0
    recorded = {(r["experiment"], r["claim"]): r for r in json.loads(RECORDED.read_text())["claims"]}
    filled = 0
    for row in rows:
        rec = recorded.get((row["experiment"], row["claim"]))
        if row["verdict"] is not None or rec is None or rec.get("kind") != row["kind"]:
            continue
        for key in RECORDED_KEYS:
            row[key] = rec.get(key)
        how = rec["recorded"]
        row["word"] = f"{rec['word']} (*recorded* {how['date']}: `{how['command']}`)"
        filled += 1
    return filled


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker on claims.md with the generated table."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, claims_section(store_root(config)))
