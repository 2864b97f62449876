"""Typed experiment configs: ``--set key=value`` parsing, validation, hashing, field docs.

Configs are frozen dataclasses. Overrides are parsed against each field's type hint
(bool, int, float, str, Literal, Optional, tuple/list of those); an unknown key or a value
of the wrong type raises :class:`OverrideError` naming the valid keys.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import itertools
import json
import math
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from alignlab.core.errors import OverrideError, did_you_mean

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null"}


RANGE_KEY = "alignlab_range"


def bounded(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """A config field whose number (or each number of a tuple) must lie in ``[lo, hi]``.

    Use as ``episodes: int = bounded(2_000, 1, 10**7)``; :func:`check_ranges` enforces it
    before anything runs, so a bad ``--set`` fails at once with a one-line error.
    """
    if isinstance(default, list):
        raise TypeError("bounded() takes a tuple default, not a list (configs are frozen)")
    return dataclasses.field(default=default, metadata={RANGE_KEY: (lo, hi)})


def field_range(cls: type, name: str) -> tuple[float | None, float | None] | None:
    """The declared ``(lo, hi)`` of a config field, or None when it has none."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get(RANGE_KEY)
    return None


def check_ranges(cfg: Any) -> None:
    """Raise OverrideError naming the first config value outside its declared range."""
    for f in dataclasses.fields(cfg):
        bounds = f.metadata.get(RANGE_KEY)
        if bounds is None:
            continue
        lo, hi = bounds
        for item in _numbers(getattr(cfg, f.name)):
            nan = isinstance(item, float) and not math.isfinite(item)
            if nan or (lo is not None and item < lo) or (hi is not None and item > hi):
                span = range_text(bounds)
                shown = repr(item) if len(repr(item)) <= 24 else _short(item)
                raise OverrideError(f"{f.name} = {shown} is out of range: it must lie in {span}")


def range_text(bounds: tuple[float | None, float | None]) -> str:
    """A declared range as text, e.g. ``[1, 1e+07]`` or ``[0, inf]``."""
    lo, hi = bounds
    return f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"


def _short(x: int | float) -> str:
    try:
        return f"{float(x):.3g}"
    except OverflowError:  # an int beyond float range
        return f"{'-' if x < 0 else ''}~1e{len(str(abs(x))) - 1}"


def _numbers(value: Any) -> Iterable[int | float]:
    """The numbers in a config value (a number, or numbers nested in tuples/lists); bools excluded."""
    if isinstance(value, tuple | list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


def is_numeric_type(tp: Any) -> bool:
    """Whether a config field of type `tp` holds numbers (int/float, optional, or a tuple/list of them)."""
    if tp is bool:
        return False
    if tp in (int, float):
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType, tuple, list):
        return any(is_numeric_type(a) for a in typing.get_args(tp) if a not in (type(None), Ellipsis))
    return False


def unbounded_fields(cls: type) -> list[str]:
    """Numeric config fields declared without :func:`bounded` (every such field must be bounded)."""
    types_ = field_types(cls)
    return [
        f.name
        for f in dataclasses.fields(cls)
        if is_numeric_type(types_[f.name]) and RANGE_KEY not in f.metadata
    ]


def parse_override(text: str) -> tuple[str, str]:
    """Split ``cfg.key=value`` (the ``cfg.`` prefix is optional) into key and raw value."""
    if "=" not in text:
        raise OverrideError(f"override {text!r} must look like key=value (e.g. cfg.episodes=500)")
    key, value = text.split("=", 1)
    key = key.strip()
    if key.startswith("cfg."):
        key = key[4:]
    if not key.isidentifier():
        raise OverrideError(f"override {text!r}: {key!r} is not a config key name")
    return key, value.strip()


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type hint for a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` (a CLI string or a Python value) to type `tp`, or raise OverrideError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in _NONE)):
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except OverrideError as exc:
                errors.append(str(exc))
        raise OverrideError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {tp}")
    if origin is typing.Literal:
        for option in args:
            if value == option or (isinstance(value, str) and str(option) == value):
                return option
        raise OverrideError(f"{key} must be one of {list(args)}, got {value!r}")
    if origin in (tuple, list):
        items = _split_sequence(value, key)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise OverrideError(f"{key} needs {len(args)} values, got {len(items)}")
            out = [coerce(v, a, key) for v, a in zip(items, args, strict=True)]
        else:
            inner = args[0] if args else Any
            out = [coerce(v, inner, key) for v in items]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise OverrideError(f"{key} must be a bool (true/false), got {value!r}")
    if tp is int:
        return _to_int(value, key)
    if tp is float:
        return _to_float(value, key)
    if tp is str:
        if isinstance(value, str):
            return value
        raise OverrideError(f"{key} must be a string, got {value!r}")
    if isinstance(value, tp):
        return value
    raise OverrideError(f"{key}: cannot set a field of type {tp} from {value!r}")


def _to_int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise OverrideError(f"{key} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.replace("_", ""))
        except ValueError:
            try:
                f = float(value)
            except ValueError:
                f = math.nan
            if math.isfinite(f) and f.is_integer():
                return int(f)
    raise OverrideError(f"{key} must be an integer, got {value!r}")


def _to_float(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise OverrideError(f"{key} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise OverrideError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise OverrideError(f"{key} must be a finite number, got {value!r}")
    return out


def _split_sequence(value: Any, key: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise OverrideError(f"{key}: {value!r} is not a JSON list ({exc.msg})") from None
            return [p if isinstance(p, str) else json.dumps(p) for p in parsed]
        return [] if not text else [part.strip() for part in text.split(",")]
    raise OverrideError(f"{key} must be a list (a,b,c), got {value!r}")


def apply_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    """A copy of config `cfg` with `overrides` applied, each parsed and checked against its type."""
    types_ = field_types(type(cfg))
    changes = {}
    for key, raw in overrides.items():
        if key not in types_:
            raise OverrideError(
                f"unknown config key {key!r} for {type(cfg).__name__}.{did_you_mean(key, types_)} "
                f"Valid keys: {', '.join(types_)}"
            )
        changes[key] = coerce(raw, types_[key], key)
    return dataclasses.replace(cfg, **changes)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as a JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a config of type `cls` from a stored dict, re-checking every value's type."""
    return apply_overrides(cls(), data)


def config_hash(experiment: str, cfg: Any) -> str:
    """A stable hash of an experiment's name and config values (used to match runs on --resume)."""
    blob = json.dumps({"experiment": experiment, "config": to_dict(cfg)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def overrides_from_strings(items: Iterable[str]) -> dict[str, str]:
    """Parse ``--set`` strings into a key -> raw value mapping; a repeated key is an error."""
    out: dict[str, str] = {}
    for item in items:
        key, value = parse_override(item)
        if key in out:
            raise OverrideError(f"override key {key!r} given twice")
        out[key] = value
    return out


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the one-line docstring written under the field (used as help text),
    including fields inherited from dataclass base classes."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[1:]):
        if dataclasses.is_dataclass(base):
            docs.update(field_docs(base))
    return docs | _own_field_docs(cls)


def _own_field_docs(cls: type) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = nxt.value.value.strip().splitlines()[0]
    return docs
