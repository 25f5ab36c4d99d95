"""KVM itself: cffi ABI-mode bindings to /dev/kvm, VMs and vCPUs, the vCPU runner
that can pause every vCPU, the simulated KVM, and the memslot backend protocol.

It knows the memory model (host memory blocks, the page size) and nothing of
listeners.  Test harnesses live in :mod:`kvm_backend.testing`.
"""

from kvm_backend.backend import MemslotBackend
from kvm_backend.errors import CommitError, KvmError, KvmUnavailable, MemslotError
from kvm_backend.exits import IoExit, MmioExit, StopExit
from kvm_backend.kvm import Kvm, Vcpu, Vm, kvm_unavailable_reason
from kvm_backend.memslot import Memslot, slot_number
from kvm_backend.runner import ExitHandler, NullHandler, VcpuRunner, VcpuThread
from kvm_backend.sim import SimKvm, SimVm
from kvm_backend.timeline import Hole, Timeline
from kvm_backend.vcpu_control import NOT_REPAIRED, FaultRepair, VcpuControl

__all__ = [
    "NOT_REPAIRED",
    "CommitError",
    "ExitHandler",
    "FaultRepair",
    "Hole",
    "IoExit",
    "Kvm",
    "KvmError",
    "KvmUnavailable",
    "Memslot",
    "MemslotBackend",
    "MemslotError",
    "MmioExit",
    "NullHandler",
    "SimKvm",
    "SimVm",
    "StopExit",
    "Timeline",
    "Vcpu",
    "VcpuControl",
    "VcpuRunner",
    "VcpuThread",
    "Vm",
    "kvm_unavailable_reason",
    "slot_number",
]
