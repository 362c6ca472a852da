"""Parameter sweeps of the DHT simulation and their PNG plots (`python -m simulations.dht --plot DIR`).

Two figures, each point one `simulations.dht.run` with the requested seed and lookup count:
- `dht_vs_nodes.png`: success rate and k-closest recall, mean/p95 hops and requests per lookup against
  network size (N = 100, 300, 1,000, 3,000, 10,000, capped at `--nodes`), with no churn and with 20%
  dead nodes;
- `dht_vs_churn.png`: the same against the fraction of silently dead nodes (0 to 50%) at `--nodes`.
Runs shared by both sweeps are done once. Each run's JSON line is printed as it finishes.
matplotlib is imported here only, with the non-interactive Agg backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulations.dht import SimParams

SIZES = (100, 300, 1000, 3000, 10_000)
CHURNS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
SIZE_CHURNS = (0.0, 0.2)


def sweep(
    params: SimParams, run: Callable[[SimParams], dict[str, Any]]
) -> dict[tuple[int, float], dict[str, Any]]:
    """Run every (N, churn) point needed by the two figures; return the results by point."""
    sizes = sorted({n for n in SIZES if n < params.nodes} | {params.nodes})
    points = [(n, c) for c in SIZE_CHURNS for n in sizes] + [(params.nodes, c) for c in CHURNS]
    results: dict[tuple[int, float], dict[str, Any]] = {}
    for n, c in points:
        if (n, c) in results:
            continue
        r = run(replace(params, nodes=n, churn=c))
        results[(n, c)] = r
        print(json.dumps(r), flush=True)
    return results


def plot(results: dict[tuple[int, float], dict[str, Any]], nodes: int, out_dir: str | Path) -> list[Path]:
    """Write the two PNG figures for sweep `results`; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for c in SIZE_CHURNS:
        pts = sorted((n, r) for (n, cc), r in results.items() if cc == c)
        xs = [n for n, _ in pts]
        label = f"{int(c * 100)}% dead"
        (ln,) = axes[0].plot(xs, [100 * r["success_rate"] for _, r in pts], "o-", label=f"success, {label}")
        recall = [100 * r["mean_recall"] for _, r in pts]
        axes[0].plot(xs, recall, "x--", color=ln.get_color(), label=f"k-closest recall, {label}")
        (line,) = axes[1].plot(xs, [r["mean_hops"] for _, r in pts], "o-", label=f"mean, {label}")
        axes[1].plot(
            xs, [r["p95_hops"] for _, r in pts], "x--", color=line.get_color(), label=f"p95, {label}"
        )
        axes[2].plot(xs, [r["mean_messages"] for _, r in pts], "o-", label=label)
    for ax, title in zip(axes, ("lookup success / recall (%)", "hops", "requests per lookup"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("nodes")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylim(85, 100.5)
    axes[1].axhline(4.5, color="grey", lw=0.8, ls=":")
    fig.suptitle("Kademlia find-peer lookups vs network size (k=20, alpha=3)")
    fig.tight_layout()
    p = out / "dht_vs_nodes.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    written.append(p)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    pts_c = sorted((c, r) for (n, c), r in results.items() if n == nodes)
    xs_c = [100 * c for c, _ in pts_c]
    axes[0].plot(xs_c, [100 * r["success_rate"] for _, r in pts_c], "o-", label="success")
    axes[0].plot(xs_c, [100 * r["mean_recall"] for _, r in pts_c], "x--", label="k-closest recall")
    axes[0].legend(fontsize=8)
    axes[1].plot(xs_c, [r["mean_hops"] for _, r in pts_c], "o-", label="mean")
    axes[1].plot(xs_c, [r["p95_hops"] for _, r in pts_c], "x--", label="p95")
    axes[1].legend(fontsize=8)
    axes[2].plot(xs_c, [r["mean_messages"] for _, r in pts_c], "o-", label="requests")
    ax2 = axes[2].twinx()
    ax2.plot(xs_c, [r["mean_latency_s"] for _, r in pts_c], "s:", color="tab:red", label="latency (s)")
    ax2.set_ylabel("mean simulated latency (s)", color="tab:red")
    for ax, title in zip(axes, ("lookup success / recall (%)", "hops", "requests per lookup"), strict=True):
        ax.set_xlabel("silently dead nodes (%)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylim(85, 100.5)
    fig.suptitle(f"Kademlia find-peer lookups vs churn, {nodes:,} nodes (10 s per-request timeout)")
    fig.tight_layout()
    p = out / "dht_vs_churn.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    written.append(p)
    return written


def sweep_and_plot(params: SimParams, out_dir: str, run: Callable[[SimParams], dict[str, Any]]) -> list[Path]:
    """`sweep` then `plot`."""
    return plot(sweep(params, run), params.nodes, out_dir)
