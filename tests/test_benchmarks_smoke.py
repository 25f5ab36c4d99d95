"""Each benchmark runs end to end in reduced size and prints its JSON shape."""

from __future__ import annotations

import json

import pytest

from benchmarks import kick, render


def test_render_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    render.main(smoke=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc["benchmark"] == "render"
    assert {"kernel", "python"} <= set(doc["machine"])
    for n in ("100", "1000"):
        assert doc["results"][n]["render"]["median_us"] > 0
        assert doc["results"][n]["toggle_commit"]["n"] == 6
    assert doc["results"]["toggle_ratio_largest_to_smallest"] > 0


@pytest.mark.kvm
def test_kick_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    kick.main(smoke=True)
    doc = json.loads(capsys.readouterr().out)
    pause = doc["results"]["pause_all"]
    assert set(pause) == {"1", "2", "4"}
    assert all(v["faults"] == 0 and v["median_us"] > 0 for v in pause.values())
    assert set(doc["results"]["ioctl"]) == {"create", "delete", "move", "flags"}


def test_pc_boot_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import pc_boot

    pc_boot.main(smoke=True)
    doc = json.loads(capsys.readouterr().out)
    ours = doc["results"]["sim"]["ours"]
    assert len(ours) == 4 and all(r["unchanged_bytes_unmapped"] == 0 for r in ours)
    assert doc["results"]["summary"]["ioctls_qemu_like"] == 23
