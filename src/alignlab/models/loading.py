"""Loading Hugging Face causal language models: local folders, hub names, built-in organisms.

    >>> model, tokenizer = load("organism:induction")            # trained here on first use
    >>> model, tokenizer = load("path/to/folder", device="auto")  # any HF causal LM folder
    >>> model, tokenizer = load("EleutherAI/pythia-70m")          # the hub, where it can be reached

Every model comes back in eval mode on the requested device. A hub name that is not cached while
the hub is unreachable (or ``HF_HUB_OFFLINE=1``) raises :class:`HubUnavailableError` at once,
rather than after transformers' retries.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from alignlab.models.errors import (
    DeviceUnavailableError,
    HubUnavailableError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from alignlab.models.organisms._train import Progress, quiet_transformers, text_progress
from alignlab.models.organisms.registry import (
    ORGANISMS,
    PREFIX,
    checkpoints,
    get_spec,
    is_trained,
    organism_folder,
    organism_path,
    train_organism,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["load", "load_checkpoint", "resolve_device"]

_TRUE = {"1", "true", "yes", "on"}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")
_GENERIC = {"PreTrainedTokenizerFast", "TokenizersBackend"}


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """`device` as a torch device; ``"auto"`` picks cuda, then mps, then cpu; unavailable ones fail."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceUnavailableError(
            f"bad device {device!r} ({exc}); use cpu, cuda, cuda:N, mps or auto"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device {device!r} asked for, but CUDA is not available here; use cpu or auto"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(
            f"device {device!r} asked for, but MPS is not available here; use cpu or auto"
        )
    return dev


def _dtype(dtype: str | torch.dtype | None) -> torch.dtype | str:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise UnsupportedModelError(f"unknown dtype {dtype!r}; use float32, bfloat16, float16 or auto")
    return resolved


def _from_folder(path: Path, device: torch.device, dtype: torch.dtype | str) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except pickle.UnpicklingError:
        raise UnsupportedModelError(_pickle_refused(path)) from None
    except (ValueError, KeyError) as exc:
        raise UnsupportedModelError(
            f"{path} cannot be loaded as a causal LM by transformers: {exc}"
        ) from None
    except OSError as exc:
        raise ModelNotFoundError(f"{path}: {exc}") from None
    if getattr(model.config, "alignlab_layernorm", True) is False:  # a LayerNorm-free organism
        from alignlab.models.organisms.modular_addition import strip_layernorm

        strip_layernorm(model)
    return model.to(device).eval()


def _pickle_refused(where: Path | str) -> str:
    return (
        f"{where}: its weights are a pickle file holding more than plain tensors; alignlab refuses to "
        "load it because unpickling can run arbitrary code. Use a model saved as safetensors "
        "(model.save_pretrained(folder) writes model.safetensors)"
    )


def _tokenizer(path: Path | str, **kwargs: Any) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    loader: Any = AutoTokenizer
    config, folder = Path(path) / "tokenizer_config.json", Path(path)
    if folder.is_dir() and not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelNotFoundError(
            f"no tokenizer in {folder} (none of {', '.join(_TOKENIZER_FILES)}); "
            "save one there with tokenizer.save_pretrained(folder)"
        )
    generic = config.is_file() and json.loads(config.read_text()).get("tokenizer_class") in _GENERIC
    if generic and (folder / "tokenizer.json").is_file():
        loader = PreTrainedTokenizerFast  # AutoTokenizer would rebuild it as the model family's own class
    try:
        with quiet_transformers():
            return loader.from_pretrained(path, **kwargs)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelNotFoundError(
            f"no usable tokenizer in {path} ({exc}); save one there with tokenizer.save_pretrained(...)"
        ) from None


def _hub_offline() -> bool:
    import huggingface_hub.constants as hub

    env = any(os.environ.get(k, "").lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return env or bool(hub.HF_HUB_OFFLINE)


def _hub_status(repo_id: str, timeout: float = 5.0) -> str:
    """The hub's answer to one quick metadata request: ok, missing, gated or unreachable."""
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        huggingface_hub.model_info(repo_id, timeout=timeout)
    except GatedRepoError:
        return "gated"
    except RepositoryNotFoundError:
        return "missing"
    except HfHubHTTPError:
        return "ok"  # the hub answered; let transformers report the rest
    except Exception:  # connection refused, DNS, timeout, proxy: all mean unreachable
        return "unreachable"
    return "ok"


def _from_hub(repo_id: str, device: torch.device, dtype: torch.dtype | str) -> tuple[Any, Any]:
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id
    from transformers import AutoModelForCausalLM

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise ModelNotFoundError(
            f"{repo_id!r} is neither an existing folder nor a valid hub model name (owner/name); "
            f"check the path, or use organism:NAME ({', '.join(ORGANISMS)})"
        ) from None
    cached = isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    offline = _hub_offline()
    if not offline:
        status = _hub_status(repo_id)
        if status == "missing" and not cached:
            raise ModelNotFoundError(
                f"no model {repo_id!r} on the Hugging Face hub (if it is private, log in: `hf auth login`)"
            )
        if status == "gated" and not cached:
            raise ModelNotFoundError(f"{repo_id!r} is gated: accept its terms on huggingface.co and log in")
        offline = status == "unreachable"
    if offline and not cached:
        raise HubUnavailableError(
            f"cannot load {repo_id!r}: the Hugging Face hub is unreachable (or HF_HUB_OFFLINE is set) "
            f"and the model is not in the local cache; pass a local model folder, a built-in organism:NAME "
            f"({', '.join(ORGANISMS)}), or download it where there is a network"
        )
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(repo_id, dtype=dtype, local_files_only=offline)
    except pickle.UnpicklingError:
        raise UnsupportedModelError(_pickle_refused(repo_id)) from None
    except ValueError as exc:
        raise UnsupportedModelError(
            f"{repo_id!r} cannot be loaded as a causal LM by transformers: {exc}"
        ) from None
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load {repo_id!r}: {exc}") from None
    tokenizer = _tokenizer(repo_id, local_files_only=offline)
    return model.to(device).eval(), tokenizer


def load(
    name_or_path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
    *,
    progress: Progress | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM and its tokenizer from a folder, a hub name, or ``organism:NAME``; eval mode, on `device`.

    `dtype` None means float32 (``"auto"`` keeps the checkpoint's). An organism not yet in the cache
    is trained first, reporting to `progress` (default: a plain progress line on stderr).
    """
    dev, dt = resolve_device(device), _dtype(dtype)
    text = os.fspath(name_or_path)
    if text.startswith(PREFIX):
        name = get_spec(text).name
        path = organism_path(name)
        if not is_trained(path):
            train_organism(name, progress=progress or text_progress(f"training {PREFIX}{name}"))
        return _from_folder(path, dev, dt), _tokenizer(path)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{path} is a file; pass the model's folder (with config.json)")
        return _from_folder(path, dev, dt), _tokenizer(path)
    if text.startswith((".", "/", "~")) or "\\" in text:
        raise ModelNotFoundError(f"no model folder at {path}; check the path")
    return _from_hub(text, dev, dt)


def load_checkpoint(
    name_or_path: str | os.PathLike[str],
    step: int,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
) -> PreTrainedModel:
    """The model saved at training step `step` of an organism (name or folder), in eval mode.

    An organism name that is not trained yet is trained first (as :func:`load` does).
    """
    text = os.fspath(name_or_path)
    if text.startswith(PREFIX) or (text in ORGANISMS and not Path(text).exists()):
        name = get_spec(text).name
        if not is_trained(organism_path(name)):
            train_organism(name, progress=text_progress(f"training {PREFIX}{name}"))
    found = dict(checkpoints(name_or_path))
    if step not in found:
        steps = sorted(found)
        nearest = min(steps, key=lambda s: abs(s - step)) if steps else None
        hint = f"; nearest: {nearest}" if nearest is not None else ""
        raise ModelNotFoundError(
            f"no checkpoint at step {step} in {organism_folder(name_or_path)}{hint}; steps: {steps}"
        )
    return _from_folder(found[step], resolve_device(device), _dtype(dtype))


def weights_sha256(folder: str | os.PathLike[str]) -> str:
    """sha256 of a model folder's ``model.safetensors`` (what a run records as its organism input)."""
    import hashlib

    file = Path(folder) / "model.safetensors"
    if not file.is_file():
        raise ModelNotFoundError(f"{folder} holds no model.safetensors")
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_organism(
    name: str,
    *,
    seed: int = 0,
    config: Any = None,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """Organism `name` trained with `seed` (and `config`; default: its own), its tokenizer and weight hash.

    Trained into its cache folder on first use (deterministic per seed and config), loaded after.
    """
    spec = get_spec(name)
    path = train_organism(
        spec.name, config=config, seed=seed,
        progress=progress or text_progress(f"training {PREFIX}{spec.name} (seed {seed})"),
    )  # fmt: skip
    return _from_folder(path, resolve_device(device), _dtype(None)), _tokenizer(path), weights_sha256(path)
