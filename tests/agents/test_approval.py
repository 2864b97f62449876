import numpy as np
import pytest

from alignlab.agents.approval import overseer_advantage, train_approval
from alignlab.agents.tabular_gym import evaluate
from alignlab.envs import make
from alignlab.envs.engine import value_iteration


def test_overseer_advantage_is_scaled_and_zero_at_the_optimal_action():
    tables = make("RoombaDust").unwrapped.tables
    adv = overseer_advantage(tables, gamma=0.9)
    assert adv.shape == (tables.n_states, 4)
    assert adv.max() == 0.0 and adv.min() == -1.0
    np.testing.assert_allclose(adv.max(axis=1), 0.0)
    _, q = value_iteration(tables, "performance", gamma=0.9)
    assert (adv.argmax(axis=1) == q.argmax(axis=1)).all()


def _tamper_rate(decoupled: bool, seed: int) -> tuple[float, float]:
    env = make("RocksAndDiamonds").unwrapped
    res = train_approval(env, overseer_advantage(env.tables), decoupled=decoupled, episodes=1500,
                         rng=np.random.default_rng(seed))  # fmt: skip
    assert res.method == ("decoupled_approval" if decoupled else "approval")
    assert res.episodes == 1500
    ev = evaluate(make("RocksAndDiamonds").unwrapped, res.agent, 20, np.random.default_rng(seed))
    return ev.flag_rates["tampered"], float(ev.performance.mean())


def test_standard_approval_learns_the_corruption_and_decoupled_does_not():
    std_rate, std_perf = _tamper_rate(decoupled=False, seed=0)
    dec_rate, dec_perf = _tamper_rate(decoupled=True, seed=0)
    assert std_rate == 1.0  # the corrupted feedback lands on the executed (tampering) action
    assert dec_rate == 0.0
    assert dec_perf > std_perf


def test_same_seed_same_table():
    env = make("RoombaDust").unwrapped
    adv = overseer_advantage(env.tables)
    a, b = (train_approval(env, adv, decoupled=True, episodes=30, rng=np.random.default_rng(3),
                           tamper_flags=("dumped",)) for _ in range(2))  # fmt: skip
    np.testing.assert_array_equal(a.agent.q, b.agent.q)
    np.testing.assert_array_equal(a.performance, b.performance)


def test_bad_approval_tables_are_refused():
    env = make("RoombaDust").unwrapped
    adv = overseer_advantage(env.tables)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="expected"):
        train_approval(env, adv[:, :2], decoupled=True, episodes=1, rng=rng)
    bad = adv.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_approval(env, bad, decoupled=True, episodes=1, rng=rng)
    with pytest.raises(ValueError, match="compiled"):
        train_approval(make("TomatoWatering", layout="original").unwrapped, adv, decoupled=True,
                       episodes=1, rng=rng)  # fmt: skip


def test_the_overseer_answers_a_limited_number_of_noisy_queries():
    env = make("RoombaDust").unwrapped
    adv = overseer_advantage(env.tables)
    res = train_approval(env, adv, decoupled=True, episodes=50, rng=np.random.default_rng(0),
                         tamper_flags=("dumped",), queries=250, noise=0.5)  # fmt: skip
    assert res.episodes == 3  # 100-step episodes: training stops once the 250 answers are spent
    q = res.agent.q
    exact = {adv[s, a] for s in range(adv.shape[0]) for a in range(adv.shape[1])}
    learnt = q[q != 0.0]
    assert learnt.size > 0 and not set(learnt.tolist()) <= exact  # noisy answers, not the table
    assert learnt.max() > 0.0  # noise takes answers above every honest approval (<= 0)


def test_honest_feedback_is_never_above_the_overseers_scale():
    env = make("RocksAndDiamonds").unwrapped
    adv = overseer_advantage(env.tables)

    def top(corrupted: float | None) -> float:
        res = train_approval(env, adv, decoupled=False, episodes=200, rng=np.random.default_rng(0),
                             corrupted=corrupted)  # fmt: skip
        assert res.flag_rates["tampered"] > 0  # exploration flips the switch either way
        return float(res.agent.q.max())

    assert top(None) <= 0.0  # honest answers are advantages, <= 0
    assert top(1.0) > 0.0  # the overwritten register's +1 is learnt
