"""A model's parameter counts and its summary table (as Keras' ``model.summary()``)."""
from __future__ import annotations

import math

__all__ = ["Summary"]


def _size(arrays: dict) -> int:
    return sum(math.prod(int(d) for d in a.shape) for a in arrays.values())


class Summary:
    """The counting and printing methods of :class:`~xpnet.Sequential`."""

    def count_params(self) -> int:
        """The number of scalars in every layer's parameters and state (Keras' total)."""
        self.build_for()
        return sum(_size(l.params) + _size(l.state) for l in self.layers)

    def summary(self, print_fn=print) -> str:
        """Print (and return) a table of layers, output shapes and parameter counts.

        As Keras: "Trainable params" are the parameters of the layers whose ``trainable``
        is True; "Non-trainable params" are the state (BatchNormalization's running
        statistics) and the parameters of frozen layers.
        """
        self._require_layers("summarise itself")
        self.build_for()
        heads = ("Layer (type)", "Output Shape", "Param #")
        rows = [(f"{l.name} ({type(l).__name__})", str((None, *s)),
                 f"{_size(l.params) + _size(l.state):,}")
                for l, s in zip(self.layers, self.output_shapes)]
        trainable = sum(_size(l.params) for l in self.layers if getattr(l, "trainable", True))
        widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(heads)]
        line = "".join(h.ljust(w) for h, w in zip(heads, widths))
        rule = "=" * len(line)
        text = [f'Model: "{self.name}"  (backend: {self.backend.name}, {self.dtype_name})', rule, line, rule]
        text += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        total = self.count_params()
        text += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}", rule]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out
