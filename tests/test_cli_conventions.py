"""The command line behaves like the tools around it: versions, bundled examples,
quiet broken pipes, one message prefix, git-like exit codes, exact counts,
progress only on a terminal, dumps shown as ``info mtree -f``."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import flatview
from flatview.cli import main
from flatview.cli import stress as stress_module
from kvm_backend.kvm import kvm_unavailable_reason
from tests.test_cli import ROOT, run

FLATVIEW = [sys.executable, "-m", "flatview.cli"]


def cli(*argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLATVIEW, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120, **kw
    )


def test_version_flag_prints_the_package_version() -> None:
    p = cli("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"flatview {flatview.__version__}"


def test_show_example_lists_and_shows_the_bundled_scenarios() -> None:
    code, out, _ = run(["show", "--example"])
    assert code == 0 and out.split() == ["example:hotplug", "example:pc-pam"]
    code, out, _ = run(["show", "--example", "pc-pam", "--flat"])
    assert code == 0 and out.startswith("FlatView #0\n")
    code, _, err = run(["show", "--example", "nope"])
    assert code == 2 and err.strip() == (
        "flatview show: example:nope: no bundled example 'nope' (have: hotplug, pc-pam)"
    )


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    lines = ["FlatView #0", ' AS "memory", root: system', " Root memory region: system"]
    lines += [
        f"  {k * 0x1000:016x}-{k * 0x1000 + 0xFFF:016x} (prio 0, i/o): dev{k}" for k in range(8000)
    ]
    dump = tmp_path / "big.mtree"
    dump.write_text("\n".join(lines) + "\n")
    p = subprocess.Popen(
        [*FLATVIEW, "show", str(dump), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stderr is not None
    assert p.stdout.readline().strip() == "{"
    p.stdout.close()  # as `| head -1` does
    err = p.stderr.read()
    assert p.wait(timeout=60) == 0 and err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["map", "example:pc-pam@"], "flatview map: give --svg OUT or --html OUT"),
        (["stress", "--vcpus", "0"], "flatview stress: "),
        (["show", "example:pc-pam", "--json"], "flatview show: --json needs --flat"),
    ],
)
def test_errors_carry_one_prefix_naming_the_command(argv: list[str], message: str) -> None:
    code, _, err = run(argv)
    assert code == 2 and err.startswith(message) and err.count("\n") == 1
    command = argv[0]
    assert f"{command}: {command}:" not in err and not err.startswith(
        f"flatview {command}: {command}"
    )


def test_diff_exit_code_says_whether_the_views_differ() -> None:
    pam = "example:pc-pam"
    assert run(["diff", f"{pam}@", f"{pam}@writable-1", "--exit-code"])[0] == 1
    assert run(["diff", f"{pam}@writable-1", f"{pam}@writable-1", "--exit-code"])[0] == 0
    assert run(["diff", f"{pam}@", f"{pam}@writable-1"])[0] == 0  # without it: 0, as git


def _fake_stress(faults: int, mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "faults": faults,
        "lost_writes": 0,
        "transactions": 7,
        "commits": 6,
        "safe": mode != "naive",
        "pauses": 0,
        "latency_us": {"p50": 1.0, "p99": 2.0},
    }


@pytest.mark.parametrize(
    ("mode", "faults", "status"),
    [("auto", 0, 0), ("auto", 3, 1), ("optimistic", 1, 1), ("naive", 5, 0)],
)
def test_stress_fails_when_a_safe_mode_lets_a_fault_through(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    faults: int,
    status: int,
) -> None:
    monkeypatch.setattr(stress_module, "stress", lambda *a: _fake_stress(faults, mode))
    assert main(["stress", "--mode", mode, "--transactions", "7"]) == status
    out = capsys.readouterr().out
    assert "7 transactions (6 reached KVM)" in out


@pytest.mark.kvm
def test_stress_counts_exactly_the_transactions_asked_for_and_shows_progress_on_a_tty() -> None:
    assert kvm_unavailable_reason() is None
    leader, follower = pty.openpty()
    p = subprocess.run(
        [*FLATVIEW, "stress", "--vcpus", "2", "--transactions", "30", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        timeout=120,
    )
    os.close(follower)
    shown = os.read(leader, 65536).decode()
    os.close(leader)
    assert p.returncode == 0
    assert '"transactions": 30' in p.stdout
    assert "30/30 transactions" in shown  # on the terminal only
    q = cli("stress", "--vcpus", "2", "--transactions", "5")
    assert q.returncode == 0 and "transactions" not in q.stderr and "5 transactions" in q.stdout


def test_show_of_a_dump_prints_every_address_space_as_info_mtree_f() -> None:
    dump = ROOT / "tests" / "data" / "qemu72-pc-after-bios.mtree"
    code, out, _ = run(["show", str(dump)])
    original = [line.removesuffix(" KVM") for line in dump.read_text().splitlines()]
    assert code == 0  # QEMU's own text, less the " KVM" marks and blank lines
    assert [line for line in out.splitlines() if line] == [line for line in original if line]
    assert out.count("FlatView #") == 3 and 'AS "I/O"' in out and 'AS "memory"' in out
    code, out, _ = run(["show", str(dump), "--as", "I/O"])
    assert code == 0 and out.count("FlatView #") == 1 and 'AS "memory"' not in out
