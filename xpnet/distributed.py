"""Data-parallel training over several processes: torch.distributed or mpi4py.

    comm = xn.distributed.auto()          # torchrun / mpirun environment, else one process
    model.fit(x, y, batch_size=256, epochs=10, distributed=comm)

launched with ``torchrun --standalone --nproc-per-node 2 train.py`` (or ``mpirun -n 2
python train.py``); ``python train.py`` runs the same script on one process, where
``auto()`` is a no-op. Semantics are those of Keras' ``MirroredStrategy``:

- ``batch_size`` is the *global* batch: every rank passes the same ``x``/``y``, walks the
  same batches in the same per-epoch order (from the seed and the epoch) and takes its
  share of each batch (``m * r // p`` to ``m * (r + 1) // p`` of a batch of ``m`` rows);
  every rank does the same number of steps, even where a batch has fewer rows than ranks.
- Each rank's gradients are scaled by its share of the batch's rows and summed in one
  all-reduce of one flat buffer per step, which also carries the loss, the metric sums
  and the BatchNormalization running statistics (averaged, weighted the same way). So
  N ranks compute the same numbers as one process with the whole batch (to rounding;
  BatchNormalization's training-mode statistics stay per rank unless it is made with
  ``synchronized=True``, which all-reduces them), every rank
  logs the same losses and metrics, and EarlyStopping and TerminateOnNaN decide alike.
- At the start of ``fit`` rank 0's parameters, state and optimizer state are broadcast,
  and the ranks check they were given the same data shapes and arguments.
- Dropout masks are seeded from (seed, epoch, layer, rank). Validation runs whole on every
  rank (no communication; the same numbers everywhere).
- Files are written by rank 0 only (``ModelCheckpoint``, ``save_checkpoint``,
  ``save_weights``); every rank loads the same checkpoint to resume.
- A rank that dies makes the others raise :class:`DistributedError` at their next
  collective (at the latest after ``timeout`` seconds), instead of hanging.
"""
from __future__ import annotations

import os

from . import _backend_dist as _ops
from . import backend as B
from .backend import BackendUnavailableError
from ._backend_dist import DistributedError

__all__ = ["Communicator", "DistributedError", "auto", "single", "torch", "mpi", "resolve",
           "world", "is_main_process"]

_WORLD = None   # the communicator this process made last (rank 0 writes files)
_SCOPE = []     # communicators entered with ``with``: fit's default


class Communicator:
    """Rank, size and collectives of one group of processes.

    Made by :func:`auto`, :func:`torch`, :func:`mpi` or :func:`single`. ``with comm:``
    makes it the default of ``fit`` inside the block and closes it at the end.
    """

    def __init__(self, ops):
        global _WORLD
        self._ops = ops
        self.kind = ops.name
        self.rank, self.size, self.local_rank = ops.rank, ops.size, ops.local_rank
        self.timeout = ops.timeout
        if self.size > 1:
            _WORLD = self

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes files and prints progress."""
        return self.rank == 0

    def allreduce_sum(self, buf, what="all-reduce"):
        """Sum ``buf`` (a 1-d array of any backend) over the ranks, in place; return it."""
        return self._ops.allreduce_sum(buf, what)

    def broadcast(self, buf, root=0, what="broadcast"):
        """Rank ``root``'s ``buf`` on every rank, in place; return it."""
        return self._ops.broadcast(buf, root, what)

    def broadcast_object(self, obj, root=0, what="broadcast"):
        """Rank ``root``'s picklable ``obj`` on every rank."""
        return self._ops.broadcast_object(obj, root, what)

    def allgather_object(self, obj, what="all-gather"):
        """Every rank's ``obj``, as a list indexed by rank."""
        return self._ops.allgather_object(obj, what)

    def barrier(self, what="barrier"):
        """Wait until every rank gets here."""
        self._ops.barrier(what)

    def close(self):
        """Release the process group where this communicator made it."""
        global _WORLD
        self._ops.close()
        if _WORLD is self:
            _WORLD = None

    def __enter__(self):
        _SCOPE.append(self)
        return self

    def __exit__(self, *exc):
        _SCOPE.remove(self)
        self.close()
        return False

    def __repr__(self):
        return f"Communicator(kind={self.kind!r}, rank={self.rank}, size={self.size})"


def _env_int(*names):
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"${name}={value!r} is not an integer (set by the launcher: "
                                 "torchrun or mpirun)") from None
    return None


def _missing(what, extra):
    return BackendUnavailableError(f"{what} is not installed: pip install 'xpnet[{extra}]'")


def auto(timeout=300.0, backend=None) -> Communicator:
    """The communicator the launcher asks for.

    ``torchrun`` (``WORLD_SIZE``/``RANK``/``MASTER_ADDR``...) gives :func:`torch`; an MPI
    launch (``OMPI_COMM_WORLD_SIZE``, ``PMI_SIZE``) gives :func:`mpi`; no launcher, or a
    world of one, gives :func:`single`, with which ``fit`` trains as without it.
    ``timeout`` (seconds) bounds each collective of torch.distributed: a dead rank makes
    the others fail after at most that long. ``backend``: "gloo" or "nccl" (default: NCCL
    when xpnet's active backend is on a GPU, else gloo). With NCCL each rank uses the GPU
    numbered ``LOCAL_RANK``: call ``auto()`` before the backend makes its first array
    (before building the model).
    """
    if (_env_int("WORLD_SIZE") or 1) > 1:
        return torch(timeout=timeout, backend=backend)
    if (_env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE") or 1) > 1:
        return mpi()
    return single()


def single() -> Communicator:
    """One process: ``fit`` with it trains as without it."""
    return Communicator(_ops.SingleOps())


def torch(timeout=300.0, backend=None) -> Communicator:
    """torch.distributed's default group, made from the ``env://`` variables unless the
    program has made it (then ``timeout`` and ``backend`` are the program's)."""
    if not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    name = B.get_backend()  # CuPy is not loaded here: it fixes its device when it loads
    device = "cuda" if name == "cupy" else (B.current().device if name == "torch" else "cpu")
    try:
        ops = _ops.TorchOps(backend, timeout, device, _env_int("LOCAL_RANK") or 0, name)
    except ImportError:
        raise _missing("torch (for torch.distributed)", "distributed") from None
    return Communicator(ops)


def mpi(comm=None) -> Communicator:
    """An mpi4py communicator (default ``MPI.COMM_WORLD``) as a :class:`Communicator`."""
    local = _env_int("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK")
    try:
        ops = _ops.MPIOps(comm, local_rank=local or 0)
    except ImportError:
        raise _missing("mpi4py", "mpi") from None
    return Communicator(ops)


def resolve(spec):
    """``fit``'s ``distributed`` argument as a Communicator, or None for one process.

    None: the communicator of an enclosing ``with comm:`` (else one process); a
    :class:`Communicator`; an mpi4py communicator; "auto" for :func:`auto`.
    """
    if spec is None:
        spec = _SCOPE[-1] if _SCOPE else None
    if spec is None:
        return None
    if isinstance(spec, str) and spec == "auto":
        spec = auto()
    elif not isinstance(spec, Communicator) and hasattr(spec, "Allreduce") \
            and hasattr(spec, "Get_rank"):
        spec = mpi(spec)
    if not isinstance(spec, Communicator):
        raise TypeError("distributed must be an xn.distributed communicator (e.g. "
                        "xn.distributed.auto()), an mpi4py communicator, 'auto' or None; "
                        f"got {type(spec).__name__}")
    return spec if spec.size > 1 else None


def world():
    """The communicator of more than one process made last in this process, or None."""
    return _WORLD


def is_main_process() -> bool:
    """False only on the ranks > 0 of a communicator this process made: they do not
    write files (checkpoints and weights are written by rank 0)."""
    return _WORLD is None or _WORLD.rank == 0
