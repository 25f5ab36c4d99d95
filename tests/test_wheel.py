"""The package as a user gets it: build the wheel, install it into a fresh venv,
and from a folder outside the checkout run the CLI's examples and type-check a
script that imports it (py.typed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

SCRIPT = """\
from flatview import AddressSpace, FlatView, MemorySystem
from kvm_backend import SimVm
from listeners import KvmMemoryListener

s = MemorySystem()
root = s.container("system", 1 << 32)
root.add_subregion(0, s.ram("ram", 1 << 20))
space = AddressSpace(root, "memory")
kl = KvmMemoryListener(SimVm(), space)
view: FlatView = space.flatview
print(len(view), len(kl.slots))
"""


def sh(*argv: str | Path, cwd: Path) -> str:
    p = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{argv}: {p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel installed; returns its bin folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", ROOT, cwd=tmp)
    wheels = list((tmp / "dist").glob("flatview-*.whl"))
    assert len(wheels) == 1
    venv.create(tmp / "venv", with_pip=True)
    bin_ = tmp / "venv" / "bin"
    sh(bin_ / "python", "-m", "pip", "install", "-q", wheels[0], cwd=tmp)
    return bin_


def test_installed_cli_runs_its_examples_outside_the_checkout(installed: Path) -> None:
    elsewhere = installed.parent.parent
    out = sh(installed / "flatview", "--version", cwd=elsewhere)
    assert out.startswith("flatview ")
    out = sh(installed / "flatview", "show", "--example", "pc-pam", "--flat", cwd=elsewhere)
    assert out.startswith("FlatView #0")
    out = sh(
        installed / "flatview",
        "diff",
        "example:pc-pam@",
        "example:pc-pam@writable-1",
        cwd=elsewhere,
    )
    assert "kvm_set_user_memory" in out
    out = sh(installed / "flatview", "demo", cwd=elsewhere)
    assert "OK" in out or "simulated" in out


def test_a_typed_user_script_passes_mypy_strict_against_the_installed_package(
    installed: Path,
) -> None:
    elsewhere = installed.parent.parent
    script = elsewhere / "user.py"
    script.write_text(SCRIPT)
    assert sh(installed / "python", script, cwd=elsewhere).split() == ["1", "1"]
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    assert mypy is not None
    sh(mypy, "--strict", "--python-executable", installed / "python", script, cwd=elsewhere)
