"""matplotlib figures for ``--plot OUT.png`` (install with ``pip install flatview[bench]``)."""

from __future__ import annotations

from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scaling(results: dict[str, Any], out: str) -> None:
    plt = _pyplot()
    counts = sorted(int(n) for n in results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode in ("naive", "quiesce", "auto", "optimistic"):
        ys = [results[str(n)][mode]["latency_us"]["p50"] / 1000 for n in counts]
        ax.plot(counts, ys, marker="o", label=mode)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("running vCPUs")
    ax.set_ylabel("commit latency p50 (ms)")
    ax.set_title("Commit latency against vCPUs, per mode")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_pc_boot(results: dict[str, Any], out: str) -> None:
    plt = _pyplot()
    rows = results["sim"]
    labels = [
        r["commit"].replace("make_bios_", "").replace(", PAM ", "\n") for r in rows["ours_auto"]
    ]
    xs = range(len(labels))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.27
    for i, name in enumerate(("ours_auto", "ours_optimistic", "qemu_like")):
        ax.bar(
            [x + (i - 1) * width for x in xs], [r["ioctls"] for r in rows[name]], width, label=name
        )
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("ioctls per commit")
    ax.set_title("SeaBIOS PAM commits: ioctls, ours vs QEMU-style")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_render(results: dict[str, Any], out: str) -> None:
    """One-region toggle commit against region count, incremental and full."""
    plt = _pyplot()
    counts = sorted(int(n) for n, r in results.items() if isinstance(r, dict))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (
        ("toggle_commit_full", "full re-render, plain listener"),
        ("toggle_commit_incremental", "incremental, plain listener"),
        ("toggle_commit_kvm_sim_full", "full, + KVM listener (sim)"),
        ("toggle_commit_kvm_sim_incremental", "incremental, + KVM listener (sim)"),
    ):
        ys = [results[str(n)][key]["median_us"] / 1000 for n in counts]
        ax.plot(counts, ys, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("regions")
    ax.set_ylabel("one-region toggle commit, median (ms)")
    ax.set_title("Commit cost against topology size")
    ax.legend()
    ax.grid(True, alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_guest_cost(doc: dict[str, Any], out: str) -> None:
    """ioctls and what the guest felt (ioctl + pause + stall) per commit and style."""
    plt = _pyplot()
    commits = doc["commits"]
    styles = ("ours_auto", "ours_optimistic", "qemu_style")
    labels = [
        c["name"]
        .replace("make_bios_", "")
        .replace(", PAM ", "\n")
        .replace(" -> ", "→")
        .replace("hotplug ", "hotplug\n")
        for c in commits
    ]
    xs = range(len(labels))
    width = 0.27
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    for i, style in enumerate(styles):
        pos = [x + (i - 1) * width for x in xs]
        left.bar(pos, [c[style]["ioctls"] for c in commits], width, label=style)
        right.bar(pos, [c[style]["total_us"] / 1000 for c in commits], width, label=style)
    left.set_ylabel("ioctls per commit")
    left.set_title("ioctls")
    right.set_ylabel("ioctl + pause + guest stall (ms, log)")
    right.set_yscale("log")
    right.set_title("what 4 sweeping vCPUs felt (real KVM, 512 MiB)")
    for ax in (left, right):
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
