"""Parsing ``NAME=VALUE`` settings from the command line.

Syntax, chosen so that a list-valued setting can never be confused with a list of values to sweep:

* a comma separates *alternative values* (``--set width=64,128`` counts or sweeps two models);
* a slash separates the *items of one list value* (``--set channels=32/64/128`` is one CNN with three
  stages; ``--set channels=16/32,32/64`` is two CNNs).

Names accept dashes or underscores (``patch-size`` and ``patch_size`` are the same key).
"""

from __future__ import annotations

import math

from dlbench.errors import UsageError

MAX_INT = 2**53  # larger "integers" written as floats (1e20) lose digits: refuse them
TRUE = {"true", "yes", "on", "1"}
FALSE = {"false", "no", "off", "0"}


def canon_key(key: str) -> str:
    return key.strip().replace("-", "_").lower()


def split_assignment(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UsageError(f"malformed setting '{text}': write NAME=VALUE, for example --set width=128")
    key, value = text.split("=", 1)
    key = canon_key(key)
    if not key:
        raise UsageError(f"malformed setting '{text}': the name before '=' is empty")
    if value.strip() == "":
        raise UsageError(f"malformed setting '{text}': no value after '='")
    return key, value.strip()


def split_values(key: str, value: str) -> list[str]:
    """Split a comma list of alternatives; empty items are an error."""
    items = [v.strip() for v in value.split(",")]
    if any(v == "" for v in items):
        raise UsageError(f"empty value in '{key}={value}': separate values with single commas")
    return items


def parse_assignments(texts: list[str] | None, allow_lists: bool = True) -> dict[str, list[str]]:
    """``["width=64,128", "depth=2"]`` -> ``{"width": ["64", "128"], "depth": ["2"]}`` (raw strings)."""
    out: dict[str, list[str]] = {}
    for text in texts or []:
        key, value = split_assignment(text)
        values = split_values(key, value)
        if not allow_lists and len(values) > 1:
            raise UsageError(f"'{key}' takes one value here, got {len(values)}: {value}")
        if key in out:
            raise UsageError(f"setting '{key}' given twice; give its values once, comma separated")
        out[key] = values
    return out


def coerce(key: str, raw, default):
    """Convert a raw command-line string to the type of ``default`` (bool, int, float, str, tuple)."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if isinstance(default, bool):
        low = text.lower()
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        raise UsageError(f"'{key}' must be true or false, got '{raw}'")
    if isinstance(default, int):
        try:
            value = int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                f = None
            if f is None or not math.isfinite(f) or not f.is_integer():
                raise UsageError(f"'{key}' must be an integer, got '{raw}'") from None
            value = int(f)
        if abs(value) > MAX_INT:
            raise UsageError(f"'{key}' is out of range: {raw} (at most {MAX_INT:.0e})")
        return value
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"'{key}' must be a number, got '{raw}'") from None
        return _finite(key, value, raw)
    if isinstance(default, tuple):
        item_default = default[0] if default else 0
        parts = [p for p in text.split("/")]
        if any(p.strip() == "" for p in parts):
            raise UsageError(f"'{key}' is a list: write its items separated by '/', for example 32/64/128")
        return tuple(coerce(key, p, item_default) for p in parts)
    if default is None:
        return _guess(text)
    return text


def _guess(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return _finite("value", float(text), text)
    except ValueError:
        return text


def _finite(key: str, value: float, raw) -> float:
    if not math.isfinite(value):
        raise UsageError(f"'{key}' must be a finite number, got '{raw}'")
    return value


def format_value(value) -> str:
    """The inverse of :func:`coerce`, for display and for commands that reproduce a result."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # a value read from a table column
        value = value.item()
    if isinstance(value, tuple | list):
        return "/".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
