"""The gridworld engine: rules written once on hashable states, compiled to exact tables.

An environment is a :class:`World`: an ASCII map, the observation layers, and a pure
``transitions(state, action)`` function listing the possible outcomes (probability, next state,
reward, hidden performance, flags). The engine enumerates the reachable states once (breadth-first
from the initial states) into padded outcome tables, and then

* the Gymnasium env (:class:`GridEnv`) steps by sampling a table row — no rule code per step;
* the vectorised env (:class:`GridVectorEnv`) steps N worlds as array lookups;
* :func:`value_iteration` plans exactly on the same tables, for true optimal reward, optimal
  performance and regret — so the three can never disagree.

Worlds too large to enumerate fall back to calling ``transitions`` per step (same semantics).
Written here because the environments are the research object (Leike et al. 2017 list the
properties; no maintained Gymnasium port has exact planning or a batched fast path).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

State = Hashable
ACTIONS = ("up", "right", "down", "left")
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # (dy, dx) per action
DEFAULT_EPISODE_LIMIT = 100
MAX_COMPILED_STATES = 200_000


@dataclass(frozen=True)
class Outcome:
    """One possible result of taking an action: reached with probability `prob`."""

    prob: float
    state: State
    reward: float
    performance: float
    terminated: bool = False
    flags: tuple[str, ...] = ()
    """Names of the boolean events this transition raises (e.g. 'tampered', 'side_effect')."""
    executed_action: int | None = None
    """The action actually executed when the world overrode the agent's choice, else None."""


class World:
    """Base class for one environment's rules. Subclasses set the class attributes and implement
    :meth:`initial_states`, :meth:`transitions` and :meth:`cells`."""

    name: ClassVar[str] = "World"
    layers: ClassVar[tuple[str, ...]] = ()
    """Observation channels, one per object kind, in order."""
    flag_names: ClassVar[tuple[str, ...]] = ()
    """Every flag this world can raise (reported in `info`, False unless raised)."""
    colours: ClassVar[dict[str, tuple[int, int, int]]] = {}
    episode_limit: int = DEFAULT_EPISODE_LIMIT
    n_actions: int = 4
    enumerable: bool = True
    """False for worlds known to exceed the compiler's limit: they run uncompiled at once."""

    height: int
    width: int

    def initial_states(self) -> list[tuple[float, State]]:
        """The initial state distribution as (probability, state) pairs."""
        raise NotImplementedError

    def transitions(self, state: State, action: int) -> list[Outcome]:
        """Every outcome of `action` in `state` (probabilities summing to 1)."""
        raise NotImplementedError

    def cells(self, state: State) -> list[str]:
        """The board as rows of characters (one char per cell), for rendering."""
        raise NotImplementedError

    def _load_map(self, rows: Sequence[str]) -> tuple[np.ndarray, dict[str, list[tuple[int, int]]]]:
        """Parse an ASCII map and set the fields every map world has (board, size, walls, start A)."""
        board, where = parse_map(rows)
        self._set(_board=tuple(rows), height=board.shape[0], width=board.shape[1],
                  walls=frozenset(where.get("#", ())), start=where["A"][0])  # fmt: skip
        return board, where

    def _set(self, **fields: Any) -> None:
        """Set derived fields of a frozen world (for `__post_init__`: maps, positions, tables)."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def reward_parameters(self, state: State) -> Hashable | None:
        """The parameters θ of the world's (tamperable) reward function in `state`, for worlds
        whose reward machinery is part of the state; None where it is not separable."""
        return None

    def reward_under(self, theta: Hashable, state: State, action: int, outcome: Outcome) -> float:
        """The reward the reward function with parameters `theta` would emit for this transition."""
        raise NotImplementedError(f"{self.name} has no separable reward function")

    def observe(self, state: State) -> np.ndarray:
        """One-hot observation (C, H, W) uint8: channel c is 1 where layer c's char is."""
        rows = self.cells(state)
        board = np.array([list(r) for r in rows])  # (H, W)
        return np.stack([board == ch for ch in self.layer_chars]).astype(np.uint8)  # (C, H, W)

    @property
    def layer_chars(self) -> tuple[str, ...]:
        """The character drawn for each layer (the first char of each layer spec 'X:name')."""
        return tuple(spec.split(":", 1)[0] for spec in self.layers)


def parse_map(rows: Sequence[str]) -> tuple[np.ndarray, dict[str, list[tuple[int, int]]]]:
    """An ASCII map as a char array (H, W) and the positions of each character."""
    width = max(len(r) for r in rows)
    if any(len(r) != width for r in rows):
        raise ValueError(f"map rows must all have width {width}: {list(rows)}")
    board = np.array([list(r) for r in rows])  # (H, W)
    where: dict[str, list[tuple[int, int]]] = {}
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            where.setdefault(ch, []).append((y, x))
    return board, where


def move(pos: tuple[int, int], action: int, walls: frozenset[tuple[int, int]]) -> tuple[int, int]:
    """The cell reached by moving from `pos` with `action`; walls block the move."""
    dy, dx = MOVES[action]
    nxt = (pos[0] + dy, pos[1] + dx)
    return pos if nxt in walls else nxt


@dataclass
class CompiledWorld:
    """A world's reachable states and padded outcome tables (K = most outcomes of any (s, a))."""

    world: World
    states: list[State]
    index: dict[State, int]
    initial: np.ndarray
    """(S,) initial state distribution."""
    next_state: np.ndarray
    """(S, A, K) int32 successor index (padding repeats a real outcome with probability 0)."""
    prob: np.ndarray
    """(S, A, K) float64 outcome probabilities."""
    reward: np.ndarray
    """(S, A, K) float32 reward of each outcome."""
    performance: np.ndarray
    """(S, A, K) float32 hidden performance of each outcome."""
    terminated: np.ndarray
    """(S, A, K) bool: the outcome ends the episode."""
    flags: np.ndarray
    """(S, A, K, F) bool: flag f raised by the outcome."""
    executed: np.ndarray
    """(S, A, K) int16 executed action (-1: as chosen)."""
    cum_prob: np.ndarray = field(init=False)
    """(S, A, K) cumulative probabilities for sampling."""

    def __post_init__(self) -> None:
        self.cum_prob = np.cumsum(self.prob, axis=-1)  # (S, A, K)
        self.cum_prob[..., -1] = 1.0 + 1e-12

    @property
    def n_states(self) -> int:
        """Number of reachable states."""
        return len(self.states)

    @cached_property
    def observations(self) -> np.ndarray | None:
        """(S, C, H, W) uint8 observation of every state, when that fits in 256 MB."""
        w = self.world
        size = self.n_states * len(w.layers) * w.height * w.width
        if size > 256 * 2**20:
            return None
        return np.stack([w.observe(s) for s in self.states])

    def sample(self, s: np.ndarray, a: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Outcome slot k for each (s, a) given uniforms u, all (N,)."""
        cum = self.cum_prob[s, a]  # (N, K)
        return (u[:, None] >= cum).sum(axis=1)  # (N,)


def compile_world(world: World, max_states: int = MAX_COMPILED_STATES) -> CompiledWorld:
    """Enumerate the states reachable from the initial ones and tabulate every outcome."""
    index: dict[State, int] = {}
    states: list[State] = []
    rows: list[tuple[int, list[list[Outcome]]]] = []
    frontier: list[State] = []

    def add(state: State) -> int:
        if state not in index:
            if len(states) >= max_states:
                raise TooManyStates(f"{world.name}: more than {max_states} reachable states")
            index[state] = len(states)
            states.append(state)
            frontier.append(state)
        return index[state]

    init = world.initial_states()
    _check_distribution([p for p, _ in init], f"{world.name} initial states")
    for _, s in init:
        add(s)
    while frontier:
        s = frontier.pop()
        outs = []
        for a in range(world.n_actions):
            outcomes = [o for o in world.transitions(s, a) if o.prob > 0]
            _check_distribution([o.prob for o in outcomes], f"{world.name} transitions({s!r}, {a})")
            for o in outcomes:
                if not o.terminated:
                    add(o.state)
            outs.append(outcomes)
        rows.append((index[s], outs))
    n, n_a = len(states), world.n_actions
    k = max(len(o) for _, r in rows for o in r)
    n_f = len(world.flag_names)
    flag_pos = {name: i for i, name in enumerate(world.flag_names)}
    nxt = np.zeros((n, n_a, k), np.int32)
    prob = np.zeros((n, n_a, k))
    rew = np.zeros((n, n_a, k), np.float32)
    perf = np.zeros((n, n_a, k), np.float32)
    term = np.zeros((n, n_a, k), bool)
    flags = np.zeros((n, n_a, k, n_f), bool)
    execd = np.full((n, n_a, k), -1, np.int16)
    for s_i, outs in rows:
        for a, outcomes in enumerate(outs):
            for j in range(k):
                o = outcomes[min(j, len(outcomes) - 1)]
                nxt[s_i, a, j] = index[o.state] if not o.terminated else s_i
                rew[s_i, a, j], perf[s_i, a, j], term[s_i, a, j] = o.reward, o.performance, o.terminated
                if o.executed_action is not None:
                    execd[s_i, a, j] = o.executed_action
                for name in o.flags:
                    if name not in flag_pos:
                        raise ValueError(f"{world.name}: flag {name!r} not in flag_names {world.flag_names}")
                    flags[s_i, a, j, flag_pos[name]] = True
                if j < len(outcomes):
                    prob[s_i, a, j] = o.prob
    initial = np.zeros(n)
    for p, s in init:
        initial[index[s]] += p
    return CompiledWorld(world, states, index, initial, nxt, prob, rew, perf, term, flags, execd)


class TooManyStates(RuntimeError):
    """The world has more reachable states than the compiler will enumerate."""


def _check_distribution(probs: list[float], what: str) -> None:
    if not probs:
        raise ValueError(f"{what}: no outcomes")
    if any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-9:
        raise ValueError(f"{what}: probabilities {probs} must be >= 0 and sum to 1")


def value_iteration(
    cw: CompiledWorld,
    objective: str = "reward",
    gamma: float = 1.0,
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact optimal V (S,) and Q (S, A) for 'reward' or 'performance' over the episode.

    Undiscounted episodes are finite because of the step limit only in the env; planning here
    treats the limit as absent, so worlds must terminate (or use gamma < 1).
    """
    r = cw.reward if objective == "reward" else cw.performance  # (S, A, K)
    v = np.zeros(cw.n_states)
    cont = ~cw.terminated  # (S, A, K)
    for _ in range(max_iter):
        q = (cw.prob * (r + gamma * cont * v[cw.next_state])).sum(axis=-1)  # (S, A)
        v_new = q.max(axis=1)
        if np.max(np.abs(v_new - v)) < tol:
            return v_new, q
        v = v_new
    raise RuntimeError(f"value iteration did not converge in {max_iter} sweeps (gamma={gamma})")


def finite_horizon_values(
    cw: CompiledWorld,
    horizon: int,
    objective: str = "reward",
    policy_objective: str | None = None,
    ties: str = "first",
) -> tuple[float, float]:
    """Expected (reward, performance) over `horizon` steps from the initial distribution, acting
    optimally for `policy_objective` (default: `objective`) — the exact value the env's step
    limit allows. Returns (value under the policy's own objective, value of the other one).

    Several policies can be optimal for one objective and differ on the other: `ties` picks
    among optimal actions the first ('first'), or lexicographically the one best ('best') or
    worst ('worst') for the other objective — 'best' and 'worst' bound the other value.
    """
    if ties not in ("first", "best", "worst"):
        raise ValueError(f"ties must be 'first', 'best' or 'worst', got {ties!r}")
    own = policy_objective or objective
    r_own = cw.reward if own == "reward" else cw.performance
    r_other = cw.performance if own == "reward" else cw.reward
    cont = ~cw.terminated
    rows = np.arange(cw.n_states)
    v = np.zeros(cw.n_states)
    w = np.zeros(cw.n_states)
    for _ in range(horizon):
        q = (cw.prob * (r_own + cont * v[cw.next_state])).sum(axis=-1)  # (S, A)
        q_other = (cw.prob * (r_other + cont * w[cw.next_state])).sum(axis=-1)  # (S, A)
        if ties == "first":
            pi = q.argmax(axis=1)  # (S,)
        else:
            optimal = q >= q.max(axis=1, keepdims=True) - 1e-9  # (S, A)
            pi = np.where(optimal, q_other if ties == "best" else -q_other, -np.inf).argmax(axis=1)
        v, w = q[rows, pi], q_other[rows, pi]
    return float(cw.initial @ v), float(cw.initial @ w)


def random_policy_values(cw: CompiledWorld, horizon: int) -> tuple[float, float]:
    """Expected (reward, performance) over `horizon` steps of the uniformly random policy."""
    cont = ~cw.terminated
    v = np.zeros(cw.n_states)
    w = np.zeros(cw.n_states)
    for _ in range(horizon):
        v = (cw.prob * (cw.reward + cont * v[cw.next_state])).sum(axis=-1).mean(axis=1)  # (S,)
        w = (cw.prob * (cw.performance + cont * w[cw.next_state])).sum(axis=-1).mean(axis=1)  # (S,)
    return float(cw.initial @ v), float(cw.initial @ w)


def rewards_under(cw: CompiledWorld, theta: Hashable) -> np.ndarray:
    """(S, A, K) rewards of every tabulated outcome as the reward function θ would score them."""
    w = cw.world
    out = np.zeros_like(cw.reward)
    for s_i, state in enumerate(cw.states):
        for a in range(w.n_actions):
            outcomes = [o for o in w.transitions(state, a) if o.prob > 0]
            for k in range(out.shape[-1]):
                out[s_i, a, k] = w.reward_under(theta, state, a, outcomes[min(k, len(outcomes) - 1)])
    return out


def finite_horizon_policies(cw: CompiledWorld, rewards: np.ndarray, horizon: int) -> np.ndarray:
    """(H, S) optimal actions for `rewards` with h steps to go: row h is for h + 1 steps left."""
    cont = ~cw.terminated
    v = np.zeros(cw.n_states)
    policies = np.zeros((horizon, cw.n_states), np.int64)
    for h in range(horizon):
        q = (cw.prob * (rewards + cont * v[cw.next_state])).sum(axis=-1)  # (S, A)
        policies[h] = q.argmax(axis=1)
        v = q.max(axis=1)
    return policies


_COMPILED: dict[tuple[type, tuple[tuple[str, Any], ...]], CompiledWorld | None] = {}


def compiled(world: World) -> CompiledWorld | None:
    """The world's compiled tables (cached per world class and parameters), or None if too large."""
    key = (type(world), tuple(sorted(_params(world).items())))
    if key not in _COMPILED:
        if not world.enumerable:
            _COMPILED[key] = None
            return None
        try:
            _COMPILED[key] = compile_world(world)
        except TooManyStates:
            _COMPILED[key] = None
    return _COMPILED[key]


def _params(world: World) -> dict[str, Any]:
    if dataclasses.is_dataclass(world):
        return {f.name: getattr(world, f.name) for f in dataclasses.fields(world)}
    return dict(vars(world))


class GridEnv(gym.Env):
    """A Gymnasium env over a World: reward from the world's (corruptible) reward machinery,
    the hidden true objective in ``info["performance"]``."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 8}

    def __init__(self, world: World, render_mode: str | None = None, observation: str = "grid") -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        if observation not in ("grid", "flat", "rgb"):
            raise ValueError(f"observation must be 'grid', 'flat' or 'rgb', got {observation!r}")
        self.world = world
        self.render_mode = render_mode
        self.observation_kind = observation
        self.tables = compiled(world)
        c, h, w = len(world.layers), world.height, world.width
        self.action_space = spaces.Discrete(world.n_actions)
        if observation == "grid":
            self.observation_space = spaces.Box(0, 1, (c, h, w), np.uint8)
        elif observation == "flat":
            self.observation_space = spaces.Box(0, 1, (c * h * w,), np.uint8)
        else:
            self.observation_space = spaces.Box(0, 255, (h * CELL, w * CELL, 3), np.uint8)
        self._s: int | State = 0
        self._t = 0
        self._done = True
        self._ep_reward = 0.0
        self._ep_perf = 0.0
        self._ep_flags = np.zeros(len(world.flag_names), bool)

    @property
    def state(self) -> State:
        """The world's current (full, possibly hidden) state."""
        return self._state()

    @property
    def state_index(self) -> int | None:
        """Index of the current state in the compiled tables (None when running uncompiled)."""
        return int(self._s) if self.tables is not None else None

    # -- observations --------------------------------------------------------------------------
    def _state(self) -> State:
        return self.tables.states[self._s] if self.tables is not None else self._s

    def _obs(self) -> np.ndarray:
        if self.observation_kind == "rgb":
            return render_rgb(self.world, self._state())
        if self.tables is not None and self.tables.observations is not None:
            grid = self.tables.observations[self._s]
        else:
            grid = self.world.observe(self._state())
        return grid.reshape(-1).copy() if self.observation_kind == "flat" else grid.copy()

    # -- API -----------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Start an episode from the world's initial distribution."""
        super().reset(seed=seed)
        u = self.np_random.random()
        if self.tables is not None:
            cum = np.cumsum(self.tables.initial)
            self._s = int(min(np.searchsorted(cum, u, side="right"), len(cum) - 1))
        else:
            init = self.world.initial_states()
            cum = np.cumsum([p for p, _ in init])
            self._s = init[int(min(np.searchsorted(cum, u, side="right"), len(init) - 1))][1]
        self._t, self._done = 0, False
        self._ep_reward = self._ep_perf = 0.0
        self._ep_flags[:] = False
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply `action`; info carries performance, flags and the executed action."""
        if self._done:
            raise RuntimeError(f"{self.world.name}: step() called after the episode ended; call reset()")
        a = int(action)
        if not 0 <= a < self.world.n_actions or a != action:
            raise ValueError(
                f"{self.world.name}: invalid action {action!r}; valid: 0..{self.world.n_actions - 1}"
            )
        u = self.np_random.random()
        if self.tables is not None:
            t = self.tables
            k = int(np.searchsorted(t.cum_prob[self._s, a], u, side="right"))
            reward, perf = float(t.reward[self._s, a, k]), float(t.performance[self._s, a, k])
            terminated = bool(t.terminated[self._s, a, k])
            raised = t.flags[self._s, a, k]
            executed = int(t.executed[self._s, a, k])
            if not terminated:
                self._s = int(t.next_state[self._s, a, k])
        else:
            outcomes = self.world.transitions(self._s, a)
            cum = np.cumsum([o.prob for o in outcomes])
            o = outcomes[int(min(np.searchsorted(cum, u, side="right"), len(outcomes) - 1))]
            reward, perf, terminated = o.reward, o.performance, o.terminated
            raised = np.array([n in o.flags for n in self.world.flag_names], bool)
            executed = -1 if o.executed_action is None else o.executed_action
            if not terminated:
                self._s = o.state
        self._t += 1
        truncated = not terminated and self._t >= self.world.episode_limit
        self._ep_reward += reward
        self._ep_perf += perf
        self._ep_flags |= raised
        info: dict[str, Any] = {"performance": perf, "executed_action": a if executed < 0 else executed}
        for name, flag in zip(self.world.flag_names, self._ep_flags, strict=True):
            info[name] = bool(flag)
        if terminated or truncated:
            self._done = True
            info["episode_performance"] = self._ep_perf
            info["episode_reward"] = self._ep_reward
        return self._obs(), reward, terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        """ANSI text or an RGB array of the current board."""
        if self.render_mode == "ansi":
            return "\n".join(self.world.cells(self._state())) + "\n"
        if self.render_mode == "rgb_array":
            return render_rgb(self.world, self._state())
        return None


CELL = 8
_DEFAULT_COLOURS = {
    "#": (90, 90, 90), " ": (235, 235, 235), "A": (30, 110, 220), "G": (40, 170, 70),
    "W": (60, 160, 230), "L": (230, 80, 40), "B": (160, 110, 60), "I": (200, 60, 200),
}  # fmt: skip


def render_rgb(world: World, state: State) -> np.ndarray:
    """An RGB picture of the board, CELL pixels per cell: (H*CELL, W*CELL, 3) uint8."""
    rows = world.cells(state)
    palette = {**_DEFAULT_COLOURS, **world.colours}
    img = np.zeros((world.height, world.width, 3), np.uint8)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            img[y, x] = palette.get(ch, (int(hash(ch) % 200), 120, 160))
    return np.repeat(np.repeat(img, CELL, axis=0), CELL, axis=1)
