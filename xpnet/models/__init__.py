"""The book's networks (chapters 4-6) and its Trainer."""
from .multi_layer_net import MultiLayerNet
from .trainer import Trainer
from .two_layer_net import TwoLayerNet

__all__ = [
    "TwoLayerNet",
    "MultiLayerNet",
    "Trainer",
]
