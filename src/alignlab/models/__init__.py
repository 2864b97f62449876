"""Hugging Face causal language models: :func:`load` any of them, and the built-in model organisms.

>>> from alignlab.models import load, checkpoints, load_checkpoint
>>> model, tokenizer = load("organism:modular-addition")   # trained and cached on first use
>>> [step for step, _ in checkpoints("modular-addition")][:5]
>>> early = load_checkpoint("modular-addition", 100)
"""

from alignlab.models.errors import (
    CorpusError,
    DeviceUnavailableError,
    HubUnavailableError,
    ModelError,
    ModelNotFoundError,
    OrganismConfigError,
    UnknownOrganismError,
    UnsupportedModelError,
)
from alignlab.models.loading import load, load_checkpoint, load_organism, resolve_device, weights_sha256
from alignlab.models.organisms import (
    ORGANISMS,
    OrganismEntry,
    OrganismSpec,
    Progress,
    TrainResult,
    cache_dir,
    checkpoints,
    list_organisms,
    organism_path,
    train_organism,
)

__all__ = [
    "ORGANISMS",
    "CorpusError",
    "DeviceUnavailableError",
    "HubUnavailableError",
    "ModelError",
    "ModelNotFoundError",
    "OrganismConfigError",
    "OrganismEntry",
    "OrganismSpec",
    "Progress",
    "TrainResult",
    "UnknownOrganismError",
    "UnsupportedModelError",
    "cache_dir",
    "checkpoints",
    "list_organisms",
    "load",
    "load_checkpoint",
    "load_organism",
    "organism_path",
    "resolve_device",
    "train_organism",
    "weights_sha256",
]
