"""Provenance: what produced a run (code, versions, platform, config, seed) and hashes of its files."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from alignlab.core.fsutil import sha256_file

MANIFEST_FORMAT = "alignlab-manifest"
MANIFEST_VERSION = 1
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


@cache
def source_hash(root: Path = _PACKAGE_DIR) -> str:
    """SHA-256 over the package's .py files (path and bytes), so any code change shows."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


@cache
def git_commit(root: Path = _PACKAGE_DIR) -> str | None:
    """The git commit of the checkout holding the package (with '+dirty'), or None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "."],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out + ("+dirty" if dirty else "") if out else None


def file_hash_or_none(path: str | None) -> str | None:
    """SHA-256 of a file, or None when there is no such file."""
    if not path or not Path(path).is_file():
        return None
    return sha256_file(Path(path))


@cache
def environment() -> dict[str, Any]:
    """Interpreter, library and platform versions of this process."""
    import numpy

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "executable": sys.executable,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    return env


def code_version(experiment_module_file: str | None) -> dict[str, Any]:
    """alignlab version, source hash, git commit, and a hash of the experiment's own file."""
    from alignlab import __version__

    return {
        "alignlab_version": __version__,
        "source_hash": source_hash(),
        "git_commit": git_commit(),
        "experiment_file_hash": file_hash_or_none(experiment_module_file),
    }


def hash_files(run_dir: Path, exclude: tuple[str, ...] = ("manifest.json", "run.json")) -> dict[str, str]:
    """Relative path -> SHA-256 for every file the run wrote (the manifest itself excluded)."""
    out = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(run_dir).as_posix()
        if rel in exclude or path.name.startswith("."):
            continue
        out[rel] = sha256_file(path)
    return out


def check_files(run_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems found comparing the run folder with its manifest's file hashes ([] if none)."""
    problems = []
    recorded: dict[str, str] = manifest.get("files", {})
    actual = hash_files(run_dir)
    for rel, digest in recorded.items():
        if rel not in actual:
            problems.append(f"{rel}: missing")
        elif actual[rel] != digest:
            problems.append(f"{rel}: contents changed (sha256 mismatch)")
    for rel in sorted(set(actual) - set(recorded)):
        problems.append(f"{rel}: not in the manifest")
    return problems
