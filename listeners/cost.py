"""What a commit costs: the constants the KVM listener's layout policy is derived from.

A commit's cost, as the guest feels it, has four parts (all in microseconds):

* ``ioctl_us`` per KVM_SET_USER_MEMORY_REGION on a slot nobody is touching
  (create, delete, move and flags-only ops cost about the same);
* ``zap_us_per_page`` for each page of a deleted slot the guest had faulted in
  (the kernel unmaps it inside the delete);
* ``refault_us_per_page`` for each page of *unchanged* bytes a delete unmapped and
  the guest then touches again (the stall after the commit; a 256 MiB slot read
  by a running vCPU takes ~40-60 ms to come back, for a 1.1 ms steady sweep);
* ``pause_us(vcpus)`` when the commit pauses the vCPUs (kick, park, resume).

The defaults were measured on the development host (nested KVM, 2 cores) by
``python -m benchmarks kick`` (ioctl and pause) and ``python -m benchmarks
guest_cost`` (zap and re-fault; it prints the constants it measured), see
docs/benchmarks.md.  They only decide *where* the layout trades ioctls against
unmapped pages, so they need to be right within a factor of two, not exact.

The policy derived from them (:meth:`CostModel.merge_limit`):

* ``auto`` (and ``quiesce`` / ``naive``): small neighbouring pieces of one RAM
  block share a slot as long as re-faulting all of that slot's pages costs no
  more than the one ioctl a separate slot would cost each time the pieces change
  together (on this host ~53 pages, 212 KiB).  Larger pieces keep their own slot,
  so a delete never unmaps unchanged pages of a large block.  Inside a commit that
  pauses anyway, a small kept slot next to a new piece is merged into it (one more
  delete, one slot fewer: the slot table stays bounded over long histories);
* ``optimistic`` never pauses, so it may never unmap a byte that stays mapped: no
  merging, every piece cut where the region tree may cut it later.
"""

from __future__ import annotations

import attrs

from flatview.hostmem import PAGE_SIZE as PAGE


@attrs.frozen(slots=True)
class CostModel:
    ioctl_us: float = 40.0
    zap_us_per_page: float = 0.06
    refault_us_per_page: float = 0.4
    pause_base_us: float = 100.0
    pause_us_per_vcpu: float = 40.0

    def pause_us(self, vcpus: int) -> float:
        """Pausing and resuming ``vcpus`` running vCPUs (0 if there are none)."""
        return self.pause_base_us + self.pause_us_per_vcpu * vcpus if vcpus else 0.0

    def merge_limit(self) -> int:
        """The largest slot (bytes, whole pages) whose pages cost no more to re-fault
        than one ioctl: pieces of one block are merged up to this size."""
        return max(int(self.ioctl_us / self.refault_us_per_page), 1) * PAGE

    def estimate_us(
        self, ioctls: int, unchanged_pages: int, zapped_pages: int, pause_vcpus: int
    ) -> float:
        """The modelled cost of one commit."""
        return (
            ioctls * self.ioctl_us
            + zapped_pages * self.zap_us_per_page
            + unchanged_pages * self.refault_us_per_page
            + self.pause_us(pause_vcpus)
        )


DEFAULT_COSTS = CostModel()
