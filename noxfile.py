"""Sessions for xpnet: ``nox -s tests``, ``nox -s demo``, ``nox -s bench``.

Each session makes its own virtual environment and installs what it needs, so these
commands work on a fresh machine with only Python and pip.

Environment variables:
- ``XPNET_TORCH``: the PyTorch requirement for the tests (default ``torch==2.13.0``, a CPU
  build where the machine has one; set it to ``""`` to test without torch).
- ``XPNET_CUPY``: the CuPy requirement (default ``cupy-cuda12x``; ``""`` for none). Without a
  GPU, CuPy still installs and the GPU tests skip with the CUDA error as the reason.
- ``XPNET_JAX``: the JAX requirement (default ``jax>=0.4.32``, the CPU build; pip picked 0.10.2
  when this was written; ``""`` for none: the jax tests then skip with the reason).
- ``XPNET_MPI``: set (to anything but ``""``) where MPI is installed (``mpirun``, and
  ``mpicc`` to build mpi4py): the tests then install the ``mpi`` extra and run the
  data-parallel tests under ``mpirun`` too (else those skip with the reason).
"""
import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH = os.environ.get("XPNET_TORCH", "torch==2.13.0")
CUPY = os.environ.get("XPNET_CUPY", "cupy-cuda12x")
JAX = os.environ.get("XPNET_JAX", "jax>=0.4.32")
MPI = os.environ.get("XPNET_MPI", "")


def _install_backends(session):
    """Install PyTorch, CuPy and JAX, or, where their variable is empty, make sure a reused
    environment does not still hold them (their tests then skip with the reason)."""
    absent = []
    if TORCH:
        session.install(TORCH)
    else:
        absent.append("torch")
    if CUPY:
        session.install(CUPY)
    else:
        absent += ["cupy-cuda12x", "cupy-cuda13x", "cupy"]
    if JAX:
        session.install(JAX)
    else:
        absent += ["jax", "jaxlib"]
    if absent:
        session.run("python", "-m", "pip", "uninstall", "-y", "-q", *absent, silent=True)


@nox.session
def tests(session):
    """The whole test suite on every backend that can run here (plus a benchmark smoke run),
    with Dask, scikit-learn (whose estimator checks then run on xpnet.sklearn) and
    tensorboardX (the TensorBoard callback; tensorboard's own reader checks its files)."""
    session.install("-e", ".[test,dask,sklearn,tensorboard]", "tensorboard")  # its reader
    _install_backends(session)
    if TORCH:  # torch.distributed: the pinned torch, already there
        session.install("-e", ".[distributed]", TORCH)
    if MPI:
        session.install("-e", ".[mpi]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def demo(session):
    """The short tour: backend, a small net trained with a progress bar, inference timing."""
    session.install("-e", ".[plot]")
    session.run("python", "-m", "xpnet", "demo", *session.posargs)


@nox.session
def bench(session):
    """The benchmarks against hand-written NumPy, PyTorch and scikit-learn, in one run."""
    session.install("-e", ".[test,sklearn]", "threadpoolctl")
    _install_backends(session)
    os.makedirs("benchmarks/results", exist_ok=True)
    session.run("python", "-m", "pytest", "benchmarks", "--benchmark-enable",
                "--benchmark-json=benchmarks/results/bench.json", "-p", "no:randomly",
                *session.posargs)
    session.run("python", "-m", "benchmarks.report", "benchmarks/results/bench.json")
