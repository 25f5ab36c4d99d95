"""Hostile input to the CLI: each problem is one line naming the file and line, exit
2, no traceback, no hang; and the figures the CLI reports are right (issue 11)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from tests.test_cli import AFTER, BEFORE, PAM, ROOT, run

HEADER = 'FlatView #0\n AS "memory", root: system\n Root memory region: system\n'


def scenario(tmp_path: Path, body: str, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text("version: 1\n" + body)
    return str(path)


def dump(tmp_path: Path, ranges: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(HEADER + ranges)
    return str(path)


def one_line_error(argv: list[str], pattern: str, *, within: float = 10.0) -> None:
    t0 = time.monotonic()
    code, _out, err = run(argv)
    assert time.monotonic() - t0 < within, "took too long"
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err


SYSTEM = "regions:\n  system: {kind: container, size: 2**64}\n"
SPACES = "address_spaces:\n  memory: system\n"


def test_ram_of_2_64_bytes_is_one_line(tmp_path: Path) -> None:
    body = SYSTEM + "  r: {kind: ram, size: 2**64}\n" + SPACES
    one_line_error(["show", scenario(tmp_path, body)], r"s\.yaml:4: .*exceeds what this host")


def test_max_size_of_2_64_is_one_line(tmp_path: Path) -> None:
    body = SYSTEM + "  r: {kind: ram, size: 4K, max_size: 2**64}\n" + SPACES
    one_line_error(["show", scenario(tmp_path, body)], r"s\.yaml:4: .*max_size")


def test_a_list_as_alias_target_is_one_line(tmp_path: Path) -> None:
    body = SYSTEM + "  r: {kind: ram, size: 4K}\n  a: {kind: alias, target: [r], size: 4K}\n"
    one_line_error(
        ["show", scenario(tmp_path, body + SPACES)],
        r"s\.yaml:5: an alias target must be a string, got \['r'\]",
    )


def test_deeply_nested_yaml_is_one_line(tmp_path: Path) -> None:
    body = "regions: " + "[" * 5000 + "]" * 5000 + "\n"
    one_line_error(["show", scenario(tmp_path, body)], r"nested deeper than 64 levels")


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    rows = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        rows.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("version: 1\n" + "\n".join(rows) + "\n")
    assert len(path.read_bytes()) < 500
    one_line_error(["show", str(path)], r"more than 200000 values", within=5.0)


def test_control_character_is_reported_on_its_own_line(tmp_path: Path) -> None:
    body = SYSTEM + "  x\x01y: {kind: ram, size: 4K}\n" + SPACES
    one_line_error(["show", scenario(tmp_path, body)], r"s\.yaml:4: bad YAML: control character")
    bad = dump(
        tmp_path, "  0000000000000000-0000000000000fff (prio 0, ram): pc\x01ram\n", "c.mtree"
    )
    one_line_error(["show", bad], r"c\.mtree:4: control character")


def test_region_reference_that_is_a_list_shows_the_value_not_a_repr(tmp_path: Path) -> None:
    body = SYSTEM + "subregions:\n  system:\n    - {region: [nope], at: 0}\n" + SPACES
    one_line_error(
        ["show", scenario(tmp_path, body)], r"s\.yaml:6: a region name must be a string, got"
    )
    _, _, err = run(["show", scenario(tmp_path, body)])
    assert "object at 0x" not in err


def test_list_valued_step_name_is_refused(tmp_path: Path) -> None:
    body = SYSTEM + SPACES + "steps:\n  - name: [a, b]\n    ops: []\n"
    one_line_error(["show", scenario(tmp_path, body)], r"s\.yaml:7: a step name must be a string")


def test_error_inside_a_step_names_the_path_once(tmp_path: Path) -> None:
    body = (
        SYSTEM
        + "  r: {kind: ram, size: 4K}\n"
        + SPACES
        + "steps:\n  - name: s\n    ops:\n      - {op: set_readonly, region: r, value: maybe}\n"
    )
    path = scenario(tmp_path, body)
    one_line_error(["show", path, "--step", "s"], r"s\.yaml:10: set_readonly value")
    _, _, err = run(["show", path, "--step", "s"])
    assert err.count("s.yaml") == 1, err


def test_dump_range_over_the_whole_space_is_one_line_in_replay(tmp_path: Path) -> None:
    full = dump(tmp_path, "  0000000000000000-ffffffffffffffff (prio 0, ram): pc.ram\n", "f.mtree")
    one_line_error(["replay", full], r"f\.mtree:4: .*exceeds what this host can map")


def test_dump_offset_past_the_64_bit_space_is_one_line(tmp_path: Path) -> None:
    big = dump(
        tmp_path,
        "  0000000000000000-0000000000001fff (prio 0, ram): pc.ram @ffffffffffffffff\n",
        "o.mtree",
    )
    one_line_error(["show", big], r"o\.mtree:4: @ffffffffffffffff runs past the end")


def test_rom_device_leaving_romd_mode_deletes_its_slot(tmp_path: Path) -> None:
    ram = "  0000000000000000-000000000009ffff (prio 0, ram): pc.ram\n"
    a = dump(tmp_path, ram + "  00000000fffc0000-00000000ffffffff (prio 0, romd): flash\n", "a")
    b = dump(tmp_path, ram + "  00000000fffc0000-00000000ffffffff (prio 0, i/o): flash\n", "b")
    code, out, err = run(["diff", a, b, "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert [(op["op"], op["gpa"]) for op in doc["ioctls"]] == [("delete", 0xFFFC0000)]
    assert [s["region"] for s in doc["slots_after"]] == ["pc.ram"]


def test_replay_and_diff_agree_that_a_remapping_commit_needs_a_pause() -> None:
    code, out, _ = run(["replay", PAM, "--json"])
    steps = {s["name"]: s for s in json.loads(out)["steps"]}
    assert code == 0 and steps["writable-1"]["remapped_bytes"] > 0
    assert steps["writable-1"]["pause_needed"] is True
    code, out, _ = run(["diff", f"{PAM}@", f"{PAM}@writable-1", "--json"])
    diffed = json.loads(out)
    for key in ("ioctls", "remapped_bytes", "unchanged_bytes_unmapped", "pause_needed"):
        assert diffed[key] == steps["writable-1"][key], key
    code, out, _ = run(["replay", PAM, "--json", "--mode", "quiesce"])
    assert all(s["pause_needed"] == bool(s["ioctls"]) for s in json.loads(out)["steps"][1:])


def test_diff_and_map_take_dumps_in_a_folder_with_an_at_sign(tmp_path: Path) -> None:
    folder = tmp_path / "vm@host"
    folder.mkdir()
    a, b = folder / "before.mtree", folder / "after.mtree"
    shutil.copy(ROOT / BEFORE, a)
    shutil.copy(ROOT / AFTER, b)
    code, out, err = run(["diff", str(a), str(b)])
    assert code == 0 and "summary:" in out, err
    code, _, err = run(["map", str(a), str(b), "--svg", str(tmp_path / "m.svg")])
    assert code == 0 and (tmp_path / "m.svg").exists(), err
    one_line_error(["diff", f"{a}@step", str(b)], r"a dump file takes no '@STEP'")


def test_messages_name_the_command_once(tmp_path: Path) -> None:
    one_line_error(["show", PAM, "--json"], r"^flatview show: --json needs --flat$")
    one_line_error(["map", f"{PAM}@", f"{PAM}@writable-1"], r"^flatview map: give --svg")
