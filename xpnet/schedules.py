"""Learning-rate schedules, as ``keras.optimizers.schedules``: give one as an optimizer's
``lr``/``learning_rate`` and the rate of each update is ``schedule(step)``, ``step`` being
the number of updates made before it (Keras' ``optimizer.iterations``), read from the
optimizer state, so a resumed checkpoint continues the schedule.

A schedule is a function of the step alone, a Python int or a 0-d integer array (a
compiled step traces it), written once for both.
"""
from __future__ import annotations

import math
import numbers

from array_api_compat import array_namespace, device

from . import _validate as V

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "CosineDecay",
           "SCHEDULES"]


class _Scalars:
    """The few functions a schedule needs, for a Python number step."""

    cos, floor = staticmethod(math.cos), staticmethod(math.floor)

    @staticmethod
    def minimum(a, b):
        return min(a, b)

    @staticmethod
    def where(cond, a, b):
        return a if cond else b


def _ops(step):
    """``(ops, step as a float)``: math for a number, the array's namespace for an array."""
    if isinstance(step, numbers.Number):
        return _Scalars, float(step)
    xp = array_namespace(step)  # a traced step: in the default float type (JAX: float64 with x64)
    dtype = xp.__array_namespace_info__().default_dtypes(device=device(step))["real floating"]
    return xp, xp.astype(step, dtype)


class LearningRateSchedule:
    """Base class: ``__call__(step)`` gives the rate for the update after ``step`` updates."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(vars(self))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase``,
    the exponent is floored (the rate drops every ``decay_steps`` updates)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = V.positive_float(initial_learning_rate,
                                                      "ExponentialDecay(initial_learning_rate)")
        self.decay_steps = V.positive_int(decay_steps, "ExponentialDecay(decay_steps)")
        self.decay_rate = V.positive_float(decay_rate, "ExponentialDecay(decay_rate)")
        self.staircase = bool(staircase)

    def __call__(self, step):
        ops, s = _ops(step)
        p = s / self.decay_steps
        if self.staircase:
            p = ops.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``boundaries[0] < step <= boundaries[1]`` ... ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), [float(v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise V.InvalidParameterError(
                f"PiecewiseConstantDecay needs one value more than boundaries, got "
                f"{len(boundaries)} boundaries and {len(values)} values")
        if any(later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
            raise V.InvalidParameterError("PiecewiseConstantDecay(boundaries) must increase")
        self.boundaries, self.values = boundaries, values

    def __call__(self, step):
        ops, s = _ops(step)
        rate = self.values[-1]
        for boundary, value in zip(reversed(self.boundaries), reversed(self.values[:-1])):
            rate = ops.where(s <= boundary, value, rate)
        return rate


class CosineDecay(LearningRateSchedule):
    """Cosine decay with an optional linear warmup (Keras 3's ``CosineDecay``).

    Without ``warmup_target``: ``initial_learning_rate * ((1 - alpha) * 0.5 * (1 +
    cos(pi * min(step, decay_steps) / decay_steps)) + alpha)``. With it, the rate first
    rises linearly from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps`` updates, then decays from ``warmup_target`` over ``decay_steps``.
    Loshchilov & Hutter 2017, https://arxiv.org/abs/1608.03983.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = V.non_negative_float(initial_learning_rate,
                                                          "CosineDecay(initial_learning_rate)")
        self.decay_steps = V.positive_int(decay_steps, "CosineDecay(decay_steps)")
        self.alpha = V.in_range(alpha, "CosineDecay(alpha)", 0.0, 1.0)
        self.warmup_target = (None if warmup_target is None else
                              V.positive_float(warmup_target, "CosineDecay(warmup_target)"))
        if not isinstance(warmup_steps, int) or isinstance(warmup_steps, bool) or warmup_steps < 0:
            raise V.InvalidParameterError(
                f"CosineDecay(warmup_steps) must be an int >= 0, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        ops, s = _ops(step)
        if self.warmup_target is None:
            top, t = self.initial_learning_rate, s
        else:
            top, t = self.warmup_target, s - self.warmup_steps
        t = ops.minimum(ops.where(t > 0, t, 0.0 * t), float(self.decay_steps))
        cosine = 0.5 * (1.0 + ops.cos(math.pi * t / self.decay_steps))
        decayed = top * ((1.0 - self.alpha) * cosine + self.alpha)
        if self.warmup_target is None or self.warmup_steps == 0:
            return decayed
        warm = self.initial_learning_rate + (self.warmup_target - self.initial_learning_rate) \
            * (s / self.warmup_steps)
        return ops.where(s < self.warmup_steps, warm, decayed)


SCHEDULES = {"ExponentialDecay": ExponentialDecay, "PiecewiseConstantDecay": PiecewiseConstantDecay,
             "CosineDecay": CosineDecay}
