"""Shared fixtures for the core tests: the toy experiments and a fresh store per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import toy_experiments  # noqa: F401  (registers toy.* experiments)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A path for a store that does not exist yet."""
    return tmp_path / "store"
