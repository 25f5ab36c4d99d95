"""Sizes and addresses as people write them: 4096, 0x1000, "2**64", "512M", "4K"."""

from __future__ import annotations

import re

_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_RE_POW = re.compile(r"^\s*(\d+)\s*\*\*\s*(\d+)\s*$")
_RE_SUFFIX = re.compile(r"^\s*(0[xX][0-9a-fA-F_]+|\d[\d_]*)\s*([KMGT])(?:i?B)?\s*$", re.IGNORECASE)


def parse_number(value: object) -> int:
    """An int from an int or a string (hex, ``2**N``, K/M/G/T suffix); ValueError else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a number, got {value!r}")
    text = value.strip()
    m = _RE_POW.match(text)
    if m:
        base, exp = int(m.group(1)), int(m.group(2))
        if exp > 128:
            raise ValueError(f"number {value!r} is too large")
        return int(base**exp)
    m = _RE_SUFFIX.match(text)
    if m:
        return int(m.group(1), 0) * _SUFFIX[m.group(2).upper()]
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None
