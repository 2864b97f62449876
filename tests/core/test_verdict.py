"""The verdict math: pure, property-tested."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from alignlab.core import Claim, NotObserved
from alignlab.core.verdict import (
    INCONCLUSIVE,
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPRODUCED,
    confidence_interval,
    control_word,
    judge,
    summarize,
    t_critical,
    word,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=2, max_size=12)
ops = st.sampled_from([">=", "<=", ">", "<"])
RANK = {NOT_REPRODUCED: 0, INCONCLUSIVE: 1, REPRODUCED: 2}


def claim(op: str, value: float, tol: float = 0.0) -> Claim:
    return Claim("m", op, value, source="test", tol=tol)  # type: ignore[arg-type]


@given(st.floats(-100, 100), st.floats(-100, 100), st.integers(2, 10), ops)
def test_constant_samples_match_direct_comparison(c: float, v: float, n: int, op: str) -> None:
    expected = {">=": c >= v, "<=": c <= v, ">": c > v, "<": c < v}[op]
    label = judge(claim(op, v), [c] * n).label
    assert label == (REPRODUCED if expected else NOT_REPRODUCED)


@given(samples, finite, ops)
def test_negation_duality(xs: list[float], v: float, op: str) -> None:
    mirrored = {">=": "<=", "<=": ">=", ">": "<", "<": ">"}[op]
    a = judge(claim(op, v), xs)
    b = judge(claim(mirrored, -v), [-x for x in xs])
    assert a.label == b.label


@given(samples, finite, st.floats(0, 1e3), st.sampled_from([">=", ">"]))
def test_raising_every_value_never_hurts_a_lower_bound_claim(
    xs: list[float], v: float, shift: float, op: str
) -> None:
    before = judge(claim(op, v), xs).label
    after = judge(claim(op, v), [x + shift for x in xs]).label
    assert RANK[after] >= RANK[before]


@given(samples, finite, ops, st.randoms())
def test_order_of_seeds_does_not_matter(xs: list[float], v: float, op: str, rnd) -> None:
    ys = list(xs)
    rnd.shuffle(ys)
    assert judge(claim(op, v), xs).label == judge(claim(op, v), ys).label


@given(samples)
def test_interval_contains_mean_and_is_ordered(xs: list[float]) -> None:
    mean, lo, hi = confidence_interval(xs)
    assert lo <= mean + 1e-9 * max(1.0, abs(mean)) and mean <= hi + 1e-9 * max(1.0, abs(mean))


@given(samples, finite)
def test_verdict_follows_interval(xs: list[float], v: float) -> None:
    verdict = judge(claim(">=", v), xs)
    if verdict.label == REPRODUCED:
        assert verdict.lo >= v
    elif verdict.label == NOT_REPRODUCED:
        assert verdict.hi < v
    else:
        assert verdict.lo < v <= verdict.hi


@given(st.floats(-10, 10), st.floats(0.01, 5), st.integers(2, 8))
def test_equality_with_tolerance(v: float, tol: float, n: int) -> None:
    assert judge(claim("==", v, tol), [v] * n).label == REPRODUCED
    assert judge(claim("==", v, tol), [v + 2 * tol] * n).label == NOT_REPRODUCED


def test_exact_equality_without_tolerance() -> None:
    assert judge(claim("==", 1.0), [1.0, 1.0, 1.0]).label == REPRODUCED
    assert judge(claim("==", 1.0), [0.9, 0.9]).label == NOT_REPRODUCED
    assert judge(claim("==", 1.0), [0.9, 1.1]).label == INCONCLUSIVE


def test_straddling_interval_is_inconclusive() -> None:
    verdict = judge(claim(">", 0.5), [0.4, 0.6, 0.5])
    assert verdict.label == INCONCLUSIVE
    assert "straddles" in verdict.reason


def test_one_seed_is_inconclusive_and_says_why() -> None:
    verdict = judge(claim(">=", 0.0), [5.0])
    assert verdict.label == INCONCLUSIVE
    assert "too few seeds" in verdict.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_metric_is_inconclusive_not_a_crash(bad: float) -> None:
    verdict = judge(claim(">=", 0.0), [1.0, bad, 2.0])
    assert verdict.label == INCONCLUSIVE
    assert "NaN" in verdict.reason and "1 of 3" in verdict.reason


def test_no_runs_is_inconclusive() -> None:
    assert judge(claim(">=", 0.0), []).label == INCONCLUSIVE


def test_t_critical_values() -> None:
    assert t_critical(1) == pytest.approx(12.706)
    assert t_critical(100) == pytest.approx(1.984, abs=1e-3)
    assert t_critical(10_000) == pytest.approx(1.960, abs=1e-3)
    values = [t_critical(df) for df in range(1, 200)]
    assert all(a > b for a, b in itertools.pairwise(values))


def test_known_interval() -> None:
    mean, _, hi = confidence_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert hi - mean == pytest.approx(4.303 * 1.0 / math.sqrt(3))


@given(samples, finite)
def test_lower_bound_open_and_closed_agree_off_the_boundary(xs: list[float], v: float) -> None:
    a, b = judge(claim(">=", v), xs), judge(claim(">", v), xs)
    assume(a.lo != v and a.hi != v)
    assert a.label == b.label


def test_not_observed_in_any_seed_is_not_reproduced_with_the_reason() -> None:
    unseen = NotObserved("never reached 99% test accuracy in 3000 steps")
    verdict = judge(claim(">=", 0.0), [1.0, unseen, 2.0])
    assert verdict.label == NOT_REPRODUCED
    assert verdict.reason == "not observed in 1 of 3 runs: never reached 99% test accuracy in 3000 steps"
    assert judge(claim("<", 10.0), [unseen, unseen]).label == NOT_REPRODUCED, "whatever the direction"
    mixed = judge(claim(">=", 0.0), [unseen, NotObserved("other"), math.nan])
    assert "not observed in 2 of 3 runs" in mixed.reason and "(and 1 other reasons)" in mixed.reason
    assert "NaN/inf in 1 of 3 runs (numerical error)" in mixed.reason


def test_nan_is_labelled_a_numerical_error() -> None:
    verdict = judge(claim(">=", 0.0), [math.nan, math.nan, 1.0])
    assert verdict.label == INCONCLUSIVE
    assert verdict.reason == "metric m is NaN or infinite in 2 of 3 runs (numerical error)"


def test_a_metric_no_run_returned_is_not_measured() -> None:
    assert judge(claim(">=", 0.0), [None, None]).label == NOT_MEASURED
    partly = judge(claim(">=", 0.0), [None, 1.0, 2.0])
    assert partly.label == INCONCLUSIVE and "missing in 1 of 3 runs" in partly.reason


@pytest.mark.parametrize(
    ("kind", "yes", "no"),
    [
        ("replication", "reproduced", "not reproduced"),
        ("exact", "holds", "fails"),
        ("target", "met", "not met"),
    ],
)
def test_words_follow_the_kind(kind: str, yes: str, no: str) -> None:
    assert (word(kind, REPRODUCED), word(kind, NOT_REPRODUCED)) == (yes, no)
    assert word(kind, INCONCLUSIVE) == "inconclusive" and word(kind, NOT_MEASURED) == "not measured"
    assert (control_word(NOT_REPRODUCED), control_word(REPRODUCED)) == ("effect vanished", "effect persists")


def test_summary_counts_only_replications_as_reproduced() -> None:
    line = summarize([
        ("replication", REPRODUCED, NOT_REPRODUCED),
        ("replication", NOT_REPRODUCED, REPRODUCED),
        ("replication", INCONCLUSIVE, None),
        ("exact", REPRODUCED, None),
        ("exact", REPRODUCED, None),
        ("exact", NOT_REPRODUCED, None),
        ("target", NOT_REPRODUCED, None),
    ])  # fmt: skip
    assert line == (
        "1 of 3 replications reproduced (1 not reproduced, 1 inconclusive); exact: 2 holds, 1 fails; "
        "targets: 0 met, 1 not met; controls: 1 of 2 effects vanished, 1 EFFECT PERSISTS"
    )
    assert summarize([("exact", REPRODUCED, None)]) == "exact: 1 holds, 0 fails"
    assert summarize([]) == "no claims judged"
