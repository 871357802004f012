"""The record of a training run, as Keras' ``History``."""
from __future__ import annotations

__all__ = ["History"]


class History:
    """What :meth:`xpnet.Sequential.fit` returns.

    Attributes
    ----------
    history : dict[str, list[float]]
        Per-epoch values: ``loss``, each metric, and ``val_`` versions when validating.
    epoch : list[int]
        The epoch numbers that ran (0-based, continuing from ``initial_epoch``).
    params : dict
        The ``fit`` settings (epochs, batch_size, steps per epoch ...).
    stop_reason : str or None
        Why training stopped early (early stopping, a non-finite loss), if it did.
    """

    def __init__(self, params=None):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.params = dict(params or {})
        self.stop_reason = None

    def record(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def plot(self, keys=None, ax=None, path=None):
        """Plot the learning curves with matplotlib (``pip install 'xpnet[plot]'``).

        ``keys`` selects the series (default: all); a key and its ``val_`` partner share
        one panel. Saves to ``path`` when given. Returns the matplotlib figure.

        With ``path`` and no ``ax`` the figure is a standalone ``matplotlib.figure.Figure``,
        so saving touches neither pyplot's figures nor the session's backend (a notebook
        keeps its inline plots); otherwise it is a pyplot figure, for ``plt.show()``.
        """
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise ImportError("History.plot needs matplotlib: pip install 'xpnet[plot]'") from exc
        keys = list(keys) if keys is not None else list(self.history)
        bases = [k for k in keys if not k.startswith("val_")] or keys
        if ax is None:
            size = (4.5 * len(bases), 3.5)
            if path is not None:
                from matplotlib.figure import Figure

                fig = Figure(figsize=size)
                axes = fig.subplots(1, len(bases), squeeze=False)
            else:
                import matplotlib.pyplot as plt

                fig, axes = plt.subplots(1, len(bases), figsize=size, squeeze=False)
            axes = list(axes[0])
        else:
            axes = [ax] * len(bases)
            fig = ax.figure
        for a, base in zip(axes, bases):
            for key in (base, "val_" + base):
                if key in self.history:
                    a.plot(self.epoch, self.history[key], marker="o", label=key)
            a.set_xlabel("epoch")
            a.set_title(base)
            a.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"
