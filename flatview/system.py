"""MemorySystem: the owner of regions, address spaces, listeners and transactions.

QEMU keeps this state in globals; here it is an object, so tests and several VMs
in one process stay independent.  Nested ``begin()``/``commit()``: only the
outermost commit renders and notifies, and only when an update is pending.

The system holds the one registry of listeners: each registration is a
(listener, address space) pair, kept in ascending priority (ties in registration
order).  A listener registered on several address spaces gets one ``begin`` and
one ``commit`` per transaction and the range callbacks of each of its spaces.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from flatview.damage import Place, TooManyPlaces, places, rerender
from flatview.diff import ViewDiff
from flatview.errors import TransactionError
from flatview.flatrange import FlatRange, FlatView
from flatview.hostmem import RamBlock
from flatview.listener import Bound, MemoryListener, bind
from flatview.region import MemoryRegion, MmioOps, RegionKind, check_size
from flatview.render import render, resolve_chain, resolve_root


class ViewCell:
    """Where an address space reads its current view.  Spaces whose roots resolve
    to the same region share one cell, so a commit publishes their new view with one
    store, however many spaces there are (firmware enumerating PCI devices, each
    with a bus-master space aliasing system memory, would otherwise pay per space
    per commit)."""

    __slots__ = ("view",)

    def __init__(self, view: FlatView) -> None:
        self.view = view


class Space(Protocol):
    """What the system needs from an address space (an :class:`AddressSpace`)."""

    @property
    def root(self) -> MemoryRegion: ...

    @property
    def flatview(self) -> FlatView: ...

    _cell: ViewCell
    """The cell holding the view last published (shared within a group)."""

    def _notify(
        self,
        old: FlatView,
        new: FlatView,
        errors: list[Exception],
        diff: ViewDiff[FlatRange] | None,
    ) -> None: ...


class _Group:
    """Spaces whose roots resolve to ``root``: one view, one cell.

    ``keys`` are the ids of every region the resolution looked at (damage there
    means: resolve again); ``parentless`` whether every space's root is a tree's
    top (windows are recorded in those coordinates); ``fresh`` until the first
    commit after the grouping published through the group's own cell."""

    __slots__ = ("cell", "fresh", "keys", "listening", "parentless", "root", "spaces")

    def __init__(self, root: MemoryRegion | None, first: Space) -> None:
        self.root = root
        self.spaces: list[Space] = [first]
        self.keys: set[int] = set()
        self.parentless = True
        self.cell = ViewCell(first._cell.view)
        self.fresh = True
        self.listening: tuple[int, list[Space]] | None = None


class MemorySystem:
    """Regions are created through its factories; address spaces register with it."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending = False
        self._committing = False
        self._global_log = False
        self._spaces: list[Space] = []
        self._registry: list[tuple[Bound, Space]] = []
        self._by_space: dict[int, tuple[Bound, ...]] = {}
        """The registry by space (id), derived after each registration change."""
        self._registry_generation = 0
        self._once: list[Bound] = []
        """Each listener's callbacks once, in ascending priority (see ``_bound_once``)."""
        self.commits = 0
        """How many outermost commits rendered and notified (for tests and benchmarks)."""
        self._damaged: list[Place] = []
        self._alias_generation = 0
        """Bumped by every change to an alias (damage caches of alias lists key on it)."""
        self._damage_all = False
        self._rendered_root: dict[int, MemoryRegion | None] = {}
        """Per address space (by id): the resolved root its view was rendered from."""
        self._resolved: list[_Group] | None = None
        """Spaces grouped by resolved root (None: resolve again at the next commit)."""
        self._watched: set[int] = set()
        self.incremental = True
        """Re-render only the damaged windows (False: every commit renders in full)."""
        self.structure_generation = 0
        """Bumped by every change of where regions sit (add/del subregion, address, size,
        alias offset): caches of region boundaries key on it."""

    # -- factories ---------------------------------------------------------------
    def container(self, name: str, size: int) -> MemoryRegion:
        return MemoryRegion(self, name, RegionKind.CONTAINER, size)

    def ram(self, name: str, size: int, *, max_size: int | None = None) -> MemoryRegion:
        """RAM backed by anonymous host memory; ``max_size`` makes it resizable."""
        check_size(name, size)
        return MemoryRegion(
            self, name, RegionKind.RAM, size, ram_block=RamBlock(name, size, max_size)
        )

    def rom(self, name: str, size: int) -> MemoryRegion:
        """Read-only RAM (the host may write its block; the guest may not)."""
        check_size(name, size)
        return MemoryRegion(self, name, RegionKind.ROM, size, ram_block=RamBlock(name, size))

    def ram_device(self, name: str, size: int) -> MemoryRegion:
        check_size(name, size)
        return MemoryRegion(self, name, RegionKind.RAM_DEVICE, size, ram_block=RamBlock(name, size))

    def rom_device(self, name: str, size: int, ops: MmioOps | None = None) -> MemoryRegion:
        """Reads hit RAM in romd mode (the default); writes, and all accesses outside
        romd mode, go to ``ops``."""
        check_size(name, size)
        return MemoryRegion(
            self,
            name,
            RegionKind.ROM_DEVICE,
            size,
            ram_block=RamBlock(name, size),
            ops=ops or MmioOps(),
        )

    def mmio(self, name: str, size: int, ops: MmioOps | None = None) -> MemoryRegion:
        return MemoryRegion(self, name, RegionKind.MMIO, size, ops=ops or MmioOps())

    def alias(self, name: str, target: MemoryRegion, offset: int, size: int) -> MemoryRegion:
        self._alias_generation += 1
        return MemoryRegion(
            self, name, RegionKind.ALIAS, size, alias_target=target, alias_offset=offset
        )

    # -- transactions ------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self._depth

    @property
    def global_dirty_log(self) -> bool:
        return self._global_log

    def begin(self) -> None:
        self._depth += 1

    def commit(self) -> None:
        if self._depth == 0:
            raise TransactionError("commit() without a matching begin()")
        self._depth -= 1
        if self._depth or not self._pending:
            return
        self._pending = False
        self._committing = True
        errors: list[Exception] = []
        try:
            views = self._render_all()
            listeners = self._bound_once()
            # A listener callback that raises does not stop the commit: every
            # listener sees a complete begin ... commit, every view is published,
            # and then the first error is raised (a KVM listener that rolled back
            # raises from its commit; a buggy device listener from region_add).
            for listener in listeners:
                try:
                    listener.begin()
                except Exception as e:
                    errors.append(e)
            for group, view, diff in views:
                self._publish(group, view, diff, errors)
            for listener in listeners:
                try:
                    listener.commit()
                except Exception as e:
                    errors.append(e)
            self.commits += 1
        finally:
            self._committing = False
        if errors:
            raise errors[0]

    def transaction(self) -> _Transaction:
        """``with system.transaction():`` — commits even if the body raises."""
        return _Transaction(self)

    def _mark_pending(self) -> None:
        self._pending = True

    def _damage(self, mr: MemoryRegion) -> None:
        """Record the windows where ``mr`` shows (called before and after a change)."""
        parent = mr.parent
        if mr.alias_target is not None or mr.aliases:
            self._alias_generation += 1  # an alias, or a region aliases show, changed
        if id(mr) in self._watched or (parent is not None and id(parent) in self._watched):
            self._resolved = None  # a root's resolution may change
        if self._damage_all:
            return
        try:
            self._damaged.extend(places(mr))
        except TooManyPlaces:
            self._damage_all = True
        if len(self._damaged) > 4096:
            self._damage_all = True

    def _structure_changed(self) -> None:
        self.structure_generation += 1

    def _check_mutable(self, where: str) -> None:
        if self._committing:
            raise TransactionError(f"{where}: the topology cannot change while a commit runs")

    def _groups(self) -> list[_Group]:
        """Spaces grouped by resolved root (cached until a watched region changes)."""
        if self._resolved is None:
            groups: dict[int, _Group] = {}
            watched: set[int] = set()
            for space in self._spaces:
                chain, root = resolve_chain(space.root)
                group = groups.get(id(root))
                if group is None:
                    group = groups[id(root)] = _Group(root, space)
                else:
                    group.spaces.append(space)
                group.keys.update(id(mr) for mr in chain)
                group.parentless = group.parentless and space.root.parent is None
                watched.update(id(mr) for mr in chain)
            self._resolved = list(groups.values())
            self._watched = watched
        return self._resolved

    def _render_all(self) -> list[tuple[_Group, FlatView, ViewDiff[FlatRange] | None]]:
        """One view per group: the damaged windows re-rendered into the previous
        view where that is possible, with the diff of the changed spans; else a
        full render (diff None)."""
        windows: dict[int, list[tuple[int, int]]] = {}
        for top, _base, lo, hi in self._damaged:
            windows.setdefault(id(top), []).append((lo, hi))
        damage_all = self._damage_all or not self.incremental
        self._damaged, self._damage_all = [], False
        out: list[tuple[_Group, FlatView, ViewDiff[FlatRange] | None]] = []
        for group in self._groups():
            root = group.root
            result: tuple[FlatView, ViewDiff[FlatRange] | None] | None = None
            # windows are in the coordinates of parentless roots, and the previous
            # view must come from the same resolved root (checked after a new
            # grouping; unchanged since, as every render below records it)
            if (
                not damage_all
                and root is not None
                and group.parentless
                and (
                    not group.fresh
                    or all(self._rendered_root.get(id(sp)) is root for sp in group.spaces)
                )
            ):
                keys = group.keys
                wins = [w for k, ws in windows.items() if k in keys for w in ws]
                prev = group.cell.view
                result = (prev, ViewDiff((), ())) if not wins else rerender(root, prev, wins)
            if result is None:
                result = (render(root), None)
            out.append((group, *result))
        return out

    def _listening(self, group: _Group) -> list[Space]:
        """The group's spaces that have listeners (cached until the registry changes)."""
        if group.listening is None or group.listening[0] != self._registry_generation:
            spaces = [sp for sp in group.spaces if id(sp) in self._by_space]
            group.listening = (self._registry_generation, spaces)
        return group.listening[1]

    def _publish(
        self,
        group: _Group,
        view: FlatView,
        diff: ViewDiff[FlatRange] | None,
        errors: list[Exception],
    ) -> None:
        """Notify the group's listening spaces (old view to ``view``), then publish
        ``view`` with one store into the group's cell.  After a new grouping each
        space is notified from its own previous view, then joins the group's cell."""
        if group.fresh:
            for space in group.spaces:
                space._notify(space._cell.view, view, errors, diff)
            for space in group.spaces:
                space._cell = group.cell
                self._rendered_root[id(space)] = group.root
            group.fresh = False
        else:
            old = group.cell.view
            for space in self._listening(group):
                space._notify(old, view, errors, diff)
        group.cell.view = view

    # -- global dirty logging ------------------------------------------------------
    def global_log_start(self) -> None:
        """Start migration dirty logging on every migratable RAM block."""
        self._check_mutable("global_log_start")
        if self._global_log:
            return
        with self.transaction():
            self._global_log = True
            self._damage_all = True  # every migratable range changes its mask
            self._mark_pending()
        for b in self._bound_once():
            b.log_global_start()

    def global_log_stop(self) -> None:
        self._check_mutable("global_log_stop")
        if not self._global_log:
            return
        with self.transaction():
            self._global_log = False
            self._damage_all = True
            self._mark_pending()
        for b in reversed(self._bound_once()):
            b.log_global_stop()

    # -- registration (called by AddressSpace) -------------------------------------
    @property
    def address_spaces(self) -> tuple[Space, ...]:
        return tuple(self._spaces)

    @property
    def listeners(self) -> tuple[MemoryListener, ...]:
        """Every registered listener once, in ascending priority."""
        return tuple(b.target for b in self._bound_once())

    def listeners_of(self, space: Space) -> tuple[MemoryListener, ...]:
        """The listeners registered on ``space``, in ascending priority."""
        return tuple(b.target for b in self.bound_of(space))

    def bound_of(self, space: Space) -> tuple[Bound, ...]:
        """The callbacks of the listeners registered on ``space``, ascending priority."""
        return self._by_space.get(id(space), ())

    def _bound_once(self) -> list[Bound]:
        """Each registered listener's callbacks once (a listener registered on several
        spaces gets one begin and one commit), in ascending priority; derived with
        the registry index, not per commit."""
        return self._once

    def _add_space(self, space: Space) -> ViewCell:
        """Register ``space``; its cell holds the view of an existing space with the
        same resolved root (one view object for both), else a new render."""
        self._spaces.append(space)
        self._resolved = None
        root = resolve_root(space.root)
        self._rendered_root[id(space)] = root
        for other in self._spaces[:-1]:
            if resolve_root(other.root) is root and self._rendered_root.get(id(other)) is root:
                return ViewCell(other._cell.view)
        return ViewCell(render(root))

    def _remove_space(self, space: Space) -> None:
        self._spaces.remove(space)
        self._resolved = None
        self._rendered_root.pop(id(space), None)

    def _register(self, listener: MemoryListener, space: Space) -> Bound:
        """Register ``listener`` on ``space`` (its callbacks looked up now: a
        misspelt one raises :class:`ConfigError`)."""
        bound = bind(listener)
        i = len(self._registry)
        while i > 0 and self._registry[i - 1][0].priority > bound.priority:
            i -= 1
        self._registry.insert(i, (bound, space))
        self._index_registry()
        return bound

    def _unregister(self, listener: MemoryListener, space: Space) -> None:
        self._registry = [
            (b, sp) for b, sp in self._registry if not (b.target is listener and sp is space)
        ]
        self._index_registry()

    def _index_registry(self) -> None:
        by_space: dict[int, list[Bound]] = {}
        for bound, space in self._registry:
            by_space.setdefault(id(space), []).append(bound)
        self._by_space = {k: tuple(v) for k, v in by_space.items()}
        once: dict[int, Bound] = {}
        for b, _ in self._registry:
            once.setdefault(id(b.target), b)
        self._once = list(once.values())
        self._registry_generation += 1


class _Transaction:
    """A class-based context manager: cheaper than a generator on hot setters."""

    __slots__ = ("_system",)

    def __init__(self, system: MemorySystem) -> None:
        self._system = system

    def __enter__(self) -> MemorySystem:
        self._system.begin()
        return self._system

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._system.commit()
