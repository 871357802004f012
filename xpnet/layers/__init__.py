"""Layers with ``forward``/``backward``, ``params`` and ``grads`` (the book, chapters 5-6),
and their Keras-style forms for :class:`xpnet.Sequential`."""
from .activations import ACTIVATIONS, Linear, Relu, Sigmoid, Softmax, Tanh, get_activation
from .activations_keras import ELU, GELU, Activation, LeakyReLU, SiLU, Softplus, Swish
from .affine import Affine, Dense, Flatten
from .base import Layer
from .graph import AddLayer, MulLayer
from .normalization import LayerNormalization
from .regularization import BatchNormalization, Dropout
from .softmax_loss import SoftmaxWithLoss

__all__ = [
    "Layer", "MulLayer", "AddLayer", "Affine", "Dense", "Flatten",
    "Relu", "Sigmoid", "Tanh", "Softmax", "Linear", "get_activation", "ACTIVATIONS",
    "SoftmaxWithLoss", "Dropout", "BatchNormalization",
    "LeakyReLU", "ELU", "GELU", "Softplus", "Swish", "SiLU", "Activation", "LayerNormalization",
]
