"""alignlab: a reproducible testbed for empirical AI-alignment research.

Every study is an *experiment* with *claims* — published results it should reproduce.
``alignlab.run`` executes experiments over seeds, stores them, and judges each claim as
reproduced / not reproduced / inconclusive; ``verify`` re-checks stored runs and ``report``
renders a self-contained HTML report.
"""

__version__ = "0.1.0"

from alignlab.api import claims_index, load_claims, load_runs, open_store, report, run, verify
from alignlab.core import Claim, RunContext, experiment

__all__ = [
    "Claim",
    "RunContext",
    "__version__",
    "claims_index",
    "experiment",
    "load_claims",
    "load_runs",
    "open_store",
    "report",
    "run",
    "verify",
]
