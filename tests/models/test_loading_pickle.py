"""models.load refuses pickled weights with one line that never suggests unpickling them."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from alignlab.models import load
from alignlab.models.errors import ModelError


class _RunsCode:
    """Unpickling this would create a file: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickled_weights_are_a_one_line_error_without_weights_only_advice(tmp_path: Path) -> None:
    from transformers import GPT2Config

    folder = tmp_path / "model"
    GPT2Config(n_layer=1, n_head=1, n_embd=8, vocab_size=10, n_positions=8).save_pretrained(folder)
    marker = tmp_path / "pwned"
    with (folder / "pytorch_model.bin").open("wb") as fh:
        pickle.dump({"w": _RunsCode(marker)}, fh)
    with pytest.raises(ModelError) as info:
        load(folder)
    message = str(info.value)
    assert "safetensors" in message and "\n" not in message
    assert "weights_only" not in message
    assert not isinstance(info.value, pickle.UnpicklingError)
    assert not marker.exists()
