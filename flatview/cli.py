"""The ``flatview`` command line.

Errors in input are reported as one line naming the place, with exit status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys

from flatview.errors import FlatviewError


def _demo(args: argparse.Namespace) -> int:
    from flatview import demo

    return demo.main(race=args.race)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flatview",
        description="QEMU's memory model and atomic KVM memslot updates for Python VMMs.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="run the demo (real KVM when /dev/kvm opens, else the simulated backend)",
        description="Boot a pc-like guest through SeaBIOS's PAM writes and hotplug RAM "
        "changes on real KVM (or replay the same commits on the simulated backend).\n\n"
        "example: flatview demo\n         flatview demo --race",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--race",
        action="store_true",
        help="show the bare memslot race (naive vs pause_all) instead",
    )
    demo.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FlatviewError as e:
        print(f"flatview {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
