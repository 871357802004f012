"""The ``TensorBoard`` callback: Keras 3's event files, written by an existing writer.

The writer is ``tensorboardX.SummaryWriter`` (``pip install 'xpnet[tensorboard]'``: it
needs neither TensorFlow nor PyTorch); xpnet writes no event files of its own. The layout is Keras': ``log_dir/train`` and
``log_dir/validation``, scalars named ``epoch_<key>`` (``val_`` dropped in the validation
folder), so ``tensorboard --logdir logs`` shows a Keras run and an xpnet run the same way.
"""
from __future__ import annotations

import os

from .callbacks import Callback

__all__ = ["TensorBoard", "summary_writer"]


def summary_writer():
    """The ``SummaryWriter`` class of an installed TensorBoard writer, or ImportError
    naming the extra."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError("the TensorBoard callback writes with tensorboardX: "
                          "pip install 'xpnet[tensorboard]'") from None
    return SummaryWriter


class TensorBoard(Callback):
    """Scalars per epoch (the loss, the metrics, ``learning_rate``) and, every
    ``histogram_freq`` epochs, a histogram of each trainable weight (``"<layer>/<name>"``).

    Keras' arguments that need a graph, images, a profiler or embeddings
    (``write_images``, ``profile_batch``, ``embeddings_freq``) are refused when asked
    for; ``write_graph`` is accepted (Keras' default is True) but writes nothing: an xpnet
    model has no graph to draw. ``update_freq`` is ``"epoch"`` (per-batch scalars are not
    written yet).
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        if not isinstance(histogram_freq, int) or isinstance(histogram_freq, bool) \
                or histogram_freq < 0:
            raise ValueError(f"TensorBoard(histogram_freq) must be an int >= 0, got "
                             f"{histogram_freq!r}")
        refused = {"write_images": write_images, "write_steps_per_second": write_steps_per_second,
                   "profile_batch": profile_batch, "embeddings_freq": embeddings_freq,
                   "embeddings_metadata": embeddings_metadata}
        for name, value in refused.items():
            if value not in (False, 0, None):
                raise NotImplementedError(f"TensorBoard({name}={value!r}) is not supported by "
                                          "xpnet; scalars and weight histograms are")
        if update_freq != "epoch":
            raise NotImplementedError(f"TensorBoard(update_freq={update_freq!r}): only 'epoch' "
                                      "is supported")
        self._writer_class = summary_writer()  # a missing writer is said at once
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.update_freq = update_freq
        self._writers = {}

    def _writer(self, which):
        if which not in self._writers:
            self._writers[which] = self._writer_class(os.path.join(self.log_dir, which))
        return self._writers[which]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            which, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writer(which).add_scalar(f"epoch_{name}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            from . import backend as B

            writer = self._writer("train")
            for key, value in self.model.get_params(trainable_only=True).items():
                writer.add_histogram(key, B.to_numpy(value), epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
