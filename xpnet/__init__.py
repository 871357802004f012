"""xpnet: the book "Deep Learning from Scratch" as a small library that runs on any
array-API backend -- NumPy on the CPU, CuPy on the GPU, and also PyTorch and
array-api-strict.

    import xpnet as xn
    xn.get_backend()          # "numpy", or what XPNET_BACKEND says
    xn.set_backend("cupy")
"""
from . import (
    backend,
    callbacks,
    checkpoint,
    data,
    datasets,
    distributed,
    functions,
    gradcheck,
    initializers,
    io,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    perceptron,
    regularizers,
    saving,
    training,
)
from .backend import (
    BACKENDS,
    BackendMismatchError,
    BackendUnavailableError,
    get_backend,
    get_floatx,
    get_namespace,
    set_backend,
    set_floatx,
    to_numpy,
    use_backend,
)

from ._validate import InvalidParameterError
from .history import History
from .saving import load_model, register_layer
from .sequential import Sequential

__version__ = "0.1.0"

__all__ = [
    "BACKENDS", "BackendMismatchError", "BackendUnavailableError", "get_backend",
    "get_floatx", "get_namespace", "set_backend", "set_floatx", "to_numpy", "use_backend",
    "backend", "functions", "gradcheck", "initializers", "layers", "losses", "optimizers",
    "perceptron", "__version__", "callbacks", "checkpoint", "data", "datasets", "distributed", "io", "metrics", "models", "training",
    "History", "Sequential", "InvalidParameterError", "load_model", "register_layer", "saving",
    "regularizers",
]
