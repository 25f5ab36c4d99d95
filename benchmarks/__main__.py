"""``python -m benchmarks NAME [--smoke] [--plot OUT.png]``.

NAME: render, kick, pc_boot, overhead, vcpu_scaling, race_soak, dump_diff, pci_enum,
guest_cost
(``all`` runs each).
"""

from __future__ import annotations

import argparse
import importlib
import sys

PLOTTED = ("vcpu_scaling", "pc_boot", "render", "guest_cost")
NAMES = (
    "render",
    "kick",
    "pc_boot",
    "overhead",
    "vcpu_scaling",
    "race_soak",
    "dump_diff",
    "pci_enum",
    "guest_cost",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("name", choices=(*NAMES, "all"))
    p.add_argument("--smoke", action="store_true", help="reduced size: checks it works")
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also draw a figure (vcpu_scaling, pc_boot, render, guest_cost)",
    )
    args = p.parse_args(argv)
    for name in NAMES if args.name == "all" else (args.name,):
        mod = importlib.import_module(f"benchmarks.{name}")
        if args.plot and name in PLOTTED:
            mod.main(smoke=args.smoke, plot=args.plot)
        else:
            mod.main(smoke=args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
