"""A real QEMU (Debian's qemu-system-x86 and seabios, installed by .ci/run) read over
QMP while SeaBIOS boots, and its own memslot trace audited against our planner."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flatview.cli.dump import parse_views
from flatview.cli.qmp import flat_views, hmp
from tests.test_cli import ROOT

pytestmark = pytest.mark.qemu


def flatview_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flatview.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Qemu:
    def __init__(self, machine: str, folder: Path) -> None:
        self.sock = str(folder / "qmp.sock")
        self.log = folder / "qemu.log"
        self.proc = subprocess.Popen(
            [
                "qemu-system-x86_64",
                "-machine", machine,
                "-accel", "kvm",
                "-m", "256",
                "-nographic", "-serial", "none", "-monitor", "none",
                "-S",
                "-qmp", f"unix:{self.sock},server=on,wait=off",
                "-trace", "kvm_set_user_memory",
                "-D", str(self.log),
                "-msg", "timestamp=on",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not Path(self.sock).exists():
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            assert time.monotonic() < deadline, "QEMU's QMP socket did not appear"
            time.sleep(0.05)

    def boot(self) -> tuple[str, str]:
        """The flat views before SeaBIOS runs and once its PAM writes settled."""
        before = flat_views(self.sock)
        hmp(self.sock, "cont")
        last, stable_since = before, time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = flat_views(self.sock)
            if now != last:
                last, stable_since = now, time.monotonic()
            elif last != before and time.monotonic() - stable_since > 1.5:
                return before, last
        raise AssertionError("SeaBIOS did not change the memory topology within 30 s")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture(params=["pc", "q35"])
def qemu(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Qemu]:
    q = Qemu(request.param, tmp_path)
    try:
        yield q
    finally:
        q.close()


def exported_renders_as_qemu(qemu: Qemu, folder: Path) -> None:
    """``export --qmp``, then our render of the exported tree equals QEMU's own
    ``info mtree -f`` in every address space (names made unique compared bare)."""
    exported = flatview_cli("export", "--qmp", qemu.sock)
    assert exported.returncode == 0, exported.stderr
    scenario = folder / f"machine-{len(list(folder.iterdir()))}.yaml"
    scenario.write_text(exported.stdout)
    shown = flatview_cli("show", str(scenario), "--flat")
    assert shown.returncode == 0, shown.stderr

    def ranges(text: str) -> dict[str, list[tuple[int, int, str, int, str]]]:
        return {
            name: [
                (r.start, r.size, re.sub(r"#\d+$", "", r.region), r.offset, r.type)
                for r in v.ranges
            ]
            for v in parse_views(text, "t")
            for name, _ in v.spaces
        }

    qemus = ranges(flat_views(qemu.sock))
    ours = ranges(shown.stdout)
    assert set(ours) == set(qemus) and len(qemus) >= 5
    for name, want in qemus.items():
        assert ours[name] == want, f"address space {name!r} renders differently"


def test_live_views_are_read_over_qmp_and_the_boot_audited_against_our_plan(
    qemu: Qemu, tmp_path: Path
) -> None:
    watch = subprocess.Popen(
        [sys.executable, "-m", "flatview.cli", "watch", "--qmp", qemu.sock, "--count", "1",
         "--duration", "40", "--interval", "0.1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)  # let it take its first snapshot while the vCPUs are stopped
    exported_renders_as_qemu(qemu, tmp_path)
    before, after = qemu.boot()
    exported_renders_as_qemu(qemu, tmp_path)
    (tmp_path / "before.mtree").write_text(before)
    (tmp_path / "after.mtree").write_text(after)

    shown = flatview_cli("show", "--qmp", qemu.sock, "--flat")
    assert shown.returncode == 0 and 'AS "memory"' in shown.stdout and 'AS "I/O"' in shown.stdout
    tree = flatview_cli("show", "--qmp", qemu.sock)
    assert tree.returncode == 0 and "address-space: memory" in tree.stdout
    diff = flatview_cli("diff", str(tmp_path / "before.mtree"), "--qmp", qemu.sock)
    assert diff.returncode == 0 and "kvm_set_user_memory" in diff.stdout, diff.stderr
    assert f"+++ qmp:{qemu.sock}" in diff.stdout
    svg = tmp_path / "live.svg"
    drawn = flatview_cli("map", "--qmp", qemu.sock, "--svg", str(svg))
    assert drawn.returncode == 0 and "pc.ram" in svg.read_text()

    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    assert "== change 1" in out and "kvm_set_user_memory" in out

    audited = flatview_cli(
        "audit", str(qemu.log), "--before", str(tmp_path / "before.mtree"),
        "--after", str(tmp_path / "after.mtree"), "--json",
    )  # fmt: skip
    assert audited.returncode == 0, audited.stderr
    doc = json.loads(audited.stdout)
    recreating = [c for c in doc["commits"] if c["recreates_ram"]]
    assert recreating, "QEMU re-creates low RAM during SeaBIOS's PAM writes"
    assert all(c["unchanged_bytes_unmapped"] >= 100 << 20 for c in recreating)
    assert all(h["us"] is not None for c in recreating for h in c["holes"])
    assert doc["totals"]["unchanged_bytes_unmapped"] >= len(recreating) * (100 << 20)
    ours = doc["ours"]
    assert ours["unchanged_bytes_unmapped"] <= 256 << 10  # what we would have unmapped
    text = flatview_cli("audit", str(qemu.log), "--before", str(tmp_path / "before.mtree"),
                        "--after", str(tmp_path / "after.mtree"))  # fmt: skip
    assert "re-created RAM" in text.stdout and "ours for the same transition" in text.stdout


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("kvm_set_user_memory Slot#0 flags=0x0 gpa=0xZZ size=0x0 ua=0x0 ret=0", ":2:"),
        ("123@1.5:kvm_run_exit cpu_index one, reason 2", ":2:"),
    ],
)
def test_malformed_trace_lines_are_one_line_errors(tmp_path: Path, line: str, where: str) -> None:
    log = tmp_path / "bad.log"
    good = "kvm_set_user_memory Slot#0 flags=0x0 gpa=0x0 size=0x1000 ua=0x7f0000000000 ret=0"
    log.write_text(f"{good}\n{line}\n")
    p = flatview_cli("audit", str(log))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and where in p.stderr, p.stderr


def _server(path: str, behaviour: str) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        if behaviour == "close-mid-read":
            conn.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}')
            conn.close()
        else:  # silent: accepts and never answers
            time.sleep(5)
            conn.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("behaviour", ["close-mid-read", "silent"])
def test_a_qmp_socket_that_closes_or_hangs_is_a_one_line_error(
    tmp_path: Path, behaviour: str
) -> None:
    path = str(tmp_path / "fake.sock")
    _server(path, behaviour)
    t0 = time.monotonic()
    p = flatview_cli("show", "--qmp", path, "--flat", "--timeout", "1")
    assert p.returncode == 2 and p.stderr.startswith(f"flatview show: QMP {path}: ")
    assert p.stderr.count("\n") == 1 and time.monotonic() - t0 < 15
