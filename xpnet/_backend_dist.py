"""Collectives over any backend's arrays, for :mod:`xpnet.distributed`: torch.distributed
(gloo on the CPU, NCCL on the GPU) and mpi4py.

torch.distributed works on torch tensors. A NumPy, array-api-strict or CuPy buffer is
handed to it through DLPack (``torch.from_dlpack``), which shares the memory: the
all-reduce writes into the array itself, nothing is copied. mpi4py works on host buffers
(a NumPy view of the same memory) and on CuPy arrays through CUDA-aware MPI.

Every failed collective raises :class:`DistributedError` naming the rank, the operation
and the likely cause (another rank died, or the timeout ran out), instead of a transport
message. Like the other ``_backend_*`` modules this one imports nothing of xpnet's; the
libraries are imported when a communicator is made, never at import time.
"""
from __future__ import annotations

import datetime

import numpy as np

__all__ = ["DistributedError", "TorchOps", "MPIOps", "SingleOps"]


class DistributedError(RuntimeError):
    """A collective failed or timed out: another rank died, raised, or never arrived."""


def _failed(ops, what, exc):
    return DistributedError(
        f"rank {ops.rank} of {ops.size}: {what} failed ({type(exc).__name__}: "
        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}). Another "
        f"rank probably stopped (crashed, was killed, or raised an error: see its log) or "
        f"did not reach the same call within the timeout of {ops.timeout:g} s; every rank "
        "must run the same fit with the same data and arguments")


class SingleOps:
    """One process: every collective is the identity."""

    rank, size, local_rank, timeout, name = 0, 1, 0, 0.0, "single"

    def allreduce_sum(self, buf, what):
        return buf

    def broadcast(self, buf, root, what):
        return buf

    def broadcast_object(self, obj, root, what):
        return obj

    def allgather_object(self, obj, what):
        return [obj]

    def barrier(self, what):
        pass

    def close(self):
        pass


class TorchOps:
    """Collectives of ``torch.distributed``'s default process group.

    The group is made here from the launcher's environment (``init_method="env://"``:
    ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, as ``torchrun`` sets
    them) unless the program has made it already. ``backend`` None: NCCL when
    ``device`` is a GPU one, else gloo. ``timeout`` (seconds) bounds every collective.
    """

    name = "torch"

    def __init__(self, backend=None, timeout=300.0, device="cpu", local_rank=0, array_lib=None):
        import torch
        import torch.distributed as dist

        self.torch, self.dist = torch, dist
        self.timeout = float(timeout)
        self.owns = not dist.is_initialized()
        if self.owns:
            backend = backend or ("nccl" if "cuda" in str(device) else "gloo")
            if backend == "nccl":
                _use_gpu(local_rank, array_lib)
            dist.init_process_group(backend, init_method="env://",
                                    timeout=datetime.timedelta(seconds=self.timeout))
        self.backend = dist.get_backend()
        self.rank, self.size, self.local_rank = dist.get_rank(), dist.get_world_size(), local_rank
        self.cuda = self.backend == "nccl"

    def _tensor(self, buf):
        """``buf`` as a tensor on the same memory (DLPack), and whether it was one."""
        if isinstance(buf, self.torch.Tensor):
            return buf, True
        return self.torch.from_dlpack(buf), False

    def _run(self, op, buf, what, **kw):
        t, native = self._tensor(buf)
        try:
            op(t, **kw)
        except RuntimeError as exc:  # DistBackendError, timeouts, closed connections
            raise _failed(self, what, exc) from exc
        if self.cuda and not native:  # CuPy reads the buffer next, on its own stream
            self.torch.cuda.current_stream().synchronize()
        return buf  # written in place, through the shared memory

    def allreduce_sum(self, buf, what):
        return self._run(self.dist.all_reduce, buf, what)

    def broadcast(self, buf, root, what):
        return self._run(self.dist.broadcast, buf, what, src=root)

    def broadcast_object(self, obj, root, what):
        box = [obj]
        try:
            self.dist.broadcast_object_list(box, src=root)
        except RuntimeError as exc:
            raise _failed(self, what, exc) from exc
        return box[0]

    def allgather_object(self, obj, what):
        out = [None] * self.size
        try:
            self.dist.all_gather_object(out, obj)
        except RuntimeError as exc:
            raise _failed(self, what, exc) from exc
        return out

    def barrier(self, what):
        try:
            self.dist.barrier()
        except RuntimeError as exc:
            raise _failed(self, what, exc) from exc

    def close(self):
        if self.owns and self.dist.is_initialized():
            self.dist.destroy_process_group()


def _use_gpu(local_rank, array_lib):
    """One GPU per rank: GPU ``local_rank`` becomes the current device of torch (and of
    CuPy), before NCCL starts and before the backend makes its first array."""
    import torch

    index = local_rank % max(torch.cuda.device_count(), 1)
    torch.cuda.set_device(index)
    if array_lib == "cupy":
        import cupy

        cupy.cuda.Device(index).use()


class MPIOps:
    """Collectives of an mpi4py communicator (default ``MPI.COMM_WORLD``).

    Host arrays (NumPy, torch on the CPU, array-api-strict) are reduced through a NumPy
    view of their memory, in place; CuPy arrays are passed as they are (CUDA-aware MPI).
    An MPI failure usually ends the whole job (Open MPI's default error handler); where
    it raises instead, the error says which rank and which call.
    """

    name = "mpi"

    def __init__(self, comm=None, timeout=0.0, local_rank=0):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.local_rank, self.timeout = local_rank, float(timeout)

    def _view(self, buf):
        """A buffer MPI can write into that shares ``buf``'s memory."""
        if type(buf) is np.ndarray:
            return buf
        if hasattr(buf, "__cuda_array_interface__"):  # CuPy: sync its stream first
            import cupy

            cupy.cuda.get_current_stream().synchronize()
            return buf
        if type(buf).__module__.startswith("torch"):
            return buf.detach().numpy()  # a CPU tensor: the same memory
        return np.from_dlpack(buf)  # array-api-strict: the same memory, writeable

    def _call(self, what, fn, *args):
        try:
            return fn(*args)
        except self.MPI.Exception as exc:
            raise _failed(self, what, exc) from exc

    def allreduce_sum(self, buf, what):
        self._call(what, self.comm.Allreduce, self.MPI.IN_PLACE, self._view(buf), self.MPI.SUM)
        return buf

    def broadcast(self, buf, root, what):
        self._call(what, self.comm.Bcast, self._view(buf), root)
        return buf

    def broadcast_object(self, obj, root, what):
        return self._call(what, self.comm.bcast, obj, root)

    def allgather_object(self, obj, what):
        return self._call(what, self.comm.allgather, obj)

    def barrier(self, what):
        self._call(what, self.comm.Barrier)

    def close(self):
        pass
