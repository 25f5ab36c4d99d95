"""Every checked-in guest byte string is exactly its assembly source (where binutils
exists): the CPL3 harness guests, the pcboot workload and the firmware-mode option
ROM (16-bit; its checksum bytes are set after assembly)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from flatview.cli.pcboot import guest as pcboot_guest
from flatview.cli.pcboot import handover_rom
from kvm_backend.testing import guest_code as gc

SRC = Path(gc.__file__).parent / "guest_src"
PCBOOT = Path(pcboot_guest.__file__).parent


@pytest.mark.skipif(
    shutil.which("as") is None or shutil.which("objcopy") is None,
    reason="binutils (as, objcopy) not installed",
)
@pytest.mark.parametrize(
    ("source", "bits", "code"),
    [
        (SRC / "sweep.S", 64, gc.SWEEP),
        (SRC / "watch.S", 64, gc.WATCH),
        (SRC / "scribble.S", 64, gc.SCRIBBLE),
        (PCBOOT / "boot.S", 64, pcboot_guest.BOOT),
        (PCBOOT / "handover.S", 32, handover_rom.ASSEMBLED),
    ],
    ids=["sweep", "watch", "scribble", "pcboot", "handover-rom"],
)
def test_guest_bytes_match_their_source(
    tmp_path: Path, source: Path, bits: int, code: bytes
) -> None:
    obj, out = tmp_path / "code.o", tmp_path / "code.bin"
    subprocess.run(["as", f"--{bits}", "-o", str(obj), str(source)], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(obj), str(out)], check=True)
    assert out.read_bytes() == code
