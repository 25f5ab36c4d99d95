"""Reading a running QEMU's memory topology over QMP (the QEMU project's ``qemu.qmp``).

``human-monitor-command`` runs ``info mtree -f`` (the flat views, parsed like any
dump) and ``info mtree -D`` (the tree, disabled regions included).  Every call has
a timeout; a socket that cannot be reached, closes mid-read or does not answer in
time is a one-line :class:`~flatview.errors.FlatviewError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from qemu.qmp import QMPClient

from flatview.errors import FlatviewError

TIMEOUT_S = 5.0


async def _hmp(socket: str, commands: list[str], timeout: float) -> list[str]:
    client = QMPClient("flatview")
    try:
        await asyncio.wait_for(client.connect(socket), timeout)
        out = []
        for command in commands:
            reply = await asyncio.wait_for(
                client.execute("human-monitor-command", {"command-line": command}), timeout
            )
            if not isinstance(reply, str):
                raise FlatviewError(f"QMP {socket}: {command!r} returned {type(reply).__name__}")
            out.append(reply)
        return out
    finally:
        with contextlib.suppress(Exception):  # already gone: nothing to release
            await asyncio.wait_for(client.disconnect(), timeout)


def hmp(socket: str, *commands: str, timeout: float = TIMEOUT_S) -> list[str]:
    """Run monitor ``commands`` on the QMP ``socket``; their text replies."""
    if not Path(socket).exists():
        raise FlatviewError(f"QMP {socket}: no such socket")
    try:
        return asyncio.run(_hmp(socket, list(commands), timeout))
    except FlatviewError:
        raise
    except TimeoutError:
        raise FlatviewError(f"QMP {socket}: no answer within {timeout:g} s") from None
    except Exception as e:  # qemu.qmp's errors, EOF, a reset connection
        what = (str(e) or type(e).__name__).splitlines()[0]  # one line
        raise FlatviewError(f"QMP {socket}: {what}") from None


def flat_views(socket: str, timeout: float = TIMEOUT_S) -> str:
    """``info mtree -f`` of the running QEMU."""
    return hmp(socket, "info mtree -f", timeout=timeout)[0]


def tree(socket: str, timeout: float = TIMEOUT_S) -> str:
    """``info mtree -D`` of the running QEMU (disabled regions marked)."""
    return hmp(socket, "info mtree -D", timeout=timeout)[0]
