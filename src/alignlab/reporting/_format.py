"""Small formatting helpers for the report: escaping, numbers, sizes, CSS class names."""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")
_BREAK_AFTER = re.compile(r"([_./])")
OP_SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}


def esc(value: Any) -> str:
    """`value` as text safe inside HTML/SVG element content and quoted attributes."""
    return html.escape(str(value), quote=True)


def as_float(value: Any) -> float | None:
    """`value` as a float (None stays None; NaN for anything not a number)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fmt_num(value: Any, digits: int = 4) -> str:
    """A metric for display: `digits` significant digits; None and NaN as 'NaN', ±inf as 'inf'/'−inf'."""
    if value is None:
        return "NaN"
    x = as_float(value)
    if x is None or math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "−inf"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}"


def breakable(text: Any) -> str:
    """`text` escaped, with line-break opportunities after '_', '.' and '/' for long identifiers."""
    return _BREAK_AFTER.sub(r"\1<wbr>", esc(text))


def fmt_bytes(n: int) -> str:
    """A file size in B/KiB/MiB/GiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def fmt_value(value: Any, limit: int = 160) -> str:
    """A config value as short text: strings as they are, everything else as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slug(text: str) -> str:
    """`text` reduced to characters safe in an HTML id or CSS class name."""
    return _NOT_ID.sub("-", str(text).strip().lower()).strip("-") or "x"


def verdict_class(label: str) -> str:
    """CSS class of a verdict badge, e.g. 'verdict-not-reproduced'."""
    return f"verdict-{slug(label)}"


def status_class(status: str) -> str:
    """CSS class of a run-status badge, e.g. 'status-failed'."""
    return f"status-{slug(status)}"


def badge(text: str, cls: str, title: str | None = None) -> str:
    """A coloured pill: `cls` chooses the colour."""
    tip = f' title="{esc(title)}"' if title else ""
    return f'<span class="badge {esc(cls)}"{tip}>{esc(text)}</span>'
