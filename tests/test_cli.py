"""The flatview CLI: golden outputs, one-line errors (never a traceback), fuzzed input."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatview.cli import main

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"
PAM = "example:pc-pam"
HOTPLUG = "example:hotplug"
BEFORE = "tests/data/qemu72-pc-before-bios.mtree"
AFTER = "tests/data/qemu72-pc-after-bios.mtree"

GOLDEN_CASES = {
    "show-tree.txt": ["show", PAM],
    "show-tree-disabled.txt": ["show", PAM, "-D", "--step", "writable-1"],
    "show-flat.txt": ["show", PAM, "--flat", "--step", "readonly-2"],
    "show-flat.json": ["show", PAM, "--flat", "--json"],
    "diff-pam.txt": ["diff", f"{PAM}@", f"{PAM}@writable-1"],
    "diff-pam.json": ["diff", f"{PAM}@writable-2", f"{PAM}@readonly-1", "--json"],
    "diff-qemu-dumps.txt": ["diff", BEFORE, AFTER],
    "diff-qemu-dumps.json": ["diff", BEFORE, AFTER, "--json"],
    "replay-pam.txt": ["replay", PAM],
    "replay-hotplug.json": ["replay", HOTPLUG, "--json"],
    "replay-dumps.json": ["replay", BEFORE, AFTER, "--json"],
}


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:
                code = int(e.code or 0)
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def host_addresses_masked(text: str) -> str:
    """Host addresses change from run to run: golden files hold them masked."""
    text = re.sub(r"ua=0x[0-9a-f]+", "ua=0xHOST", text)
    return re.sub(r'"ua": \d+', '"ua": 0', text)


QEMU10_TRACE = re.compile(
    r"kvm_set_user_memory AddrSpace#(\d+) Slot#(\d+) flags=0x([0-9a-f]+) gpa=0x([0-9a-f]+) "
    r"size=0x([0-9a-f]+) ua=0x([0-9a-f]+) guest_memfd=(-?\d+) guest_memfd_offset=0x([0-9a-f]+) "
    r"ret=(-?\d+)$"
)


def test_trace_lines_match_the_pattern_of_a_captured_qemu10_line() -> None:
    captured = (ROOT / "tests" / "data" / "qemu10-pc-trace.log").read_text().splitlines()
    assert captured and all(QEMU10_TRACE.match(line) for line in captured)
    code, out, _ = run(["diff", f"{PAM}@", f"{PAM}@writable-1"])
    ours = [line for line in out.splitlines() if line.startswith("kvm_set_user_memory")]
    assert code == 0 and ours
    for line in ours:
        m = QEMU10_TRACE.match(line)
        assert m is not None, line
        assert int(m.group(6), 16) != 0  # a real host address, as QEMU prints


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_output(name: str) -> None:
    code, out, err = run(GOLDEN_CASES[name])
    assert code == 0, err
    out = host_addresses_masked(out)
    path = GOLDEN / name
    if os.environ.get("FLATVIEW_UPDATE_GOLDEN"):
        path.write_text(out)
    assert out == path.read_text()
    if name.endswith(".json"):
        doc = json.loads(out)
        if "steps" in doc:
            step = doc["steps"][-1]
            assert {
                "name",
                "ioctls",
                "classes",
                "remapped_bytes",
                "unchanged_bytes_unmapped",
                "pause_needed",
                "slots_after",
            } <= set(step)
            assert set(doc["totals"]) >= {"ioctls", "remapped_bytes"}


def test_diff_beats_qemu_on_the_pam_scenario_in_auto_and_optimistic_mode() -> None:
    code, out, _ = run(["diff", f"{PAM}@", f"{PAM}@writable-1", "--json"])
    auto = json.loads(out)
    assert code == 0 and len(auto["ioctls"]) < auto["qemu_style"]["ioctls"]
    # auto re-creates the small ROM pieces it merged (cheaper than more ioctls)
    assert 0 < auto["unchanged_bytes_unmapped"] <= 0x40000
    assert auto["unchanged_bytes_unmapped"] < auto["qemu_style"]["unmapped_bytes"]
    code, out, _ = run(["diff", f"{PAM}@", f"{PAM}@writable-1", "--json", "--mode", "optimistic"])
    optimistic = json.loads(out)
    assert code == 0 and optimistic["unchanged_bytes_unmapped"] == 0
    assert len(optimistic["ioctls"]) < optimistic["qemu_style"]["ioctls"]
    assert {r["region"] for r in optimistic["removed"]} == {"pc.rom", "pc.ram"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "nope.yaml"], r"nope\.yaml: cannot read"),
        (["show", "tests/data/bad-yaml.yaml"], r"bad-yaml\.yaml:5: bad YAML"),
        (["show", "tests/data/unknown-key.yaml"], r"unknown-key\.yaml:3: unknown key 'colour'"),
        (
            ["show", "tests/data/unknown-region.yaml"],
            r"unknown-region\.yaml:7: unknown region 'rom'",
        ),
        (["show", "tests/data/bad-number.yaml"], r"bad-number\.yaml:3: .*not a number: '12Q'"),
        (["show", "tests/data/bad-op.yaml"], r"bad-op\.yaml:11: op 'set_size': missing 'size'"),
        (["show", "tests/data/unknown-op.yaml"], r"unknown-op\.yaml:11: unknown op 'explode'"),
        (["show", PAM, "--step", "nope"], r"no step named 'nope'"),
        (["diff", "tests/data/truncated.mtree", AFTER], r"truncated\.mtree:5: unrecognised line"),
        (["diff", "tests/data/empty.mtree", AFTER], r"empty\.mtree: no 'FlatView #N' block"),
        (
            ["show", "tests/data/alias-past-end.yaml"],
            r"alias-past-end\.yaml:4: .*runs past the end",
        ),
    ],
)
def test_malformed_input_is_one_line_exit_2(argv: list[str], message: str) -> None:
    code, _out, err = run(argv)
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err


def test_every_command_has_help_with_an_example() -> None:
    for cmd in ("show", "diff", "replay", "map", "stress", "demo"):
        code, out, _ = run([cmd, "--help"])
        assert code == 0 and "example: flatview " + cmd in out


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = (ROOT / "flatview" / "cli" / "scenarios" / "hotplug.yaml").read_text().splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.integers(0, 3))
        if kind == 0:
            del lines[i]
        elif kind == 1 and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            ch = draw(st.sampled_from(list(":{}[],-#'\"x0 9Qz")))
            lines[i] = lines[i][:j] + ch + lines[i][j + 1 :]
        elif kind == 2:
            lines.insert(i, draw(st.sampled_from(["  bogus: 1", "- x", "steps: 3", "\tx", "::"])))
        else:
            lines[i] = lines[i].replace("size", draw(st.sampled_from(["sise", "size: -1 #", ""])))
    return "\n".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzzed_scenarios_never_traceback(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "s.yaml"
    path.write_text(text)
    for argv in (["show", str(path)], ["replay", str(path), "--json"]):
        code, _out, err = run(argv)
        assert code in (0, 2), err
        if code == 2:
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
            assert str(path) in err


def test_map_svg_has_labels_legend_and_slots(tmp_path: Path) -> None:
    svg = tmp_path / "m.svg"
    code, _, err = run(["map", f"{PAM}@", f"{PAM}@readonly-1", "--svg", str(svg)])
    assert code == 0, err
    text = svg.read_text()
    for label in ("pc.ram", "pc.rom", "KVM slot", "changed", "readonly-1"):
        assert label in text
    assert text.count('stroke="#d50000"') >= 2  # changed ranges highlighted


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, *argv: str) -> str:
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900"]
    return subprocess.run(
        ["chromium", *flags, *argv], check=True, capture_output=True, text=True, timeout=120
    ).stdout


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium not installed")
def test_map_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    html = tmp_path / "m.html"
    code, _, err = run(["map", f"{PAM}@", f"{PAM}@writable-2", "--html", str(html)])
    assert code == 0, err
    png = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={png}", html.as_uri())
    dom = chromium(tmp_path, "--dump-dom", html.as_uri())
    for label in ("pc.ram", "pc.rom", "KVM slot", "ioctls", "slot 0"):
        assert label in dom
    import matplotlib.image as mpimg

    pixels = mpimg.imread(str(png))
    assert pixels.shape[0] > 100 and float(pixels.std()) > 0.05, "screenshot looks blank"


MEASURE = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="margin:0">%s<pre id="result"></pre><script>
const svg = document.querySelector("svg").getBoundingClientRect();
const out = {window: window.innerWidth, svg: svg.width, labels: [], clipped: []};
for (const g of document.querySelectorAll("g.range, g.slot")) {
  const box = g.querySelector("rect").getBoundingClientRect();
  const text = g.querySelector("text").getBoundingClientRect();
  out.labels.push(g.querySelector("text").textContent);
  if (text.left < box.left - 0.5 || text.right > box.right + 0.5 ||
      text.top < box.top - 0.5 || text.bottom > box.bottom + 0.5)
    out.clipped.push(g.querySelector("text").textContent);
}
document.getElementById("result").textContent = JSON.stringify(out);
</script></body></html>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium not installed")
@pytest.mark.parametrize(
    "argv",
    [
        [f"{PAM}@", f"{PAM}@readonly-2"],
        ["tests/data/qemu72-pc-after-bios.mtree", "--as", "I/O"],  # 78 ranges, dense
    ],
)
def test_map_labels_fit_their_boxes_and_the_map_uses_the_page_width(
    tmp_path: Path, argv: list[str]
) -> None:
    svg = tmp_path / "m.svg"
    code, _, err = run(["map", *argv, "--svg", str(svg)])
    assert code == 0, err
    page = tmp_path / "measure.html"
    page.write_text(MEASURE % svg.read_text())
    dom = chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", page.as_uri())
    m = re.search(r'<pre id="result">(.*?)</pre>', dom, flags=re.S)
    assert m is not None, dom[:500]
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["labels"] and result["clipped"] == []
    assert result["svg"] >= 0.95 * result["window"]  # scales to the page


@pytest.mark.kvm
def test_stress_json(tmp_path: Path) -> None:
    code, out, err = run(
        ["stress", "--vcpus", "2", "--transactions", "60", "--mode", "auto", "--json"]
    )
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {
        "mode",
        "faults",
        "lost_writes",
        "transactions",
        "commits",
        "safe",
        "pauses",
        "latency_us",
    }
    assert doc["faults"] == 0 and doc["lost_writes"] == 0 and doc["transactions"] == 60
    assert 0 < doc["commits"] <= 60
    assert set(doc["latency_us"]) == {"p50", "p99"}


@pytest.mark.kvm
def test_replay_on_real_kvm_matches_the_simulated_plan() -> None:
    code, out, err = run(["replay", HOTPLUG, "--backend", "kvm", "--json"])
    assert code == 0, err
    real = json.loads(out)
    _, sim_out, _ = run(["replay", HOTPLUG, "--json"])
    sim = json.loads(sim_out)
    strip = [
        [(i["op"], i["slot"], i["gpa"], i["size"], i["flags"]) for i in s["ioctls"]]
        for s in real["steps"]
    ]
    assert strip == [
        [(i["op"], i["slot"], i["gpa"], i["size"], i["flags"]) for i in s["ioctls"]]
        for s in sim["steps"]
    ]
    # the plan's figure on KVM equals the simulated timeline's; growth was cut at the
    # block's power-of-two offsets, so shrinking back deletes a whole slot
    assert real["totals"] == sim["totals"]
    assert real["totals"]["unchanged_bytes_unmapped"] == 0
    assert [i["op"] for i in real["steps"][-1]["ioctls"]] == ["delete"]
