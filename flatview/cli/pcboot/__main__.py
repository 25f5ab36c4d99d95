"""``python -m flatview.cli.pcboot [--vcpus N] [--mode M] [--iterations K] [--quiet]
[--firmware]``"""

from __future__ import annotations

import argparse
import sys

from kvm_backend import kvm_unavailable_reason


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flatview.cli.pcboot", description=__doc__)
    p.add_argument("--vcpus", type=int, default=4)
    p.add_argument("--mode", default="auto", choices=("auto", "optimistic", "quiesce", "naive"))
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--quiet", action="store_true", help="no per-commit log")
    p.add_argument(
        "--firmware",
        action="store_true",
        help="boot real SeaBIOS first; our option ROM hands over to the workload",
    )
    args = p.parse_args(argv)
    reason = kvm_unavailable_reason()
    if reason is not None:
        print(f"pcboot needs /dev/kvm ({reason}); `flatview demo` runs the simulated version")
        return 2
    from flatview.cli.pcboot.vmm import PcVmm

    vmm = PcVmm(
        args.vcpus,
        args.mode,
        args.iterations,
        None if args.quiet else sys.stdout,
        firmware=args.firmware,
    )
    try:
        r = vmm.run()
    finally:
        vmm.close()
    print(f"\nguest serial: {r.serial.strip()!r}")
    print(f"mode {args.mode}, {args.vcpus} vCPUs, {r.iterations} boot iterations")
    print(
        f"commits {r.commits}, ioctls {r.ioctls} (QEMU-style plan: {r.qemu_ioctls}), "
        f"pauses {r.pauses}"
    )
    print(
        f"guest-visible faults {r.faults}, read-only writes dropped {r.dropped_writes}, "
        f"VGA writes {r.vga_writes}, worker sweeps {r.worker_sweeps}"
    )
    print(
        f"checksums {'match' if r.checksums_match else 'DIFFER'}: "
        f"{ {hex(k): v for k, v in r.checksums.items()} }"
    )
    for s in r.stops:
        print("  stopped: " + s)
    print("OK" if r.ok else "FAILED")
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
