"""Random changes to a generated tree, grouped into transactions (hypothesis)."""

from __future__ import annotations

from hypothesis import strategies as st

from flatview.dirty import DirtyLogClient
from flatview.testing.trees import UNIT, Node, Tree

ATTRIBUTE_OPS = ("enable", "readonly", "log")
"""Changes that keep every region where it is."""
OPS = (*ATTRIBUTE_OPS, "move")

Step = tuple[str, Node, int]
"""(op, node, n): ``n`` is the new offset in units for a move."""


def mutate(tree: Tree, op: str, node: Node, n: int) -> bool:
    """Apply one change; True if it was structural (a region moved)."""
    mr = node.region
    if op == "enable":
        mr.set_enabled(not mr.enabled)
    elif op == "readonly" and node.kind in ("alias", "ram", "container"):
        mr.set_readonly(not mr.readonly)
    elif op == "log" and mr.has_ram_block:
        if mr.log_mask:
            mr.log_stop(DirtyLogClient.VGA)
        else:
            mr.log_start(DirtyLogClient.VGA)
    elif op == "move" and mr.parent is not None:
        mr.set_address(n * UNIT)
        return True
    return False


@st.composite
def transactions(
    draw: st.DrawFn, tree: Tree, ops: tuple[str, ...] = OPS, max_transactions: int = 6
) -> list[list[Step]]:
    """Transactions of 1-3 changes each, over the nodes of ``tree``."""
    out: list[list[Step]] = []
    for _ in range(draw(st.integers(1, max_transactions))):
        out.append(
            [
                (
                    draw(st.sampled_from(ops)),
                    draw(st.sampled_from(tree.nodes)),
                    draw(st.integers(0, 40)),
                )
                for _ in range(draw(st.integers(1, 3)))
            ]
        )
    return out


def apply(tree: Tree, transaction: list[Step]) -> bool:
    """Run one transaction (one commit); True if any change was structural."""
    structural = False
    with tree.system.transaction():
        for op, node, n in transaction:
            structural |= mutate(tree, op, node, n)
    return structural
