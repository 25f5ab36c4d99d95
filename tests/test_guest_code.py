"""The guest byte strings are exactly their assembly sources (where binutils exists)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kvm_backend.testing import guest_code as gc

SRC = Path(gc.__file__).parent / "guest_src"


@pytest.mark.skipif(
    shutil.which("as") is None or shutil.which("objcopy") is None,
    reason="binutils (as, objcopy) not installed",
)
@pytest.mark.parametrize(
    ("name", "code"), [("sweep", gc.SWEEP), ("watch", gc.WATCH), ("scribble", gc.SCRIBBLE)]
)
def test_guest_bytes_match_their_source(tmp_path: Path, name: str, code: bytes) -> None:
    obj, out = tmp_path / f"{name}.o", tmp_path / f"{name}.bin"
    subprocess.run(["as", "--64", "-o", str(obj), str(SRC / f"{name}.S")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(obj), str(out)], check=True)
    assert out.read_bytes() == code
