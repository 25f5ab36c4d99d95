"""Embedding flatview's KVM listener in an existing VMM loop (under 60 lines).

Your VMM keeps its vCPU threads; it only has to offer pause_all / resume_all
(here: flatview's own VcpuRunner) and route topology changes through a
MemorySystem. Run: python -m examples.embed (needs /dev/kvm).
"""

from __future__ import annotations

from flatview import AddressSpace, MemorySystem
from kvm_backend import Kvm, NullHandler, VcpuRunner
from kvm_backend.testing import guest
from kvm_backend.testing import guest_code as gc
from listeners import KvmMemoryListener


def main() -> None:
    mem = MemorySystem()
    root = mem.container("system", 2**64)
    ram = mem.ram("ram", 16 << 20)  # guest RAM at 0; the guest's tables live in it
    root.add_subregion(0, ram)
    assert ram.ram_block is not None
    guest.write_system_tables(ram.ram_block.buffer(), gc.SPIN)
    shadow = mem.alias("shadow", ram, 0x100000, 0x10000)  # a read-only window, off for now
    shadow.set_readonly(True)
    shadow.set_enabled(False)
    root.add_subregion(0x100000, shadow, priority=1)
    memory = AddressSpace(root, "memory")

    with Kvm() as kvm, kvm.create_vm(slot_zap_all=False) as vm:
        vcpus = [vm.create_vcpu(i) for i in range(2)]
        for v in vcpus:
            guest.enter_user_mode(kvm, v, guest.CODE)
        runner = VcpuRunner(vcpus, NullHandler())  # 1. your vCPU control hook
        kl = KvmMemoryListener(vm, memory, vcpus=runner)  # 2. register: slots created
        runner.start()
        try:
            with mem.transaction():  # 3. one transaction, one commit: only the
                shadow.set_enabled(True)  # 64 KiB that change pass through a hole
            print(kl.last_report.line())
            ram.log_start("migration")  # a dirty-log toggle: flags-only, no pause
            print(kl.last_report.line())
        finally:
            runner.stop()
            for v in vcpus:
                v.close()
    ram.close()


if __name__ == "__main__":
    main()
