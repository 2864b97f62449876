"""Relative reachability: exact reachability on small graphs and the wrapper's penalty."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.rewards.side_effects import reachability, rr_penalty


def chain(n: int, one_way_from: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A chain of n states, 2 actions (left/right); moving right past `one_way_from` is irreversible."""
    nxt = np.zeros((n, 2, 1), np.int32)
    for s in range(n):
        nxt[s, 0, 0] = s if s == one_way_from + 1 else max(s - 1, 0)
        nxt[s, 1, 0] = min(s + 1, n - 1)
    return nxt, np.ones((n, 2, 1)), np.zeros((n, 2, 1), bool)


def test_reachability_is_discounted_shortest_path() -> None:
    reach = reachability(*chain(4, one_way_from=10), gamma_r=0.5)
    assert reach[0, 0] == 1.0 and reach[0, 3] == pytest.approx(0.125) and reach[3, 0] == pytest.approx(0.125)


def test_irreversible_step_is_penalised_reversible_is_not() -> None:
    reach = reachability(*chain(5, one_way_from=1), gamma_r=1.0)
    assert rr_penalty(reach, state=1, baseline=0) == 0.0  # 0 -> 1 can be undone
    assert rr_penalty(reach, state=2, baseline=1) == pytest.approx(2 / 5)  # 1 -> 2 loses states 0 and 1
    assert rr_penalty(reach, state=1, baseline=2) == 0.0  # gaining reachability is never penalised


def test_unreachable_is_zero_and_bad_gamma_is_an_error() -> None:
    reach = reachability(*chain(3, one_way_from=0), gamma_r=0.9)
    assert reach[2, 0] == 0.0
    with pytest.raises(ValueError, match="gamma_r"):
        reachability(*chain(3, one_way_from=0), gamma_r=0.0)
