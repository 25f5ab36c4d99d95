"""The ``flatview`` command line.

Bad input (a malformed scenario or dump, an unknown step or region, a bad number)
is reported as one line naming the file, the line and the problem, with exit
status 2 — never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flatview import __version__
from flatview.errors import FlatviewError, read_input

if TYPE_CHECKING:
    from flatview.cli.replay import Ref

EPILOG = {
    "show": "example: flatview show --example pc-pam --step writable-1 --flat\n"
    "         flatview show machine.yaml\n"
    "         flatview show --example      (lists the bundled scenarios)",
    "diff": "example: flatview diff example:pc-pam@ example:pc-pam@writable-1\n"
    "         flatview diff before.mtree after.mtree --json",
    "replay": "example: flatview replay example:pc-pam --backend sim",
    "map": "example: flatview map example:pc-pam@ example:pc-pam@writable-2 --html map.html",
    "stress": "example: flatview stress --vcpus 4 --transactions 500 --mode auto --seed 1",
    "demo": "example: flatview demo\n         flatview demo --race\n"
    "         flatview demo --seabios",
    "watch": "example: flatview watch --qmp /tmp/qmp.sock --count 4",
    "export": "example: flatview export --qmp /tmp/qmp.sock > machine.yaml\n"
    "         flatview show machine.yaml --flat",
    "audit": "example: flatview audit qemu.log --before before.mtree --after after.mtree\n"
    "         (qemu-system-x86_64 ... -trace kvm_set_user_memory -D qemu.log)",
}


def _colour(enabled: bool) -> dict[str, str]:
    if not enabled:
        return {"-": "", "+": "", "~": "", "0": ""}
    return {"-": "\033[31m", "+": "\033[32m", "~": "\033[33m", "0": "\033[0m"}


def _fmt_range(prefix: str, r: Any, c: dict[str, str]) -> str:
    off = f" @{r.offset:016x}" if r.offset else ""
    return (
        f"{c.get(prefix, '')}{prefix} {r.start:016x}-{r.start + r.size - 1:016x} "
        f"({r.type}): {r.region}{off}{c['0']}"
    )


# -- commands ------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    from flatview.cli.dump import DumpView, format_views, looks_like_dump, parse_views
    from flatview.cli.mtree import flat_json, format_flat, format_tree
    from flatview.cli.replay import range_json
    from flatview.cli.scenario import Scenario, bundled_examples

    if args.example is not None:
        if not args.example:
            print("\n".join(f"example:{n}" for n in bundled_examples()))
            return 0
        args.file = f"example:{args.example}"
    views: list[DumpView] | None = None  # a dump's or a live QEMU's; None: a scenario
    if args.qmp is not None:
        from flatview.cli.qmp import flat_views, tree

        if not args.flat:
            sys.stdout.write(tree(args.qmp, args.timeout))
            return 0
        source = f"qmp:{args.qmp}"
        views = parse_views(flat_views(args.qmp, args.timeout), source)
    elif args.file is None:
        raise FlatviewError("give a FILE, --example NAME or --qmp SOCKET")
    elif looks_like_dump(args.file):
        source = args.file
        views = parse_views(read_input(args.file), args.file)
    if views is not None:
        if args.address_space is not None:
            views = [
                DumpView(
                    tuple(sp for sp in v.spaces if sp[0] == args.address_space), v.root, v.ranges
                )
                for v in views
                if any(name == args.address_space for name, _ in v.spaces)
            ]
            if not views:
                raise FlatviewError(f"{source}: no address space {args.address_space!r}")
        if args.json:
            by_name = {
                name: [range_json(r) for r in v.ranges] for v in views for name, _ in v.spaces
            }
            print(json.dumps({"address_spaces": by_name}, indent=2))
        else:
            sys.stdout.write(format_views(views))
        return 0
    sc = Scenario(args.file)
    try:
        if args.step is not None:
            sc.run_until(sc.step_index(args.step) + 1)
        spaces = list(sc.spaces.values())
        if args.json:
            if not args.flat:
                raise FlatviewError("--json needs --flat")
            print(json.dumps(flat_json(spaces), indent=2))
        elif args.flat:
            sys.stdout.write(format_flat(spaces))
        else:
            sys.stdout.write(format_tree(spaces, disabled=args.disabled))
    finally:
        sc.close()
    return 0


def _print_facts(facts: dict[str, Any]) -> None:
    from listeners.planner import SlotOp
    from listeners.report import trace_line
    from listeners.slot_layout import SlotMapping

    for c in facts["classes"]:
        print(f"change: {c['kind']} {c['gpa']:#x}+{c['size']:#x}")
    for op in facts["ioctls"]:
        m = SlotMapping(op["gpa"], op["size"], op["ua"], op["flags"], 0, op["guest_memfd_offset"])
        print(trace_line(SlotOp(op["op"], op["slot"], m), op["as_id"]))
    q = facts["qemu_style"]
    n = len(facts["ioctls"])
    print(
        f"summary: {n} ioctls, remapped {facts['remapped_bytes']:#x} bytes, unchanged "
        f"unmapped {facts['unchanged_bytes_unmapped']:#x}, pause "
        f"{'needed' if facts['pause_needed'] else 'not needed'}; "
        f"QEMU-style full re-slot: {q['ioctls']} ioctls, {q['unmapped_bytes']:#x} bytes "
        f"unmapped"
    )


def cmd_diff(args: argparse.Namespace) -> int:
    from flatview.cli.replay import diff_refs, range_diff, range_json

    with tempfile.TemporaryDirectory() as folder:
        a, b = _pair_refs(args, folder)
        pair = diff_refs(a, b, args.address_space, args.mode)
    d = range_diff(pair.a, pair.b)
    facts = pair.facts
    if args.json:
        out = dict(facts)
        out.update(
            {
                "a": a.label,
                "b": b.label,
                "removed": [range_json(r) for r in d["removed"]],
                "added": [range_json(r) for r in d["added"]],
                "resized": [{"old": range_json(o), "new": range_json(n)} for o, n in d["resized"]],
                "unchanged": d["unchanged"],
            }
        )
        print(json.dumps(out, indent=2))
        return _diff_status(args, d)
    c = _colour(sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    print(f"--- {a.label}\n+++ {b.label}")
    _print_range_diff(d, c)
    if d["unchanged"]:
        print(f"  ({d['unchanged']} unchanged range{'s' if d['unchanged'] != 1 else ''} folded)")
    _print_facts(facts)
    return _diff_status(args, d)


def _print_range_diff(d: dict[str, Any], c: dict[str, str]) -> None:
    """Removed (-), resized (~) and added (+) ranges, in address order."""
    rows: list[tuple[int, int, str]] = []
    for r in d["removed"]:
        rows.append((r.start, 0, _fmt_range("-", r, c)))
    for o, n in d["resized"]:
        rows.append((o.start, 1, _fmt_range("~", n, c) + f" (was size {o.size:#x})"))
    for r in d["added"]:
        rows.append((r.start, 2, _fmt_range("+", r, c)))
    for row in sorted(rows):
        print(row[2])


def _pair_refs(args: argparse.Namespace, folder: str) -> tuple[Ref, Ref]:
    """A and B, where ``--qmp`` supplies the live state as the last one."""
    from flatview.cli.replay import Ref

    given = [x for x in (args.a, args.b) if x is not None]
    if args.qmp is not None:
        if len(given) != 1:
            raise FlatviewError("with --qmp, give one state to compare the live one with")
        return Ref.parse(given[0]), Ref.live(args.qmp, folder, args.timeout)
    if len(given) != 2:
        raise FlatviewError("give two states A and B (or one and --qmp SOCKET)")
    return Ref.parse(given[0]), Ref.parse(given[1])


def _diff_status(args: argparse.Namespace, d: dict[str, Any]) -> int:
    """With ``--exit-code``, 1 when the views differ (as ``git diff --exit-code``)."""
    differ = bool(d["removed"] or d["added"] or d["resized"])
    return 1 if args.exit_code and differ else 0


def cmd_replay(args: argparse.Namespace) -> int:
    from flatview.cli.replay import replay

    result = replay(args.files, args.backend, args.mode, args.address_space)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for step in result["steps"]:
        print(f"== {step['name']}")
        _print_facts(step)
        for s in step["slots_after"]:
            print(
                f"   slot {s['slot']:3d} gpa={s['gpa']:#x} size={s['size']:#x} "
                f"flags={s['flags']:#x} {s['region']} @{s['offset']:#x}"
            )
    t = result["totals"]
    print(
        f"totals: {t['steps']} steps, {t['ioctls']} ioctls (QEMU-style "
        f"{t['qemu_style_ioctls']}), remapped {t['remapped_bytes']:#x}, unchanged unmapped "
        f"{t['unchanged_bytes_unmapped']:#x}, {t['pause_needed_steps']} steps needed a pause"
    )
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from flatview.cli.replay import Ref

    if not args.svg and not args.html:
        raise FlatviewError("give --svg OUT or --html OUT")
    with tempfile.TemporaryDirectory() as folder:
        if args.qmp is not None and args.a is None:
            return _draw_map(args, [Ref.live(args.qmp, folder, args.timeout)])
        if args.qmp is None and args.a is None:
            raise FlatviewError("give a state A (and B), or --qmp SOCKET")
        if args.b is None and args.qmp is None:
            return _draw_map(args, [Ref.parse(args.a)])
        return _draw_map(args, list(_pair_refs(args, folder)))


def _draw_map(args: argparse.Namespace, refs: list[Ref]) -> int:
    from flatview.cli.replay import diff_refs, range_diff, state_ranges
    from flatview.cli.svgmap import render_html, render_svg

    a = refs[0]
    if len(refs) == 2:
        b = refs[1]
        pair = diff_refs(a, b, args.address_space, args.mode)
        d = range_diff(pair.a, pair.b)
        gone = {id(r) for r in d["removed"]} | {id(o) for o, _ in d["resized"]}
        new = {id(r) for r in d["added"]} | {id(n) for _, n in d["resized"]}
        states = [pair.a, pair.b]
        changed = [
            {i for i, r in enumerate(pair.a) if id(r) in gone},
            {i for i, r in enumerate(pair.b) if id(r) in new},
        ]
        svg = render_svg([a.label, b.label], states, [pair.slots_a, pair.slots_b], changed)
        f = pair.facts
        summary = [
            f"{len(f['ioctls'])} ioctls, remapped {f['remapped_bytes']:#x} bytes, "
            f"unchanged unmapped {f['unchanged_bytes_unmapped']:#x}",
            *[f"{c['kind']} at {c['gpa']:#x}+{c['size']:#x}" for c in f["classes"]],
        ]
        title = f"{a.label} -> {b.label}"
    else:
        ranges = state_ranges(a, args.address_space)
        svg = render_svg([a.label], [ranges], [[]], [set()])
        summary = [f"{len(ranges)} flat ranges"]
        title = a.label
    if args.svg:
        Path(args.svg).write_text(svg)
    if args.html:
        Path(args.html).write_text(render_html(title, svg, summary))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Poll the live flat views; print each change with our plan for it."""
    import time

    from flatview.cli.dump import parse_dump
    from flatview.cli.replay import Ref, diff_refs, range_diff

    changes = 0
    with tempfile.TemporaryDirectory() as folder:
        before = Ref.live(args.qmp, folder, args.timeout)
        print(f"watching {args.qmp} every {args.interval:g} s (changes between polls are merged)")
        deadline = time.monotonic() + args.duration if args.duration else None
        while args.count is None or changes < args.count:
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(args.interval)
            now = Ref.live(args.qmp, folder, args.timeout)
            if Path(now.path).read_text() == Path(before.path).read_text():
                Path(now.path).unlink()
                continue
            pair = diff_refs(before, now, args.address_space, args.mode)
            d = range_diff(pair.a, pair.b)
            changes += 1
            print(f"== change {changes} at {time.strftime('%H:%M:%S')}")
            _print_range_diff(d, _colour(sys.stdout.isatty() and "NO_COLOR" not in os.environ))
            if not (d["removed"] or d["resized"] or d["added"]):
                old = parse_dump(Path(before.path).read_text(), before.path)
                new = parse_dump(Path(now.path).read_text(), now.path)
                moved = sorted(n for n in old.keys() | new.keys() if old.get(n) != new.get(n))
                print(
                    f"  (address space {args.address_space or 'memory'!r} unchanged; "
                    f"changed: {', '.join(moved)})"
                )
            _print_facts(pair.facts)
            sys.stdout.flush()
            Path(before.path).unlink()
            before = now
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from flatview.cli.audit import audit, format_audit, parse_trace
    from flatview.cli.replay import Ref, diff_refs

    doc = audit(parse_trace(read_input(args.trace), args.trace))
    if (args.before is None) != (args.after is None):
        raise FlatviewError("give both --before and --after (the views around the trace)")
    if args.before is not None and args.after is not None:
        a, b = Ref.parse(args.before), Ref.parse(args.after)
        pair = diff_refs(a, b, args.address_space, args.mode)
        doc["ours"] = {
            "a": a.label,
            "b": b.label,
            "ioctls": len(pair.facts["ioctls"]),
            "unchanged_bytes_unmapped": pair.facts["unchanged_bytes_unmapped"],
            "qemu_style_ioctls": pair.facts["qemu_style"]["ioctls"],
        }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(format_audit(doc))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from flatview.cli.dump import parse_views
    from flatview.cli.export import export, to_yaml
    from flatview.cli.qmp import hmp

    tree, flat = hmp(args.qmp, "info mtree -D", "info mtree -f", timeout=args.timeout)
    source = f"qmp:{args.qmp}"
    sys.stdout.write(to_yaml(export(tree, parse_views(flat, source), source)))
    return 0


def cmd_stress(args: argparse.Namespace) -> int:
    from flatview.cli.stress import stress

    result = stress(args.vcpus, args.transactions, args.mode, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lat = result["latency_us"]
        print(
            f"{args.vcpus} vCPUs, {result['transactions']} transactions "
            f"({result['commits']} reached KVM) in mode {args.mode}: "
            f"faults {result['faults']}, lost writes {result['lost_writes']}, pauses "
            f"{result['pauses']}, commit latency p50 {lat['p50']:.0f} us, p99 {lat['p99']:.0f} us"
        )
    broken = result["faults"] or result["lost_writes"]
    if broken and args.mode != "naive":
        print(f"flatview stress: mode {args.mode} let the guest see a fault", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from flatview.cli import demo

    return demo.main(race=args.race, seabios=args.seabios)


# -- parser ----------------------------------------------------------------------------------
def add_mode(parser: argparse.ArgumentParser) -> None:
    """``--mode``: the KVM listener's mode the plans are made for."""
    parser.add_argument(
        "--mode",
        choices=("auto", "optimistic", "quiesce", "naive"),
        default="auto",
        help="the KVM listener's mode (default: auto; optimistic never unmaps unchanged bytes)",
    )


def add_qmp(parser: argparse.ArgumentParser, help_: str, required: bool = False) -> None:
    """``--qmp SOCKET`` and ``--timeout``: read a running QEMU over QMP."""
    parser.add_argument("--qmp", metavar="SOCKET", required=required, help=help_)
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for each QMP answer"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flatview",
        description="QEMU's memory model and atomic KVM memslot updates for Python VMMs.",
    )
    p.add_argument("--version", action="version", version=f"flatview {__version__}")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log the library's messages (each commit's plan, dropped ranges, rollbacks)",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=argparse.ArgumentParser)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=EPILOG[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    s = add("show", "print a scenario's tree (info mtree) or flat view (info mtree -f)")
    s.add_argument(
        "file", nargs="?", help="scenario (.yaml, or example:NAME) or 'info mtree -f' dump"
    )
    s.add_argument(
        "--example",
        nargs="?",
        const="",
        metavar="NAME",
        help="a bundled scenario (without NAME: list them)",
    )
    s.add_argument("--step", help="show the state after this step")
    s.add_argument("--flat", action="store_true", help="flat view (info mtree -f)")
    s.add_argument("--json", action="store_true", help="JSON (with --flat)")
    s.add_argument("--disabled", "-D", action="store_true", help="include disabled regions")
    s.add_argument("--as", dest="address_space", help="address space of a dump")
    add_qmp(s, "show the live tree (info mtree -D) or, with --flat, flat views")
    s.set_defaults(func=cmd_show)

    d = add("diff", "range diff, change classes and memslot plan from state A to state B")
    d.add_argument("a", help="FILE@STEP (FILE@ = initial state) or a dump file")
    d.add_argument("b", nargs="?", help="FILE@STEP or a dump file (not with --qmp)")
    add_qmp(d, "compare A with the live state of a running QEMU")
    d.add_argument("--json", action="store_true")
    d.add_argument("--as", dest="address_space", help="address space (default: memory)")
    add_mode(d)
    d.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when the views differ, 0 when they are the same (as git diff)",
    )
    d.set_defaults(func=cmd_diff)

    r = add("replay", "drive a scenario's steps (or dump files) through the KVM listener")
    r.add_argument("files", nargs="+", help="one scenario file, or several dump files")
    r.add_argument("--backend", choices=("sim", "kvm"), default="sim")
    add_mode(r)
    r.add_argument("--json", action="store_true")
    r.add_argument("--as", dest="address_space", help="address space (default: memory)")
    r.set_defaults(func=cmd_replay)

    m = add("map", "draw the guest-physical map of A (and its change to B) as SVG or HTML")
    m.add_argument("a", nargs="?")
    m.add_argument("b", nargs="?")
    add_qmp(m, "draw the live state (or A and the live state)")
    m.add_argument("--svg", metavar="OUT")
    m.add_argument("--html", metavar="OUT")
    m.add_argument("--as", dest="address_space")
    add_mode(m)
    m.set_defaults(func=cmd_map)

    w = add("watch", "print each change of a running QEMU's topology with our memslot plan")
    add_qmp(w, "the QMP socket of the running QEMU", required=True)
    w.add_argument("--interval", type=float, default=0.2, help="seconds between polls")
    w.add_argument("--count", type=int, help="stop after this many changes")
    w.add_argument("--duration", type=float, help="stop after this many seconds")
    w.add_argument("--as", dest="address_space", help="address space (default: memory)")
    add_mode(w)
    w.set_defaults(func=cmd_watch)

    ex = add("export", "write a running QEMU's region tree as a scenario file (YAML)")
    add_qmp(ex, "the QMP socket of the running QEMU", required=True)
    ex.set_defaults(func=cmd_export)

    au = add("audit", "what a QEMU did to KVM's memslots, from its kvm_set_user_memory trace")
    au.add_argument("trace", help="QEMU log of -trace kvm_set_user_memory (-D FILE)")
    au.add_argument("--before", help="the views before the trace (dump or FILE@STEP)")
    au.add_argument("--after", help="the views after it: our plan for the same transition")
    au.add_argument("--as", dest="address_space", help="address space (default: memory)")
    au.add_argument("--json", action="store_true")
    add_mode(au)
    au.set_defaults(func=cmd_audit)

    st = add("stress", "the real-KVM race harness: faults, lost writes, pauses, latency")
    st.add_argument("--vcpus", type=int, default=4)
    st.add_argument("--transactions", type=int, default=500)
    add_mode(st)
    st.add_argument("--seed", type=int, default=1)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_stress)

    de = add("demo", "boot a pc-like guest through live topology changes (or simulate them)")
    de.add_argument(
        "--race",
        action="store_true",
        help="show the bare memslot race (naive vs pause_all) instead",
    )
    de.add_argument(
        "--seabios",
        action="store_true",
        help="boot real SeaBIOS (Debian's package) through the library instead",
    )
    de.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(levelname)s: %(message)s")
    try:
        return int(args.func(args))
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except FlatviewError as e:
        print(f"flatview {args.command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"flatview {args.command}: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
