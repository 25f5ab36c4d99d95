"""``flatview audit TRACE``: what a QEMU did to KVM's memslots, from its trace log.

Reads the ``kvm_set_user_memory`` lines of QEMU 7.2/8.x (``Slot#N`` with the
address space in the slot's upper 16 bits) and of QEMU 10 (``AddrSpace#A Slot#N
... guest_memfd=... guest_memfd_offset=...``), with or without ``-msg
timestamp=on`` prefixes, and ``kvm_run_exit`` vCPU events where the log has them.
It replays QEMU's slot table ioctl by ioctl and groups the ioctls into commits:
QEMU's listener deletes before it creates within a commit, so a delete that follows
a create starts a new commit, and so does a pause of more than ``GAP_S`` between
two timestamped ioctls.  Per commit:

* ``ioctls``;
* ``holes``: each deleted slot's range, and how long until all of its bytes were
  mapped again within the commit (``null`` without timestamps; ranges that stay
  unmapped are not holes);
* ``unchanged_bytes_unmapped``: bytes inside a slot the commit deleted or moved
  whose host address and read-only bit are the same after the commit;
* ``vcpus_in_kvm_run``: whether a vCPU left KVM_RUN during one of the holes
  (``null`` when the log has no vCPU events).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from flatview.errors import InputError

GAP_S = 0.010
"""Timestamped ioctls further apart than this belong to different commits."""
KVM_MEM_READONLY = 0x2
LARGE = 2 << 20

_PREFIX = r"(?:(?P<pid>\d+)@(?P<ts>\d+\.\d+):)?"
_SET = re.compile(
    _PREFIX + r"kvm_set_user_memory (?:AddrSpace#(?P<as>\d+) )?Slot#(?P<slot>\d+) "
    r"flags=0x(?P<flags>[0-9a-f]+) gpa=0x(?P<gpa>[0-9a-f]+) size=0x(?P<size>[0-9a-f]+) "
    r"ua=0x(?P<ua>[0-9a-f]+)(?: guest_memfd=(?P<fd>-?\d+) "
    r"guest_memfd_offset=0x(?P<fdoff>[0-9a-f]+))? ret=(?P<ret>-?\d+)$"
)
_EXIT = re.compile(_PREFIX + r"kvm_run_exit cpu_index (?P<cpu>\d+), reason (?P<reason>\d+)$")


@attrs.frozen(slots=True)
class Ioctl:
    line: int
    ts: float | None
    as_id: int
    slot: int
    flags: int
    gpa: int
    size: int
    ua: int
    ret: int


@attrs.frozen(slots=True)
class Trace:
    ioctls: tuple[Ioctl, ...]
    exits: tuple[float, ...]
    """Timestamps of vCPU exits from KVM_RUN."""
    has_vcpu_events: bool


def parse_trace(text: str, path: str) -> Trace:
    """The ioctls and vCPU exits of a QEMU trace log; a malformed
    ``kvm_set_user_memory`` line is an :class:`InputError` naming it."""
    ioctls: list[Ioctl] = []
    exits: list[float] = []
    has_vcpu = False
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if "kvm_set_user_memory" in line:
            m = _SET.match(line)
            if m is None:
                raise InputError(path, n, f"malformed kvm_set_user_memory line: {line[:70]!r}")
            slot = int(m["slot"])
            as_id = int(m["as"]) if m["as"] is not None else slot >> 16
            ioctls.append(
                Ioctl(
                    n,
                    float(m["ts"]) if m["ts"] else None,
                    as_id,
                    slot & 0xFFFF,
                    int(m["flags"], 16),
                    int(m["gpa"], 16),
                    int(m["size"], 16),
                    int(m["ua"], 16),
                    int(m["ret"]),
                )
            )
        elif "kvm_run_exit" in line:
            m = _EXIT.match(line)
            if m is None:
                raise InputError(path, n, f"malformed kvm_run_exit line: {line[:70]!r}")
            has_vcpu = True
            if m["ts"]:
                exits.append(float(m["ts"]))
    if not ioctls:
        raise InputError(
            path,
            0,
            "no kvm_set_user_memory lines (run QEMU with -trace kvm_set_user_memory -D FILE)",
        )
    return Trace(tuple(ioctls), tuple(exits), has_vcpu)


Key = tuple[int, int]
"""(address space, slot)."""


def _commits(ioctls: tuple[Ioctl, ...]) -> list[list[Ioctl]]:
    out: list[list[Ioctl]] = []
    created = False
    for op in ioctls:
        prev = out[-1][-1] if out else None
        gap = (
            prev is not None
            and prev.ts is not None
            and op.ts is not None
            and (op.ts - prev.ts > GAP_S)
        )
        if prev is None or gap or (op.size == 0 and created):
            out.append([])
            created = False
        out[-1].append(op)
        created |= op.size > 0
    return out


def _same_after(table: dict[Key, Ioctl], old: Ioctl) -> int:
    """Bytes of ``old``'s range that ``table`` maps to the same host address and
    READONLY (mapped the same way after the commit)."""
    ro = bool(old.flags & KVM_MEM_READONLY)
    same = 0
    for (a, _), s in table.items():
        if a != old.as_id or bool(s.flags & KVM_MEM_READONLY) != ro:
            continue
        x, y = max(old.gpa, s.gpa), min(old.gpa + old.size, s.gpa + s.size)
        if x < y and s.ua - s.gpa == old.ua - old.gpa:
            same += y - x
    return same


def audit(trace: Trace) -> dict[str, Any]:
    """Per-commit figures and totals (the module's docstring says what each means)."""
    table: dict[Key, Ioctl] = {}
    commits = []
    for group in _commits(trace.ioctls):
        removed: list[tuple[Ioctl, Ioctl]] = []  # (the slot as it was, the ioctl)
        for op in group:
            if op.ret != 0:
                continue
            key = (op.as_id, op.slot)
            old = table.get(key)
            if op.size == 0:
                if old is not None:
                    removed.append((old, op))
                    del table[key]
            else:
                if old is not None and (old.gpa != op.gpa or old.size != op.size):
                    removed.append((old, op))  # a move
                table[key] = op
        unchanged = 0
        holes: list[dict[str, Any]] = []
        windows: list[tuple[float | None, float | None]] = []
        for old, op in removed:
            unchanged += _same_after(table, old)
            back = [
                c
                for c in group
                if c.size > 0
                and c.line > op.line
                and c.as_id == old.as_id
                and c.gpa < old.gpa + old.size
                and old.gpa < c.gpa + c.size
            ]
            covered = sum(
                max(0, min(old.gpa + old.size, c.gpa + c.size) - max(old.gpa, c.gpa)) for c in back
            )
            if covered < old.size:
                continue  # not all of it comes back: a removal, not a hole
            end = max((c.ts for c in back if c.ts is not None), default=None)
            secs = end - op.ts if end is not None and op.ts is not None else None
            holes.append(
                {
                    "as_id": old.as_id,
                    "gpa": old.gpa,
                    "size": old.size,
                    "us": round(secs * 1e6, 1) if secs is not None else None,
                }
            )
            windows.append((op.ts, end))
        in_run: bool | None = None
        if trace.has_vcpu_events:
            in_run = any(
                a is not None and b is not None and any(a <= t <= b for t in trace.exits)
                for a, b in windows
            )
        commits.append(
            {
                "first_line": group[0].line,
                "ioctls": len(group),
                "deletes": sum(1 for op in group if op.size == 0),
                "creates": sum(1 for op in group if op.size > 0),
                "holes": holes,
                "unchanged_bytes_unmapped": unchanged,
                "recreates_ram": unchanged >= LARGE,
                "vcpus_in_kvm_run": in_run,
            }
        )
    return {
        "commits": commits,
        "totals": {
            "commits": len(commits),
            "ioctls": sum(c["ioctls"] for c in commits),
            "unchanged_bytes_unmapped": sum(c["unchanged_bytes_unmapped"] for c in commits),
            "commits_recreating_ram": sum(1 for c in commits if c["recreates_ram"]),
        },
    }


def format_audit(doc: dict[str, Any]) -> str:
    """The audit for people: one line per commit, then the totals."""
    out = []
    for i, c in enumerate(doc["commits"], 1):
        holes = ", ".join(
            f"{h['gpa']:#x}+{h['size']:#x}"
            + (f" for {h['us']:.0f} us" if h["us"] is not None else "")
            for h in c["holes"]
        )
        flag = "  <- re-created RAM it kept" if c["recreates_ram"] else ""
        out.append(
            f"commit {i} (line {c['first_line']}): {c['ioctls']} ioctls ({c['deletes']} del, "
            f"{c['creates']} create), unchanged unmapped {c['unchanged_bytes_unmapped']:#x}"
            f"{'; holes ' + holes if holes else ''}{flag}"
        )
    t = doc["totals"]
    out.append(
        f"totals: {t['commits']} commits, {t['ioctls']} ioctls, unchanged unmapped "
        f"{t['unchanged_bytes_unmapped']:#x}, {t['commits_recreating_ram']} commits re-created RAM"
    )
    if "ours" in doc:
        o = doc["ours"]
        out.append(
            f"ours for the same transition ({o['a']} -> {o['b']}): {o['ioctls']} ioctls, "
            f"unchanged unmapped {o['unchanged_bytes_unmapped']:#x}"
        )
    return "\n".join(out) + "\n"
