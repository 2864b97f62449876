"""The harness: experiments and claims, configs, runs, the store and provenance.

Knows nothing about RL or transformers; domain modules never import it back.
"""

from alignlab.core.context import RunContext
from alignlab.core.errors import (
    AlignlabError,
    OverrideError,
    RegistrationError,
    StoreError,
    UnknownNameError,
)
from alignlab.core.records import ClaimResult, RunRecord
from alignlab.core.registry import Claim, Experiment, all_experiments, experiment, get_experiment
from alignlab.core.verdict import Verdict, judge

__all__ = [
    "AlignlabError",
    "Claim",
    "ClaimResult",
    "Experiment",
    "OverrideError",
    "RegistrationError",
    "RunContext",
    "RunRecord",
    "StoreError",
    "UnknownNameError",
    "Verdict",
    "all_experiments",
    "experiment",
    "get_experiment",
    "judge",
]
