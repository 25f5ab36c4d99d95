"""The MemoryListener protocol: QEMU's callbacks plus ``region_resize``.

A listener is any object; every callback is optional and looked up by name when
the listener is registered (:func:`bind`).  A plain class with any subset of
QEMU's callback names works; a public method whose name is close to a callback's
but not one (``region_ad``) is refused at registration, since it would silently
never be called.  :class:`ListenerBase` gives no-op callbacks to subclass.

The callbacks, when they run and in what order (QEMU's):

* ``begin()`` / ``commit()`` — once per outermost transaction that renders, for
  every listener of the system, ascending ``priority`` (ties in registration
  order); between them the range callbacks of each address space the listener
  is registered on;
* ``region_del(section)`` — a range disappeared; all of a commit's dels come
  before its adds; descending priority;
* ``region_add(section)`` — a range appeared (its dirty mask is in
  ``section.dirty_log_mask``); ascending;
* ``region_nop(section)`` — a range is unchanged; only listeners that implement
  it get one per unchanged range (the others are spared them); ascending;
* ``region_resize(old, new)`` — a range changed only in size; only listeners that
  implement it get it, the others get ``region_del`` + ``region_add`` as in QEMU;
* ``log_start(section, old_mask, new_mask)`` (ascending) / ``log_stop(...)``
  (descending) — dirty-log bits were added to / removed from an unchanged range;
* ``log_sync(section)`` — pull dirty bits for a logged range
  (``AddressSpace.log_sync``); ascending;
* ``log_global_start()`` (ascending) / ``log_global_stop()`` (descending) —
  migration dirty logging started / stopped.

``priority`` (an int, default 0): lower runs first on the forward path.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from flatview.errors import ConfigError
from flatview.section import MemoryRegionSection

CALLBACKS = (
    "begin",
    "commit",
    "region_add",
    "region_del",
    "region_nop",
    "region_resize",
    "log_start",
    "log_stop",
    "log_sync",
    "log_global_start",
    "log_global_stop",
)


class MemoryListener(Protocol):
    """Any object: its callbacks (see the module) are all optional."""


class ListenerBase:
    """No-op callbacks to subclass; ``priority``: lower runs first on the forward path."""

    priority: int = 0

    def begin(self) -> None:
        """A commit starts (called for every listener of the system)."""

    def commit(self) -> None:
        """A commit ends (called for every listener of the system)."""

    def region_add(self, section: MemoryRegionSection) -> None:
        """A range appeared; its dirty mask is in ``section.dirty_log_mask``."""

    def region_del(self, section: MemoryRegionSection) -> None:
        """A range disappeared (all dels of a commit precede its adds)."""

    def region_nop(self, section: MemoryRegionSection) -> None:
        """A range is unchanged.  Override to receive one per unchanged range."""

    def region_resize(self, old: MemoryRegionSection, new: MemoryRegionSection) -> None:
        """A range changed only in size.  Override to receive it instead of del + add."""

    def log_start(self, section: MemoryRegionSection, old_mask: int, new_mask: int) -> None:
        """Dirty-log bits were added to an unchanged range."""

    def log_stop(self, section: MemoryRegionSection, old_mask: int, new_mask: int) -> None:
        """Dirty-log bits were removed from an unchanged range."""

    def log_sync(self, section: MemoryRegionSection) -> None:
        """Pull dirty bits for a logged range (``AddressSpace.log_sync``)."""

    def log_global_start(self) -> None:
        """Global (migration) dirty logging started."""

    def log_global_stop(self) -> None:
        """Global (migration) dirty logging stopped."""


_OPT_IN = ("region_nop", "region_resize")
"""Callbacks that change what a listener is sent when implemented (not just called)."""


def _implements(listener: object, name: str) -> bool:
    """``listener`` has ``name`` as a callable that is not :class:`ListenerBase`'s no-op."""
    found = getattr(type(listener), name, None)
    if found is not None and found is getattr(ListenerBase, name, None):
        return False
    return callable(getattr(listener, name, None))


def supports_resize(listener: object) -> bool:
    """True if ``listener`` implements ``region_resize``."""
    return _implements(listener, "region_resize")


def wants_nops(listener: object) -> bool:
    """True if ``listener`` implements ``region_nop`` (it then gets one per unchanged
    range, as in QEMU; the others are spared them)."""
    return _implements(listener, "region_nop")


def _noop(*args: object) -> None:
    return None


@attrs.frozen(eq=False)
class Bound:
    """A registered listener's callbacks, looked up once (missing ones are no-ops)."""

    target: object
    priority: int
    begin: Callable[[], None]
    commit: Callable[[], None]
    region_add: Callable[[MemoryRegionSection], None]
    region_del: Callable[[MemoryRegionSection], None]
    region_nop: Callable[[MemoryRegionSection], None]
    region_resize: Callable[[MemoryRegionSection, MemoryRegionSection], None]
    log_start: Callable[[MemoryRegionSection, int, int], None]
    log_stop: Callable[[MemoryRegionSection, int, int], None]
    log_sync: Callable[[MemoryRegionSection], None]
    log_global_start: Callable[[], None]
    log_global_stop: Callable[[], None]
    resize: bool
    """Gets ``region_resize`` instead of del + add for a size-only change."""
    nops: bool
    """Gets ``region_nop`` for every unchanged range."""


def bind(listener: object) -> Bound:
    """Look up ``listener``'s callbacks; :class:`ConfigError` for a misspelt one
    or a priority that is not an int."""
    priority = getattr(listener, "priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigError(f"listener {listener!r}: priority must be an int, got {priority!r}")
    for name in dir(listener):
        if name.startswith("_") or name in CALLBACKS or name == "priority":
            continue
        close = difflib.get_close_matches(name, CALLBACKS, n=1, cutoff=0.85)
        if close and callable(getattr(listener, name, None)):
            raise ConfigError(
                f"listener {type(listener).__name__}: {name!r} is not a MemoryListener "
                f"callback (did you mean {close[0]!r}?)"
            )
    calls: dict[str, Any] = {}
    for name in CALLBACKS:
        fn = getattr(listener, name, None)
        implemented = _implements(listener, name) if name in _OPT_IN else callable(fn)
        calls[name] = fn if implemented else _noop
    return Bound(
        target=listener,
        priority=priority,
        resize=supports_resize(listener),
        nops=wants_nops(listener),
        **calls,
    )
