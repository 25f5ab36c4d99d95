"""SimVm and a real /dev/kvm VM accept and reject the same memslot calls, with the
same errno, at every step of random sequences (valid and invalid)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatview.hostmem import PAGE_SIZE as PAGE
from flatview.hostmem import RamBlock
from kvm_backend.abi import KVM_CAP_GUEST_MEMFD
from kvm_backend.errors import MemslotError
from kvm_backend.kvm import Kvm
from kvm_backend.sim import SimKvm, SimVm

SEQUENCES = 300
"""Random sequences per run (each on a fresh real VM and a fresh SimVm)."""

Op = tuple[int, int, int, int, int]


@st.composite
def memslot_ops(draw: st.DrawFn, hva_base: int, nr_memslots: int) -> list[Op]:
    slots = st.sampled_from(
        [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, nr_memslots - 1, nr_memslots, (1 << 16) | 1, 0xFFFF]
    )
    flags = st.sampled_from([0, 0, 0, 0, 1, 1, 2, 3, 0, 1, 4, 8, 5])
    page_gpa = st.integers(0, 15).map(lambda p: 0x100000 + p * 16 * PAGE)
    gpas = st.one_of(
        page_gpa,
        page_gpa,
        page_gpa,
        st.sampled_from([0x100800, (1 << 52) - PAGE, 1 << 52, 2**64 - PAGE]),
    )
    sizes = st.one_of(
        st.integers(1, 16).map(lambda n: n * PAGE),
        st.integers(1, 16).map(lambda n: n * PAGE),
        st.integers(1, 16).map(lambda n: n * PAGE),
        st.sampled_from([0, 100, 2 * PAGE + 1]),
    )
    hvas = st.one_of(
        st.integers(0, 32).map(lambda p: hva_base + p * PAGE),
        st.integers(0, 32).map(lambda p: hva_base + p * PAGE),
        st.sampled_from([hva_base + 8, (1 << 47) - PAGE, (1 << 47) - 2 * PAGE, 0]),
    )
    ops: list[Op] = []
    for _ in range(draw(st.integers(5, 30))):
        if ops and draw(st.integers(0, 2)) == 0:
            # mutate an earlier call: same slot, one field changed (flags-only, move,
            # resize, new hva, delete) — the in-place rules live here
            slot, fl, gpa, size, hva = draw(st.sampled_from(ops))
            field = draw(st.integers(0, 4))
            if field == 0:
                fl = draw(flags)
            elif field == 1:
                gpa = draw(gpas)
            elif field == 2:
                size = draw(sizes)
            elif field == 3:
                hva = draw(hvas)
            else:
                size = 0
            ops.append((slot, fl, gpa, size, hva))
        else:
            ops.append((draw(slots), draw(flags), draw(gpas), draw(sizes), draw(hvas)))
    return ops


def outcome(vm: object, op: Op) -> int:
    try:
        vm.set_user_memory_region(*op)  # type: ignore[attr-defined]
    except MemslotError as e:
        return int(e.errno or 0)
    return 0


@pytest.mark.kvm
def test_sim_matches_real_kvm_on_random_memslot_sequences(kvm: Kvm) -> None:
    block = RamBlock("fidelity", 64 * PAGE)
    stats: dict[str, int] = {"sequences": 0, "calls": 0, "rejected": 0}
    with kvm.create_vm() as probe:
        nr_memslots = probe.nr_memslots
        sim_kvm = SimKvm(
            nr_memslots=nr_memslots,
            nr_address_spaces=probe.nr_address_spaces,
            readonly_mem=probe.readonly_mem,
            guest_memfd=bool(probe.check_extension(KVM_CAP_GUEST_MEMFD)),
        )
        use_region2 = probe.use_region2

    @settings(
        max_examples=SEQUENCES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(memslot_ops(block.host_addr, nr_memslots))
    def check(ops: list[Op]) -> None:
        sim = SimVm(sim_kvm, use_region2=use_region2)
        with kvm.create_vm() as real:
            for i, op in enumerate(ops):
                want = outcome(real, op)
                got = outcome(sim, op)
                assert got == want, f"step {i} {[hex(x) for x in op]}: sim {got}, kvm {want}"
                assert sim.slots() == real.slots()
                stats["calls"] += 1
                stats["rejected"] += want != 0
                stats[f"errno{want}"] = stats.get(f"errno{want}", 0) + 1
        stats["sequences"] += 1

    try:
        check()
    finally:
        block.close()
    print(f"\nsim fidelity: {stats}")
    assert stats["sequences"] >= SEQUENCES
    assert stats["errno0"] > 300 and stats["errno17"] > 20 and stats["errno22"] > 300
