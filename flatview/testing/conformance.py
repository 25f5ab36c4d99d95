"""Checking that a listener's own state follows the rendered view after every commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flatview.address_space import AddressSpace
from flatview.flatrange import FlatView
from flatview.listener import ListenerBase

RangeState = tuple[int, int, str, int, bool]
"""(addr, size, region name, offset in region, readonly): one range as a listener holds it."""


def view_state(view: FlatView) -> list[RangeState]:
    """The view in the form :class:`ConformanceCheck` compares."""
    return [(r.addr, r.size, r.region.name, r.offset_in_region, r.readonly) for r in view]


class ConformanceError(AssertionError):
    """A listener's state differs from the rendered view after a commit."""


class ConformanceCheck(ListenerBase):
    """Registered after every other listener of ``space`` (highest priority): at
    each commit it compares ``state()`` — the listener under test's own idea of the
    view — with the view just published, and raises :class:`ConformanceError`
    (from the commit, so the failing change is the one in the traceback).

    ``keep`` filters the view first (e.g. only RAM ranges, for a listener that only
    tracks those).  Call :meth:`close` to unregister."""

    priority = 2**31

    def __init__(
        self,
        space: AddressSpace,
        state: Callable[[], Iterable[RangeState]],
        keep: Callable[[RangeState], bool] = lambda r: True,
    ) -> None:
        self.space = space
        self.state = state
        self.keep = keep
        self.commits = 0
        self._closing = False
        space.add_listener(self)

    def commit(self) -> None:
        if self._closing:
            return
        self.commits += 1
        want = [r for r in view_state(self.space.flatview) if self.keep(r)]
        got = sorted(self.state())
        if got != want:
            missing = [r for r in want if r not in got]
            extra = [r for r in got if r not in want]
            raise ConformanceError(
                f"after commit {self.commits} on {self.space.name!r}: "
                f"missing {[_fmt(r) for r in missing]}, extra {[_fmt(r) for r in extra]}"
            )

    def close(self) -> None:
        """Unregister (without checking again)."""
        self._closing = True
        if self in self.space.listeners:
            self.space.remove_listener(self)


def _fmt(r: RangeState) -> str:
    addr, size, name, off, ro = r
    return f"{addr:#x}+{size:#x} {name} @{off:#x}{' ro' if ro else ''}"
