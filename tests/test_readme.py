"""The README's Python snippets run as written (in order, sharing one namespace,
as a reader would paste them), and print what their comments say: the KVM one on
the simulated KVM, and on /dev/kvm where it opens."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from kvm_backend.kvm import kvm_unavailable_reason

README = Path(__file__).parent.parent / "README.md"
OPENING = "with Kvm() as kvm, kvm.create_vm(slot_zap_all=False) as vm:"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def run_snippets(kvm_block: str) -> list[str]:
    taste, _ = snippets()[:2]
    namespace: dict[str, object] = {"__name__": "readme"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(taste, "README.md#taste", "exec"), namespace)
        exec(compile(kvm_block, "README.md#kvm", "exec"), namespace)
    return out.getvalue().splitlines()


def check(lines: list[str]) -> None:
    # print(rec.lines()[-5:])  # region_del x3, region_add (merged), commit
    last = eval(lines[0])
    assert [x.split()[0] for x in last] == ["region_del"] * 3 + ["region_add", "commit"]
    # print(kl.last_report.line()): the shadow comes back as a read-only split
    assert lines[1].startswith("split: 2 ioctls (1 del, 1 create") and "pause yes" in lines[1]


def test_the_readme_snippets_run_on_the_simulated_kvm() -> None:
    kvm_block = snippets()[1]
    assert OPENING in kvm_block
    sim = kvm_block.replace(OPENING, "with SimVm() as vm:")
    sim = sim.replace("vcpus = [vm.create_vcpu(i) for i in range(4)]", "vcpus = []")
    check(run_snippets("from kvm_backend import SimVm\n" + sim))


@pytest.mark.kvm
def test_the_readme_snippets_run_on_kvm() -> None:
    assert kvm_unavailable_reason() is None
    check(run_snippets(snippets()[1]))
