"""Override parsing and validation against config dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alignlab.core.config import (
    apply_overrides,
    bounded,
    check_ranges,
    config_hash,
    field_docs,
    from_dict,
    overrides_from_strings,
    parse_override,
    to_dict,
    unbounded_fields,
)
from alignlab.core.errors import OverrideError


@dataclass(frozen=True)
class Cfg:
    episodes: int = 10
    """Training episodes."""
    lr: float = 0.1
    """Learning rate."""
    shaped: bool = False
    """Whether to shape."""
    name: str = "grid"
    """A label."""
    algo: Literal["q", "sarsa"] = "q"
    """Learner."""
    sizes: tuple[int, ...] = (5, 10)
    """Grid sizes."""
    limit: int | None = None
    """Optional cap."""


@given(st.integers(-(10**12), 10**12))
def test_int_round_trip(v: int) -> None:
    assert apply_overrides(Cfg(), {"episodes": str(v)}).episodes == v


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trip(v: float) -> None:
    assert apply_overrides(Cfg(), {"lr": repr(v)}).lr == v


@given(st.lists(st.integers(0, 1000), max_size=6))
def test_tuple_round_trip(vs: list[int]) -> None:
    text = ",".join(map(str, vs))
    assert apply_overrides(Cfg(), {"sizes": text}).sizes == tuple(vs)


@given(st.builds(Cfg, episodes=st.integers(0, 10**6), lr=st.floats(-1e3, 1e3), shaped=st.booleans()))
def test_dict_round_trip_and_stable_hash(cfg: Cfg) -> None:
    again = from_dict(Cfg, to_dict(cfg))
    assert again == cfg
    assert config_hash("x", again) == config_hash("x", cfg)


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("shaped", "true", True),
        ("shaped", "No", False),
        ("episodes", "1e3", 1000),
        ("episodes", "2_000", 2000),
        ("algo", "sarsa", "sarsa"),
        ("sizes", "[1, 2, 3]", (1, 2, 3)),
        ("limit", "none", None),
        ("limit", "7", 7),
        ("name", "a=b", "a=b"),
    ],
)
def test_parsing(key: str, raw: str, expected: object) -> None:
    assert getattr(apply_overrides(Cfg(), {key: raw}), key) == expected


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("episodes", "1.5", "must be an integer"),
        ("episodes", "ten", "must be an integer"),
        ("lr", "fast", "must be a number"),
        ("lr", "nan", "finite"),
        ("shaped", "maybe", "bool"),
        ("algo", "ppo", "one of"),
        ("sizes", "1,x", "integer"),
    ],
)
def test_wrong_types_are_clear_errors(key: str, raw: str, message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        apply_overrides(Cfg(), {key: raw})


def test_unknown_key_names_valid_keys_and_close_match() -> None:
    with pytest.raises(OverrideError) as info:
        apply_overrides(Cfg(), {"episode": "3"})
    text = str(info.value)
    assert "Did you mean: episodes" in text
    assert "Valid keys: episodes, lr, shaped, name, algo, sizes, limit" in text


def test_python_values_are_type_checked() -> None:
    assert apply_overrides(Cfg(), {"lr": 1}).lr == 1.0
    with pytest.raises(OverrideError):
        apply_overrides(Cfg(), {"episodes": True})
    with pytest.raises(OverrideError):
        apply_overrides(Cfg(), {"name": 3})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cfg.episodes=500", ("episodes", "500")),
        ("lr = 0.5", ("lr", "0.5")),
        ("name=a=b", ("name", "a=b")),
    ],
)
def test_parse_override(text: str, expected: tuple[str, str]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["episodes", "=3", "cfg.=3", "a b=3"])
def test_malformed_override(text: str) -> None:
    with pytest.raises(OverrideError):
        parse_override(text)


def test_repeated_override_is_an_error() -> None:
    with pytest.raises(OverrideError, match="twice"):
        overrides_from_strings(["lr=1", "cfg.lr=2"])


def test_field_docs_come_from_the_source() -> None:
    docs = field_docs(Cfg)
    assert docs["episodes"] == "Training episodes."
    assert docs["limit"] == "Optional cap."


@dataclass(frozen=True)
class Extended(Cfg):
    beta: float = 1.0
    """Penalty weight."""


def test_field_docs_include_inherited_fields() -> None:
    docs = field_docs(Extended)
    assert docs["beta"] == "Penalty weight." and docs["episodes"] == "Training episodes."


@dataclass(frozen=True)
class Ranged:
    episodes: int = bounded(100, 1, 10**7)
    """Episodes."""
    gamma: float = bounded(0.9, 0.0, 1.0)
    """Discount."""
    widths: tuple[int, ...] = bounded((4, 8), 1, 64)
    """Per element."""
    free: float = 0.5
    """Not bounded."""
    flag: bool = False
    """Not a number."""
    maybe: int | None = None
    """Optional number, not bounded."""


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"episodes": "-5"}, "episodes = -5 is out of range: it must lie in [1, 1e+07]"),
        ({"gamma": "2"}, "gamma = 2.0 is out of range: it must lie in [0, 1]"),
        ({"episodes": "1e100"}, "episodes = 1e+100 is out of range: it must lie in [1, 1e+07]"),
        ({"episodes": "1" + "0" * 400}, "episodes = ~1e400 is out of range: it must lie in [1, 1e+07]"),
        ({"widths": "4,128"}, "widths = 128 is out of range: it must lie in [1, 64]"),
    ],
)
def test_check_ranges_rejects_values_outside_bounds(override: dict[str, str], message: str) -> None:
    cfg = apply_overrides(Ranged(), override)
    with pytest.raises(OverrideError) as info:
        check_ranges(cfg)
    assert str(info.value) == message and "\n" not in str(info.value)


def test_check_ranges_accepts_the_edges_and_unbounded_fields() -> None:
    check_ranges(apply_overrides(Ranged(), {"episodes": "1", "gamma": "1.0", "widths": "1,64", "free": "-9"}))


def test_unbounded_fields_lists_numeric_fields_without_bounds() -> None:
    assert unbounded_fields(Ranged) == ["free", "maybe"]
