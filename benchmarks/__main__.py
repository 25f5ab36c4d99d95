"""``python -m benchmarks NAME [--smoke]`` — NAME: render, kick, pc_boot (``all`` runs each)."""

from __future__ import annotations

import argparse
import importlib
import sys

NAMES = ("render", "kick", "pc_boot")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("name", choices=(*NAMES, "all"))
    p.add_argument("--smoke", action="store_true", help="reduced size: checks it works")
    args = p.parse_args(argv)
    for name in NAMES if args.name == "all" else (args.name,):
        mod = importlib.import_module(f"benchmarks.{name}")
        mod.main(smoke=args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
