"""Models: the Keras-style ``Sequential`` and the book's networks (chapters 4-6) with its Trainer."""
from ..sequential import Sequential
from .multi_layer_net import MultiLayerNet
from .trainer import Trainer
from .two_layer_net import TwoLayerNet

__all__ = [
    "Sequential",
    "TwoLayerNet",
    "MultiLayerNet",
    "Trainer",
]
