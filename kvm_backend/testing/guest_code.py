"""Machine code of the test guests, as bytes, with the source beside them.

The sources are ``kvm_backend/guest_src/*.S`` (GNU as, Intel syntax); the bytes
here are their ``.text`` (``as --64 X.S -o X.o && objcopy -O binary -j .text``).
``tests/test_guest_code.py`` reassembles them where binutils is installed and
checks the bytes still match.  All are position independent and run at CPL3.
"""

from __future__ import annotations

SWEEP = bytes.fromhex(
    "31c94889c848c1e00c4801f8488b184839c3752748ffc14839f172e649ff0049ffc149ff04"
    "2449833a0074d44489c866ba1100ef66ba1200efebc566ba1000efebd2"
)
"""guest_src/sweep.S: read every page of a range, count writes, report mismatches."""

WATCH = bytes.fromhex("48c7c3ffffffff488b074839d874f84889c366ba1000ef4839f075eb66ba1200efebe4")
"""guest_src/watch.S: spin on one qword, report each new value, flag the final one."""

SCRIBBLE = bytes.fromhex(
    "31c94889c848c1e00c4801f84aff040048ffc14839f172ea49ff042449833a0074de66ba1200efebd7"
)
"""guest_src/scribble.S: increment one qword in every page of a range, in a loop."""

SPIN = bytes.fromhex("ebfe")
"""``jmp .``: a vCPU that stays in the guest until it is kicked."""

PORT_REPORT = 0x10
"""OUT: a value the guest saw (watch) or a mismatching address (sweep)."""
PORT_COUNT = 0x11
"""OUT: the guest's own count of writes (sweep, at stop)."""
PORT_DONE = 0x12
"""OUT: the guest finished."""
