"""MkDocs hook: fill ``<!-- claims-index -->`` on claims.md with the registry's claims and verdicts.

The table is ``alignlab claims --markdown`` (the same ``claims_markdown`` function), built from
``alignlab.claims_index`` over the store at ``$ALIGNLAB_HOME`` or ``./alignlab-runs``; with no
store there, every verdict reads "not run".
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

MARKER = "<!-- claims-index -->"
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
    header = f"{len(rows)} claims in {experiments} experiments. {where}\n\n"
    return header + claims_markdown(rows) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker on claims.md with the generated table."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, claims_section(store_root(config)))
