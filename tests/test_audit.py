"""``flatview audit`` on trace lines of both QEMU formats: the slot table replayed,
commits grouped, holes timed, unchanged bytes counted, vCPU exits matched."""

from __future__ import annotations

from pathlib import Path

from flatview.cli.audit import audit, parse_trace

DATA = Path(__file__).parent / "data"


def test_a_qemu10_trace_without_timestamps() -> None:
    boot = (
        "kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x0 gpa=0x0 size=0x10000000 "
        "ua=0x7f12ebe00000 guest_memfd=-1 guest_memfd_offset=0x0 ret=0\n"
    )
    captured = (DATA / "qemu10-pc-trace.log").read_text()  # carve pc.rom out of low RAM
    doc = audit(parse_trace(boot + captured, "qemu10"))
    _boot, carve = doc["commits"]  # the delete after a create starts a commit
    assert (carve["ioctls"], carve["deletes"], carve["creates"]) == (3, 1, 2)
    assert carve["unchanged_bytes_unmapped"] == 0xC0000  # low RAM, re-created identically
    assert carve["holes"] == []  # above 0xe0000 it does not come back: a removal
    assert carve["vcpus_in_kvm_run"] is None  # no vCPU events in the log


SLOT = (
    "kvm_set_user_memory Slot#{slot} flags=0x{flags:x} gpa=0x{gpa:x} size=0x{size:x} "
    "ua=0x{ua:x} ret=0"
)


def line(ts: float, slot: int, flags: int, gpa: int, size: int, ua: int) -> str:
    return f"4242@{ts:.6f}:" + SLOT.format(slot=slot, flags=flags, gpa=gpa, size=size, ua=ua)


def test_a_qemu72_trace_with_timestamps_and_vcpu_exits() -> None:
    ram = 0x7F0000000000
    log = [
        line(1.000000, 0, 0, 0, 0x10000000, ram),  # boot: low RAM
        line(1.000100, 1 | (1 << 16), 0, 0, 0x1000, ram),  # as 1 (SMM): another table
        # commit 2: re-create low RAM around a read-only shadow, 300 us later
        line(2.000000, 0, 0, 0, 0, ram),
        line(2.000100, 0, 0, 0, 0xC0000, ram),
        line(2.000200, 2, 2, 0xC0000, 0x10000, ram + 0xC0000),
        line(2.000300, 3, 0, 0xD0000, 0x10000000 - 0xD0000, ram + 0xD0000),
        "4242@2.000150:kvm_run_exit cpu_index 1, reason 2",
        # commit 3, 50 ms later: a new slot only
        line(2.050000, 4, 0, 0xFD000000, 0x1000000, ram + 0x20000000),
    ]
    doc = audit(parse_trace("\n".join(log) + "\n", "t"))
    assert [c["ioctls"] for c in doc["commits"]] == [2, 4, 1]
    _boot, remap, add = doc["commits"]
    # low RAM came back identically, except the 64 KiB now read-only
    assert remap["unchanged_bytes_unmapped"] == 0x10000000 - 0x10000
    assert remap["recreates_ram"] and not add["recreates_ram"]
    assert remap["holes"] == [{"as_id": 0, "gpa": 0, "size": 0x10000000, "us": 300.0}]
    assert remap["vcpus_in_kvm_run"] is True and add["vcpus_in_kvm_run"] is False
    assert doc["totals"] == {
        "commits": 3,
        "ioctls": 7,
        "unchanged_bytes_unmapped": 0x10000000 - 0x10000,
        "commits_recreating_ram": 1,
    }
