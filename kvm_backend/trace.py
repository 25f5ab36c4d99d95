"""Plans and commits as text: QEMU's ``kvm_set_user_memory`` trace lines."""

from __future__ import annotations

from kvm_backend.planner import Plan, SlotOp


def trace_line(op: SlotOp, as_id: int = 0, ret: int = 0) -> str:
    """One ioctl as QEMU 10 traces it (a delete shows size=0x0 flags=0x0)."""
    flags, gpa, size, hva = op.ioctl_args()
    return (
        f"kvm_set_user_memory AddrSpace#{as_id} Slot#{op.slot} flags={flags:#x} gpa={gpa:#x} "
        f"size={size:#x} ua={hva:#x} ret={ret}"
    )


def summary_line(plan: Plan, paused: bool | None = None) -> str:
    """ioctls, remapped bytes, pause, and what QEMU's listener would have done."""
    pause = plan.needs_pause if paused is None else paused
    kinds = ",".join(c.kind for c in plan.classes) or "none"
    return (
        f"{kinds}: {plan.ioctls} ioctls ({plan.count('delete')} del, {plan.count('create')} "
        f"create, {plan.count('flags')} flags, {plan.count('move')} move), "
        f"remapped {plan.remapped_bytes:#x}, unchanged unmapped "
        f"{plan.unchanged_bytes_unmapped:#x}, pause {'yes' if pause else 'no'}; "
        f"QEMU-style: {plan.qemu_ioctls} ioctls, {plan.qemu_unmapped_bytes:#x} bytes unmapped"
    )
