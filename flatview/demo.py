"""The demo: the memory model on a pc-like board, then the memslot race.

1. Builds the pc topology, registers a recording listener and replays the PAM
   writes SeaBIOS makes at boot, printing each commit's callbacks.
2. On real KVM (when /dev/kvm opens): 4 vCPUs at CPL3 sweep a RAM range while the
   host deletes and re-creates its memslot 500 times — first without pausing
   (guest-visible faults), then inside pause_all()/resume_all() (none).
   Without /dev/kvm, the same re-layout runs on the simulated KVM and its
   timeline shows the hole every delete + create opens.

Run: ``flatview demo`` (or ``python -m flatview demo``).
"""

from __future__ import annotations

import sys

from flatview.pc import PcBoard
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from kvm_backend.sim import SimVm
from kvm_backend.sweep import PAGE, SweepHarness
from listeners import ResizeRecordingListener


def memory_model_tour() -> None:
    board = PcBoard(ram_size=512 << 20, vapic_addr=0xCA000)
    rec = ResizeRecordingListener()
    board.memory.add_listener(rec)
    print(f"pc board: {len(board.memory.flatview)} flat ranges in AS 'memory'")
    for label, addr, value in board.seabios_pam_sequence():
        rec.clear()
        board.write_config(addr, value.to_bytes(4, "little"))
        body = [line for line in rec.lines() if line not in ("begin", "commit")]
        print(f"\n== {label}: {len(body)} callbacks")
        for line in body:
            print("   " + line)


def relayout(vm: object, slot: int, base: int, size: int, hva: int) -> None:
    vm.set_user_memory_region(slot, 0, 0, 0, 0)  # type: ignore[attr-defined]
    vm.set_user_memory_region(slot, 0, base, size, hva)  # type: ignore[attr-defined]


def race_on_kvm(updates: int = 500, vcpus: int = 4) -> int:
    results = {}
    with Kvm() as kvm:
        for mode in ("naive", "paused"):
            with SweepHarness(kvm, vcpus) as h:
                h.map_data()
                h.start()
                h.wait_sweeps(10)
                for _ in range(updates):
                    if mode == "paused":
                        h.runner.pause_all()
                    relayout(h.vm, 1, h.base, h.pages * PAGE, h.data.host_addr)
                    if mode == "paused":
                        h.runner.resume_all()
                results[mode] = h.finish()
                lat = sorted(h.runner.pause_latencies_ns)
    print(f"\n== real KVM: {vcpus} vCPUs sweeping 64 pages, {updates} delete+create re-layouts")
    for mode, r in results.items():
        print(
            f"   {mode:7s} faults={r.faults} (mmio={r.mmio} mismatch={r.mismatch} "
            f"stops={len(r.stops)}) lost_writes={r.lost_writes} sweeps={r.sweeps}"
        )
    if lat:
        print(f"   pause_all median {lat[len(lat) // 2] / 1000:.0f} us")
    ok = results["naive"].faults > 0 and results["paused"].faults == 0
    print("   => the naive update is guest-visible; the paused one is not" if ok else "   !!")
    return 0 if ok else 1


def race_on_sim(reason: str) -> int:
    print(f"\n== simulated KVM ({reason})")
    vm = SimVm()
    base, size, hva = 0x10000000, 64 * PAGE, 0x7F0000000000
    vm.set_user_memory_region(1, 0, base, size, hva)
    t0 = vm.now
    relayout(vm, 1, base, size, hva)
    holes = vm.holes(t0)
    for h in holes:
        print(
            f"   delete+create unmapped [{h.gpa:#x}, {h.gpa + h.size:#x}) for {h.steps} "
            f"ioctl step(s); same mapping before and after: {h.same_mapping}"
        )
    return 0 if holes else 1


def main() -> int:
    memory_model_tour()
    reason = kvm_unavailable_reason()
    return race_on_kvm() if reason is None else race_on_sim(reason)


if __name__ == "__main__":
    sys.exit(main())
