"""The harness: experiments and claims, configs, runs, the store and provenance.

Knows nothing about RL or transformers; domain modules never import it back.
"""

from alignlab.core.config import bounded
from alignlab.core.context import RunContext
from alignlab.core.errors import (
    AlignlabError,
    OverrideError,
    RegistrationError,
    StoreError,
    UnknownNameError,
)
from alignlab.core.records import ClaimResult, RunRecord
from alignlab.core.registry import (
    Claim,
    Control,
    Experiment,
    NotObserved,
    all_experiments,
    experiment,
    get_experiment,
)
from alignlab.core.verdict import Verdict, judge

__all__ = [
    "AlignlabError",
    "Claim",
    "ClaimResult",
    "Control",
    "Experiment",
    "NotObserved",
    "OverrideError",
    "RegistrationError",
    "RunContext",
    "RunRecord",
    "StoreError",
    "UnknownNameError",
    "Verdict",
    "all_experiments",
    "bounded",
    "experiment",
    "get_experiment",
    "judge",
]
