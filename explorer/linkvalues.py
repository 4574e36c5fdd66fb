"""Settings carried by a shared link (?temperature=0.7&greedy=0&…): how each kind of value is
written into the URL and read back, checked before any widget sees it (pure Python).

A spec is a kind and, for numbers, the widget's range: "bool", "str", "int 0 1000",
"float 0.1 2.0", "choice 2|3" (one of the options, which may hold spaces), "block 1 64" ("mean"
or a block number in the range). A value that does not parse, or falls
outside the range, raises ValueError: the page ignores it and keeps its default."""

from __future__ import annotations

import math


def format_value(spec: str, value) -> str:
    kind = spec.split()[0]
    if kind == "bool":
        return "1" if value else "0"
    if kind == "float":
        return f"{float(value):g}"
    return str(value)


def parse_value(spec: str, raw: str):
    """The typed value of ``raw`` under ``spec``; ValueError when it is not one."""
    kind, _, rest = spec.partition(" ")
    bounds = rest.split()
    raw = raw.strip()
    if len(raw) > 200:
        raise ValueError("too long")
    if kind == "bool":
        if raw not in ("0", "1"):
            raise ValueError(f"{raw!r} is not 0 or 1")
        return raw == "1"
    if kind == "str":
        return raw
    if kind == "block" and raw == "mean":
        return raw
    if kind == "block":
        kind = "int"
    if kind == "choice":
        options = rest.split("|")
        if raw not in options:
            raise ValueError(f"{raw!r} is not one of {options}")
        return int(raw) if all(o.lstrip("-").isdigit() for o in options) else raw
    if kind in ("int", "float"):
        value = int(raw) if kind == "int" else float(raw)
        if kind == "float" and not math.isfinite(value):
            raise ValueError("not a finite number")
        if bounds and not float(bounds[0]) <= value <= float(bounds[1]):
            raise ValueError(f"{value} is outside {bounds[0]}..{bounds[1]}")
        return value
    raise ValueError(f"unknown kind {kind!r}")
