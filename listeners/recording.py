"""A listener that records the callback stream (tests, the CLI, debugging)."""

from __future__ import annotations

import attrs

from flatview.listener import ListenerBase
from flatview.section import MemoryRegionSection


@attrs.frozen
class Event:
    """One callback: ``name`` and the sections / masks it carried."""

    name: str
    section: MemoryRegionSection | None = None
    old: MemoryRegionSection | None = None
    old_mask: int = 0
    new_mask: int = 0

    def format(self) -> str:
        if self.name == "region_resize":
            assert self.old is not None and self.section is not None
            return f"region_resize {self.old.describe()} -> {self.section.size:#x}"
        if self.name in ("log_start", "log_stop"):
            assert self.section is not None
            return f"{self.name} {self.section.describe()} {self.old_mask:#x}->{self.new_mask:#x}"
        if self.section is not None:
            return f"{self.name} {self.section.describe()}"
        return self.name


class RecordingListener(ListenerBase):
    """Appends an :class:`Event` per callback (size-only changes arrive as del + add)."""

    def __init__(self, priority: int = 0, *, name: str = "") -> None:
        self.priority = priority
        self.name = name
        self.events: list[Event] = []

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def lines(self) -> list[str]:
        return [e.format() for e in self.events]

    def clear(self) -> None:
        self.events.clear()

    def begin(self) -> None:
        self.events.append(Event("begin"))

    def commit(self) -> None:
        self.events.append(Event("commit"))

    def region_add(self, section: MemoryRegionSection) -> None:
        self.events.append(Event("region_add", section))

    def region_del(self, section: MemoryRegionSection) -> None:
        self.events.append(Event("region_del", section))

    def region_nop(self, section: MemoryRegionSection) -> None:
        self.events.append(Event("region_nop", section))

    def log_start(self, section: MemoryRegionSection, old_mask: int, new_mask: int) -> None:
        self.events.append(Event("log_start", section, None, old_mask, new_mask))

    def log_stop(self, section: MemoryRegionSection, old_mask: int, new_mask: int) -> None:
        self.events.append(Event("log_stop", section, None, old_mask, new_mask))

    def log_sync(self, section: MemoryRegionSection) -> None:
        self.events.append(Event("log_sync", section))

    def log_global_start(self) -> None:
        self.events.append(Event("log_global_start"))

    def log_global_stop(self) -> None:
        self.events.append(Event("log_global_stop"))


class ResizeRecordingListener(RecordingListener):
    """A RecordingListener that receives ``region_resize``."""

    def region_resize(self, old: MemoryRegionSection, new: MemoryRegionSection) -> None:
        self.events.append(Event("region_resize", new, old))
