"""Tests of the data loaders see no real cache and none of the user's XPNET_* data settings."""
from __future__ import annotations

DATA_VARS = ("XPNET_DATA", "XPNET_MNIST_URL", "XPNET_FASHION_MNIST_URL", "XPNET_CACHE_DIR",
             "XPNET_NO_SYSTEM_DATA")


def isolate_data(monkeypatch, tmp_path) -> None:
    """``HOME`` in ``tmp_path`` (so ``~/.cache/xpnet`` is empty) and the data variables unset."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in DATA_VARS:
        monkeypatch.delenv(var, raising=False)
