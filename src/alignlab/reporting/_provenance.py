"""The collapsible provenance block of one run: identity, timing, code and environment, file hashes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alignlab.core.errors import StoreError
from alignlab.core.records import RunRecord
from alignlab.reporting._format import badge, esc, status_class

_CODE_KEYS = (
    ("alignlab_version", "alignlab version"),
    ("source_hash", "source hash"),
    ("git_commit", "git commit"),
    ("experiment_file_hash", "experiment file hash"),
)
_ENV_KEYS = ("python", "torch", "numpy", "platform", "machine")


def load_manifest(run: RunRecord) -> tuple[dict[str, Any] | None, str | None]:
    """The run's manifest and, when it cannot be read, why (a corrupt file must not stop the report)."""
    try:
        return run.manifest(), None
    except (StoreError, OSError) as exc:
        return None, str(exc)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _row(key: str, value: Any, *, mono: bool = False) -> str:
    text = "—" if value is None or value == "" else esc(value)
    cell = f'<td class="mono">{text}</td>' if mono and value is not None else f"<td>{text}</td>"
    return f"<tr><th>{esc(key)}</th>{cell}</tr>"


def _identity_rows(run: RunRecord, manifest: Mapping[str, Any]) -> list[str]:
    duration = manifest.get("duration_s")
    return [
        _row("run id", run.run_id, mono=True),
        _row("batch", run.batch_id, mono=True),
        _row("experiment", run.experiment),
        _row("seed", run.seed),
        _row("status", run.status),
        _row("preset", run.preset),
        _row("started", run.started),
        _row("ended", run.ended),
        _row("duration", f"{duration} s" if isinstance(duration, int | float) else None),
        _row("device", run.device),
        _row("run folder", run.run_dir, mono=True),
    ]


def _manifest_rows(run: RunRecord, manifest: Mapping[str, Any]) -> list[str]:
    code, env = _dict(manifest.get("code")), _dict(manifest.get("env"))
    rows = [_row(label, code.get(key), mono=True) for key, label in _CODE_KEYS]
    rows += [_row(key, env.get(key)) for key in _ENV_KEYS]
    known = {k for k, _ in _CODE_KEYS} | set(_ENV_KEYS)
    for source in (code, env):
        rows += [
            _row(str(k), v) for k, v in source.items() if k not in known and not isinstance(v, Mapping | list)
        ]
    rows.append(_row("config hash", run.config_hash, mono=True))
    stored = manifest.get("config_hash")
    if stored and stored != run.config_hash:
        rows.append(_row("config hash in manifest (differs!)", stored, mono=True))
    return rows


def _files_table(files: Mapping[str, Any]) -> str:
    if not files:
        return '<p class="note">The manifest lists no files.</p>'
    rows = "".join(
        f'<tr><td class="mono">{esc(path)}</td><td class="mono">{esc(digest)}</td></tr>'
        for path, digest in sorted(files.items())
    )
    return (
        f"<details><summary>Files ({len(files)}) and their SHA-256</summary>"
        f'<div class="inner"><table class="hashes"><thead><tr><th>file</th><th>sha256</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></details>"
    )


def provenance_html(run: RunRecord, label: str) -> str:
    """A `<details>` block with everything known about where one run came from."""
    manifest, problem = load_manifest(run)
    tables = [_identity_rows(run, manifest or {})]
    if manifest is not None:
        tables.append(_manifest_rows(run, manifest))
        extra = _files_table(_dict(manifest.get("files")))
    else:
        tables[0].append(_row("config hash", run.config_hash, mono=True))
        why = (
            f"manifest.json could not be read: {problem}"
            if problem
            else "No manifest.json: the run did not finish, so no code versions or file hashes were recorded."
        )
        extra = f'<p class="note">{esc(why)}</p>'
    summary = (
        f"<summary><code>{esc(run.run_id)}</code> <span>{esc(label)}</span> "
        f"{badge(run.status, status_class(run.status))} "
        f'<span class="muted">{esc(run.started)}</span></summary>'
    )
    body = "".join(f'<table class="kv"><tbody>{"".join(rows)}</tbody></table>' for rows in tables)
    return (
        f'<details class="provenance">{summary}<div class="inner">'
        f'<div class="kv-columns">{body}</div>{extra}</div></details>'
    )
