"""``flatview demo``: a pc-like VMM boots through live memory-topology changes.

With /dev/kvm: the pcboot VMM (:mod:`flatview.cli.pcboot`) — where Debian's SeaBIOS
is installed, in firmware mode: SeaBIOS boots first and our option ROM hands over —
4 vCPUs, the boot vCPU shadowing the
BIOS through SeaBIOS's PAM writes and growing / shrinking hotplug RAM while three
workers execute and read inside the ranges being reshaped; each commit's plan is
printed as QEMU trace lines, then the guest's own report.

Without /dev/kvm: the same topology changes (no vCPUs) on the simulated KVM,
whose timeline shows which guest bytes each commit unmapped.

``flatview demo --race``: the bare memslot race instead (delete + create under
running vCPUs, with and without pause_all).  ``flatview demo --seabios``: real
SeaBIOS (Debian's package) boots on the pc board, its debug console and each PAM
commit's plan interleaved (:mod:`flatview.cli.pcboot.firmware`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial

from flatview.hostmem import PAGE_SIZE as PAGE
from flatview.pc import PcBoard
from kvm_backend.kvm import Kvm, kvm_unavailable_reason
from kvm_backend.sim import SimVm
from kvm_backend.testing.sweep import SweepHarness
from listeners.kvm_listener import KvmMemoryListener
from listeners.report import trace_line

MiB = 1 << 20


def simulated_pc_boot(reason: str) -> int:
    print(f"/dev/kvm is not usable here ({reason}): running the pc board's topology")
    print("changes on the simulated KVM (no vCPUs).\n")
    board = PcBoard(ram_size=512 * MiB, vga=True)
    hotplug = board.system.ram("hotplug-ram", 2 * MiB, max_size=8 * MiB)
    board.root.add_subregion(0x40000000, hotplug)
    vm = SimVm()
    kl = KvmMemoryListener(vm, board.memory)
    print(f"initial layout: {len(kl.slots)} slots")
    steps: list[tuple[str, Callable[[], None]]] = [
        (label, partial(board.write_config, addr, value.to_bytes(4, "little")))
        for label, addr, value in board.seabios_pam_sequence()
    ]
    steps += [
        ("hotplug grow to 8 MiB", partial(hotplug.set_size, 8 * MiB)),
        ("hotplug shrink to 2 MiB", partial(hotplug.set_size, 2 * MiB)),
    ]
    unchanged = 0
    for label, step in steps:
        t0 = vm.timeline.now
        step()
        rep = kl.reports[-1]
        holes = vm.timeline.holes(t0)
        same = sum(h.size for h in holes if h.same_mapping)
        unchanged += same
        print(f"== {label}\n   {rep.line()}")
        for op in rep.plan.ops:
            print("   " + trace_line(op))
        print(f"   simulated timeline: {same:#x} unchanged bytes unmapped")
    print(f"\n{len(steps)} commits, {unchanged:#x} unchanged bytes ever unmapped")
    return 0 if unchanged == 0 else 1


def race_on_kvm(updates: int = 500, vcpus: int = 4) -> int:
    """Delete + create of a slot under running vCPUs, naive then paused."""
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
                    h.vm.set_user_memory_region(1, 0, 0, 0, 0)
                    h.vm.set_user_memory_region(1, 0, h.base, h.pages * PAGE, h.data.host_addr)
                    if mode == "paused":
                        h.runner.resume_all()
                results[mode] = h.finish()
    print(f"{vcpus} vCPUs sweeping 64 pages, {updates} delete+create re-layouts")
    for mode, r in results.items():
        print(
            f"   {mode:7s} faults={r.faults} (mmio={r.mmio} mismatch={r.mismatch}) "
            f"lost_writes={r.lost_writes}"
        )
    ok = results["naive"].faults > 0 and results["paused"].faults == 0
    return 0 if ok else 1


def seabios_on_kvm() -> int:
    """Real SeaBIOS boots on the pc board; its console and our commits interleaved."""
    from flatview.cli.pcboot.firmware import FirmwareVmm, seabios_unavailable_reason

    reason = seabios_unavailable_reason()
    if reason is not None:
        print(f"firmware mode needs SeaBIOS: {reason}")
        return 2
    vmm = FirmwareVmm(out=sys.stdout, cpus=4)
    try:
        result = vmm.run()
    finally:
        vmm.close()
    ioctls = sum(r.plan.ioctls for r in result.commits)
    qemu = sum(r.summary().qemu_ioctls for r in result.commits)
    print(
        f"\nSeaBIOS reached its boot prompt in {result.seconds:.1f} s; {len(result.commits)} PAM "
        f"commits, {ioctls} ioctls (QEMU-style plan: {qemu})"
    )
    for stop in result.stops:
        print("  stopped: " + stop)
    return 0 if result.finished else 1


def main(race: bool = False, seabios: bool = False) -> int:
    reason = kvm_unavailable_reason()
    if reason is not None:
        return simulated_pc_boot(reason)
    if race:
        return race_on_kvm()
    if seabios:
        return seabios_on_kvm()
    from flatview.cli.pcboot.__main__ import main as pcboot_main
    from flatview.cli.pcboot.firmware import seabios_unavailable_reason

    missing = seabios_unavailable_reason()
    if missing is None:
        print("firmware mode: real SeaBIOS boots on 4 vCPUs, then our option ROM hands over")
        print("to the 64-bit workload, which reshapes memory while the workers run.\n")
        return pcboot_main(["--firmware"])
    print(f"pcboot without firmware ({missing}): the workload starts at once.\n")
    return pcboot_main([])


if __name__ == "__main__":
    sys.exit(main())
