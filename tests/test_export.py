"""``info mtree -D`` text into a scenario: grouped address spaces, alias targets
from ``memory-region:`` sections, flags the tree does not print taken from the flat
view, and one-line errors for text that is not a tree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flatview.cli.dump import parse_views
from flatview.cli.export import export, parse_tree
from flatview.cli.mtree import format_flat
from flatview.cli.scenario import Scenario
from flatview.errors import InputError

DATA = Path(__file__).parent / "data"
TREE = (DATA / "export-tree.txt").read_text()  # info mtree -D of a small pc-like tree
FLAT = (DATA / "export-flat.mtree").read_text()  # info mtree -f of the same machine


def test_an_exported_tree_renders_as_the_flat_view_it_came_with(tmp_path: Path) -> None:
    doc = export(TREE, parse_views(FLAT, "flat"), "tree")
    regions = doc["regions"]
    assert regions["pam-rom"]["readonly"] is True  # seen as rom through it
    assert "readonly" not in regions["pam-rom#2"] and regions["pam-rom#2"]["enabled"] is False
    assert regions["flash-container"]["kind"] == "container"  # never shows: no accesses
    assert regions["ioapic"]["kind"] == "mmio"
    assert doc["address_spaces"] == {"cpu-memory-0": "system", "memory": "system"}
    from pathlib import Path

    path = Path(str(tmp_path)) / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    sc = Scenario(str(path))
    try:
        ours = parse_views(format_flat(list(sc.spaces.values())), "ours")
    finally:
        sc.close()
    assert [r.mtree_line() for r in ours[0].ranges] == [
        r.mtree_line() for r in parse_views(FLAT, "flat")[0].ranges
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("address-space: memory\n  nonsense\n", r"tree:2: unrecognised 'info mtree' line"),
        ("  0000000000000000-0000000000000fff (prio 0, i/o): x\n", r"tree:1: a region before any"),
        ("memory-region: x\n", r"tree: no 'address-space:' block"),
    ],
)
def test_text_that_is_not_a_tree_is_a_one_line_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_tree(text, "tree")


def test_an_alias_to_an_unknown_region_is_an_error() -> None:
    text = (
        "address-space: memory\n"
        "  0000000000000000-0000000000000fff (prio 0, ram): alias a @nowhere "
        "0000000000000000-0000000000000fff\n"
    )
    with pytest.raises(InputError, match="alias 'a': unknown target 'nowhere'"):
        export(text, [], "tree")
