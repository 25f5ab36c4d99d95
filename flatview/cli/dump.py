"""Parsing QEMU's ``info mtree -f`` output into flat ranges per address space."""

from __future__ import annotations

import re

import attrs

from flatview.errors import InputError, read_input

_RANGE = re.compile(
    r"^  (?P<start>[0-9a-f]{16})-(?P<end>[0-9a-f]{16}) \(prio (?P<prio>-?\d+), "
    r"(?P<type>[a-z/-]+)\): (?P<rest>.*)$"
)
_AS = re.compile(r'^ AS "(?P<name>[^"]*)", root: (?P<root>.*)$')
_OFFSET = re.compile(r"^(?P<name>.*) @(?P<off>[0-9a-f]{16})$")
TYPES = ("ram", "rom", "romd", "ramd", "i/o", "container")


@attrs.frozen(slots=True)
class DumpRange:
    start: int
    size: int
    type: str
    """ram, rom, romd, ramd or i/o (``nv-`` stripped into ``nonvolatile``)."""
    region: str
    offset: int
    nonvolatile: bool = False
    line: int = 0
    path: str = ""
    """The dump it was read from ("" for ranges of a rendered view)."""
    prio: int = attrs.field(default=0, eq=False)
    """The priority the dump printed (the leaf's)."""

    def mtree_line(self) -> str:
        """The range as ``info mtree -f`` prints it."""
        typ = ("nv-" if self.nonvolatile else "") + self.type
        off = f" @{self.offset:016x}" if self.offset else ""
        end = self.start + self.size - 1
        return f"  {self.start:016x}-{end:016x} (prio {self.prio}, {typ}): {self.region}{off}"

    @property
    def addr(self) -> int:
        return self.start

    def _key(self) -> tuple[int, str, int, str]:
        return (self.start, self.region, self.offset, self.type)

    def same_mapping(self, other: DumpRange) -> bool:
        return self.size == other.size and self._key() == other._key()

    def is_resize_of(self, old: DumpRange) -> bool:
        return self.size != old.size and self._key() == old._key()

    @property
    def mapped(self) -> bool:
        return self.type in ("ram", "rom", "romd", "ramd")

    @property
    def readonly(self) -> bool:
        return self.type in ("rom", "romd")


@attrs.frozen
class DumpView:
    """One ``FlatView #N`` block: the address spaces (name, root) that share it."""

    spaces: tuple[tuple[str, str], ...]
    root: str
    ranges: tuple[DumpRange, ...]


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def parse_views(text: str, path: str) -> list[DumpView]:
    """Every ``FlatView #N`` block of an ``info mtree -f`` dump, in order."""
    views: list[DumpView] = []
    current: list[tuple[str, str]] | None = None
    ranges: list[DumpRange] = []
    root: str | None = None

    def close() -> None:
        if current is not None:
            if root is None:
                raise InputError(path, lineno, "FlatView block without 'Root memory region'")
            views.append(DumpView(tuple(current), root, tuple(ranges)))

    lineno = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        bad = _CONTROL.search(line)
        if bad is not None:
            raise InputError(path, lineno, f"control character {bad.group()!r}")
        if not line.strip():
            continue
        if line.startswith("FlatView #"):
            close()
            current, ranges, root = [], [], None
            continue
        if current is None:
            raise InputError(path, lineno, "expected 'FlatView #N' (an 'info mtree -f' dump)")
        m = _AS.match(line)
        if m:
            current.append((m.group("name"), m.group("root")))
            continue
        if line.startswith(" Root memory region: "):
            root = line.removeprefix(" Root memory region: ").strip()
            continue
        if line.strip() == "No rendered FlatView":
            continue
        m = _RANGE.match(line)
        if not m:
            raise InputError(path, lineno, f"unrecognised line: {line.strip()[:60]!r}")
        start, end = int(m.group("start"), 16), int(m.group("end"), 16)
        if end < start:
            raise InputError(path, lineno, "range end before its start")
        typ = m.group("type")
        nv = typ.startswith("nv-")
        typ = typ.removeprefix("nv-")
        if typ not in TYPES:
            raise InputError(path, lineno, f"unknown range type {typ!r}")
        rest = m.group("rest").removesuffix(" KVM")
        offset = 0
        om = _OFFSET.match(rest)
        if om:
            rest, offset = om.group("name"), int(om.group("off"), 16)
        if not rest:
            raise InputError(path, lineno, "range without a region name")
        if ranges and start < ranges[-1].start + ranges[-1].size:
            raise InputError(path, lineno, "ranges overlap or are out of order")
        if offset + (end - start + 1) > 2**64:
            raise InputError(path, lineno, f"@{offset:x} runs past the end of the 64-bit space")
        prio = int(m.group("prio"))
        ranges.append(DumpRange(start, end - start + 1, typ, rest, offset, nv, lineno, path, prio))
    if current is None:
        raise InputError(path, lineno, "no 'FlatView #N' block (truncated or not a dump)")
    close()
    if not any(v.spaces for v in views):
        raise InputError(path, lineno, "no address space in the dump")
    return views


def parse_dump(text: str, path: str) -> dict[str, list[DumpRange]]:
    """Address-space name -> its flat ranges; every AS of a FlatView block gets them."""
    return {name: list(v.ranges) for v in parse_views(text, path) for name, _ in v.spaces}


def format_views(views: list[DumpView]) -> str:
    """``info mtree -f`` text for ``views`` (each block's address spaces, root, ranges)."""
    out: list[str] = []
    for i, v in enumerate(views):
        out.append(f"FlatView #{i}")
        out += [f' AS "{name}", root: {root}' for name, root in v.spaces]
        out.append(f" Root memory region: {v.root}")
        out += [r.mtree_line() for r in v.ranges] or ["  No rendered FlatView"]
        out.append("")
    return "\n".join(out)


def load_dump(path: str, address_space: str | None = None) -> list[DumpRange]:
    """The ranges of ``address_space`` (default: the view holding AS "memory")."""
    spaces = parse_dump(read_input(path), path)
    name = address_space or ("memory" if "memory" in spaces else next(iter(spaces)))
    if name not in spaces:
        raise InputError(path, 0, f"no address space {name!r} (have: {', '.join(spaces)})")
    return spaces[name]


def looks_like_dump(path: str) -> bool:
    """Not a scenario: not YAML and not a bundled example."""
    return not path.endswith((".yaml", ".yml")) and not path.startswith("example:")
