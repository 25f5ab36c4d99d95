"""The MemoryListener protocol: QEMU's callbacks plus ``region_resize``.

Subclass :class:`MemoryListener` and override what you need; every callback is
optional.  ``region_resize`` is opt-in: a listener that does not override it gets
``region_del`` + ``region_add`` for a size-only change, as in QEMU.

Order (QEMU's): ascending ``priority`` (ties in registration order) for begin,
commit, region_add, region_nop, region_resize, log_start, log_sync and
log_global_start; descending for region_del, log_stop and log_global_stop.
"""

from __future__ import annotations

from flatview.section import MemoryRegionSection


class MemoryListener:
    """Base class with no-op callbacks.  ``priority``: lower runs first on the forward path."""

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
        """A range is unchanged (possibly apart from its dirty mask)."""

    def region_resize(self, old: MemoryRegionSection, new: MemoryRegionSection) -> None:
        """A range changed only in size.  Override to receive it instead of del + add."""
        raise NotImplementedError

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


def supports_resize(listener: MemoryListener) -> bool:
    """True if ``listener`` overrides ``region_resize``."""
    return type(listener).region_resize is not MemoryListener.region_resize


def wants_nops(listener: MemoryListener) -> bool:
    """True if ``listener`` overrides ``region_nop`` (it then gets one per unchanged
    range, as in QEMU; the others are spared them)."""
    return type(listener).region_nop is not MemoryListener.region_nop
