"""RunContext: what the harness hands an experiment — seed, generators, device, logging, files."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from alignlab.core.errors import AlignlabError
from alignlab.core.fsutil import atomic_write_bytes, safe_name

T = TypeVar("T")
ProgressCallback = Callable[[float, str], None]


class RunContext:
    """Per-run services: seeded generators, device, time-series logging, artifacts, progress.

    Every random draw an experiment makes should come from ``ctx.rng`` (NumPy) or
    ``ctx.torch_generator`` / the torch global RNG (seeded here), so that the same config and
    seed give the same metrics — which ``alignlab verify`` checks.
    """

    def __init__(
        self,
        seed: int,
        run_dir: Path,
        device: str = "cpu",
        progress_callback: ProgressCallback | None = None,
    ) -> None:
        self.seed = int(seed)
        self.run_dir = Path(run_dir)
        self.artifact_dir = self.run_dir / "artifacts"
        self.device = device
        self.rng = np.random.default_rng(self.seed)
        self._torch_generator: Any = None
        self._progress_callback = progress_callback
        self._series_path = self.run_dir / "timeseries.jsonl"
        self._series_buffer: list[str] = []
        self.artifacts: list[str] = []
        self.inputs: dict[str, str] = {}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _seed_torch(self.seed)

    @classmethod
    def scratch(cls, seed: int = 0, device: str = "cpu") -> RunContext:
        """A context writing to a fresh temporary folder: for notebooks and tests."""
        return cls(seed, Path(tempfile.mkdtemp(prefix="alignlab-scratch-")), device=device)

    @property
    def torch_generator(self) -> Any:
        """A `torch.Generator` on the run's device, seeded with the run's seed."""
        if self._torch_generator is None:
            import torch

            gen = torch.Generator(device=self.device)
            gen.manual_seed(self.seed)
            self._torch_generator = gen
        return self._torch_generator

    def record_input(self, name: str, digest: str) -> None:
        """Record a content hash of something the run read (e.g. an organism's weights) for the manifest."""
        if self.inputs.get(name, digest) != digest:
            raise ValueError(f"input {name!r} recorded twice with different hashes")
        self.inputs[name] = str(digest)

    def log(self, step: int, **metrics: float) -> None:
        """Append one point of the run's time series (stored as JSON lines, plotted in reports)."""
        row: dict[str, Any] = {"step": int(step)}
        for key, value in metrics.items():
            v = float(value)
            row[key] = v if math.isfinite(v) else None
        self._series_buffer.append(json.dumps(row))
        if len(self._series_buffer) >= 1000:
            self.flush()

    def flush(self) -> None:
        """Write buffered time-series points to disk."""
        if not self._series_buffer:
            return
        with self._series_path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(self._series_buffer) + "\n")
        self._series_buffer.clear()

    def save_figure(self, name: str, fig: Any) -> Path:
        """Save a matplotlib figure as ``artifacts/<name>.png`` and close it."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        return self._write_artifact(f"{safe_name(name)}.png", buf.getvalue())

    def save_artifact(self, name: str, obj: Any) -> Path:
        """Save `obj` under ``artifacts/``: bytes/str as given, dict/list as JSON,
        a dict of arrays or tensors as safetensors (never pickle). A name may hold folders
        (``"lens/config.json"``); each part is made a safe file name."""
        stem = "/".join(safe_name(part) for part in str(name).split("/") if part) or "unnamed"
        if isinstance(obj, bytes):
            return self._write_artifact(stem, obj)
        if isinstance(obj, str):
            return self._write_artifact(stem, obj.encode("utf-8"))
        if isinstance(obj, dict) and obj and all(_is_array(v) for v in obj.values()):
            from safetensors.numpy import save

            arrays = {str(k): np.ascontiguousarray(_to_numpy(v)) for k, v in obj.items()}
            fname = stem if stem.endswith(".safetensors") else f"{stem}.safetensors"
            return self._write_artifact(fname, save(arrays))
        if isinstance(obj, dict | list | tuple | int | float):
            fname = stem if stem.endswith(".json") else f"{stem}.json"
            return self._write_artifact(fname, json.dumps(obj, indent=2, default=float).encode())
        raise AlignlabError(
            f"save_artifact({name!r}): cannot store a {type(obj).__name__}; pass bytes, str, "
            "a JSON-able dict/list, or a dict of arrays/tensors"
        )

    def _write_artifact(self, fname: str, data: bytes) -> Path:
        path = self.artifact_dir / fname
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
        rel = str(path.relative_to(self.run_dir))
        if rel not in self.artifacts:
            self.artifacts.append(rel)
        return path

    def progress(
        self,
        iterable: Iterable[T] | None = None,
        total: int | None = None,
        description: str = "",
    ) -> Iterator[T]:
        """Iterate `iterable` (or ``range(total)``) while reporting progress to the runner's bar."""
        if iterable is None:
            if total is None:
                raise AlignlabError("ctx.progress needs an iterable or a total")
            iterable = range(total)  # type: ignore[assignment]
        if total is None:
            total = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
        callback = self._progress_callback
        if callback is None or not total:
            yield from iterable  # type: ignore[misc]
            return
        every = max(1, total // 100)
        for i, item in enumerate(iterable):  # type: ignore[arg-type]
            yield item
            if (i + 1) % every == 0 or i + 1 == total:
                callback((i + 1) / total, description)

    def reporter(self, description: str = "") -> Callable[[float, str], None]:
        """A ``progress(fraction, message)`` callback, what domain training loops take, that feeds
        the run's progress bar directly (no iterable to drive)."""
        callback = self._progress_callback

        def report(fraction: float, _message: str = "") -> None:
            if callback is not None:
                callback(min(max(float(fraction), 0.0), 1.0), description)

        return report


def _seed_torch(seed: int) -> None:
    if os.environ.get("ALIGNLAB_NO_TORCH") == "1":
        return
    try:
        import torch
    except ImportError:  # torch is a dependency, but a harness-only install may lack it
        return
    torch.manual_seed(seed)


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("torch")


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return value.detach().cpu().numpy()
