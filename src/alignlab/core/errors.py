"""Errors a user can cause: each carries a message that names the thing and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AlignlabError(Exception):
    """An error caused by user input; the CLI prints it on one line, without a traceback."""


class UnknownNameError(AlignlabError, KeyError):
    """An experiment, suite, run or config key that does not exist."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class OverrideError(AlignlabError, ValueError):
    """A `--set key=value` override that does not fit the experiment's config."""


class StoreError(AlignlabError):
    """A run store that is missing, corrupt, or written by a newer alignlab."""


class RegistrationError(AlignlabError, TypeError):
    """An experiment whose declaration is inconsistent (bad config type, claim on an unknown metric)."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """A ' Did you mean: a, b?' suffix listing close matches of `name`, or '' when none are close."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""
