"""The figure of ``report.py``: inference rows/s against batch size, training samples/s,
and the training FLOP rate against hidden width next to the GEMM rate."""
from __future__ import annotations

__all__ = ["plot"]

TARGET_BACKEND = "numpy"
COLORS = {"xpnet": "C0", "numpy_hand": "C1", "torch": "C2", "sklearn": "C3", "numpy_gemm": "C7"}
# xpnet on the other backends: colours no baseline uses, dashed
BACKEND_COLORS = {"torch": "C4", "array_api_strict": "C5", "cupy": "C6"}
LABELS = {"numpy_hand": "hand-written NumPy", "torch": "PyTorch (torch.nn)"}


def _find(recs, **want):
    return next((r for r in recs if all(r.get(k) == v for k, v in want.items())), None)


def _legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _inference(ax, recs):
    backends = sorted({r.backend for r in recs if r.get("impl") == "xpnet"})
    for impl in ("xpnet", "numpy_hand", "torch"):
        for backend in backends if impl == "xpnet" else [TARGET_BACKEND]:
            pts = sorted((r.batch, r.rate()) for r in recs if r.get("workload") == "predict"
                         and r.impl == impl and r.backend == backend)
            if pts:
                label = LABELS.get(impl, impl)
                if impl == "xpnet" and len(backends) > 1:
                    label = f"xpnet ({backend} backend)"
                other = impl == "xpnet" and backend != TARGET_BACKEND
                ax.plot(*zip(*pts), "o--" if other else "o-", label=label,
                        color=BACKEND_COLORS.get(backend, "C8") if other else COLORS[impl])
            ps = _find(recs, workload="per_sample", impl=impl, backend=backend)
            if ps is not None and backend == TARGET_BACKEND:
                ax.axhline(ps.rate(), color=COLORS[impl], ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="predict batch size", ylabel="rows / s",
           title="MNIST inference (dotted: one row at a time)")
    _legend(ax)


def _training(ax, recs):
    train = sorted((r for r in recs if r.get("workload") == "train"
                    and r.backend == TARGET_BACKEND), key=lambda r: (r.optimizer, r.batch, r.impl))
    ax.bar(range(len(train)), [r.rate() for r in train],
           color=[COLORS.get(r.impl, "C4") for r in train])
    ax.set_xticks(range(len(train)), [f"{r.impl}\n{r.optimizer} b{r.batch}" for r in train],
                  rotation=60, fontsize=7, ha="right")
    ax.set(ylabel="samples / s", title=f"training, one epoch (784-100-10; {TARGET_BACKEND} backend)")


def _width(ax, recs):
    for impl in ("xpnet", "numpy_hand", "numpy_gemm"):
        pts = sorted((r.width, r.gflops()) for r in recs if r.get("workload") == "scale_width"
                     and r.impl == impl and r.backend == TARGET_BACKEND)
        if pts:
            ax.plot(*zip(*pts), "o-", color=COLORS[impl],
                    label="GEMM (same products)" if impl == "numpy_gemm" else LABELS.get(impl, impl))
    ax.set_ylim(bottom=0)
    ax.set(xscale="log", xlabel="hidden width (784-w-10, batch 1000)", ylabel="GFLOP/s",
           title=f"training FLOP rate ({TARGET_BACKEND} backend)")
    _legend(ax)


def plot(recs, path):
    """Write the three panels for the records ``recs`` (see report.py) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    _inference(axes[0], recs)
    _training(axes[1], recs)
    _width(axes[2], recs)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
